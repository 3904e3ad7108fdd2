"""The issue's measurement: a promotion flood inside six hours of ordinary #keep4o chatter.

50,000 ordinary posts (tests/moderation/synth.py) with a 300-post near-duplicate
flood from 40 bots inside 15 minutes are replayed through the real CLI,
``monitor run --source replay:FILE?speed=max --exit-when-done``, and the
archive it writes is read back. Targets: at least 95% of the flood flagged
spam, fewer than 0.5% of the ordinary posts.

The detectors' memory is then measured in this process: the Moderator the
CLI builds runs again over the same posts, in the same order, with the content
tags the CLI archived (re-tagging 50,000 posts would double the run time, and
no detector's state depends on the tags: each records every post's text,
domains and author). It must reproduce the CLI's flags exactly, and stay under
a bound derived from the config (:func:`memory_bound`).

``pytest -s`` prints the figures: flood recall, the ordinary spam rate, the
rules that flagged ordinary posts (with examples), run time and memory.
"""

from __future__ import annotations

import subprocess
import sys
import time
from bisect import bisect_right
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from sys import getsizeof

import orjson
import pytest
import zstandard

from monitor.codec import decode_tagged
from monitor.model import Post, Tags
from monitor.moderation.config import ModerationConfig
from monitor.moderation.detectors import registrable_domain
from monitor.moderation.moderator import Moderator
from monitor.tagging import Ruleset
from monitor.textutil import domain_of, extract_links
from tests.moderation.synth import Replay, replay, to_posts, write_jsonl

pytestmark = pytest.mark.slow

FLOOD_RECALL = 0.95
ORDINARY_SPAM_RATE = 0.005
BATCH = 256  # the CLI's default batch size


# -- the memory bound, from the config ---------------------------------------------------


def _window_bytes(keys: int, key_chars: int, max_events: int) -> int:
    """MemoryWindow.memory_bytes() with ``keys`` keys, each holding ``max_events`` times."""
    full: list[float] = []
    for _ in range(max_events):  # grown as the window grows it (lists over-allocate)
        full.append(0.0)
    per_key = getsizeof("k" * key_chars) + getsizeof(full) + 24 * max_events
    return getsizeof(OrderedDict.fromkeys(range(keys))) + keys * per_key


def _neardup_bytes(entries: int, events: int) -> int:
    """NearDuplicateIndex.memory_bytes() with ``entries`` clusters or one-off texts holding
    ``events`` posts (and as many authors) between them."""
    per_entry = (100 + 6 * 32  # the accounting's base, a cluster's band keys
                 + 6 * (32 + 28)  # its 6 band keys in the index, its id in a bucket list
                 + getsizeof([]) + getsizeof(OrderedDict({"a": None})))
    rows = max(1_024, 2 * entries) * 24 * 8  # the signature matrix grows by doubling
    slot = (getsizeof(OrderedDict.fromkeys(range(1_024))) - getsizeof(OrderedDict())) / 1_024
    per_event = 24 + 60 + slot + 16  # a time, an author, the author's slot, list growth
    containers = (2 * getsizeof(OrderedDict.fromkeys(range(entries)))
                  + 2 * getsizeof(dict.fromkeys(range(6 * entries))))  # churned: resized x2
    return int(rows + containers + entries * per_entry + events * per_event)


def memory_bound(config: ModerationConfig, *, posts: int, authors: int, domains: int) -> dict[str, int]:
    """What the detectors may hold, from the config and three facts about the stream.

    - near_duplicates: a one-off text lives one window, a cluster one window after its
      last post and holds its posts of one window, so everything alive was created by
      the posts of the last two windows (``posts``, the most in any 2 x window span),
      and never more than max_singletons + max_clusters entries;
    - domains: min(max_domains, ``domains`` seen), each with at most
      max(4 x link_promotion.min_posts, 100) times;
    - authors: min(max_authors, ``authors`` seen), each with at most
      author_burst.max_posts + 1 times.
    """
    entries = min(config.max_singletons + config.max_clusters, posts)
    return {
        "near_duplicates": _neardup_bytes(entries, posts),
        "domains": _window_bytes(min(config.max_domains, domains), 64,
                                 max(config.link_promotion_min_posts * 4, 100)),
        "authors": _window_bytes(min(config.max_authors, authors), 16,
                                 config.author_burst_max_posts + 1),
    }


def worst_case(config: ModerationConfig) -> dict[str, int]:
    """The same for any stream: every cap full, every cluster at 1,000 posts (not configurable)."""
    return {
        "near_duplicates": _neardup_bytes(config.max_singletons + config.max_clusters,
                                          config.max_singletons + config.max_clusters * 1_000),
        "domains": _window_bytes(config.max_domains, 253,
                                 max(config.link_promotion_min_posts * 4, 100)),
        "authors": _window_bytes(config.max_authors, 16, config.author_burst_max_posts + 1),
    }


def busiest(times: list[float], span: float) -> int:
    """The most posts within any ``span`` seconds."""
    return max(bisect_right(times, t + span) - i for i, t in enumerate(times))


# -- the run ------------------------------------------------------------------------------


@dataclass
class Measurement:
    stream: Replay
    texts: dict[str, str]
    #: post id -> rules of its spam flags, as the CLI archived them
    archived: dict[str, list[str]] = field(default_factory=dict)
    cli_seconds: float = 0.0
    #: in this process: spam-flagged ids, the detectors' memory (peak per structure)
    in_process_spam: set[str] = field(default_factory=set)
    detectors_only: set[str] = field(default_factory=set)
    memory_peak: dict[str, int] = field(default_factory=dict)
    memory_final: dict[str, int] = field(default_factory=dict)
    bound: dict[str, int] = field(default_factory=dict)
    worst: dict[str, int] = field(default_factory=dict)
    trust: Callable[[str], bool] = bool

    def spam(self, ids: frozenset[str]) -> set[str]:
        return {i for i in ids if self.archived.get(i)}

    @property
    def recall(self) -> float:
        return len(self.spam(self.stream.flood_ids)) / len(self.stream.flood_ids)

    @property
    def ordinary_rate(self) -> float:
        ordinary = self.stream.ordinary_ids
        return len(self.spam(ordinary)) / len(ordinary)


def monitor_command() -> list[str]:
    script = Path(sys.executable).with_name("monitor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]


def archive_lines(folder: Path) -> Iterator[bytes]:
    for path in sorted(folder.glob("*/*.jsonl.zst")):
        with path.open("rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
        yield from data.splitlines()


def moderate_again(archived: list[tuple[Post, Tags]], ruleset: Ruleset, m: Measurement) -> None:
    """The CLI's Moderator over the archived posts and content tags; memory after every batch."""
    content = [(p, Tags(t.lang, t.themes, t.claim, t.reasons,
                        tuple(f for f in t.flags if not f.rule.startswith("moderation.")),
                        t.relevance)) for p, t in archived]
    moderator = Moderator(ruleset.moderation, ruleset.campaign.trusted_domains)
    m.trust = moderator.state.is_trusted
    peak: Counter[str] = Counter()
    for i in range(0, len(content), BATCH):
        batch = content[i:i + BATCH]
        flags = moderator.moderate([p for p, _ in batch], [t for _, t in batch])
        for (post, tags), extra in zip(batch, flags, strict=True):
            if any(f.kind == "spam" for f in (*tags.flags, *extra)):
                m.in_process_spam.add(post.id)
        for structure, size in moderator.memory_bytes().items():
            peak[structure] = max(peak[structure], size)
    assert moderator.errors == 0
    m.memory_peak, m.memory_final = dict(peak), moderator.memory_bytes()
    # What the detectors catch on their own, as if no content rule had flagged anything.
    alone = Moderator(ruleset.moderation, ruleset.campaign.trusted_domains)
    for i in range(0, len(content), BATCH):
        batch = content[i:i + BATCH]
        bare = [Tags(t.lang, t.themes, t.claim, t.reasons, (), t.relevance) for _, t in batch]
        for (post, _), flags in zip(batch, alone.moderate([p for p, _ in batch], bare),
                                    strict=True):
            if flags:
                m.detectors_only.add(post.id)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory, shipped_ruleset: Ruleset) -> Measurement:
    work = tmp_path_factory.mktemp("flood")
    stream = replay()
    path = write_jsonl(work / "replay.jsonl", stream.records)
    m = Measurement(stream, {r["id"]: r["text"] for r in stream.records})
    started = time.perf_counter()
    with (work / "monitor.log").open("wb") as log:
        done = subprocess.run(
            [*monitor_command(), "run", "--source", f"replay:{path}?speed=max", "--exit-when-done",
             "--archive-dir", str(work / "archive"), "--key-file", str(work / "key"),
             "--metrics-addr", "127.0.0.1:0", "--progress", "log"],
            cwd=work, stdout=log, stderr=subprocess.STDOUT, timeout=300, check=False)
    m.cli_seconds = time.perf_counter() - started
    assert done.returncode == 0, (work / "monitor.log").read_text()[-3000:]
    archived: dict[str, tuple[Post, Tags]] = {}
    for line in archive_lines(work / "archive"):
        record = orjson.loads(line)
        m.archived[record["id"]] = [f["rule"] for f in record["flags"] if f["kind"] == "spam"]
        tagged = decode_tagged(line)
        archived[tagged.post.id] = (tagged.post, tagged.tags)
    in_order = [archived[r["id"]] for r in stream.records if r["id"] in archived]
    moderate_again(in_order, shipped_ruleset, m)
    config = shipped_ruleset.moderation
    posts = to_posts(stream.records)
    times = sorted(p.created_at.timestamp() for p in posts)
    domains = {registrable_domain(domain_of(u)) for p in posts for u in extract_links(p.text)}
    m.bound = memory_bound(config, posts=busiest(times, 2 * config.window_seconds),
                           authors=len({p.author for p in posts}), domains=len(domains))
    m.worst = worst_case(config)
    report(m)
    return m


def untrusted(text: str, trust: Callable[[str], bool]) -> set[str]:
    domains = {registrable_domain(domain_of(u)) for u in extract_links(text)}
    return {d for d in domains if d and not trust(d)}


def report(m: Measurement) -> None:
    ordinary = m.stream.ordinary_ids
    flood = m.stream.flood_ids
    by_rule: dict[str, list[str]] = defaultdict(list)
    for post_id in sorted(m.spam(ordinary)):
        for rule in m.archived[post_id]:
            by_rule[rule].append(m.texts[post_id])
    flood_rules = Counter(rule for i in m.spam(flood) for rule in m.archived[i])
    mib = 1 << 20
    print(f"\n== flood replay: {len(ordinary):,} ordinary posts + {len(flood)} flood posts ==")
    print(f"CLI run (replay, tag, moderate, archive): {m.cli_seconds:.1f} s")
    print(f"flood recall: {m.recall:.1%} ({len(m.spam(flood))}/{len(flood)}), by rule "
          f"{dict(flood_rules.most_common())}")
    print(f"flood recall of the stateful detectors alone: "
          f"{len(m.detectors_only & flood) / len(flood):.1%}")
    print(f"ordinary spam rate: {m.ordinary_rate:.2%} ({len(m.spam(ordinary))}/{len(ordinary):,})")
    for rule, texts in sorted(by_rule.items(), key=lambda kv: -len(kv[1])):
        print(f"  {rule}: {len(texts)}")
        if rule.startswith("moderation."):
            hosts = Counter(", ".join(sorted(untrusted(t, m.trust))) or "(no untrusted link)"
                            for t in texts)
            print(f"    by untrusted domain: {dict(hosts.most_common(5))}")
        for text in texts[:: max(1, len(texts) // 3)][:3]:
            print(f"      {text[:150]!r}")
    print("detectors' memory, peak (final) / bound for this stream / worst case of the config:")
    for name in m.bound:
        print(f"  {name}: {m.memory_peak[name] / mib:.2f} MiB ({m.memory_final[name] / mib:.2f}) "
              f"/ {m.bound[name] / mib:.2f} MiB / {m.worst[name] / mib:,.0f} MiB")


# -- the targets ---------------------------------------------------------------------------


def test_every_post_is_archived_and_its_moderator_flags_the_same_here(
        measured: Measurement) -> None:
    assert set(measured.archived) == set(measured.texts)
    assert {i for i, rules in measured.archived.items() if rules} == measured.in_process_spam


def test_the_flood_is_flagged_spam(measured: Measurement) -> None:
    assert measured.recall >= FLOOD_RECALL


def test_the_stateful_detectors_alone_catch_the_flood(measured: Measurement) -> None:
    """Had no content rule recognized the wording: only the first copies of a cluster pass."""
    flood = measured.stream.flood_ids
    assert len(measured.detectors_only & flood) / len(flood) >= FLOOD_RECALL


def test_ordinary_posts_are_rarely_flagged_spam(measured: Measurement) -> None:
    assert measured.ordinary_rate < ORDINARY_SPAM_RATE


def test_the_detectors_memory_stays_under_the_bound_from_the_config(measured: Measurement) -> None:
    for structure, bound in measured.bound.items():
        assert measured.memory_peak[structure] <= bound, (structure, measured.memory_peak, bound)
        assert measured.memory_peak[structure] <= measured.worst[structure]
