"""``mastodon:``: hashtag timelines polled over REST or streamed as server-sent events.

``golden/mastodon_timeline.json`` is one page of ``/api/v1/timelines/tag/keep4o``
written by hand from the documented Status entity (a quote, a reply from a
remote account with a mention and two hashtags, a local status with a content
warning, entities and a shortened link); ``golden/mastodon_posts.json`` is what
it must become. ``golden/mastodon_stream.txt`` is a hashtag stream transcript
(``:)``, ``:thump``, ``update``, ``delete``, ``status.update``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.codec import encode_post
from monitor.model import Post
from monitor.processor import Processor
from monitor.sources import SourceError, open_source
from monitor.sources.base import Rejected, Source
from monitor.sources.cursor import MemoryCursorStore
from monitor.sources.html import html_to_text, parse_html
from monitor.sources.mastodon import (
    ENV_TOKEN,
    MastodonSettings,
    MastodonSource,
    status_to_post,
    token_variable,
)
from monitor.tagging import load_tagger
from tests.support.fake_platforms import FakeMastodon, HookLog, take
from tests.support.monitor_process import MonitorProcess, verified_ids

GOLDEN = Path(__file__).parent / "golden"
RULES = Path(__file__).parents[1] / "runtime" / "rules"
TIMELINE = json.loads((GOLDEN / "mastodon_timeline.json").read_text(encoding="utf-8"))
FAST = MastodonSettings(poll_interval=0.1, window_seconds=3.0, reserve=1, request_timeout=5.0,
                        stall=2.0, backoff_base=0.05, backoff_cap=0.5)
TAGS = frozenset({"keep4o"})


def source_for(*servers: FakeMastodon, hooks: HookLog | None = None,
               settings: MastodonSettings = FAST, **context: Any) -> MastodonSource:
    source = open_source("mastodon:" + ",".join(s.url for s in servers),
                         (hooks or HookLog()).context(hashtags=TAGS, **context))
    assert isinstance(source, MastodonSource)
    source.settings = settings
    return source


def fill(server: FakeMastodon, count: int, *, tag: str = "keep4o",
         start: int = 0) -> list[dict[str, Any]]:
    statuses = [server.status(f"user{i}", f"<p>post {i} <a href=\"https://{server.domain}/tags/"
                              f"{tag}\" class=\"mention hashtag\" rel=\"tag\">#<span>{tag}"
                              "</span></a></p>", tags=(tag,))
                for i in range(start, start + count)]
    server.add(tag, *statuses)
    return statuses


def ids(items: list[Post | Rejected]) -> list[str]:
    return [p.id for p in items if isinstance(p, Post)]


def mid(status: dict[str, Any]) -> str:
    return f"mastodon:{status['uri']}"


# -- URIs and the token ------------------------------------------------------------------


def test_instances_come_comma_separated_and_tokens_from_the_environment() -> None:
    source = open_source("mastodon:https://mastodon.social,https://fosstodon.org/",
                         HookLog().context(hashtags=frozenset({"Keep4o", "#save4o"}), environ={
                             "MONITOR_MASTODON_TOKEN": "default-token",
                             "MONITOR_MASTODON_TOKEN_FOSSTODON_ORG": "fosstodon-token"}))
    assert isinstance(source, MastodonSource) and isinstance(source, Source)
    assert (source.name, source.finite, source.tags) == ("mastodon", False, ("keep4o", "save4o"))
    assert [(i.base, i.token) for i in source.instances] == [
        ("https://mastodon.social", "default-token"), ("https://fosstodon.org", "fosstodon-token")]
    assert "token" not in repr(source)
    assert token_variable("mastodon.social") == "MONITOR_MASTODON_TOKEN_MASTODON_SOCIAL"
    assert source.cursor_key("https://mastodon.social", "keep4o") == \
        "mastodon:https://mastodon.social#keep4o"


@pytest.mark.parametrize("uri", ["mastodon:", "mastodon:ftp://mastodon.social",
                                 "mastodon:https://mastodon.social/api/v1",
                                 "mastodon:https://user:pw@mastodon.social",
                                 "mastodon:mastodon.social"])
def test_a_bad_instance_says_what_to_write(uri: str) -> None:
    with pytest.raises(SourceError, match="mastodon:https://"):
        open_source(uri, HookLog().context(hashtags=TAGS))


def test_without_campaign_hashtags_there_is_nothing_to_follow() -> None:
    with pytest.raises(SourceError, match=r"campaign\.hashtags"):
        open_source("mastodon:https://mastodon.social")


# -- content -------------------------------------------------------------------------------


def test_html_content_becomes_text() -> None:
    html = ('<p>&quot;Upgrades&quot; aren&#39;t better &amp; that&#x27;s that.<br>Line two<br/>'
            'three</p><p><span class="h-card"><a href="https://m.example/@bo" class="u-url '
            'mention">@<span>bo</span></a></span> see <a href="https://www.example.com/a/long/'
            'path" rel="nofollow noopener"><span class="invisible">https://www.</span><span '
            'class="ellipsis">example.com/a/lo</span><span class="invisible">ng/path</span></a>'
            '</p><p><a href="https://m.example/tags/keep4o" class="mention hashtag" rel="tag">'
            '#<span>keep4o</span></a></p>')
    parsed = parse_html(html)
    assert parsed.text == ('"Upgrades" aren\'t better & that\'s that.\nLine two\nthree\n\n'
                           "@bo see https://www.example.com/a/long/path\n\n#keep4o")
    assert parsed.links == ("https://www.example.com/a/long/path",)
    assert html_to_text("plain 4o") == "plain 4o"
    assert html_to_text("<p>a</p><script>alert(1)</script><p>b</p>") == "a\n\nb"


def test_golden_statuses_become_the_golden_posts(golden: Callable[[Path, Any], None]) -> None:
    when = datetime(2025, 8, 13, 12, 10, tzinfo=UTC)
    source_url = "https://mastodon.example/api/v1/timelines/tag/keep4o"
    records = []
    for status in TIMELINE:
        post = status_to_post(status, instance="https://mastodon.example",
                              source_url=source_url, retrieved_at=when, collector="monitor/X")
        assert post.raw == status
        record = orjson.loads(encode_post(post))
        record.pop("raw")
        records.append(record)
    golden(GOLDEN / "mastodon_posts.json", records)


# -- polling ---------------------------------------------------------------------------------


async def test_polling_pages_forward_from_the_cursor_with_min_id_and_link_headers() -> None:
    async with FakeMastodon() as server:
        statuses = fill(server, 95)
        key = f"mastodon:{server.url}#keep4o"
        cursors = MemoryCursorStore({key: statuses[9]["id"]})  # 0-9 durable already
        stream = source_for(server, cursors=cursors).stream()
        try:
            got = await take(stream, 85)
            later = fill(server, 3, start=95)  # the next poll finds these
            got += await take(stream, 3)
        finally:
            await stream.aclose()
    assert ids(got) == [mid(s) for s in statuses[10:] + later]
    assert [p.checkpoint for p in got] == [  # type: ignore[union-attr]
        (key, s["id"]) for s in statuses[10:] + later]
    requests = server.timeline_requests()
    assert [r.query.get("min_id") for r in requests[:3]] == [
        statuses[9]["id"], statuses[49]["id"], statuses[89]["id"]]  # from rel="prev"
    assert all(r.query["limit"] == "40" for r in requests)
    assert all(r.authorization is None for r in requests)  # no token: public timeline


async def test_the_first_run_reads_only_the_newest_page() -> None:
    async with FakeMastodon() as server:
        statuses = fill(server, 60)
        stream = source_for(server).stream()
        try:
            got = await take(stream, 40)
            with pytest.raises(TimeoutError):
                await take(stream, 1, timeout=0.4)
        finally:
            await stream.aclose()
    assert ids(got) == [mid(s) for s in statuses[20:]]  # oldest of them first


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (503, "http_5xx")])
async def test_retry_after_is_obeyed(status: int, kind: str) -> None:
    hooks = HookLog()
    async with FakeMastodon() as server:
        statuses = fill(server, 3)
        server.fail_next(status, retry_after=1)
        stream = source_for(server, hooks=hooks).stream()
        try:
            got = await take(stream, 3)
        finally:
            await stream.aclose()
    refused, retried = server.timeline_requests()[:2]
    assert refused.status == status and retried.status == 200
    assert retried.at - refused.at >= 1.0  # the backoff alone would be under 0.5 s
    assert ids(got) == [mid(s) for s in statuses]
    assert hooks.errors == [kind] and hooks.reconnects == 1


async def test_polling_stays_within_the_rate_limit_the_headers_announce() -> None:
    # the source assumes 300 per 3 s until the headers say 5 per second
    async with FakeMastodon(rate_limit=5, rate_window=1.0) as server:
        statuses = fill(server, 300)
        cursors = MemoryCursorStore({f"mastodon:{server.url}#keep4o": "1"})
        stream = source_for(server, cursors=cursors).stream()
        try:
            got = await take(stream, 300, timeout=15)
        finally:
            await stream.aclose()
    assert ids(got) == [mid(s) for s in statuses]
    requests = server.timeline_requests()
    assert len(requests) >= 8  # eight pages of 40
    assert {r.status for r in requests} == {200}  # never over the limit, never a 429
    assert requests[7].at - requests[0].at >= 1.0  # waited for X-RateLimit-Reset


async def test_one_status_on_two_instances_is_one_post_archived_once() -> None:
    async with FakeMastodon("a.example") as first, FakeMastodon("b.example") as second:
        original = first.status("alice", '<p>I miss 4o so much <a href="https://a.example/tags/'
                                'keep4o" class="mention hashtag" rel="tag">#<span>keep4o</span>'
                                "</a></p>")
        first.add("keep4o", original)
        second.add("keep4o", second.federated_copy(original, origin="a.example"))
        stream = source_for(first, second).stream()
        try:
            got = await take(stream, 2)
        finally:
            await stream.aclose()
    assert len({item.raw["id"] for item in got}) == 2  # type: ignore[union-attr]  # local ids
    assert ids(got) == [mid(original)] * 2  # one canonical id
    assert {p.author for p in got} == {"alice@a.example"}  # type: ignore[union-attr]
    result = Processor(load_tagger(RULES)).process(got)  # type: ignore[arg-type]
    assert len(result.tagged) == 1 and len(result.duplicates) == 1


async def test_a_slow_consumer_stops_the_polling() -> None:
    settings = MastodonSettings(**{**_fields(FAST), "buffer": 8})
    async with FakeMastodon() as server:
        statuses = fill(server, 200)
        cursors = MemoryCursorStore({f"mastodon:{server.url}#keep4o": "1"})
        stream = source_for(server, cursors=cursors, settings=settings).stream()
        try:
            got = await take(stream, 1)
            await asyncio.sleep(0.5)  # busy consumer
            assert len(server.timeline_requests()) == 1  # blocked on the full buffer
            got += await take(stream, 199)
        finally:
            await stream.aclose()
    assert ids(got) == [mid(s) for s in statuses]


def _fields(settings: MastodonSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


# -- streaming ----------------------------------------------------------------------------------


async def test_streaming_fills_the_gap_after_each_reconnect_without_duplicates() -> None:
    hooks = HookLog()
    async with FakeMastodon(token="s3cret", thump=0.2) as server:
        earlier = fill(server, 5)
        key = f"mastodon:{server.url}#keep4o"
        cursors = MemoryCursorStore({key: earlier[1]["id"]})
        source = source_for(server, hooks=hooks, cursors=cursors,
                            environ={"MONITOR_MASTODON_TOKEN": "s3cret"})
        stream = source.stream()
        try:
            got = await take(stream, 3)  # the gap since the cursor, from REST
            rest_calls = len(server.timeline_requests())
            live = fill(server, 3, start=5)
            got += await take(stream, 3)  # from the stream
            assert len(server.timeline_requests()) == rest_calls  # not polled
            await asyncio.sleep(1.0)  # idle; :thump every 0.2 s keeps it up (stall is 2 s)
            assert hooks.reconnects == 0
            await server.drop_streams()
            missed = fill(server, 4, start=8)  # while disconnected
            got += await take(stream, 4)
            more = fill(server, 2, start=12)
            got += await take(stream, 2)
            with pytest.raises(TimeoutError):
                await take(stream, 1, timeout=0.4)
        finally:
            await stream.aclose()
    assert ids(got) == [mid(s) for s in earlier[2:] + live + missed + more]
    assert hooks.reconnects == 1 and hooks.errors == ["connect"]
    stream_requests = [r for r in server.requests if r.path == "/api/v1/streaming/hashtag"]
    assert len(stream_requests) == 2
    assert all(r.authorization == "Bearer s3cret" for r in server.requests)
    assert all("s3cret" not in json.dumps(r.query) for r in server.requests)


async def test_stream_frames_malformed_or_not_updates_are_skipped() -> None:
    async with FakeMastodon(token="t", thump=0.2) as server:
        stream = source_for(server, environ={"MONITOR_MASTODON_TOKEN": "t"}).stream()
        try:
            pending = asyncio.ensure_future(take(stream, 3))
            async with asyncio.timeout(5):
                while not server.streams:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # the (empty) REST catch-up
            server.stream_raw("keep4o", "{not json")
            server.stream_raw("keep4o", '"a string"')
            server.stream_bytes("keep4o", (GOLDEN / "mastodon_stream.txt").read_bytes())
            got = await pending
        finally:
            await stream.aclose()
    assert [type(i).__name__ for i in got] == ["Rejected", "Rejected", "Post"]
    assert [i.reason for i in got[:2]] == ["invalid_json", "not_object"]  # type: ignore[union-attr]
    assert got[2].text == "streamed #keep4o"  # type: ignore[union-attr]


async def test_a_stalled_stream_is_reconnected() -> None:
    hooks = HookLog()
    settings = MastodonSettings(**{**_fields(FAST), "stall": 0.5})
    async with FakeMastodon(token="t", thump=60) as server:  # no heartbeat at all
        stream = source_for(server, hooks=hooks, settings=settings,
                            environ={"MONITOR_MASTODON_TOKEN": "t"}).stream()
        try:
            pending = asyncio.ensure_future(take(stream, 1))
            await asyncio.sleep(1.5)
            status = fill(server, 1)
            (got,) = await pending
        finally:
            await stream.aclose()
    assert "timeout" in hooks.errors and hooks.reconnects >= 1
    assert ids([got]) == [mid(status[0])]


async def test_a_refused_token_falls_back_to_polling() -> None:
    hooks = HookLog()
    async with FakeMastodon(token="right") as server:
        statuses = fill(server, 2)
        stream = source_for(server, hooks=hooks,
                            environ={"MONITOR_MASTODON_TOKEN": "wrong"}).stream()
        try:
            got = await take(stream, 2)
        finally:
            await stream.aclose()
    assert ids(got) == [mid(s) for s in statuses]
    assert hooks.errors == ["auth"]
    assert server.timeline_requests()[-1].authorization is None


async def test_cancelling_ends_every_task_and_stream() -> None:
    before = asyncio.all_tasks()
    async with FakeMastodon(token="t", thump=0.2) as server:
        source = source_for(server, environ={"MONITOR_MASTODON_TOKEN": "t"})
        source.tags = ("keep4o", "save4o")

        async def read() -> None:
            async for _ in source.stream():
                pass

        reader = asyncio.create_task(read())
        async with asyncio.timeout(5):
            while len(server.streams) < 2:
                await asyncio.sleep(0.01)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        async with asyncio.timeout(3):
            while server.streams:
                await asyncio.sleep(0.01)
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()


# -- the whole monitor ------------------------------------------------------------------------

#: ``python -m monitor`` with the Mastodon source's default timings shortened (a 60 s poll
#: interval and one request a second would not fit a test); nothing else is changed.
_FAST_CHILD = (
    "import functools, runpy, sys\n"
    "import monitor.sources.mastodon as m\n"
    "m.MastodonSettings = functools.partial(m.MastodonSettings, poll_interval=0.2,\n"
    "    window_seconds=30.0, reserve=1, request_timeout=5.0, backoff_base=0.1,\n"
    "    backoff_cap=1.0)\n"
    "sys.argv[0] = 'monitor'\n"
    "runpy.run_module('monitor', run_name='__main__', alter_sys=True)\n"
)


def monitor_process(folder: Path, source: str) -> MonitorProcess:
    """``monitor run --source mastodon:...``, fast timings, no token: polling."""
    return MonitorProcess(folder, source, unset=[ENV_TOKEN], python=("-c", _FAST_CHILD))


async def test_monitor_run_archives_every_served_status_exactly_once(tmp_path: Path) -> None:
    """Live, polling: serve, archive, answer 503s while more are posted, recover,
    SIGTERM; a restart resumes from the saved min_id and pages through what was
    posted while the monitor was down (more than one page of it)."""
    async with FakeMastodon() as server:
        source = f"mastodon:{server.url}"
        first = fill(server, 10, start=0)
        monitor = monitor_process(tmp_path, source)
        try:
            await monitor.start()
            await monitor.wait_archived(10)  # the first run reads the newest page
            server.fail_next(503, retry_after=1, times=3)
            second = fill(server, 10, start=10)  # posted while the instance fails
            await monitor.wait_archived(20)
            assert [r.status for r in server.timeline_requests()].count(503) == 3
            assert await monitor.stop() == 0, monitor.log

            third = fill(server, 45, start=20)  # while the monitor is down: two pages
            before = len(server.timeline_requests())
            monitor = monitor_process(tmp_path, source)
            await monitor.start()
            await monitor.wait_archived(45)
            assert await monitor.stop() == 0, monitor.log
        finally:
            monitor.kill()
    resumed = server.timeline_requests()[before]
    assert resumed.path == "/api/v1/timelines/tag/keep4o"
    assert resumed.query.get("min_id") == second[-1]["id"], resumed  # the saved cursor
    archived = await verified_ids(tmp_path / "archive")  # after archive verify passed
    served = [mid(s) for s in first + second + third]
    assert sorted(archived) == sorted(served)  # every served status, each exactly once
    cursors = json.loads((tmp_path / "state" / "cursors.json").read_text())
    assert cursors[f"mastodon:{server.url}#keep4o"] == third[-1]["id"]
