"""Hostile posts through the real processor: every one tagged, none crashes it or holds it up.

Posts as a source may hand them over after the codec (texts up to the
50,000-character limit, up to 512 hashtags): 1 MB-class texts cut to the
limit, emoji floods, 10,000-hashtag texts, NUL bytes, RTL and zero-width
characters, mixed with plain ones, in batches, through the fixture ruleset
with the stateful moderator on. Every post comes back tagged (or as a
duplicate), each tagged post can be archived, and no post costs more than
``PER_POST`` seconds of processing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.codec import MAX_LIST_ITEMS, MAX_TEXT_CHARS, encode_tagged
from monitor.model import Post
from monitor.moderation.moderator import Moderator
from monitor.privacy import Pseudonymizer
from monitor.processor import Processor
from monitor.tagging import Tagger
from tests.support.hostile import HOSTILE, HOSTILE_TEXTS

#: The most one post may take, 50,000 characters of emoji included, on a loaded machine.
PER_POST = 1.0
T0 = datetime(2025, 8, 13, 12, tzinfo=UTC)
AUTHOR = Pseudonymizer(b"hostile-tests-pseudonym-key-0001")

def _utf8(text: str) -> bool:
    """No lone surrogates: the codec (orjson, strict UTF-8) never lets one into a Post."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == text


_texts = (st.sampled_from(HOSTILE_TEXTS) | st.text(min_size=1, max_size=80)).map(
    lambda text: text[:MAX_TEXT_CHARS]).filter(lambda text: text.strip() and _utf8(text))
_hashtags = st.lists(st.sampled_from(["keep4o", "", "\u200bkeep4o", "\u202e4o", "😭" * 40]),
                     max_size=8) | st.just([f"tag{i}" for i in range(MAX_LIST_ITEMS)])


@st.composite
def posts(draw: st.DrawFn) -> list[Post]:
    count = draw(st.integers(1, 6))
    return [Post(id=f"hostile:{draw(st.integers(0, 40))}", source=draw(st.sampled_from(
                     ["bluesky", "x", "mastodon", "reddit", "rss", "mqtt", "replay"])),
                 text=draw(_texts), created_at=T0 + timedelta(seconds=draw(st.integers(0, 9e5))),
                 author=draw(st.sampled_from([None, "alice", "\x00", "\u202eevil"])),
                 lang=draw(st.sampled_from([None, "en", "fr", "zh", "xx", "\x00"])),
                 hashtags=tuple(draw(_hashtags)), links=("https://example.org/\u200b",))
            for _ in range(count)]


def test_hostile_posts_are_tagged_without_crash_or_stall(tagger: Tagger) -> None:
    processor = Processor(tagger, moderator=Moderator(tagger.ruleset.moderation,
                                                      tagger.ruleset.campaign.trusted_domains))
    slowest = [0.0]

    @settings(HOSTILE, max_examples=300)
    @given(posts())
    def check(batch: list[Post]) -> None:
        start = time.process_time()
        result = processor.process(batch)
        spent = time.process_time() - start
        slowest[0] = max(slowest[0], spent / len(batch))
        assert spent < PER_POST * len(batch), f"{spent:.2f} CPU-s for {len(batch)} posts"
        assert not result.failed, result.failed
        assert len(result.tagged) + len(result.duplicates) == len(batch)
        for tagged in result.tagged:
            encode_tagged(tagged, author=AUTHOR)

    check()
    print(f"slowest post: {slowest[0] * 1000:.1f} ms of CPU")
    assert slowest[0] < PER_POST


def test_a_post_of_50000_symbols_no_longer_stalls_the_processor(tagger: Tagger) -> None:
    """spaCy strips affixes one character at a time: 8,000 '!' took 7 s, 50,000 minutes.

    The tagger now breaks such runs (``monitor.textutil.break_symbol_runs``).
    """
    processor = Processor(tagger)
    posts = [Post(id=f"flood:{i}", source="x", created_at=T0, text=unit * MAX_TEXT_CHARS)
             for i, unit in enumerate(["!", "😭", "(", "#", "%", "🏳️‍🌈"])]
    start = time.process_time()
    result = processor.process(posts)
    spent = time.process_time() - start
    assert len(result.tagged) == len(posts) and not result.failed
    assert spent < PER_POST * len(posts), f"{spent:.1f} CPU-s for {len(posts)} posts"
