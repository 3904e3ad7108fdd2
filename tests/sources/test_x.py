"""``x:``: the X API v2 filtered stream against a local server speaking its wire format.

The fake (tests/support/fake_apis.py) keeps one timeline: a post published
while a stream is open is delivered live; one published while none is open
is only found by recent search, which is how a disconnect's gap is filled.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.cli import main
from monitor.codec import MAX_RECORD_BYTES
from monitor.sources import SourceContext, SourceError, open_source
from monitor.sources.backoff import Backoff
from monitor.sources.cursor import MemoryCursorStore
from monitor.sources.x import (
    DEFAULT_API,
    ENV_TOKEN,
    FIELDS,
    RULE_TAG,
    XSource,
    XTimings,
)
from tests.support.fake_apis import (
    FROZEN,
    X_RULES,
    X_SEARCH,
    X_STREAM,
    FakeX,
    Hooks,
    Pump,
    eventually,
    portable,
    tweet,
)
from tests.support.monitor_process import MonitorRun

GOLDEN = Path(__file__).parent / "golden_x"
FAST = XTimings(stall=2.0, network_step=0.02, network_cap=0.2, http_base=0.05, http_cap=0.4,
                rate_base=0.05, rate_cap=0.4)
BASE_ID = 1_955_900_000_000_000_000


def ids(first: int, last: int) -> list[int]:
    return list(range(BASE_ID + first, BASE_ID + last + 1))


def posts(numbers: list[int]) -> list[dict[str, Any]]:
    return [tweet(n, username=f"user{n % 7}") for n in numbers]


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with FakeX(keepalive=0.2) as fake:
        yield fake


def x_source(fake: FakeX, hooks: Hooks, *, cursors: MemoryCursorStore | None = None,
             hashtags: frozenset[str] = frozenset({"keep4o"}), token: str | None = None,
             timings: XTimings = FAST) -> XSource:
    context = hooks.context(hashtags=hashtags, cursors=cursors or MemoryCursorStore())
    return XSource(fake.url, token=token or fake.token, context=context, timings=timings,
                   clock=lambda: FROZEN, rng=random.Random(7))


async def connected(fake: FakeX, count: int = 1) -> None:
    await eventually(lambda: fake.stream_connects >= count and fake.live_streams,
                     what=f"stream connection #{count}")


# -- the wire format -------------------------------------------------------------------


async def test_the_golden_stream_becomes_the_golden_posts(
        fake_x: FakeX, golden: Callable[[Path, Any], None]) -> None:
    hooks = Hooks()
    async with Pump(x_source(fake_x, hooks)) as pump:
        await connected(fake_x)
        fake_x.push_raw((GOLDEN / "stream.txt").read_bytes())
        received = await pump.until(5, rejected=3)
    golden(GOLDEN / "posts.json", portable(received, fake_x.url))
    assert [r.reason for r in pump.rejected] == ["invalid_json", "missing_field:text",
                                                 "not_object"]
    assert hooks.errors == ["protocol"]  # the errors message: logged, counted, skipped
    first = received[0]
    assert first.url == "https://x.com/ana_writes/status/1955811209451323393"
    assert received[2].url == "https://x.com/i/web/status/1955811522036224000"  # no username
    request = fake_x.seen(X_STREAM)[0]
    assert request.query == FIELDS
    assert request.headers["Authorization"] == f"Bearer {fake_x.token}"


async def test_an_over_long_line_is_rejected_and_the_stream_goes_on(fake_x: FakeX) -> None:
    async with Pump(x_source(fake_x, Hooks())) as pump:
        await connected(fake_x)
        fake_x.push_raw(b'{"data":{"text":"' + b"4o " * (MAX_RECORD_BYTES // 2) + b'"}}\r\n')
        fake_x.post(*posts(ids(1, 1)))
        await pump.until(1, rejected=1)
    assert [r.reason for r in pump.rejected] == ["too_large"]
    assert pump.ids == [f"x:{BASE_ID + 1}"]


# -- rules ---------------------------------------------------------------------------------


async def test_rules_sync_adds_missing_rules_and_deletes_only_our_stale_ones(
        fake_x: FakeX) -> None:
    kept = fake_x.add_rule("#keep4o", RULE_TAG)
    stale = fake_x.add_rule("#gpt5sucks", RULE_TAG)
    theirs = fake_x.add_rule("#openai", "someone-else")
    untagged = fake_x.add_rule("from:openai")
    async with Pump(x_source(fake_x, Hooks(), hashtags=frozenset({"keep4o", "BringBack4o"}))):
        await connected(fake_x)
    rules = {r["value"]: r for r in fake_x.rules.values()}
    assert set(rules) == {"#keep4o", "#bringback4o", "#openai", "from:openai"}
    assert (rules["#keep4o"]["id"], rules["#openai"]["id"], rules["from:openai"]["id"]) == (
        kept, theirs, untagged)
    assert rules["#bringback4o"]["tag"] == RULE_TAG
    assert stale not in fake_x.rules
    changes = [orjson.loads(body) for body in fake_x.rule_posts]
    assert changes == [{"delete": {"ids": [stale]}},
                       {"add": [{"value": "#bringback4o", "tag": RULE_TAG}]}]

    fake_x.requests.clear()  # a second start finds nothing to change
    async with Pump(x_source(fake_x, Hooks(), hashtags=frozenset({"keep4o", "bringback4o"}))):
        await connected(fake_x, 2)
    assert fake_x.seen(X_RULES, "POST") == []


# -- disconnects and the gap -------------------------------------------------------------------


@pytest.mark.parametrize("abort", [False, True], ids=["closed", "reset"])
async def test_a_disconnect_mid_stream_is_filled_from_recent_search_without_gap_or_duplicate(
        fake_x: FakeX, abort: bool) -> None:
    hooks, cursors = Hooks(), MemoryCursorStore()
    source = x_source(fake_x, hooks, cursors=cursors)
    async with Pump(source, cursors) as pump:
        await connected(fake_x)
        fake_x.post(*posts(ids(1, 3)))
        await pump.until(3)
        # 230 posts published while we are away: three pages of recent search
        fake_x.disconnect(then_publish=posts(ids(4, 233)), abort=abort)
        await connected(fake_x, 2)
        fake_x.post(*posts(ids(234, 236)))
        await pump.until(236)
    expected = [f"x:{n}" for n in ids(1, 236)]
    assert sorted(pump.ids) == expected and len(pump.ids) == len(set(pump.ids))
    assert pump.ids[:3] == expected[:3] and pump.ids[-3:] == expected[-3:]
    searches = fake_x.searches()
    assert len(searches) == 3
    assert {(s["since_id"], s["until_id"]) for s in searches} == {
        (str(BASE_ID + 3), str(BASE_ID + 234))}
    assert [("next_token" in s) for s in searches] == [False, True, True]
    assert all(s["query"] == "#keep4o" and s["max_results"] == "100" for s in searches)
    assert {p.source_url.removeprefix(fake_x.url) for p in pump.posts[3:233]} == {X_SEARCH}
    assert {p.collector.split()[-1] for p in pump.posts} == {"x"}
    assert hooks.reconnects == 1 and hooks.ups[:3] == [True, False, True]
    assert hooks.errors == ["connect"]
    assert cursors.get(source.cursor_key) == str(BASE_ID + 236)


async def test_a_restart_fills_the_gap_after_the_saved_cursor(fake_x: FakeX) -> None:
    fake_x.disconnect(then_publish=posts(ids(1, 12)))  # published while the monitor was down
    cursors = MemoryCursorStore({f"x:{fake_x.url}": str(BASE_ID + 7)})
    async with Pump(x_source(fake_x, Hooks(), cursors=cursors), cursors) as pump:
        await connected(fake_x)
        fake_x.post(*posts(ids(13, 14)))
        await pump.until(7)
    assert sorted(pump.ids) == [f"x:{n}" for n in ids(8, 14)]
    assert pump.ids[-2:] == [f"x:{BASE_ID + 13}", f"x:{BASE_ID + 14}"]
    assert fake_x.searches()[0]["since_id"] == str(BASE_ID + 7)
    assert cursors.get(f"x:{fake_x.url}") == str(BASE_ID + 14)


async def test_a_gap_search_that_is_rate_limited_is_retried_on_the_next_connection(
        fake_x: FakeX) -> None:
    hooks, cursors = Hooks(), MemoryCursorStore()
    source = x_source(fake_x, hooks, cursors=cursors)
    async with Pump(source, cursors) as pump:
        await connected(fake_x)
        fake_x.post(*posts(ids(1, 2)))
        await pump.until(2)
        fake_x.fail_next(X_SEARCH, 429, headers={"Retry-After": "0"})
        fake_x.disconnect(then_publish=posts(ids(3, 5)))
        await connected(fake_x, 2)
        fake_x.post(*posts(ids(6, 6)))   # passed on, but the cursor stays before the gap
        await eventually(lambda: fake_x.stream_connects >= 3 and fake_x.live_streams)
        assert cursors.get(source.cursor_key) == str(BASE_ID + 2)
        fake_x.post(*posts(ids(7, 7)))
        await pump.until(7)
    assert sorted(pump.ids) == [f"x:{n}" for n in ids(1, 7)]
    assert len(pump.ids) == 7
    assert "rate_limited" in hooks.errors
    assert [s["until_id"] for s in fake_x.searches()] == [str(BASE_ID + 6), str(BASE_ID + 7)]
    assert cursors.get(source.cursor_key) == str(BASE_ID + 7)


# -- keep-alives, stalls, backoff ------------------------------------------------------------------


async def test_keepalives_hold_the_stream_and_a_stall_reconnects(fake_x: FakeX) -> None:
    hooks = Hooks()
    timings = XTimings(stall=0.6, network_step=0.02, network_cap=0.2)
    async with Pump(x_source(fake_x, hooks, timings=timings)):
        await connected(fake_x)
        await asyncio.sleep(1.5)  # keep-alives every 0.2 s: no stall
        assert fake_x.stream_connects == 1 and hooks.errors == []
        fake_x.stall()
        took = await eventually(lambda: fake_x.stream_connects >= 2, what="a reconnect")
    assert took >= 0.6 - 0.2 - 0.05  # the last keep-alive came up to 0.2 s before the stall
    assert hooks.errors == ["timeout"] and hooks.reconnects == 1


@pytest.mark.parametrize("header", ["Retry-After", "x-rate-limit-reset"])
async def test_http_429_waits_as_long_as_the_server_says(fake_x: FakeX, header: str) -> None:
    if header == "Retry-After":
        value, least = "2", 2.0
    else:  # epoch seconds; the integer second makes the wait between 1 and 2 s
        value, least = str(int(time.time()) + 2), 1.0
    fake_x.fail_next(X_STREAM, 429, headers={header: value}, body={
        "title": "ConnectionException", "connection_issue": "TooManyConnections",
        "detail": "This stream is currently at the maximum allowed connection limit.",
        "type": "https://api.twitter.com/2/problems/streaming-connection"})
    hooks = Hooks()
    async with Pump(x_source(fake_x, hooks, timings=XTimings(rate_base=0.05, rate_cap=5.0))):
        await connected(fake_x)
    first, second = fake_x.seen(X_STREAM)[:2]
    assert least - 0.05 <= second.at - first.at < least + 1.5
    assert hooks.errors == ["rate_limited"]


async def test_http_errors_back_off_exponentially(fake_x: FakeX) -> None:
    fake_x.fail_next(X_STREAM, 503, times=3, body={"title": "Service Unavailable"})
    hooks = Hooks()
    timings = XTimings(http_base=0.2, http_cap=2.0)
    async with Pump(x_source(fake_x, hooks, timings=timings)):
        await connected(fake_x)
    times = [r.at for r in fake_x.seen(X_STREAM)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    for gap, floor in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert floor - 0.02 <= gap <= floor * 1.25 + 0.3
    assert hooks.errors == ["http_5xx"] * 3


def test_the_documented_schedules() -> None:
    rng = random.Random(3)
    network = Backoff(0.25, 16.0, rng=rng, linear=True, floor=True)
    floors = [0.0, 0.25, 0.5, 0.75]
    for floor in floors:
        assert floor <= network.next_delay() <= floor + 0.25
    for _ in range(100):
        delay = network.next_delay()
    assert 16.0 <= delay <= 16.25
    http = Backoff(5.0, 320.0, rng=rng, floor=True)
    for floor in (5, 10, 20, 40, 80, 160, 320, 320):
        assert floor <= http.next_delay() <= floor * 1.25
    rate = Backoff(60.0, 960.0, rng=rng, floor=True)
    assert 60 <= rate.next_delay() <= 75 and 120 <= rate.next_delay() <= 150
    assert rate.next_delay(retry_after=900.0) >= 900.0
    rate.reset()
    assert rate.next_delay() <= 75


# -- backpressure, cancellation ----------------------------------------------------------------------


async def test_a_slow_consumer_holds_the_server_back_instead_of_buffering() -> None:
    with FakeX(keepalive=30) as fake:
        source = x_source(fake, Hooks())
        async with aclosing(source.stream()) as stream:
            first = asyncio.ensure_future(anext(stream))
            await connected(fake)
            lines = [orjson.dumps({**tweet(n, "I miss 4o #keep4o " + "x" * 2000),
                                   "matching_rules": []}) + b"\r\n" for n in ids(1, 100)]
            head = b"".join(lines)
            filler = b"".join(lines[-1:] * 100)   # ~200 KB of one repeated (duplicate) post
            fake.push_raw(head)
            for _ in range(239):                  # ~50 MB in all
                fake.push_raw(filler)
            total = len(head) + 239 * len(filler)
            await first
            for _ in range(4):
                await anext(stream)
            await asyncio.sleep(1.0)  # the consumer dawdles
            written = fake.bytes_written
            assert written < total * 0.4, (written, total)
            for _ in range(5):  # and the stream still flows when it reads again
                await anext(stream)


async def test_cancelling_the_stream_is_clean_and_reports_down(fake_x: FakeX) -> None:
    hooks = Hooks()
    async with Pump(x_source(fake_x, hooks)) as pump:
        await connected(fake_x)
        fake_x.post(*posts(ids(1, 1)))
        await pump.until(1)
    assert hooks.ups == [True, False]
    await eventually(lambda: fake_x.live_streams == 0, what="the server seeing us go")


# -- the token, the URI ---------------------------------------------------------------------------------


async def test_the_bearer_token_never_appears_in_logs_or_errors(
        fake_x: FakeX, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-Zq81LmN0pQ"
    hooks = Hooks()
    async with Pump(x_source(fake_x, hooks, token=wrong)):
        await eventually(lambda: hooks.errors.count("auth") >= 2, what="two refusals")
    fake_x.fail_next(X_STREAM, 500, body={"title": "Internal"})
    async with Pump(x_source(fake_x, hooks)) as pump:
        await connected(fake_x)
        fake_x.post(*posts(ids(1, 1)))
        await pump.until(1)
        fake_x.disconnect(then_publish=posts(ids(2, 3)))
        await connected(fake_x, 2)
        fake_x.post(*posts(ids(4, 4)))
        await pump.until(4)
    assert "HTTP 401" in caplog.text and "HTTP 500" in caplog.text
    for secret in (wrong, fake_x.token):
        assert secret not in caplog.text
        assert secret not in repr(x_source(fake_x, Hooks(), token=secret))
        assert secret not in repr(vars(x_source(fake_x, Hooks(), token=secret)))


def test_a_missing_token_names_the_variable() -> None:
    with pytest.raises(SourceError, match=ENV_TOKEN) as info:
        open_source("x:", SourceContext(environ={}))
    assert "bearer token" in str(info.value)


@pytest.mark.parametrize(("uri", "api"), [
    ("x:", DEFAULT_API), ("x:https://api.x.com", DEFAULT_API),
    ("x:http://127.0.0.1:8080/", "http://127.0.0.1:8080")])
def test_uri_forms(uri: str, api: str) -> None:
    source = open_source(uri, SourceContext(environ={ENV_TOKEN: "t0ken"}))
    assert isinstance(source, XSource) and source.api == api
    assert (source.name, source.finite) == ("x", False)


@pytest.mark.parametrize("uri", ["x:ftp://host", "x:https://api.x.com/2/tweets", "x:api.x.com",
                                 "x:https://api.x.com?stall=3"])
def test_bad_uris_say_what_to_write(uri: str) -> None:
    with pytest.raises(SourceError, match=r"write x: for https://api\.x\.com"):
        open_source(uri, SourceContext(environ={ENV_TOKEN: "t0ken"}))


# -- acceptance ----------------------------------------------------------------------------------------


def test_monitor_run_archives_every_post_once_across_a_disconnect(tmp_path: Path) -> None:
    with FakeX(keepalive=1.0) as fake, MonitorRun(
            tmp_path, f"x:{fake.url}", {ENV_TOKEN: fake.token}) as run:
        fake.wait_for_connects(1, timeout=30)
        fake.post(*posts(ids(1, 5)))
        run.wait_until("social_archive_posts_total", 5, source="x")
        fake.disconnect(then_publish=posts(ids(6, 9)))
        fake.wait_for_connects(2)
        fake.post(*posts(ids(10, 12)))
        run.wait_until("social_archive_posts_total", 12, source="x")
        assert run.metric("social_source_reconnects_total", source="x") == 1
        assert run.metric("social_posts_duplicate_total", source="x") == 0
        assert run.stop() == 0, run.stderr
    archived = run.archived_ids()
    assert sorted(archived) == [f"x:{n}" for n in ids(1, 12)]
    assert len(archived) == len(set(archived))
    assert main(["archive", "verify", str(run.archive)]) == 0
    assert fake.token not in run.stderr
    assert "reconnected to the filtered stream" in run.stderr
