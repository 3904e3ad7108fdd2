"""Top terms: the decaying space-saving sketch, the word filter, and the bounded gauge."""

from __future__ import annotations

import importlib
import json
import random
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.model import Post
from monitor.processor import Processor
from monitor.sinks.metrics import Metrics
from monitor.sinks.topterms import (
    DecayingTopK,
    TopTerms,
    TopTermsSettings,
    campaign_words,
    content_words,
    spacy_stop_words,
)
from monitor.tagging import default_rules_path, load_ruleset, load_tagger
from monitor.tagging.ruleset import Ruleset
from tests.grafana.queries import ROOT

HOUR = 3600.0
T0 = datetime(2026, 2, 13, 12, 0, tzinfo=UTC).timestamp()
SAMPLE = ROOT / "samples" / "stream.jsonl"


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return load_ruleset(default_rules_path())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def exposed(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """{(lang, term): value} of social_top_terms in the exposition text."""
    found = {}
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("social_top_terms{"):
            labels, value = line[len("social_top_terms{"):].rsplit("} ", 1)
            parts = dict(item.split("=", 1) for item in labels.split('",') if item)
            lang, term = (parts[k].strip('"') for k in ("lang", "term"))
            found[(lang, term)] = float(value)
    return found


# -- the word filter --------------------------------------------------------------------


def test_content_words_are_lower_case_alphabetic_and_long_enough() -> None:
    words = content_words("LOVE love, Love! I am an AI fan: warmth... e-mail", frozenset())
    assert words == {"love", "warmth", "fan", "mail"}  # once per post; 'am', 'an', 'ai' too short


def test_tokens_with_digits_mentions_hashtags_or_links_are_dropped_whole() -> None:
    text = ("gpt-5 4o's #keep4o #warmth @sam_altman https://change.org/p/keep "
            "www.example.org kicksdrop.shop user@mail.com and/or kindness")
    assert content_words(text, frozenset()) == {"kindness"}


def test_stop_words_campaign_words_and_contraction_stubs_are_removed(ruleset: Ruleset) -> None:
    terms = TopTerms(ruleset, registry=CollectorRegistry())
    stop = terms.stop_words("en")
    text = "I don't think the GPT model is the same, chatgpt users miss its warmth"
    assert content_words(text, stop) == {"think", "users", "miss", "warmth"}
    assert {"gpt", "chatgpt", "model", "stopairouting"} <= campaign_words(ruleset)
    assert "the" in spacy_stop_words("en") and "para" in spacy_stop_words("pt")


def test_unknown_language_codes_have_no_stop_list() -> None:
    assert spacy_stop_words("qq") == frozenset()
    assert spacy_stop_words("../os") == frozenset()


@pytest.mark.parametrize("code", ["en", "es", "pt", "de", "ja", "zh"])
def test_stop_lists_read_from_spacys_files_are_spacys_own(code: str) -> None:
    # read without importing spaCy (the event loop's process need not carry it)
    module = importlib.import_module(f"spacy.lang.{code}.stop_words")
    assert spacy_stop_words(code) == {w.lower() for w in module.STOP_WORDS}


def test_the_extra_stop_list_is_configurable(ruleset: Ruleset) -> None:
    settings = TopTermsSettings(extra_stop_words=frozenset({"warmth"}))
    terms = TopTerms(ruleset, registry=CollectorRegistry(), settings=settings)
    assert "warmth" in terms.stop_words("en") and "don" not in terms.stop_words("en")


# -- the sketch ------------------------------------------------------------------------------


def test_counts_halve_every_half_life_of_event_time() -> None:
    sketch = DecayingTopK(capacity=10, half_life=HOUR)
    sketch.add(["love"], T0)
    sketch.add(["warmth"], T0 + HOUR)
    assert sketch.estimate("love", T0) == pytest.approx(1.0)
    assert sketch.estimate("love", T0 + HOUR) == pytest.approx(0.5)
    assert sketch.estimate("love", T0 + 2 * HOUR) == pytest.approx(0.25)
    assert sketch.top(2, T0 + HOUR) == [("warmth", pytest.approx(1.0)),
                                        ("love", pytest.approx(0.5))]


def test_decay_survives_many_half_lives_and_very_old_posts() -> None:
    sketch = DecayingTopK(capacity=10, half_life=60.0)
    for i in range(200):  # 200 half-lives: the landmark moves, nothing overflows
        sketch.add(["steady"], T0 + i * 60.0)
    now = T0 + 199 * 60.0
    assert sketch.estimate("steady", now) == pytest.approx(2.0, rel=1e-6)  # 1 + 1/2 + 1/4 ...
    sketch.add(["ancient"], T0 - 10**6)  # far older than 1000 half-lives: weightless
    assert "ancient" not in sketch


def test_the_table_never_exceeds_its_capacity() -> None:
    sketch = DecayingTopK(capacity=50, half_life=HOUR)
    for i in range(20_000):
        sketch.add([f"w{i}", f"x{i % 7}"], T0 + i)
        assert len(sketch) <= 50
    assert {term for term, _ in sketch.top(7)} == {f"x{k}" for k in range(7)}


def test_a_term_that_turns_frequent_late_climbs_to_the_top() -> None:
    sketch = DecayingTopK(capacity=20, half_life=10 * HOUR)
    t = T0
    for i in range(3000):  # early favourites, then noise
        t += 1
        sketch.add(["early"] if i < 300 else [f"noise{i}"], t)
    for i in range(400):  # "love" arrives late, among more noise
        t += 1
        sketch.add(["love"] if i % 2 else [f"late{i}"], t)
    assert sketch.top(1, t)[0][0] == "love"


def test_terms_that_stop_appearing_fade_and_are_evicted() -> None:
    sketch = DecayingTopK(capacity=10, half_life=60.0)
    sketch.add(["yesterday"], T0)
    for i in range(1, 200):
        sketch.add([f"fresh{i}"], T0 + 3600 + i)
    assert "yesterday" not in sketch


def test_space_saving_bounds_hold_without_decay() -> None:
    rng = random.Random(7)
    words = [f"w{i}" for i in range(500)]
    weights = [1 / (i + 1) for i in range(500)]  # Zipf-like
    stream = rng.choices(words, weights, k=20_000)
    sketch = DecayingTopK(capacity=60, half_life=1e12)  # no decay to speak of
    for term in stream:
        sketch.add([term], T0)
    truth = Counter(stream)
    floor = sketch.floor()
    for term, estimate in sketch.top(30):
        assert truth[term] - 1e-6 <= estimate <= truth[term] + floor + 1e-6
    assert [t for t, _ in sketch.top(5)] == [t for t, _ in truth.most_common(5)]


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="capacity"):
        TopTermsSettings(k=20, capacity=30)
    with pytest.raises(ValueError, match="half_life"):
        TopTermsSettings(half_life=0)
    with pytest.raises(ValueError, match="capacity"):
        DecayingTopK(capacity=1)


# -- per language, and the gauge ----------------------------------------------------------


def test_posts_go_to_their_language_or_other_and_char_languages_are_skipped(
        ruleset: Ruleset) -> None:
    terms = TopTerms(ruleset, registry=CollectorRegistry())
    terms.observe("en", "warmth and kindness", T0)
    terms.observe("pt", "saudade para tecnologia", T0)  # not configured: other, pt stop words
    terms.observe(None, "gracias warmth", T0)  # unknown: other, every configured stop list
    terms.observe("zh", "我们想念这个模型的温暖", T0)  # per-character language: not counted
    assert {t for t, _ in terms.top("en")} == {"warmth", "kindness"}
    assert {t for t, _ in terms.top("other")} == {"saudade", "tecnologia", "gracias", "warmth"}
    assert "para" not in {t for t, _ in terms.top("other")}
    assert terms.top("zh") == []


def test_only_the_top_k_are_exposed_and_stale_terms_are_removed(ruleset: Ruleset) -> None:
    registry, clock = CollectorRegistry(), FakeClock()
    terms = TopTerms(ruleset, registry=registry, clock=clock,
                     settings=TopTermsSettings(k=2, capacity=4))
    for _ in range(3):
        terms.observe("en", "warmth kindness", T0)
    terms.observe("en", "patience", T0)
    assert terms.publish()
    assert set(exposed(registry)) == {("en", "warmth"), ("en", "kindness")}
    for i in range(10):  # a new conversation, an hour later
        terms.observe("en", "petition signatures", T0 + HOUR + i)
    clock.now += 1
    assert terms.publish()
    assert set(exposed(registry)) == {("en", "petition"), ("en", "signatures")}
    assert "warmth" not in generate_latest(registry).decode()


def test_the_gauge_is_refreshed_at_most_once_per_interval(ruleset: Ruleset) -> None:
    registry, clock = CollectorRegistry(), FakeClock()
    terms = TopTerms(ruleset, registry=registry, clock=clock)
    terms.observe("en", "warmth", T0)
    assert terms.publish()
    terms.observe("en", "kindness", T0)
    clock.now += 0.5
    assert not terms.publish()
    assert set(exposed(registry)) == {("en", "warmth")}
    assert terms.publish(force=True)
    clock.now += 1.0
    terms.observe("en", "patience", T0)
    assert terms.publish()
    assert set(exposed(registry)) == {("en", "warmth"), ("en", "kindness"), ("en", "patience")}


def test_a_post_from_the_future_cannot_age_everything_away(ruleset: Ruleset) -> None:
    terms = TopTerms(ruleset, registry=CollectorRegistry())
    terms.observe("en", "warmth", T0, processed_at=T0)
    terms.observe("en", "spam", T0 + 365 * 86400, processed_at=T0)  # a bogus date
    assert terms.now == T0 + terms.settings.max_future
    assert dict(terms.top("en"))["warmth"] > 0.9


def test_metrics_expose_top_terms_after_a_batch() -> None:
    tagger = load_tagger(ROOT / "tests" / "runtime" / "rules")  # small: quick to compile
    metrics = Metrics(tagger.ruleset)
    when = datetime.fromtimestamp(T0, UTC)
    posts = [Post(id=f"bluesky:{i}", source="bluesky", lang="en", created_at=when,
                  text=f"I miss the warmth of #keep4o, day {i}") for i in range(3)]
    metrics.record_tagged(Processor(tagger).process(posts).tagged, now=T0 + 60)
    value = metrics.registry.get_sample_value("social_top_terms", {"lang": "en", "term": "warmth"})
    assert value == pytest.approx(3.0)
    assert metrics.registry.get_sample_value(
        "social_top_terms", {"lang": "en", "term": "keep4o"}) is None


# -- on the sample stream: the bound and the cost ----------------------------------------------


def _sample() -> list[tuple[str | None, str, float]]:
    posts = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        created = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
        posts.append((record.get("lang"), record["text"], created.timestamp()))
    return posts


def test_the_label_set_stays_bounded_on_the_sample_stream(ruleset: Ruleset) -> None:
    registry = CollectorRegistry()
    terms = TopTerms(ruleset, registry=registry)
    for lang, text, t in _sample():
        terms.observe(lang, text, t)
    terms.publish(force=True)
    series = exposed(registry)
    word_langs = [lang for lang, conf in ruleset.languages.items() if conf.tokenizer != "char"]
    assert 0 < len(series) <= terms.settings.k * (len(word_langs) + 1)
    assert {lang for lang, _ in series} <= {*word_langs, "other"}
    assert all(value > 0 for value in series.values())


def test_per_post_cost_is_small(ruleset: Ruleset, capsys: pytest.CaptureFixture[str]) -> None:
    """Measured on the 3,000 posts of the bundled sample (best of 5 passes)."""
    posts = _sample()
    best = float("inf")
    for _ in range(5):
        terms = TopTerms(ruleset, registry=CollectorRegistry())
        started = time.perf_counter()
        for lang, text, t in posts:
            terms.observe(lang, text, t, t)
        best = min(best, (time.perf_counter() - started) / len(posts))
    registry_terms = TopTerms(ruleset, registry=CollectorRegistry())
    for lang, text, t in posts:
        registry_terms.observe(lang, text, t)
    started = time.perf_counter()
    registry_terms.publish(force=True)
    publish = time.perf_counter() - started
    with capsys.disabled():
        print(f"\ntop terms: {best * 1e6:.1f} µs/post, publish {publish * 1e3:.2f} ms")
    assert best < 100e-6, f"{best * 1e6:.1f} µs per post"
    assert publish < 0.05
