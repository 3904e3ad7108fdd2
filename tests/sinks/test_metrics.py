"""Prometheus metrics: the names the README promises, bounded labels, no personal data.

Every test reads a fresh registry. The whole exposition after a fixed series of
events is compared with ``tests/data/golden/metrics_exposition.json`` (the
``_created`` timestamps and the version removed); rerun with UPDATE_GOLDEN=1
after an intended change and review the diff.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor import __version__
from monitor.codec import REJECT_REASONS
from monitor.model import Flag, LabelScore, Post, TaggedPost, Tags
from monitor.processor import Processor
from monitor.runtime.local import LocalRuntime
from monitor.runtime.progress import Progress
from monitor.sinks.metrics import Metrics, observe_all, parse_addr
from monitor.sources.replay import ReplaySource
from monitor.tagging import Tagger, load_tagger

TESTS = Path(__file__).parents[1]
RULES = TESTS / "runtime" / "rules"
GOLDEN = TESTS / "data" / "golden" / "metrics_exposition.json"
README = TESTS.parent / "README.md"
NOON = datetime(2025, 8, 13, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return load_tagger(RULES)


@pytest.fixture
def metrics(tagger: Tagger) -> Metrics:
    return Metrics(tagger.ruleset)


def exposition(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def exposition_of(registry: CollectorRegistry) -> list[str]:
    """The registry's exposition without its ``_created`` timestamps."""
    return [line for line in generate_latest(registry).decode().splitlines()
            if "_created" not in line]


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def tagged(tagger: Tagger, *texts: str, source: str = "bluesky",
           lang: str | None = "en") -> list[TaggedPost]:
    posts = [Post(id=f"{source}:{i}", source=source, text=text, lang=lang,
                  created_at=NOON + timedelta(seconds=i), author=f"someone-{i}")
             for i, text in enumerate(texts)]
    return Processor(tagger).process(posts).tagged


def readme_metrics() -> dict[str, set[str]]:
    """README "Metrics": {exposed family name: label names} for each listed metric."""
    section = README.read_text(encoding="utf-8").split("## Metrics", 1)[1].split("\n## ", 1)[0]
    section = " ".join(section.split())
    listing = section.split("(prefix `social_`):", 1)[1].split("Every label value", 1)[0]
    listing = re.sub(r"\([^)]*\)", "", listing)  # "(histogram: ... `created_at`)"
    found = {}
    for name, labels in re.findall(r"`([a-z_]+)(?:\{([a-z_,]+)\})?`", listing):
        found["social_" + name.removesuffix("_total")] = set(filter(None, labels.split(",")))
    return found


# -- names ------------------------------------------------------------------------


@pytest.fixture
def busy(tagger: Tagger, metrics: Metrics) -> Metrics:
    """Metrics after one of every kind of event, so every family has samples."""
    metrics.record_received("bluesky")
    metrics.record_rejected("bluesky", "invalid_json")
    metrics.record_tagged(tagged(tagger, "I miss 4o, we paid for 4o, release the weights",
                                 "airdrop, so furious"), [0.0, 0.0], NOON.timestamp())
    metrics.record_duplicates(["bluesky"])
    metrics.record_archived({"bluesky": 2})
    metrics.source_up.labels("bluesky").set(1)
    metrics.record_reconnect("bluesky")
    metrics.record_source_error("bluesky", "timeout")
    metrics.sink_errors.labels("mqtt").inc()
    metrics.cluster_size.observe(12)
    metrics.moderation_memory.labels("near_duplicates").set(1024)
    return metrics


def exposed_families(metrics: Metrics) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(exposition(metrics))
            if not f.name.endswith("_created")}


def test_every_metric_the_readme_lists_is_exposed_with_its_labels(busy: Metrics) -> None:
    families = exposed_families(busy)
    promised = readme_metrics()
    assert len(promised) == 23
    for name, labels in promised.items():
        assert name in families, f"README lists {name}, the monitor does not expose it"
        exposed = {key for s in families[name].samples for key in s.labels} - {"le"}
        assert exposed == labels, name
    assert families["social_processing_seconds"].type == "histogram"
    assert families["social_ingest_lag_seconds"].type == "histogram"
    assert families["social_queue_depth"].type == "gauge"
    assert families["social_posts_received"].type == "counter"


def test_every_exposed_metric_is_in_the_readme(busy: Metrics) -> None:
    undocumented = set(exposed_families(busy)) - set(readme_metrics())
    assert not undocumented, f"exposed but not in README 'Metrics': {sorted(undocumented)}"


def test_the_exposition_after_a_known_series_of_events(
        tagger: Tagger, metrics: Metrics, golden: Callable[[Path, Any], None]) -> None:
    metrics.record_received("bluesky")
    metrics.record_received("mastodon", count=2)
    metrics.record_rejected("bluesky", "bad_timestamp")
    metrics.record_rejected("mastodon", "missing_field:text")
    metrics.record_duplicates(["bluesky", "bluesky"])
    metrics.record_failed(["mastodon"])
    batch = tagged(tagger, "I miss 4o every day", "We paid for 4o. Release the weights!",
                   "Claim your airdrop", "so furious")
    metrics.record_tagged(batch, now=NOON.timestamp() + 90)
    metrics.record_archived({"bluesky": 3, "mastodon": 0})
    metrics.queue_depth.set(7)
    metrics.source_up.labels("bluesky").set(1)

    golden(GOLDEN, [line.replace(__version__, "VERSION")
                    for line in exposition_of(metrics.registry)])


# -- bounded labels ----------------------------------------------------------------


def test_an_unknown_source_is_counted_as_other(tagger: Tagger, metrics: Metrics) -> None:
    metrics.record_received("myspace")
    metrics.record_rejected("geocities", "invalid_json")
    metrics.record_tagged(tagged(tagger, "I miss 4o", source="friendster"))
    assert value(metrics, "social_posts_received_total", source="other") == 2
    assert value(metrics, "social_posts_rejected_total", source="other",
                 reason="invalid_json") == 1
    assert value(metrics, "social_posts_processed_total", source="other", lang="en") == 1
    assert value(metrics, "social_themes_total", source="other", theme="grief") == 1
    for name in ("myspace", "geocities", "friendster"):
        assert name not in exposition(metrics)


def test_an_unknown_reject_reason_is_counted_as_other(metrics: Metrics) -> None:
    for reason in REJECT_REASONS:
        metrics.record_rejected("replay", reason)
    metrics.record_rejected("replay", "line 7: unexpected 'Bob'")
    assert value(metrics, "social_posts_rejected_total", source="replay", reason="other") == 1
    assert all(value(metrics, "social_posts_rejected_total", source="replay", reason=r) == 1
               for r in REJECT_REASONS)
    assert "Bob" not in exposition(metrics)


def test_a_language_outside_the_ruleset_is_counted_as_other(tagger: Tagger,
                                                            metrics: Metrics) -> None:
    batch = tagged(tagger, "Ich vermisse 4o", lang="de") + tagged(tagger, "Extraño 4o", lang="es")
    stray = TaggedPost(batch[1].post, Tags(lang="xx-klingon"), "runtime_fixture", "h", "v")
    metrics.record_tagged([*batch, stray])
    assert value(metrics, "social_posts_processed_total", source="bluesky", lang="other") == 2
    assert value(metrics, "social_posts_processed_total", source="bluesky", lang="es") == 1
    assert "klingon" not in exposition(metrics) and 'lang="de"' not in exposition(metrics)


def test_labels_rules_and_flags_unknown_to_the_ruleset_are_not_counted(metrics: Metrics) -> None:
    post = Post(id="p", source="replay", text="t", created_at=NOON)
    tags = Tags(lang="en", themes=(LabelScore("zz_theme", 2.0, ("zz.rule",)),),
                claim=LabelScore("zz_claim", 2.0, ("zz.rule",)),
                reasons=(LabelScore("zz_reason", 2.0, ("zz.rule",)),),
                flags=(Flag("zz_flag", "low", "zz.rule"), Flag("spam", "zz_severity", "zz.rule")),
                rule_hits=("zz.rule",))
    metrics.record_tagged([TaggedPost(post, tags, "other_ruleset", "h", "v")])
    assert "zz" not in exposition(metrics)
    assert value(metrics, "social_posts_processed_total", source="replay", lang="en") == 1


def test_shadow_labels_unknown_to_the_ruleset_are_not_counted(metrics: Metrics) -> None:
    post = Post(id="p", source="replay", text="t", created_at=NOON)
    tags = Tags(lang="en", shadow=(LabelScore("zz_retired_label", 2.0, ("zz.rule",)),))
    metrics.record_tagged([TaggedPost(post, tags, "old_ruleset", "h", "v")])
    assert "zz_retired_label" not in exposition(metrics)


async def test_no_author_or_post_id_ever_reaches_the_exposition(tagger: Tagger,
                                                                metrics: Metrics) -> None:
    # tests/data/replay/mixed.jsonl: ids zzpostid-*, authors zzauthor-Quokka7731 and the like,
    # valid posts, duplicates and rejected lines
    replay = ReplaySource(TESTS / "data" / "replay" / "mixed.jsonl")
    runtime = LocalRuntime([replay], Processor(tagger), metrics, None, exit_when_done=True,
                           progress=Progress("off"))
    stats = await runtime.run()
    assert stats.processed == 5 and stats.rejected == 7
    text = exposition(metrics)
    for secret in ("zzpostid", "zzauthor", "Quokka7731", "Wombat0042", "Spammer9000"):
        assert secret not in text


# -- series that exist from the start ----------------------------------------------


def test_build_info_names_the_version_and_the_ruleset(tagger: Tagger, metrics: Metrics) -> None:
    rs = tagger.ruleset
    assert value(metrics, "social_build_info", version=__version__, ruleset="runtime_fixture",
                 ruleset_hash=rs.hash) == 1
    other = load_tagger(TESTS / "runtime" / "rules").ruleset
    other.name, other.hash = "reloaded", "0123456789abcdef"
    metrics.set_ruleset(other)
    infos = [s for f in text_string_to_metric_families(exposition(metrics))
             if f.name == "social_build_info" for s in f.samples]
    assert [s.labels["ruleset"] for s in infos] == ["reloaded"]


def test_every_rule_and_a_new_sources_flags_start_at_zero(tagger: Tagger,
                                                         metrics: Metrics) -> None:
    for rule in tagger.ruleset.all_rules():
        assert value(metrics, "social_rule_hits_total", rule=rule.id) == 0
    metrics.record_received("reddit")
    assert value(metrics, "social_flags_total", source="reddit", flag="csam_risk",
                 severity="critical") == 0
    assert value(metrics, "social_posts_duplicate_total", source="reddit") == 0
    assert value(metrics, "social_archive_posts_total", source="reddit") == 0


def test_failed_posts_are_rejections_with_reason_processing_error(metrics: Metrics) -> None:
    metrics.record_failed(["x", "x", "bluesky"])
    assert value(metrics, "social_posts_rejected_total", source="x",
                 reason="processing_error") == 2


def test_processing_and_lag_histograms(tagger: Tagger, metrics: Metrics) -> None:
    import time

    batch = tagged(tagger, "I miss 4o", "hello there")
    metrics.record_tagged(batch, [time.monotonic() - 0.2] * 2, NOON.timestamp() + 30)
    assert value(metrics, "social_processing_seconds_count") == 2
    assert value(metrics, "social_processing_seconds_bucket", le="0.1") == 0
    assert value(metrics, "social_processing_seconds_bucket", le="0.25") == 2
    assert value(metrics, "social_ingest_lag_seconds_sum") == 30 + 29  # posts at +0 s and +1 s
    assert value(metrics, "social_ingest_lag_seconds_bucket", le="30.0") == 2


@pytest.mark.parametrize("amounts", [
    [0.0, 0.5, 1.0, 10.0, 3600.0, 86400.0, 1e12],  # on the bounds: `<=` puts them in that bucket
    [0.3, 0.3, 45.0, 0.0001, 700.0, 2.5e6, float("inf")],
    [float("nan"), 5.0],  # observe adds NaN to the sum and to no bucket
    [],
], ids=["bounds", "spread", "nan", "none"])
def test_observing_a_batch_exposes_what_observing_each_amount_does(amounts: list[float]) -> None:
    def histogram() -> tuple[CollectorRegistry, Histogram]:
        registry = CollectorRegistry()
        return registry, Histogram("lag_seconds", "lag", buckets=(0.5, 1, 10, 3600, 86400),
                                   registry=registry)

    one_by_one, each = histogram()
    for amount in amounts:
        each.observe(amount)
    batched, batch = histogram()
    observe_all(batch, amounts)
    assert exposition_of(batched) == exposition_of(one_by_one)


# -- serving ---------------------------------------------------------------------


def test_serve_on_a_free_port(metrics: Metrics) -> None:
    metrics.record_received("bluesky")
    server = metrics.serve("127.0.0.1:0")
    try:
        host, port = server.server_address[:2]
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'social_posts_received_total{source="bluesky"} 1.0' in body


@pytest.mark.parametrize(("addr", "expected"), [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)),
    (":9100", ("127.0.0.1", 9100)),
    ("9100", ("127.0.0.1", 9100)),
    ("[::1]:9464", ("::1", 9464)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
])
def test_parse_addr(addr: str, expected: tuple[str, int]) -> None:
    assert parse_addr(addr) == expected


@pytest.mark.parametrize(("addr", "message"), [
    ("localhost:http", "use HOST:PORT, e.g. 127.0.0.1:9464"),
    ("127.0.0.1:70000", "port must be 0-65535"),
])
def test_a_bad_address_says_what_to_write(addr: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_addr(addr)
