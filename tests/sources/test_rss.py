"""``rss:URL``: RSS 2.0 and Atom polled with conditional GET against a local feed server.

The fake (tests/support/fake_apis.py) gives each published body an ``ETag``
and a ``Last-Modified`` and answers ``If-None-Match`` / ``If-Modified-Since``
with 304 when nothing changed.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.cli import main
from monitor.sources import SourceError, open_source
from monitor.sources.cursor import MemoryCursorStore
from monitor.sources.rss import FeedError, FeedSource, FeedTimings, parse_xml
from tests.support.fake_apis import FROZEN, FakeFeeds, Hooks, Pump, eventually, portable
from tests.support.monitor_process import MonitorRun

GOLDEN = Path(__file__).parent / "golden_rss"
FAST = FeedTimings(every=0.1, backoff_base=0.05, backoff_cap=0.5)
PATH = "/feed.xml"


def rss(numbers: range, *, title: str = "Keep 4o news") -> bytes:
    """An RSS 2.0 document with one item per number, newest first."""
    items = "".join(
        f"<item><title>Item {n}: #keep4o</title><link>https://news.example.com/{n}</link>"
        f"<guid isPermaLink=\"false\">item-{n}</guid>"
        f"<pubDate>Wed, 13 Aug 2025 {10 + n // 60:02d}:{n % 60:02d}:00 GMT</pubDate>"
        f"<description>&lt;p&gt;Story {n} about 4o&lt;/p&gt;</description></item>"
        for n in reversed(numbers))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{title}</title><link>https://news.example.com/</link>"
            f"<description>d</description><language>en</language>{items}</channel></rss>"
            ).encode()


def item_ids(numbers: range) -> list[str]:
    return [f"rss:item-{n}" for n in numbers]


@pytest.fixture
def feeds() -> Iterator[FakeFeeds]:
    with FakeFeeds() as fake:
        yield fake


def feed_source(fake: FakeFeeds, hooks: Hooks, path: str = PATH, *,
                cursors: MemoryCursorStore | None = None,
                timings: FeedTimings = FAST) -> FeedSource:
    return FeedSource(fake.url + path, context=hooks.context(cursors=cursors or
                                                             MemoryCursorStore()),
                      timings=timings, clock=lambda: FROZEN, rng=random.Random(1))


# -- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "posts", "rejected"), [
    ("feed.rss", 2, ["missing_field:id"]), ("feed.atom", 2, [])])
async def test_golden_feeds_become_golden_posts(
        feeds: FakeFeeds, golden: Callable[[Path, Any], None], name: str, posts: int,
        rejected: list[str]) -> None:
    feeds.publish(f"/{name}", (GOLDEN / name).read_bytes())
    async with Pump(feed_source(feeds, Hooks(), f"/{name}")) as pump:
        received = await pump.until(posts, rejected=len(rejected))
    stem = name.replace("feed.", "posts_")
    golden(GOLDEN / f"{stem}.json", portable(received, feeds.url))
    assert [r.reason for r in pump.rejected] == rejected


@pytest.mark.parametrize("document", [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    b"<rss><channel><title>&lol2;</title></channel></rss>",
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<rss><channel><title>&xxe;</title></channel></rss>",
    b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
    b'"http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"/>',
])
def test_dtds_and_entities_are_refused(document: bytes) -> None:
    with pytest.raises(FeedError, match="DTD or entities"):
        parse_xml(document)


# -- conditional GET -------------------------------------------------------------------------------


async def test_an_unchanged_feed_is_answered_304_and_nothing_is_passed_on_again(
        feeds: FakeFeeds) -> None:
    feeds.publish(PATH, rss(range(1, 4)))
    first_etag = feeds.feeds[PATH].etag
    async with Pump(feed_source(feeds, Hooks())) as pump:
        await pump.until(3)
        await eventually(lambda: len(feeds.statuses(PATH)) >= 4)
        assert len(pump.posts) == 3
        feeds.publish(PATH, rss(range(1, 5)))
        await pump.until(4)
        await eventually(lambda: len(feeds.statuses(PATH)) >= 7)
    assert pump.ids == item_ids(range(1, 5))
    statuses = feeds.statuses(PATH)
    assert statuses[0] == 200 and statuses[1:3] == [304, 304] and statuses.count(200) == 2
    assert statuses[-1] == 304
    first, second = feeds.served(PATH)[:2]
    assert "If-None-Match" not in first.headers and "If-Modified-Since" not in first.headers
    assert second.headers["If-None-Match"] == first_etag
    assert second.headers["If-Modified-Since"].endswith("GMT")
    assert feeds.served(PATH)[-1].headers["If-None-Match"] == feeds.feeds[PATH].etag


async def test_last_modified_alone_is_enough(feeds: FakeFeeds) -> None:
    feeds.publish(PATH, rss(range(1, 3)), etag=False)
    async with Pump(feed_source(feeds, Hooks())) as pump:
        await pump.until(2)
        await eventually(lambda: len(feeds.statuses(PATH)) >= 3)
    assert feeds.statuses(PATH)[:3] == [200, 304, 304]
    assert "If-None-Match" not in feeds.served(PATH)[1].headers


async def test_a_server_without_validators_still_repeats_nothing(feeds: FakeFeeds) -> None:
    feeds.publish(PATH, rss(range(1, 3)), etag=False, last_modified=False)
    async with Pump(feed_source(feeds, Hooks())) as pump:
        await pump.until(2)
        await eventually(lambda: len(feeds.statuses(PATH)) >= 4)
    assert feeds.statuses(PATH)[:4] == [200] * 4
    assert pump.ids == item_ids(range(1, 3))


async def test_a_restart_keeps_the_validators_and_the_items_seen(feeds: FakeFeeds) -> None:
    feeds.publish(PATH, rss(range(1, 4)))
    cursors = MemoryCursorStore()
    async with Pump(feed_source(feeds, Hooks(), cursors=cursors), cursors) as pump:
        await pump.until(3)
    etag = feeds.feeds[PATH].etag
    async with Pump(feed_source(feeds, Hooks(), cursors=cursors), cursors) as again:
        await eventually(lambda: len(feeds.statuses(PATH)) >= 3)
        assert again.posts == []
        assert feeds.served(PATH)[1].headers["If-None-Match"] == etag
        feeds.publish(PATH, rss(range(1, 5), title="Renamed"))  # new ETag, one new item
        await again.until(1)
        await eventually(lambda: len(feeds.statuses(PATH)) >= 6)
    assert again.ids == item_ids(range(4, 5))
    state = orjson.loads(cursors.get(f"rss:{feeds.url}{PATH}"))
    assert state["etag"] == feeds.feeds[PATH].etag and len(state["seen"]) == 4


async def test_the_memory_of_items_is_bounded(feeds: FakeFeeds) -> None:
    feeds.publish(PATH, rss(range(1, 31)))
    cursors = MemoryCursorStore()
    timings = FeedTimings(every=0.1, remember=10)
    async with Pump(feed_source(feeds, Hooks(), cursors=cursors, timings=timings),
                    cursors) as pump:
        await pump.until(30)
    assert len(orjson.loads(cursors.get(f"rss:{feeds.url}{PATH}"))["seen"]) == 10


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_obeyed(feeds: FakeFeeds, status: int) -> None:
    feeds.publish(PATH, rss(range(1, 2)))
    feeds.fail_next(PATH, status, headers={"Retry-After": "1"})
    hooks = Hooks()
    async with Pump(feed_source(feeds, hooks)) as pump:
        await pump.until(1)
    first, second = feeds.served(PATH)[:2]
    assert 1.0 <= second.at - first.at < 2.0
    assert hooks.errors == ["rate_limited" if status == 429 else "http_5xx"]


async def test_a_malformed_feed_is_counted_and_polling_goes_on(feeds: FakeFeeds) -> None:
    feeds.publish(PATH, b"<rss><channel><item><title>cut off")
    hooks = Hooks()
    async with Pump(feed_source(feeds, hooks)) as pump:
        await eventually(lambda: len(hooks.errors) >= 1)
        feeds.publish(PATH, b"<html><body>moved</body></html>", content_type="text/html")
        await eventually(lambda: len(hooks.errors) >= 2)
        feeds.publish(PATH, rss(range(1, 2)))
        await pump.until(1)
    assert hooks.errors[:2] == ["malformed", "malformed"]
    assert hooks.ups[-2:] == [True, False] and hooks.reconnects >= 1


async def test_an_oversized_feed_is_refused(feeds: FakeFeeds) -> None:
    feeds.publish(PATH, rss(range(1, 200)))
    hooks = Hooks()
    timings = FeedTimings(every=0.1, backoff_base=0.05, max_bytes=4096)
    async with Pump(feed_source(feeds, hooks, timings=timings)) as pump:
        await eventually(lambda: len(hooks.errors) >= 2)
    assert set(hooks.errors) == {"protocol"} and pump.posts == []


async def test_an_unreachable_feed_backs_off_with_jitter(feeds: FakeFeeds) -> None:
    feeds.fail_next(PATH, 500, times=3)
    feeds.publish(PATH, rss(range(1, 2)))
    hooks = Hooks()
    timings = FeedTimings(every=0.1, backoff_base=0.2, backoff_cap=5.0)
    async with Pump(feed_source(feeds, hooks, timings=timings)) as pump:
        await pump.until(1)
    times = [r.at for r in feeds.served(PATH)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap <= ceiling + 0.1 for gap, ceiling in zip(gaps, (0.2, 0.4, 0.8), strict=False))
    assert hooks.errors == ["http_5xx"] * 3


# -- URIs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("uri", "url", "every"), [
    ("rss:https://news.example.com/feed.xml", "https://news.example.com/feed.xml", 300.0),
    ("rss:https://news.example.com/feed?format=atom&every=60",
     "https://news.example.com/feed?format=atom", 60.0),
])
def test_uri_forms(uri: str, url: str, every: float) -> None:
    source = open_source(uri)
    assert isinstance(source, FeedSource)
    assert (source.url, source.timings.every, source.name, source.finite) == (
        url, every, "rss", False)


@pytest.mark.parametrize(("uri", "message"), [
    ("rss:news.example.com/feed", "write rss:https://HOST/PATH"),
    ("rss:ftp://news.example.com/feed", "write rss:https://HOST/PATH"),
    ("rss:https://news.example.com/feed?every=soon", "every='soon'"),
])
def test_bad_uris_say_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(SourceError) as info:
        open_source(uri)
    assert message in str(info.value)


# -- acceptance -----------------------------------------------------------------------------------------


def test_monitor_run_archives_every_item_once(tmp_path: Path) -> None:
    with FakeFeeds() as fake:
        fake.publish(PATH, rss(range(1, 4)))
        with MonitorRun(tmp_path, f"rss:{fake.url}{PATH}?every=1", {}) as run:
            run.wait_until("social_archive_posts_total", 3, timeout=30, source="rss")
            fake.publish(PATH, rss(range(1, 6)))
            run.wait_until("social_archive_posts_total", 5, source="rss")
            assert 304 in fake.statuses(PATH) or len(fake.statuses(PATH)) == 2
            assert run.stop() == 0, run.stderr
    archived = run.archived_ids()
    assert sorted(archived) == item_ids(range(1, 6))
    assert len(archived) == len(set(archived))
    assert main(["archive", "verify", str(run.archive)]) == 0
    assert all("every=" not in r.path for r in fake.served(PATH))
