"""The processor both runtimes call: dedup in a bounded window, batch tagging, isolation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import __version__
from monitor.model import Post
from monitor.processor import Processor, RecentIds
from monitor.tagging import Tagger, load_ruleset

DEMO_RULES = Path(__file__).parents[1] / "tagging" / "rulesets" / "demo"

# -- RecentIds -------------------------------------------------------------------


def test_recent_ids_sees_a_repeat() -> None:
    recent = RecentIds(10)
    assert [recent.seen(k) for k in ("a", "b", "a", "c", "b")] == [False, False, True, False, True]
    assert len(recent) == 3


def test_recent_ids_forgets_what_is_older_than_the_window() -> None:
    recent = RecentIds(4)
    for key in "abcdefgh":
        recent.seen(key)
    assert len(recent) <= 4
    assert not recent.seen("a")  # long gone: taken as new
    assert recent.seen("h")


@given(capacity=st.integers(min_value=2, max_value=64),
       keys=st.lists(st.integers(min_value=0, max_value=200), max_size=400))
def test_recent_ids_is_bounded_and_remembers_the_last_half(capacity: int, keys: list[int]) -> None:
    recent = RecentIds(capacity)
    distinct: list[str] = []
    for key in map(str, keys):
        if not recent.seen(key):
            distinct.append(key)
        assert len(recent) <= capacity
    for key in distinct[-(capacity // 2):]:
        assert recent.seen(key), f"{key} is among the last {capacity // 2} ids"


def test_recent_ids_needs_room_for_two_and_never_holds_more_than_capacity() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        RecentIds(1)
    recent = RecentIds(2)
    for key in "abcde":
        recent.seen(key)
    assert len(recent) <= 2


# -- Processor ---------------------------------------------------------------------


def test_a_batch_is_tagged_in_order_with_provenance(
        tagger: Tagger, make_posts: Callable[..., list[Post]]) -> None:
    posts = make_posts(3)
    posts[1].text = "Claim your airdrop today"
    result = Processor(tagger).process(posts)

    assert [t.post.id for t in result.tagged] == ["post-0", "post-1", "post-2"]
    assert [[s.label for s in t.tags.themes] for t in result.tagged] == [["grief"], [], ["grief"]]
    assert [f.kind for f in result.tagged[1].all_flags] == ["spam"]
    first = result.tagged[0]
    assert (first.ruleset, first.ruleset_hash, first.processor_version) == (
        "runtime_fixture", tagger.ruleset.hash, __version__)
    assert result.duplicates == [] and result.failed == []


def test_duplicates_are_skipped_within_and_across_batches(
        tagger: Tagger, make_posts: Callable[..., list[Post]]) -> None:
    processor = Processor(tagger)
    posts = make_posts(3)
    first = processor.process([posts[0], posts[1], posts[0]])
    second = processor.process([posts[1], posts[2]])

    assert [t.post.id for t in first.tagged] == ["post-0", "post-1"]
    assert [p.id for p in first.duplicates] == ["post-0"]
    assert [t.post.id for t in second.tagged] == ["post-2"]
    assert [p.id for p in second.duplicates] == ["post-1"]


def test_the_dedup_window_is_bounded(tagger: Tagger,
                                     make_posts: Callable[..., list[Post]]) -> None:
    processor = Processor(tagger, dedup_window=4)
    posts = make_posts(10)
    processor.process(posts)
    again = processor.process([posts[0], posts[9]])

    assert [t.post.id for t in again.tagged] == ["post-0"]  # forgotten: tagged again
    assert [p.id for p in again.duplicates] == ["post-9"]   # recent: still a duplicate


def test_a_post_that_breaks_tagging_fails_alone(
        tagger_breaking_on: Callable[[str], Any], make_posts: Callable[..., list[Post]],
        caplog: pytest.LogCaptureFixture) -> None:
    posts = make_posts(5)
    posts[2].text = "this text trips a tagger bug"
    breaking = tagger_breaking_on(posts[2].text)
    result = Processor(breaking).process(posts)

    assert [(p.id, why) for p, why in result.failed] == [("post-2", "tagging_error")]
    assert [t.post.id for t in result.tagged] == ["post-0", "post-1", "post-3", "post-4"]
    assert all(t.tags.themes[0].label == "grief" for t in result.tagged)
    assert breaking.calls == [5, 1, 1, 1, 1, 1]  # the batch, then one by one
    assert any("post-2" in r.getMessage() for r in caplog.records)


def test_an_all_duplicate_batch_does_not_call_the_tagger(
        tagger_breaking_on: Callable[[str], Any], make_posts: Callable[..., list[Post]]) -> None:
    breaking = tagger_breaking_on("never")
    processor = Processor(breaking)
    posts = make_posts(2)
    processor.process(posts)
    result = processor.process(posts)
    assert result.tagged == [] and len(result.duplicates) == 2
    assert breaking.calls == [2]


def test_the_tagger_is_refreshed_between_batches_and_tags_the_same(
        tagger: Tagger, make_posts: Callable[..., list[Post]]) -> None:
    processor = Processor(tagger, refresh_every=20)
    reference = Processor(tagger, refresh_every=0)
    posts = make_posts(600)
    for i, post in enumerate(posts):
        post.text = f"{post.text} (post {i}, word{i})"  # new words: the vocabulary grows
    batches = [posts[i:i + 10] for i in range(0, len(posts), 10)]

    taggers = []
    for batch in batches:
        got, want = processor.process(batch), reference.process(batch)
        assert [t.tags for t in got.tagged] == [t.tags for t in want.tagged]
        taggers.append(processor.tagger)

    # each refresh is built a step per batch, so several batches pass before the swap
    assert taggers[0] is tagger and processor.tagger is not tagger
    assert taggers.index(processor.tagger) > 3


def test_reloaded_rules_cancel_a_refresh_of_the_old_ones(
        tagger: Tagger, make_posts: Callable[..., list[Post]]) -> None:
    processor = Processor(tagger, refresh_every=2)
    posts = make_posts(2)
    for i, post in enumerate(posts):
        post.text = f"{post.text} reloadword{i}"  # new words: a refresh is worth building
    processor.process(posts)
    assert processor.refresh.pending

    reloaded = Tagger(tagger.compiled)
    processor.swap_rules(reloaded)
    processor.refresh_step(1.0)

    assert not processor.refresh.pending
    assert processor.tagger is reloaded


def test_given_a_ruleset_it_compiles_only_when_it_first_tags(
        tagger: Tagger, make_posts: Callable[..., list[Post]]) -> None:
    lazy = Processor(tagger.ruleset)
    posts = make_posts(20)
    assert not lazy.compiled  # what a runtime with a tagging process keeps

    got = lazy.process(posts)

    assert lazy.compiled and lazy.tagger.ruleset is tagger.ruleset
    want = Processor(tagger).process(posts)
    assert [(t.tags, t.ruleset_hash) for t in got.tagged] == \
        [(t.tags, t.ruleset_hash) for t in want.tagged]


def test_rules_swapped_in_as_a_ruleset_are_compiled_when_needed(tagger: Tagger) -> None:
    processor = Processor(tagger)
    demo = load_ruleset(DEMO_RULES)

    processor.swap_rules(demo)

    assert processor.ruleset is demo and not processor.compiled
    assert processor.tagger.ruleset is demo
