"""``bluesky:``: Jetstream over WebSocket, against a local server speaking its wire format.

``golden/jetstream_events.jsonl`` holds events written by hand from
Jetstream's documented format (posts with tag and link facets, a reply, a
quote, a quote with media and hidden tags, an off-campaign post, an update,
a delete, identity and account events, a bot's absurd ``createdAt``);
``golden/jetstream_posts.json`` is what they must become.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.codec import MAX_RECORD_BYTES, encode_post
from monitor.model import Post
from monitor.sources import SourceError, open_source
from monitor.sources.base import Rejected, Source
from monitor.sources.bluesky import (
    PUBLIC_INSTANCES,
    BlueskySource,
    CampaignFilter,
    JetstreamSettings,
    record_hashtags,
)
from monitor.sources.cursor import MemoryCursorStore
from tests.support.fake_platforms import (
    FakeJetstream,
    HookLog,
    jetstream_post,
    jetstream_time,
    take,
)
from tests.support.monitor_process import MonitorProcess, verified_ids

GOLDEN = Path(__file__).parent / "golden"
EVENTS = [json.loads(line) for line in
          (GOLDEN / "jetstream_events.jsonl").read_text(encoding="utf-8").splitlines()]
RULES = Path(__file__).parents[1] / "runtime" / "rules"
CAMPAIGN = {"hashtags": frozenset({"keep4o"}), "terms": ("4o",)}
FAST = JetstreamSettings(heartbeat=5.0, stall=10.0, connect_timeout=2.0, backoff_base=0.05,
                         backoff_cap=0.5)


def source_for(server: FakeJetstream, hooks: HookLog | None = None, *,
               settings: JetstreamSettings = FAST, **context: Any) -> BlueskySource:
    source = open_source(f"bluesky:{server.url}", (hooks or HookLog()).context(
        **{**CAMPAIGN, **context}))
    assert isinstance(source, BlueskySource)
    source.settings = settings
    return source


def posts(n: int, *, start: float = 0.0, prefix: str = "p", size: int = 0) -> list[dict[str, Any]]:
    """``n`` campaign posts one second apart (in Jetstream time) from ``start``."""
    pad = " " + "x" * size if size else ""
    return [jetstream_post(f"did:plc:{prefix}{i:023d}", f"3l{prefix}{i:011d}",
                           f"post {i} #keep4o{pad}", time_us=jetstream_time(start + i))
            for i in range(n)]


def post_id(event: dict[str, Any]) -> str:
    return f"bluesky:at://{event['did']}/app.bsky.feed.post/{event['commit']['rkey']}"


# -- URIs ------------------------------------------------------------------------------


def test_plain_bluesky_reads_the_four_public_instances() -> None:
    source = open_source("bluesky:")
    assert isinstance(source, BlueskySource) and isinstance(source, Source)
    assert (source.name, source.finite) == ("bluesky", False)
    assert source.endpoints == PUBLIC_INSTANCES
    assert {e.split("/")[2] for e in source.endpoints} == {
        "jetstream1.us-east.bsky.network", "jetstream2.us-east.bsky.network",
        "jetstream1.us-west.bsky.network", "jetstream2.us-west.bsky.network"}
    one = open_source("bluesky:wss://jetstream2.us-east.bsky.network/subscribe")
    assert one.endpoints == ("wss://jetstream2.us-east.bsky.network/subscribe",)  # type: ignore[attr-defined]
    assert one.cursor_key == "bluesky:wss://jetstream2.us-east.bsky.network/subscribe"  # type: ignore[attr-defined]


@pytest.mark.parametrize("uri", ["bluesky:https://example.org/subscribe", "bluesky:wss://",
                                 "bluesky:ws://127.0.0.1:99999/subscribe",
                                 "bluesky:wss://h.example/subscribe?cursor=1"])
def test_a_bad_endpoint_says_what_to_write(uri: str) -> None:
    with pytest.raises(SourceError, match="bluesky:"):
        open_source(uri)


# -- wire format -------------------------------------------------------------------------


async def test_golden_events_become_the_golden_posts(golden: Callable[[Path, Any], None]) -> None:
    hooks = HookLog()
    async with FakeJetstream() as server:
        source = source_for(server, hooks)
        stream = source.stream()
        try:
            first = asyncio.ensure_future(take(stream, 5))
            await server.wait_for_connections(1)
            server.publish(*EVENTS)
            got = await first
        finally:
            await stream.aclose()
        query = server.connections[0].query
    assert query["wantedCollections"] == ["app.bsky.feed.post"]
    assert query["maxMessageSizeBytes"] == [str(MAX_RECORD_BYTES)]
    assert "cursor" not in query  # nothing stored: tail live
    assert all(isinstance(p, Post) for p in got), got
    records = []
    for post in got:
        assert isinstance(post, Post)
        assert post.source_url == server.url and post.retrieved_at is not None
        assert post.checkpoint == (source.cursor_key, str(post.raw["time_us"]))
        record = orjson.loads(encode_post(post))
        assert record.pop("raw") in EVENTS  # kept whole; archived only with --keep-raw
        record["source_url"] = "ws://127.0.0.1:PORT/subscribe"
        record["retrieved_at"] = "(now)"
        record["collector"] = re.sub(r"/[^ ]+ ", "/VERSION ", record["collector"])
        records.append(record)
    golden(GOLDEN / "jetstream_posts.json", records)
    assert hooks.ups == [True, False] and hooks.errors == []


@pytest.mark.parametrize(("hashtags", "terms", "expected"), [
    ({"keep4o"}, ("4o",), [0, 1, 4, 5, 9]),
    ({"keep4o"}, (), [0, 5, 9]),            # facet, hidden tag, text '#KEEP4O'
    (set(), ("gpt-4o",), [4]),              # 'bring back GPT-4o'
    (set(), (), [0, 1, 4, 5, 6, 9]),        # no campaign: every created post
])
def test_campaign_filter_uses_tag_facets_hidden_tags_and_text(
        hashtags: set[str], terms: tuple[str, ...], expected: list[int]) -> None:
    check = CampaignFilter(hashtags, terms)
    kept = []
    for index, event in enumerate(EVENTS):
        commit = event.get("commit") or {}
        if commit.get("operation") != "create":
            continue
        record = commit["record"]
        if check.matches(record["text"], record_hashtags(record, record["text"])):
            kept.append(index)
    assert kept == expected


async def test_the_server_filters_collections_and_off_campaign_posts_are_skipped() -> None:
    like = {"did": "did:plc:zz", "time_us": jetstream_time(1), "kind": "commit",
            "commit": {"rev": "r", "operation": "create", "collection": "app.bsky.feed.like",
                       "rkey": "3lk", "record": {"$type": "app.bsky.feed.like",
                                                 "createdAt": "2025-08-13T12:00:00Z"}}}
    off = jetstream_post("did:plc:off", "3loff", "nothing to see", time_us=jetstream_time(2))
    on = jetstream_post("did:plc:on", "3lon", "#keep4o", time_us=jetstream_time(3))
    async with FakeJetstream() as server:
        stream = source_for(server).stream()
        try:
            pending = asyncio.ensure_future(take(stream, 1))
            conn = await server.wait_for_connections(1)
            server.publish(like, off, on)
            (got,) = await pending
        finally:
            await stream.aclose()
    assert isinstance(got, Post) and got.id == post_id(on)
    assert conn.sent == 2  # the like never left the server


async def test_malformed_frames_are_counted_and_skipped() -> None:
    hooks = HookLog()
    good = jetstream_post("did:plc:good", "3lgood", "still here #keep4o", time_us=jetstream_time(9))
    no_rkey = jetstream_post("did:plc:a", "3la", "#keep4o", time_us=jetstream_time(3))
    del no_rkey["commit"]["rkey"]
    bad_text = jetstream_post("did:plc:b", "3lb", "#keep4o", time_us=jetstream_time(4))
    bad_text["commit"]["record"]["text"] = 42
    async with FakeJetstream() as server:
        stream = source_for(server, hooks).stream()
        try:
            pending = asyncio.ensure_future(take(stream, 6))
            await server.wait_for_connections(1)
            server.publish_raw("{not json", time_us=jetstream_time(1))
            server.publish_raw("[1, 2, 3]", time_us=jetstream_time(2))
            server.publish(no_rkey, bad_text)
            server.publish_raw('{"did": "did:plc:c", "kind": "commit"}', time_us=jetstream_time(5))
            server.publish_raw(json.dumps({**good, "pad": "x" * MAX_RECORD_BYTES}),
                               time_us=jetstream_time(6))
            server.publish(good)
            got = await pending
        finally:
            await stream.aclose()
    reasons = [item.reason for item in got if isinstance(item, Rejected)]
    assert reasons == ["invalid_json", "not_object", "bad_field", "bad_type:text", "bad_field"]
    assert isinstance(got[-1], Post) and got[-1].id == post_id(good)
    assert hooks.errors == []  # bad frames are rejections, the connection is fine


# -- resuming ------------------------------------------------------------------------------


@pytest.mark.parametrize("abort", [False, True], ids=["close-frame", "tcp-reset"])
async def test_a_disconnect_mid_stream_resumes_from_the_cursor_without_gap_or_duplicate(
        abort: bool) -> None:
    hooks = HookLog()
    first, second = posts(10), posts(10, start=10, prefix="q")
    async with FakeJetstream() as server:
        source = source_for(server, hooks)
        stream = source.stream()
        try:
            pending = asyncio.ensure_future(take(stream, 4))
            await server.wait_for_connections(1)
            server.publish(*first)
            got = await pending  # the rest waits, unread, in the socket
            await server.disconnect(abort=abort)
            server.publish(*second)  # while the client is away
            before_reconnect = list(got)
            while len(got) < 20:
                got += await take(stream, 1)
                if hooks.reconnects == 0:
                    before_reconnect.append(got[-1])
            with pytest.raises(TimeoutError):  # nothing more: no duplicate follows
                await take(stream, 1, timeout=0.5)
        finally:
            await stream.aclose()
    ids = [p.id for p in got if isinstance(p, Post)]
    assert ids == [post_id(e) for e in first + second]
    last_read = before_reconnect[-1].raw["time_us"]  # type: ignore[union-attr]
    cursor = int(server.connections[1].query["cursor"][0])
    assert cursor == last_read - 5_000_000  # rewound five seconds
    assert server.connections[1].sent > 20 - len(before_reconnect)  # some sent again, dropped
    assert hooks.reconnects == 1 and hooks.ups[:3] == [True, False, True]
    assert hooks.errors == ["connect"]


async def test_a_restart_resumes_from_the_committed_cursor() -> None:
    events = posts(20)
    cursors = MemoryCursorStore()
    async with FakeJetstream() as server:
        server.publish(*events)  # history the server still holds
        key = f"bluesky:{server.url}"
        cursors.commit({key: str(events[11]["time_us"])})  # 0-11 durable before the restart
        stream = source_for(server, cursors=cursors).stream()
        try:
            got = await take(stream, 14)
        finally:
            await stream.aclose()
        cursor = int(server.connections[0].query["cursor"][0])
    assert cursor == events[11]["time_us"] - 5_000_000
    ids = [p.id for p in got if isinstance(p, Post)]
    # Jetstream replays from time_us >= cursor: 6..11 again (the processor drops them
    # as duplicates), then 12..19
    assert ids == [post_id(e) for e in events[6:]]
    assert got[-1].checkpoint == (key, str(events[-1]["time_us"]))  # type: ignore[union-attr]


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (503, "http_5xx")])
async def test_retry_after_is_obeyed(status: int, kind: str) -> None:
    hooks = HookLog()
    async with FakeJetstream() as server:
        server.refusals.append((status, {"Retry-After": "1"}))
        stream = source_for(server, hooks).stream()
        try:
            pending = asyncio.ensure_future(take(stream, 1))
            await server.wait_for_connections(1)
            server.publish(*posts(1))
            await pending
        finally:
            await stream.aclose()
    refused, accepted = server.attempts[:2]
    assert accepted - refused >= 1.0  # the backoff alone would be under 0.2 s
    assert hooks.errors == [kind]


async def test_a_dead_endpoint_falls_over_to_the_next() -> None:
    hooks = HookLog()
    async with FakeJetstream() as server:
        source = BlueskySource(["ws://127.0.0.1:9/subscribe", server.url],
                               context=hooks.context(**CAMPAIGN), settings=FAST)
        stream = source.stream()
        try:
            pending = asyncio.ensure_future(take(stream, 1))
            await server.wait_for_connections(1)
            server.publish(*posts(1))
            (got,) = await pending
        finally:
            await stream.aclose()
    assert isinstance(got, Post) and got.source_url == server.url
    assert hooks.errors[0] == "connect"


# -- backpressure and cancellation ----------------------------------------------------------


async def test_a_slow_consumer_stalls_the_server_instead_of_filling_memory() -> None:
    count, size = 4000, 8000  # about 32 MB in all
    async with FakeJetstream() as server:
        stream = source_for(server).stream()
        try:
            pending = asyncio.ensure_future(take(stream, 1))
            conn = await server.wait_for_connections(1)
            server.publish(*posts(count, size=size))
            await pending
            await asyncio.sleep(1.0)  # the consumer is busy; the server keeps trying
            stalled_at = conn.sent
            await asyncio.sleep(0.5)
            assert conn.sent == stalled_at  # blocked on a full socket, not still sending
            assert stalled_at * size < 16_000_000, stalled_at  # socket buffers, not the stream
            rest = await take(stream, count - 1, timeout=30)
        finally:
            await stream.aclose()
    assert len({p.id for p in rest if isinstance(p, Post)}) == count - 1
    assert conn.sent == count


async def test_cancelling_the_reader_closes_the_connection_and_leaves_no_task() -> None:
    hooks = HookLog()
    before = asyncio.all_tasks()
    async with FakeJetstream() as server:
        source = source_for(server, hooks)

        async def read() -> None:
            async for _ in source.stream():
                pass

        reader = asyncio.create_task(read())
        conn = await server.wait_for_connections(1)
        server.publish(*posts(3))
        await asyncio.sleep(0.2)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        async with asyncio.timeout(3):
            while not conn.ws.closed:
                await asyncio.sleep(0.01)
        assert hooks.ups[-1] is False
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()


# -- the whole monitor ------------------------------------------------------------------------


def monitor_process(folder: Path, endpoint: str) -> MonitorProcess:
    """``python -m monitor run --source bluesky:ENDPOINT`` as a child process."""
    return MonitorProcess(folder, f"bluesky:{endpoint}")


async def wait_archived(monitor: MonitorProcess, count: int) -> None:
    """Until ``count`` bluesky posts are archived, and no more."""
    await monitor.wait_archived(count, timeout=30, source="bluesky")


async def test_monitor_run_archives_every_served_post_exactly_once(tmp_path: Path) -> None:
    """Live: serve, archive, cut the connection, serve more, SIGTERM; then a restart
    from the saved cursor picks up what was served while the monitor was down."""
    batches = [posts(10, start=0, prefix="a"), posts(10, start=10, prefix="b"),
               posts(10, start=20, prefix="c")]
    async with FakeJetstream() as server:
        monitor = monitor_process(tmp_path, server.url)
        try:
            await monitor.start()
            await server.wait_for_connections(1, timeout=30)
            server.publish(*batches[0])
            await wait_archived(monitor, 10)
            await server.disconnect(abort=True)  # server-side cut
            server.publish(*batches[1])          # served while the monitor reconnects
            await wait_archived(monitor, 20)
            assert await monitor.stop() == 0, monitor.log
            assert "cursor" in server.connections[1].query

            server.publish(*batches[2])  # while the monitor is down
            restarted = monitor_process(tmp_path, server.url)
            monitor = restarted
            started = len(server.connections)
            await monitor.start()
            await server.wait_for_connections(started + 1, timeout=30)
            await wait_archived(monitor, 10)  # batch c; the rewound part of b is dropped
            assert await monitor.stop() == 0, monitor.log
        finally:
            monitor.kill()
    archived = await verified_ids(tmp_path / "archive")  # after archive verify passed
    served = [post_id(e) for batch in batches for e in batch]
    assert sorted(archived) == sorted(served)  # every served post, each exactly once
    cursors = json.loads((tmp_path / "state" / "cursors.json").read_text())
    assert cursors[f"bluesky:{server.url}"] == str(batches[2][-1]["time_us"])

