"""A stream's tagger refresh: built a step at a time, swapped in whole, cancelled by a reload."""

from __future__ import annotations

import gc
import random
import string
import weakref
from pathlib import Path

import orjson

from monitor.tagging import Tagger, load_tagger
from monitor.tagging.refresh import Refresh

GOLDEN = Path(__file__).parent / "golden" / "demo_posts.jsonl"


def items() -> list[tuple[str, str | None, tuple[str, ...]]]:
    posts = [orjson.loads(line) for line in GOLDEN.read_bytes().splitlines()]
    return [(p["text"], p.get("lang"), tuple(p.get("hashtags", ()))) for p in posts]


def lexemes(tagger: Tagger) -> int:
    """Lexemes in all of the tagger's vocabularies."""
    return sum(len(pipe.nlp.vocab) for pipe in tagger.compiled.pipelines.values())


def build(refresh: Refresh) -> tuple[Tagger, int]:
    """Step with no time budget (one step each) until the fresh tagger comes out."""
    steps = 0
    while (fresh := refresh.step(0.0)) is None:
        steps += 1
        assert steps < 100_000, "the build never ends"
    return fresh, steps + 1


def test_a_refresh_is_due_after_every_posts(demo_tagger: Tagger) -> None:
    refresh = Refresh(every=100, min_new_words=0)
    refresh.counted(demo_tagger, 99)
    assert not refresh.pending and refresh.step(1.0) is None

    refresh.counted(demo_tagger, 1)

    assert refresh.pending


def test_the_fresh_tagger_is_built_in_small_steps_and_tags_the_same(demo_tagger: Tagger) -> None:
    refresh = Refresh(every=1, min_new_words=0)  # every language counts as grown
    refresh.counted(demo_tagger, 1)

    fresh, steps = build(refresh)

    old, new = demo_tagger.compiled, fresh.compiled
    assert steps == len(old.pipelines) + 1  # a blank pipeline per language, then the end
    for code, pipe in old.pipelines.items():
        assert new.pipelines[code].nlp.vocab is not pipe.nlp.vocab
        assert new.pipelines[code].phrases is pipe.phrases  # shared, not built again
    assert new.regex_set is old.regex_set  # shared, not compiled again
    # the token Matcher runs on the new vocabulary ("work.hours": LIKE_NUM + LOWER)
    assert new.pipelines["en"].tokens is not None
    assert new.pipelines["en"].tokens.vocab is new.pipelines["en"].nlp.vocab
    assert fresh.tag_batch(items()) == demo_tagger.tag_batch(items())
    # the old tagger's memory is returned at the next step, a step of its own
    assert refresh.pending
    assert refresh.step(0.0) is None
    assert not refresh.pending


def test_a_replaced_taggers_pipelines_are_freed_without_the_collector(rulesets: Path) -> None:
    # what lets a refresh skip a full collection (monitor.memory.release_free_memory)
    tagger = load_tagger(rulesets / "demo")
    tagger.tag_batch(items())
    old = {code: weakref.ref(pipe.nlp) for code, pipe in tagger.compiled.pipelines.items()}
    refresh = Refresh(every=1, min_new_words=0)  # every language counts as grown
    refresh.counted(tagger, 1)
    fresh, _ = build(refresh)
    gc.disable()
    try:
        del tagger

        assert {code: ref() is None for code, ref in old.items()} == dict.fromkeys(old, True)
    finally:
        gc.enable()
    assert fresh.tag_batch(items())


def test_the_stream_never_reaches_the_phrase_matchers_vocabulary(rulesets: Path) -> None:
    tagger = load_tagger(rulesets / "demo")
    en = tagger.compiled.pipelines["en"]
    patterns = len(en.phrases.vocab)

    tagger.tag_batch(random_words(1_200))

    assert len(en.nlp.vocab) >= en.built_size + 1_200
    assert len(en.phrases.vocab) == patterns  # so a refresh frees all the stream's words


def test_a_reload_cancels_a_refresh_in_progress(demo_tagger: Tagger) -> None:
    refresh = Refresh(every=10, min_new_words=0)
    refresh.counted(demo_tagger, 10)
    refresh.step(0.0)

    refresh.cancel()

    assert not refresh.pending and refresh.step(1.0) is None
    refresh.counted(demo_tagger, 9)  # and the count starts again
    assert not refresh.pending


def test_only_the_languages_whose_vocabulary_grew_are_built_anew(rulesets: Path) -> None:
    tagger = load_tagger(rulesets / "demo")
    refresh = Refresh(every=100, min_new_words=1_000)
    tagger.tag_batch(random_words(1_200))  # English words only
    tagger.tag_batch([("想念4o 今天", "zh", ())])

    refresh.counted(tagger, 100)
    fresh, _ = build(refresh)

    old, new = tagger.compiled.pipelines, fresh.compiled.pipelines
    assert new["en"].nlp.vocab is not old["en"].nlp.vocab
    assert len(new["en"].nlp.vocab) <= len(old["en"].nlp.vocab) - 1_200
    assert all(new[code] is pipe for code, pipe in old.items() if code != "en")
    assert fresh.tag_batch(items()) == tagger.tag_batch(items())


def test_a_due_refresh_that_would_free_little_is_skipped(rulesets: Path) -> None:
    tagger = load_tagger(rulesets / "demo")
    refresh = Refresh(every=100, min_new_words=1_000)
    tagger.tag_batch(random_words(400))

    refresh.counted(tagger, 100)

    assert not refresh.pending
    tagger.tag_batch(random_words(800, seed=2))  # its growth was not forgotten
    refresh.counted(tagger, 100)
    assert refresh.pending


def test_every_zero_never_refreshes(demo_tagger: Tagger) -> None:
    refresh = Refresh(every=0)
    refresh.counted(demo_tagger, 10**9)
    assert not refresh.pending


def random_words(count: int, seed: int = 1) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """Posts of 40 made-up tokens each, as spam sometimes is: every one a new lexeme."""
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=9)) for _ in range(count)]
    return [(" ".join(words[i:i + 40]), "en", ()) for i in range(0, count, 40)]


def test_a_refresh_is_due_when_the_vocabulary_grew_by_max_new_words(rulesets: Path) -> None:
    tagger = load_tagger(rulesets / "demo")
    refresh = Refresh(every=10**9, max_new_words=2_000)
    tagger.tag_batch(items())
    refresh.counted(tagger, len(items()))  # growth counts from the build: these words too
    tagger.tag_batch(random_words(1_800))
    refresh.counted(tagger, 45)
    assert not refresh.pending

    tagger.tag_batch(random_words(400, seed=2))
    refresh.counted(tagger, 10)

    assert refresh.pending
    assert refresh.step(0.0) is None  # not urgent: built a step at a time
    fresh, _ = build(refresh)
    assert lexemes(fresh) <= lexemes(tagger) - 2_000
    assert fresh.tag_batch(items()) == tagger.tag_batch(items())


def test_at_twice_max_new_words_the_build_finishes_in_one_step(rulesets: Path) -> None:
    tagger = load_tagger(rulesets / "demo")
    refresh = Refresh(every=10**9, max_new_words=1_000)
    refresh.counted(tagger, 0)
    tagger.tag_batch(random_words(2_000))
    refresh.counted(tagger, 50)

    fresh = refresh.step(0.0)  # a zero budget, and yet the whole build

    assert fresh is not None
    assert lexemes(fresh) <= lexemes(tagger) - 2_000
    # the count starts again from the fresh tagger's own vocabulary
    refresh.step(0.0)  # returns the old tagger's memory
    refresh.counted(fresh, 1)
    fresh.tag_batch(random_words(400, seed=3))
    refresh.counted(fresh, 10)
    assert not refresh.pending
