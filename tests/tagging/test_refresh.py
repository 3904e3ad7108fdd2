"""A stream's tagger refresh: built a step at a time, swapped in whole, cancelled by a reload."""

from __future__ import annotations

from pathlib import Path

import orjson

from monitor.tagging import Tagger
from monitor.tagging.refresh import Refresh

GOLDEN = Path(__file__).parent / "golden" / "demo_posts.jsonl"


def items() -> list[tuple[str, str | None, tuple[str, ...]]]:
    posts = [orjson.loads(line) for line in GOLDEN.read_bytes().splitlines()]
    return [(p["text"], p.get("lang"), tuple(p.get("hashtags", ()))) for p in posts]


def build(refresh: Refresh) -> tuple[Tagger, int]:
    """Step with no time budget (one step each) until the fresh tagger comes out."""
    steps = 0
    while (fresh := refresh.step(0.0)) is None:
        steps += 1
        assert steps < 100_000, "the build never ends"
    return fresh, steps + 1


def test_a_refresh_is_due_after_every_posts(demo_tagger: Tagger) -> None:
    refresh = Refresh(every=100)
    refresh.counted(demo_tagger, 99)
    assert not refresh.pending and refresh.step(1.0) is None

    refresh.counted(demo_tagger, 1)

    assert refresh.pending


def test_the_fresh_tagger_is_built_in_small_steps_and_tags_the_same(demo_tagger: Tagger) -> None:
    refresh = Refresh(every=1)
    refresh.counted(demo_tagger, 1)

    fresh, steps = build(refresh)

    old, new = demo_tagger.compiled, fresh.compiled
    # a blank pipeline per language, then one step per rule that has phrases or tokens
    assert steps > 3 * len(old.pipelines)
    assert all(new.pipelines[code].nlp.vocab is not pipe.nlp.vocab
               for code, pipe in old.pipelines.items())
    assert new.regex_set is old.regex_set  # shared, not compiled again
    assert fresh.tag_batch(items()) == demo_tagger.tag_batch(items())
    # the old tagger's memory is returned at the next step, a step of its own
    assert refresh.pending
    assert refresh.step(0.0) is None
    assert not refresh.pending


def test_a_reload_cancels_a_refresh_in_progress(demo_tagger: Tagger) -> None:
    refresh = Refresh(every=10)
    refresh.counted(demo_tagger, 10)
    refresh.step(0.0)

    refresh.cancel()

    assert not refresh.pending and refresh.step(1.0) is None
    refresh.counted(demo_tagger, 9)  # and the count starts again
    assert not refresh.pending


def test_every_zero_never_refreshes(demo_tagger: Tagger) -> None:
    refresh = Refresh(every=0)
    refresh.counted(demo_tagger, 10**9)
    assert not refresh.pending
