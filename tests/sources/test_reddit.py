"""``reddit:r/SUB``: OAuth client credentials and Listing polling against a local fake.

The fake (tests/support/fake_apis.py) issues tokens at ``/api/v1/access_token``,
serves ``/r/SUB/new`` and ``/r/SUB/comments`` newest first with Reddit's
``before``/``after`` paging, and counts requests against a budget it announces
in ``X-Ratelimit-*`` headers, answering 429 past it.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.cli import main
from monitor.sources import SourceContext, SourceError, open_source
from monitor.sources.cursor import MemoryCursorStore
from monitor.sources.reddit import (
    DEFAULT_API,
    DEFAULT_AUTH,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_USERNAME,
    RedditSource,
    RedditTimings,
)
from tests.support.fake_apis import (
    FROZEN,
    R_TOKEN,
    FakeReddit,
    Hooks,
    Pump,
    comment,
    eventually,
    link,
    portable,
)
from tests.support.monitor_process import MonitorRun

GOLDEN = Path(__file__).parent / "golden_reddit"
FAST = RedditTimings(every=0.1, backoff_base=0.05, backoff_cap=0.5, anchor_check=2)
BASE = int("1mpe000", 36)
NEW = "/r/ChatGPT/new"


def b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def links(first: int, last: int, subreddit: str = "ChatGPT") -> list[dict[str, Any]]:
    return [link(b36(BASE + n), f"Post {n} about 4o", f"I miss 4o ({n})",
                 subreddit=subreddit, created=1755079200.0 + n) for n in range(first, last + 1)]


def names(first: int, last: int) -> list[str]:
    return [f"reddit:t3_{b36(BASE + n)}" for n in range(first, last + 1)]


@pytest.fixture
def fake_reddit() -> Iterator[FakeReddit]:
    with FakeReddit() as fake:
        yield fake


def reddit_source(fake: FakeReddit, hooks: Hooks, subs: str = "ChatGPT", *,
                  cursors: MemoryCursorStore | None = None, timings: RedditTimings = FAST,
                  secret: str | None = None) -> RedditSource:
    context = hooks.context(cursors=cursors or MemoryCursorStore())
    return RedditSource(subs, client_id=fake.client_id,
                        client_secret=secret or fake.client_secret, api=fake.url, auth=fake.url,
                        context=context, timings=timings, username="monitor_bot",
                        clock=lambda: FROZEN, rng=random.Random(5))


# -- the wire format ---------------------------------------------------------------------


async def test_the_golden_listings_become_the_golden_posts(
        fake_reddit: FakeReddit, golden: Callable[[Path, Any], None]) -> None:
    for name in ("new.json", "comments.json"):
        listing = orjson.loads((GOLDEN / name).read_bytes())
        fake_reddit.add(*listing["data"]["children"])
    async with Pump(reddit_source(fake_reddit, Hooks(), "ChatGPT+OpenAI")) as pump:
        received = await pump.until(5, rejected=2)
    golden(GOLDEN / "posts.json", portable(received, fake_reddit.url))
    assert [r.reason for r in pump.rejected] == ["missing_field:created_at",
                                                 "missing_field:text"]
    token_request = fake_reddit.seen(R_TOKEN, "POST")[0]
    assert token_request.headers["Authorization"].startswith("Basic ")
    first = fake_reddit.listing_requests()[0]
    assert first.path == "/r/ChatGPT+OpenAI/new"
    assert first.query == {"limit": "100", "raw_json": "1"}
    assert first.headers["Authorization"] == f"bearer {fake_reddit.tokens[0]}"
    assert first.headers["User-Agent"] == "python:social-monitor:v0.1.0 (by /u/monitor_bot)"


# -- the before cursor ------------------------------------------------------------------------


async def test_polls_page_with_before_and_pass_each_thing_on_once(
        fake_reddit: FakeReddit) -> None:
    fake_reddit.add(*links(1, 3))
    cursors = MemoryCursorStore()
    source = reddit_source(fake_reddit, Hooks(), cursors=cursors,
                           timings=RedditTimings(every=0.2, max_pages=2))
    async with Pump(source, cursors) as pump:
        await pump.until(3)
        fake_reddit.add(*links(4, 253))
        await pump.until(253)
        fake_reddit.add(comment("n9aa001", "Me too #keep4o", link_id="t3_" + b36(BASE + 1)))
        await pump.until(254)
    assert pump.ids[:253] == names(1, 253)
    assert pump.ids[253] == "reddit:t1_n9aa001"
    befores = [r.query.get("before") for r in fake_reddit.seen(NEW)]
    assert befores[0] is None and all(befores[1:])
    assert f"t3_{b36(BASE + 3)}" in befores and f"t3_{b36(BASE + 103)}" in befores
    assert cursors.get(source.cursor_key("new")) == f"t3_{b36(BASE + 253)}"
    assert cursors.get(source.cursor_key("comments")) == "t1_n9aa001"


async def test_a_restart_resumes_after_the_saved_fullname(fake_reddit: FakeReddit) -> None:
    fake_reddit.add(*links(1, 10))
    cursors = MemoryCursorStore({"reddit:r/ChatGPT/new": f"t3_{b36(BASE + 6)}"})
    async with Pump(reddit_source(fake_reddit, Hooks(), cursors=cursors), cursors) as pump:
        await pump.until(4)
        await eventually(lambda: len(fake_reddit.seen(NEW)) >= 3)
    assert pump.ids == names(7, 10)
    assert fake_reddit.seen(NEW)[0].query["before"] == f"t3_{b36(BASE + 6)}"


async def test_a_deleted_anchor_is_noticed_and_caught_up(fake_reddit: FakeReddit) -> None:
    fake_reddit.add(*links(1, 3))
    hooks = Hooks()
    async with Pump(reddit_source(fake_reddit, hooks)) as pump:
        await pump.until(3)
        fake_reddit.delete(f"t3_{b36(BASE + 3)}")  # 'before' it now finds nothing, ever
        fake_reddit.add(*links(4, 6))
        await pump.until(6)
    assert pump.ids == names(1, 6)


# -- politeness -------------------------------------------------------------------------------


async def test_the_rate_limit_headers_are_obeyed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "monitor.sources.reddit")
    with FakeReddit(budget=6, window=2.0) as fake:
        fake.add(*links(1, 2))
        timings = RedditTimings(every=0.05, low_water=1)
        async with Pump(reddit_source(fake, Hooks(), timings=timings)):
            await eventually(lambda: len(fake.listing_requests()) >= 10, timeout=15)
        times = [r.at for r in fake.listing_requests()]
        assert fake.refused == 0  # never past the budget ...
        assert max(b - a for a, b in itertools.pairwise(times)) >= 0.5  # ... by waiting
    assert "waiting" in caplog.text and "reset" in caplog.text


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_obeyed(fake_reddit: FakeReddit, status: int) -> None:
    fake_reddit.add(*links(1, 1))
    fake_reddit.fail_next(NEW, status, headers={"Retry-After": "1"}, body={
        "message": "Too Many Requests", "error": status})
    hooks = Hooks()
    async with Pump(reddit_source(fake_reddit, hooks)) as pump:
        await pump.until(1)
    first, second = fake_reddit.seen(NEW)[:2]
    assert 1.0 <= second.at - first.at < 2.0
    assert hooks.errors == ["rate_limited" if status == 429 else "http_5xx"]
    assert hooks.ups[:2] == [False, True] and hooks.reconnects == 0


async def test_an_expired_token_is_renewed_once(fake_reddit: FakeReddit) -> None:
    fake_reddit.add(*links(1, 1))
    hooks = Hooks()
    async with Pump(reddit_source(fake_reddit, hooks)) as pump:
        await pump.until(1)
        fake_reddit.expire_tokens()
        fake_reddit.add(*links(2, 2))
        await pump.until(2)
    assert len(fake_reddit.seen(R_TOKEN, "POST")) == 2
    assert hooks.errors == []


async def test_an_outage_is_reported_and_recovered_from(fake_reddit: FakeReddit) -> None:
    fake_reddit.add(*links(1, 1))
    hooks = Hooks()
    async with Pump(reddit_source(fake_reddit, hooks)) as pump:
        await pump.until(1)
        fake_reddit.fail_next(NEW, 502, times=2)
        await eventually(lambda: len(hooks.errors) == 2)
        fake_reddit.add(*links(2, 2))
        await pump.until(2)
    assert hooks.errors == ["http_5xx", "http_5xx"]
    assert hooks.ups[:3] == [True, False, True] and hooks.reconnects == 1


# -- malformed input ---------------------------------------------------------------------------


async def test_malformed_children_and_bodies_are_counted_and_skipped(
        fake_reddit: FakeReddit) -> None:
    fake_reddit.add(*links(1, 1))
    fake_reddit.fail_next(NEW, 200, body=b'{"kind": "Listing", "data": {"children": [')
    fake_reddit.fail_next(NEW, 200, body={"kind": "t3", "data": {}})
    hooks = Hooks()
    bad = {"kind": "Listing", "data": {"children": [
        {"kind": "t1", "data": {"name": "t1_zz9"}}, "nonsense",
        {"kind": "t3", "data": {**links(0, 0)[0]["data"], "created_utc": "yesterday"}},
        links(1, 1)[0]], "before": None, "after": None}}
    fake_reddit.fail_next(NEW, 200, body=bad)
    async with Pump(reddit_source(fake_reddit, hooks)) as pump:
        await pump.until(1, rejected=3)
        fake_reddit.add(*links(2, 2))
        await pump.until(2)
    assert hooks.errors == ["malformed", "malformed"]
    assert [r.reason for r in pump.rejected] == ["bad_timestamp", "bad_field", "bad_field"]
    assert pump.ids == names(1, 2)


# -- secrets, URIs -------------------------------------------------------------------------------


async def test_credentials_and_tokens_never_appear_in_logs(
        fake_reddit: FakeReddit, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake_reddit.add(*links(1, 1))
    hooks = Hooks()
    async with Pump(reddit_source(fake_reddit, hooks, secret="wrong-secret-81hG")):
        await eventually(lambda: hooks.errors.count("auth") >= 2)
    async with Pump(reddit_source(fake_reddit, hooks)) as pump:
        await pump.until(1)
    assert f"check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}" in caplog.text
    for secret in ("wrong-secret-81hG", fake_reddit.client_secret, *fake_reddit.tokens):
        assert secret not in caplog.text
    source = reddit_source(fake_reddit, hooks)
    assert fake_reddit.client_secret not in repr(vars(source))


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(SourceError) as info:
        open_source("reddit:r/ChatGPT", SourceContext(environ={ENV_CLIENT_ID: "id"}))
    assert ENV_CLIENT_SECRET in str(info.value) and ENV_CLIENT_ID not in str(info.value)
    with pytest.raises(SourceError, match=f"{ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}"):
        open_source("reddit:r/ChatGPT", SourceContext(environ={}))


ENV = {ENV_CLIENT_ID: "id", ENV_CLIENT_SECRET: "secret"}


@pytest.mark.parametrize(("uri", "subs", "api", "auth", "every"), [
    ("reddit:r/ChatGPT", "ChatGPT", DEFAULT_API, DEFAULT_AUTH, 60.0),
    ("reddit:r/ChatGPT+OpenAI?every=30", "ChatGPT+OpenAI", DEFAULT_API, DEFAULT_AUTH, 30.0),
    ("reddit:r/ChatGPT?api=http://127.0.0.1:9&auth=http://127.0.0.1:8", "ChatGPT",
     "http://127.0.0.1:9", "http://127.0.0.1:8", 60.0),
])
def test_uri_forms(uri: str, subs: str, api: str, auth: str, every: float) -> None:
    source = open_source(uri, SourceContext(environ={**ENV, ENV_USERNAME: "u/someone"}))
    assert isinstance(source, RedditSource)
    assert (source.subreddits, source.api, source.auth, source.timings.every) == (
        subs, api, auth, every)
    assert source.user_agent.endswith("(by /u/someone)")


@pytest.mark.parametrize(("uri", "message"), [
    ("reddit:ChatGPT!", "write reddit:r/SUBREDDIT"),
    ("reddit:r/", "write reddit:r/SUBREDDIT"),
    ("reddit:r/ChatGPT?sort=top", "unknown option(s) sort"),
    ("reddit:r/ChatGPT?every=0", "every='0'"),
    ("reddit:r/ChatGPT?api=oauth.reddit.com", "is not an http(s) URL"),
])
def test_bad_uris_say_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(SourceError) as info:
        open_source(uri, SourceContext(environ=ENV))
    assert message in str(info.value)


# -- acceptance -------------------------------------------------------------------------------------


def test_monitor_run_archives_every_post_and_comment_once(tmp_path: Path) -> None:
    with FakeReddit() as fake:
        fake.add(*links(1, 5), *[comment(f"n9b{n}", f"Comment {n}: bring back 4o",
                                         link_id=f"t3_{b36(BASE + 1)}",
                                         created=1755079300.0 + n) for n in range(3)])
        env = {ENV_CLIENT_ID: fake.client_id, ENV_CLIENT_SECRET: fake.client_secret}
        uri = f"reddit:r/ChatGPT?every=1&api={fake.url}&auth={fake.url}"
        with MonitorRun(tmp_path, uri, env) as run:
            run.wait_until("social_archive_posts_total", 8, timeout=30, source="reddit")
            fake.add(*links(6, 7))
            run.wait_until("social_archive_posts_total", 10, source="reddit")
            assert run.stop() == 0, run.stderr
    archived = run.archived_ids()
    assert sorted(archived) == sorted([*names(1, 7), *(f"reddit:t1_n9b{n}" for n in range(3))])
    assert len(archived) == len(set(archived))
    assert main(["archive", "verify", str(run.archive)]) == 0
    for secret in (fake.client_secret, *fake.tokens):
        assert secret not in run.stderr
