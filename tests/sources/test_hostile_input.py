"""Every source's frame parser under hostile input: a Post, a counted rejection, never a crash.

One property per parser, each over a few thousand derandomized examples
(``tests/support/hostile.py``): the platform's documented frame with fields
replaced by hostile values, and the encoded bytes damaged. The answer must
be a sound Post (one the archive can write), a ``Rejected`` whose reason is in
the codec's bounded ``REJECT_REASONS``, or what the parser documents for a
frame that is not a post; nothing raises, and no frame takes long.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.sources.base import Rejected, SourceContext
from monitor.sources.bluesky import BlueskySource
from monitor.sources.http import SourceFailure
from monitor.sources.mastodon import MastodonSource
from monitor.sources.mqtt import MqttSource
from monitor.sources.reddit import RedditSource, listing_children
from monitor.sources.replay import ReplaySource
from monitor.sources.rss import FeedError, FeedSource, parse_feed
from monitor.sources.x import XSource
from tests.support.hostile import (
    HOSTILE,
    HOSTILE_TEXTS,
    check_item,
    encode,
    hostile_bytes,
    hostile_frames,
)
from tests.support.hostile import deep as hostile_deep

CONTEXT = SourceContext(hashtags=frozenset({"keep4o"}), terms=("4o",))
#: The slowest a single frame may take (1 MB texts included), on a loaded CI machine.
SLOW = 2.0


class Timed:
    """Calls ``parse`` and remembers the slowest call."""

    slowest = 0.0

    def __call__(self, parse: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return parse(*args, **kwargs)
        finally:
            spent = time.perf_counter() - start
            Timed.slowest = max(Timed.slowest, spent)
            assert spent < SLOW, f"a frame took {spent:.2f} s"


timed = Timed()

# -- Bluesky Jetstream -------------------------------------------------------------

JETSTREAM_EVENT = {
    "did": "did:plc:abcdefghijklmnop", "time_us": 1_725_911_162_329_308, "kind": "commit",
    "commit": {
        "rev": "3l3qo2vuowo2b", "operation": "create", "collection": "app.bsky.feed.post",
        "rkey": "3l3qo2vutsw2b", "cid": "bafyreib2rxk3rybk",
        "record": {
            "$type": "app.bsky.feed.post", "createdAt": "2025-08-13T10:00:00.000Z",
            "langs": ["en"], "text": "I miss 4o every day #keep4o",
            "facets": [{"index": {"byteStart": 20, "byteEnd": 27},
                        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "keep4o"}]}],
            "reply": {"parent": {"uri": "at://did:plc:x/app.bsky.feed.post/3k", "cid": "b"}},
            "embed": {"$type": "app.bsky.embed.external",
                      "external": {"uri": "https://example.org/a", "title": "t"}},
        },
    },
}


@HOSTILE
@given(hostile_bytes(hostile_frames(JETSTREAM_EVENT)))
def test_bluesky_jetstream_events(data: bytes) -> None:
    source = BlueskySource(context=CONTEXT)
    text = data.decode("utf-8", "replace")  # aiohttp hands text frames over as str
    check_item(timed(source.decode, text, "wss://jetstream.example/subscribe"))


# -- Mastodon (REST pages and streamed events) -----------------------------------------

STATUS = {
    "id": "113014211223344556", "created_at": "2025-08-13T10:00:00.000Z",
    "uri": "https://mastodon.example/users/alice/statuses/113014211223344556",
    "url": "https://mastodon.example/@alice/113014211223344556",
    "content": '<p>I miss 4o <a href="https://mastodon.example/tags/keep4o">#keep4o</a></p>',
    "spoiler_text": "", "language": "en", "in_reply_to_id": None, "reblog": None,
    "account": {"acct": "alice", "url": "https://mastodon.example/@alice"},
    "tags": [{"name": "keep4o", "url": "https://mastodon.example/tags/keep4o"}],
    "card": {"url": "https://example.org/a"}, "replies_count": 1, "reblogs_count": 2,
    "favourites_count": 3, "quote": None,
}


def mastodon() -> MastodonSource:
    return MastodonSource(["https://mastodon.example"], context=CONTEXT)


@HOSTILE
@given(st.lists(hostile_frames(STATUS), min_size=1, max_size=3))
def test_mastodon_rest_statuses(statuses: list[dict[str, Any]]) -> None:
    source = mastodon()
    for status in statuses:
        check_item(timed(source.read_status, status, key="k", instance="https://mastodon.example",
                         url="https://mastodon.example/api/v1/timelines/tag/keep4o"))


@HOSTILE
@given(hostile_bytes(hostile_frames(STATUS)))
def test_mastodon_streamed_updates(data: bytes) -> None:
    source = mastodon()
    url = "https://mastodon.example/api/v1/streaming/hashtag"
    event = timed(source.read_event, data.decode("utf-8", "replace"), url)  # as _SseReader does
    if isinstance(event, Rejected):
        check_item(event)
    else:
        check_item(timed(source.read_status, event, key="k",
                         instance="https://mastodon.example", url=url))


# -- X filtered stream -----------------------------------------------------------------

STREAM_LINE = {
    "data": {"id": "1823456789012345678", "text": "I miss 4o &amp; more #keep4o",
             "created_at": "2025-08-13T10:00:00.000Z", "author_id": "12", "lang": "en",
             "entities": {"hashtags": [{"start": 21, "end": 28, "tag": "keep4o"}],
                          "urls": [{"url": "https://t.co/x", "expanded_url": "https://ex.org"}]},
             "referenced_tweets": [{"type": "quoted", "id": "1823456789012345000"}],
             "public_metrics": {"retweet_count": 1, "like_count": 2}},
    "includes": {"users": [{"id": "12", "username": "alice"}]},
    "matching_rules": [{"id": "1", "tag": "social-monitor"}],
}


@HOSTILE
@given(hostile_bytes(hostile_frames(STREAM_LINE)))
def test_x_stream_lines(data: bytes) -> None:
    source = XSource("https://api.x.example", token="fake-token", context=CONTEXT)
    # a message without a post is X's notice, read by the stream loop (a dict)
    check_item(timed(source.read_line, data), allow=lambda item: isinstance(item, dict))


# -- Reddit listings -------------------------------------------------------------------

LISTING = {
    "kind": "Listing",
    "data": {"after": None, "children": [
        {"kind": "t3", "data": {
            "name": "t3_1abcde", "id": "1abcde", "title": "I miss 4o", "selftext": "every day",
            "is_self": True, "created_utc": 1_755_079_200.0, "author": "alice", "score": 3,
            "num_comments": 1, "permalink": "/r/keep4o/comments/1abcde/i_miss_4o/",
            "url": "https://www.reddit.com/r/keep4o/comments/1abcde/"}},
        {"kind": "t3", "data": {
            "name": "t3_1abcdf", "title": "link", "is_self": False, "created_utc": 1_755_079_300,
            "author": "[deleted]", "url": "https://example.org/a", "crosspost_parent": "t3_1"}},
    ]},
}
COMMENTS = {
    "kind": "Listing",
    "data": {"children": [{"kind": "t1", "data": {
        "name": "t1_kabcde", "body": "Bring back 4o https://example.org", "author": "bob",
        "created_utc": 1_755_079_200, "parent_id": "t3_1abcde", "score": 1,
        "permalink": "/r/keep4o/comments/1abcde/i_miss_4o/kabcde/"}}]},
}


@HOSTILE
@given(st.sampled_from([("new", "t3", LISTING), ("comments", "t1", COMMENTS)]).flatmap(
    lambda case: st.tuples(st.just(case[0]), st.just(case[1]), hostile_frames(case[2]))))
def test_reddit_listings(case: tuple[str, str, dict[str, Any]]) -> None:
    listing, kind, body = case
    source = RedditSource("keep4o", client_id="id", client_secret="secret", context=CONTEXT)
    try:
        children = timed(listing_children, body, f"/r/keep4o/{listing}")
    except SourceFailure as failure:  # the whole page refused: counted as a source error
        assert failure.kind == "malformed"
        return
    for item in timed(source.read_page, listing, kind, children, None):
        check_item(item)


# -- RSS 2.0 and Atom items ------------------------------------------------------------

_XML_TEXT = st.text(max_size=30) | st.sampled_from(HOSTILE_TEXTS)
_DATES = st.sampled_from(["Wed, 13 Aug 2025 10:00:00 GMT", "Wed, 13 Aug 0001 10:00:00 GMT",
                          "Fri, 31 Dec 9999 23:59:59 -1400", "yesterday", "", "2025-08-13T10:00Z",
                          "0000-00-00T00:00:00Z", "9999-12-31T23:59:59+14:00"])


def _x(value: str) -> str:
    return escape(value, {'"': "&quot;"})


@st.composite
def feeds(draw: st.DrawFn) -> bytes:
    title, body, guid, link, date = (draw(_XML_TEXT), draw(_XML_TEXT), draw(_XML_TEXT),
                                     draw(_XML_TEXT), draw(_DATES | _XML_TEXT))
    if draw(st.booleans()):
        doc = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
               f"<item><title>{_x(title)}</title><description>{_x(body)}</description>"
               f"<guid>{_x(guid)}</guid><link>{_x(link)}</link><pubDate>{_x(date)}</pubDate>"
               f"<author>{_x(body[:20])}</author></item></channel></rss>")
    else:
        doc = (f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{_x(title[:8])}"><entry>'
               f"<id>{_x(guid)}</id><title>{_x(title)}</title>"
               f'<content type="html">{_x(body)}</content><link href="{_x(link)}"/>'
               f"<updated>{_x(date)}</updated><author><name>{_x(title[:9])}</name></author>"
               f"</entry></feed>")
    data = doc.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8
    damage = draw(st.sampled_from(["none"] * 5 + ["cut", "dtd", "junk"]))
    if damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "dtd":
        data = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
                b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss><channel><item>'
                b"<title>&b;</title></item></channel></rss>")
    elif damage == "junk":
        data = draw(st.binary(max_size=64))
    return data


@HOSTILE
@given(feeds())
def test_rss_and_atom_items(data: bytes) -> None:
    source = FeedSource("https://feeds.example/keep4o.xml", context=CONTEXT)
    try:
        entries = timed(lambda: list(parse_feed(data, "https://feeds.example/")))
    except FeedError:  # the whole document refused: counted as a source error (malformed)
        return
    for item in timed(source.read_items, entries, "https://feeds.example/keep4o.xml"):
        check_item(item)


# -- MQTT payloads and replay lines (the codec's own format) -------------------------------

RECORD = {"id": "zz-1", "text": "I miss 4o #keep4o", "created_at": "2025-08-13T10:00:00Z",
          "source": "mqtt", "author": "alice", "lang": "en", "url": "https://example.org/1",
          "hashtags": ["keep4o"], "links": ["https://example.org"],
          "engagement": {"likes": 2}, "retrieved_at": "2025-08-13T10:00:01Z"}


@HOSTILE
@given(hostile_bytes(hostile_frames(RECORD)))
def test_mqtt_payloads(data: bytes) -> None:
    source = MqttSource("127.0.0.1", 1883, "keep4o/posts", context=CONTEXT)
    message = aiomqtt.Message("keep4o/posts", data, qos=1, retain=False, mid=1, properties=None)
    check_item(timed(source.decode, message))


@HOSTILE
@given(st.lists(hostile_bytes(hostile_frames(RECORD)), min_size=1, max_size=4))
def test_replay_lines(lines: list[bytes]) -> None:
    source = ReplaySource(Path("hostile.jsonl"))
    data = b"\n".join(lines) + b"\n"
    items = timed(lambda: list(source.read_jsonl(io.BytesIO(data))))
    for item in items:
        check_item(item)
    assert len(items) <= data.count(b"\n")  # one answer a line at most, none lost silently
    assert len(items) >= sum(1 for line in data.split(b"\n") if line.strip())


@HOSTILE
@given(st.lists(st.tuples(st.sampled_from(HOSTILE_TEXTS) | st.text(max_size=12),
                          st.sampled_from(HOSTILE_TEXTS) | st.text(max_size=12)),
                min_size=1, max_size=4))
def test_replay_csv_rows(rows: list[tuple[str, str]]) -> None:
    source = ReplaySource(Path("hostile.csv"), fmt="csv")
    body = "id,text,created_at,hashtags\n" + "".join(
        f'"{a.replace(chr(34), "")}","{b.replace(chr(34), "")}",{b[:30]},{a[:50]}\n'
        for a, b in rows)
    data = body.encode("utf-8", "surrogatepass")
    for item in timed(lambda: list(source.read_csv(io.BytesIO(data)))):
        check_item(item)


def test_the_parsers_stayed_fast() -> None:
    """Reported by the suite above: the slowest single frame (1 MB texts included)."""
    if Timed.slowest == 0.0:
        pytest.skip("run with the property tests above")
    assert Timed.slowest < SLOW


# -- the bugs these properties found, as examples ---------------------------------------


def test_a_payload_nested_deeper_than_orjson_writes_is_rejected_not_archived() -> None:
    """orjson reads 1024 levels but writes 254: such a raw payload used to stop the archive."""
    event = {**JETSTREAM_EVENT, "extra": hostile_deep(300)}
    item = BlueskySource(context=CONTEXT).decode(encode(event).decode(), "wss://j.example")
    assert isinstance(item, Rejected) and item.reason == "bad_field"
    assert "nested too deeply" in item.detail


def test_a_reddit_thing_with_a_list_for_its_body_is_a_counted_rejection() -> None:
    """``body in _GONE`` raised TypeError (unhashable) and stopped the whole source."""
    child = {"kind": "t1", "data": {**COMMENTS["data"]["children"][0]["data"], "body": ["x"]}}
    source = RedditSource("keep4o", client_id="id", client_secret="secret", context=CONTEXT)
    [item] = source.read_page("comments", "t1", [child], None)
    assert isinstance(item, Rejected) and item.reason == "bad_field"


def test_an_x_post_with_a_list_for_its_lang_is_a_counted_rejection() -> None:
    line = {**STREAM_LINE, "data": {**STREAM_LINE["data"], "lang": ["en"]}}
    item = XSource("https://api.x.example", token="t", context=CONTEXT).read_line(encode(line))
    assert isinstance(item, Rejected) and item.reason in ("bad_field", "bad_type:lang")


def test_an_atom_date_that_overflows_in_utc_is_unreadable_not_fatal() -> None:
    """``0001-01-01T00:00+00:01`` is before year 1 in UTC: OverflowError stopped the feed."""
    feed = (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>tag:e,1</id>'
            b"<title>I miss 4o</title><updated>0001-01-01T00:00:00+00:01</updated></entry></feed>")
    [entry] = parse_feed(feed, "https://feeds.example/")
    assert entry.published is None  # like any unreadable date: the retrieval time is used
