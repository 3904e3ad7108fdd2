"""Local aiohttp servers speaking the documented wire formats of X, Reddit and feeds.

Each fake runs on 127.0.0.1 in a thread with its own event loop, so the
same server serves an in-process source (on the test's loop) and a
``monitor run`` subprocess alike. Methods that change a fake's state are
thread-safe: they run on the server's loop and return once done.

* :class:`FakeX`: ``GET /2/tweets/search/stream`` (chunked JSON lines,
  ``\\r\\n`` keep-alives), ``GET/POST /2/tweets/search/stream/rules`` and
  ``GET /2/tweets/search/recent`` (``since_id``/``until_id``, ``next_token``).
* :class:`FakeReddit`: ``POST /api/v1/access_token`` (client credentials) and
  ``/r/SUB/new`` / ``/r/SUB/comments`` Listings with ``before``/``after`` and
  ``X-Ratelimit-*`` headers.
* :class:`FakeFeeds`: RSS/Atom documents with ``ETag`` and ``Last-Modified``,
  answering conditional GETs with 304.

Also here: :class:`Hooks` (a SourceContext that records the health hooks)
and :class:`Pump` (reads a source as the runtime does); the real ``monitor run`` as a
subprocess is :class:`tests.support.monitor_process.MonitorRun`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Self

import orjson
from aiohttp import web

from monitor.codec import encode_post
from monitor.model import Post
from monitor.sources.base import Rejected, Source
from monitor.sources.cursor import MemoryCursorStore
from tests.support.fake_platforms import HookLog

__all__ = ["FROZEN", "FakeFeeds", "FakeReddit", "FakeX", "Hooks", "Pump", "Seen",
           "comment", "eventually", "link", "portable", "tweet"]

#: retrieved_at of every post in golden comparisons
FROZEN = datetime(2025, 8, 14, 12, 0, tzinfo=UTC)


def portable(posts: Iterable[Post], base: str) -> list[dict[str, Any]]:
    """Posts as JSON records for golden files: no ``raw``, the fake's address as http://FAKE."""
    records = []
    for post in posts:
        record = orjson.loads(encode_post(post))
        record.pop("raw", None)
        records.append(record)
    return orjson.loads(orjson.dumps(records).decode().replace(base, "http://FAKE"))


async def eventually(condition: Callable[[], object], timeout: float = 10.0,
                     what: str = "the condition") -> float:
    """Poll ``condition`` on the event loop until true; seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@dataclass(slots=True, frozen=True)
class Seen:
    """One request a fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


class FakeAPI:
    """A server in a background thread; subclasses add routes and state."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._scripted: dict[str, deque[web.Response | Callable[[], web.Response]]] = \
            defaultdict(deque)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Self:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=type(self).__name__)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def close(self) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            self.call(self._before_close)
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    def _before_close(self) -> None:
        """Let long-running handlers end (subclasses)."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the server's loop and return its result."""
        assert self._loop is not None, "start the fake first"

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # -- requests ----------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        self.requests.append(Seen(request.method, request.path, dict(request.query),
                                  dict(request.headers), time.monotonic()))
        queue = self._scripted.get(request.path)
        if queue:
            scripted = queue.popleft()
            return scripted() if callable(scripted) else scripted
        return await handler(request)

    def fail_next(self, path: str, status: int, *, headers: dict[str, str] | None = None,
                  body: bytes | dict[str, Any] = b"", times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` with this response instead."""
        data = orjson.dumps(body) if isinstance(body, dict) else body

        def respond() -> web.Response:
            return web.Response(status=status, headers=headers, body=data,
                                content_type="application/json" if data else None)

        def add() -> None:
            for _ in range(times):
                self._scripted[path].append(respond)

        self.call(add)

    def seen(self, path: str, method: str = "GET") -> list[Seen]:
        return [r for r in list(self.requests) if r.path == path and r.method == method]


# -- X ------------------------------------------------------------------------------

X_STREAM = "/2/tweets/search/stream"
X_RULES = "/2/tweets/search/stream/rules"
X_SEARCH = "/2/tweets/search/recent"
_END, _ABORT, _STALL = object(), object(), object()


def _x_time(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def tweet(post_id: int | str, text: str | None = None, *, username: str = "alice",
          author_id: str = "2244994945", created_at: str = "2025-08-13T10:00:00.000Z",
          lang: str = "en", hashtags: Iterable[str] = ("keep4o",),
          referenced: Iterable[tuple[str, str]] = (), urls: Iterable[str] = (),
          metrics: dict[str, int] | None = None) -> dict[str, Any]:
    """A stream/search message for one post, as X API v2 sends it with our fields."""
    tags = list(hashtags)
    if text is None:
        text = f"post {post_id}: I miss 4o " + " ".join(f"#{t}" for t in tags)
    entities: dict[str, Any] = {}
    spots = [(text.find(f"#{t}"), t) for t in tags]
    if spots:
        entities["hashtags"] = [{"start": i, "end": i + len(t) + 1, "tag": t}
                                for i, t in spots if i >= 0]
    if urls:
        entities["urls"] = [{"start": 0, "end": 23, "url": f"https://t.co/{n}abc",
                             "expanded_url": u, "display_url": u.split("//")[-1][:20]}
                            for n, u in enumerate(urls)]
    data: dict[str, Any] = {
        "id": str(post_id), "text": text, "created_at": created_at, "author_id": author_id,
        "lang": lang, "edit_history_tweet_ids": [str(post_id)], "entities": entities,
        "public_metrics": metrics or {"retweet_count": 0, "reply_count": 0, "like_count": 1,
                                      "quote_count": 0, "bookmark_count": 0,
                                      "impression_count": 12},
    }
    if refs := [{"type": kind, "id": ref} for kind, ref in referenced]:
        data["referenced_tweets"] = refs
    return {"data": data,
            "includes": {"users": [{"id": author_id, "name": username.title(),
                                    "username": username}]}}


class FakeX(FakeAPI):
    """X API v2: filtered stream, its rules, and recent search over the same timeline."""

    def __init__(self, token: str = "fake-x-bearer-token", *, keepalive: float = 20.0) -> None:
        super().__init__()
        self.token = token
        self.keepalive = keepalive
        self.rules: dict[str, dict[str, str]] = {}
        #: every post ever published, delivered live or not
        self.timeline: list[dict[str, Any]] = []
        self.stream_connects = 0
        self._streams: list[asyncio.Queue[Any]] = []
        self._next_rule = 1_955_000_000_000_000_000
        #: bodies of the POSTs to the rules endpoint, in order
        self.rule_posts: list[bytes] = []
        self.bytes_written = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.get(X_STREAM, self._stream), web.get(X_RULES, self._get_rules),
                web.post(X_RULES, self._post_rules), web.get(X_SEARCH, self._search)]

    # -- state changes (thread-safe) ---------------------------------------------

    def add_rule(self, value: str, tag: str | None = None) -> str:
        return self.call(self._add_rule, value, tag)

    def post(self, *messages: dict[str, Any]) -> None:
        """Publish posts: into the timeline, and live to every open stream they match."""
        self.call(self._post, messages)

    def push_raw(self, data: bytes) -> None:
        """Write bytes as they are to every open stream (malformed lines, golden samples)."""
        self.call(self._push, data)

    def disconnect(self, *, then_publish: Iterable[dict[str, Any]] = (),
                   abort: bool = False) -> None:
        """End every open stream, then publish posts nobody is connected to receive."""
        self.call(self._disconnect, list(then_publish), abort)

    def stall(self) -> None:
        """Open streams go silent: no post, no keep-alive."""
        self.call(self._end_all, _STALL)

    @property
    def live_streams(self) -> int:
        return self.call(lambda: len(self._streams))

    def wait_for_connects(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stream_connects >= count and self.live_streams:
                return
            time.sleep(0.01)
        raise AssertionError(f"{self.stream_connects} stream connections, wanted {count}")

    def searches(self) -> list[dict[str, str]]:
        return [r.query for r in self.seen(X_SEARCH)]

    def _before_close(self) -> None:
        self._end_all(_END)

    # -- on the server's loop ---------------------------------------------------------

    def _add_rule(self, value: str, tag: str | None) -> str:
        self._next_rule += 1
        rule = {"id": str(self._next_rule), "value": value}
        if tag is not None:
            rule["tag"] = tag
        self.rules[rule["id"]] = rule
        return rule["id"]

    def _matching(self, message: dict[str, Any]) -> list[dict[str, str]]:
        tags = {h["tag"].lower() for h in message["data"].get("entities", {}).get("hashtags", ())}
        return [{"id": r["id"], "tag": r.get("tag", "")} for r in self.rules.values()
                if r["value"].lower().lstrip("#") in tags]

    def _post(self, messages: Iterable[dict[str, Any]]) -> None:
        for message in messages:
            self.timeline.append(message)
            if matching := self._matching(message):
                self._push(orjson.dumps({**message, "matching_rules": matching}) + b"\r\n")

    def _push(self, data: bytes) -> None:
        for queue in self._streams:
            queue.put_nowait(data)

    def _end_all(self, how: object) -> None:
        for queue in self._streams:
            queue.put_nowait(how)
        self._streams.clear()

    def _disconnect(self, publish: list[dict[str, Any]], abort: bool) -> None:
        self._end_all(_ABORT if abort else _END)
        self.timeline.extend(publish)

    def _authorized(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") == f"Bearer {self.token}":
            return None
        return _json({"title": "Unauthorized", "type": "about:blank", "status": 401,
                      "detail": "Unauthorized"}, 401)

    @staticmethod
    def _rate_headers() -> dict[str, str]:
        return {"x-rate-limit-limit": "50", "x-rate-limit-remaining": "49",
                "x-rate-limit-reset": str(int(time.time()) + 900)}

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._authorized(request)) is not None:
            return refused
        response = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8",
                                               **self._rate_headers()})
        response.enable_chunked_encoding()
        await response.prepare(request)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._streams.append(queue)
        self.stream_connects += 1
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self.keepalive)
                except TimeoutError:
                    item = b"\r\n"
                if item is _END:
                    break
                if item is _ABORT:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                while item is _STALL:  # silent until the server closes
                    await asyncio.sleep(3600)
                await response.write(item)
                self.bytes_written += len(item)
        except ConnectionError:
            return response
        finally:
            with contextlib.suppress(ValueError):
                self._streams.remove(queue)
        return response

    async def _get_rules(self, request: web.Request) -> web.Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        body: dict[str, Any] = {"meta": {"sent": _x_time(), "result_count": len(self.rules)}}
        if self.rules:
            body["data"] = list(self.rules.values())
        return _json(body, headers=self._rate_headers())

    async def _post_rules(self, request: web.Request) -> web.Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        raw = await request.read()
        self.rule_posts.append(raw)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not ({"add", "delete"} & set(body)):
            return _json({"title": "Invalid Request", "detail": "One or more parameters to your "
                          "request was invalid.", "type":
                          "https://api.twitter.com/2/problems/invalid-request"}, 400)
        if "delete" in body:
            ids = body["delete"].get("ids", [])
            deleted = [i for i in ids if self.rules.pop(i, None) is not None]
            return _json({"meta": {"sent": _x_time(), "summary": {
                "deleted": len(deleted), "not_deleted": len(ids) - len(deleted)}}})
        created, errors = [], []
        existing = {r["value"]: r["id"] for r in self.rules.values()}
        for rule in body["add"]:
            if rule["value"] in existing:
                errors.append({"value": rule["value"], "id": existing[rule["value"]],
                               "title": "DuplicateRule",
                               "type": "https://api.twitter.com/2/problems/duplicate-rules"})
                continue
            rule_id = self._add_rule(rule["value"], rule.get("tag"))
            created.append(self.rules[rule_id])
        answer: dict[str, Any] = {"meta": {"sent": _x_time(), "summary": {
            "created": len(created), "not_created": len(errors), "valid": len(created),
            "invalid": len(errors)}}}
        if created:
            answer["data"] = created
        if errors:
            answer["errors"] = errors
        return _json(answer, 201)

    async def _search(self, request: web.Request) -> web.Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        query = request.query
        size = int(query.get("max_results", "10"))
        if not 10 <= size <= 100:
            return _json({"errors": [{"parameters": {"max_results": [str(size)]},
                                      "message": f"The `max_results` query parameter value "
                                                 f"[{size}] is not between 10 and 100"}],
                          "title": "Invalid Request",
                          "detail": "One or more parameters to your request was invalid.",
                          "type": "https://api.twitter.com/2/problems/invalid-request"}, 400)
        wanted = set(re.findall(r"#(\w+)", query.get("query", "").lower()))
        since = int(query.get("since_id", "0"))
        until = int(query.get("until_id", str(10 ** 30)))
        found = sorted((m for m in self.timeline
                        if since < int(m["data"]["id"]) < until and wanted & {
                            h["tag"].lower() for h in
                            m["data"].get("entities", {}).get("hashtags", ())}),
                       key=lambda m: -int(m["data"]["id"]))
        offset = int(base64.urlsafe_b64decode(query["next_token"]).decode()) \
            if "next_token" in query else 0
        page = found[offset:offset + size]
        meta: dict[str, Any] = {"result_count": len(page)}
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [m["data"] for m in page]
            users = {u["id"]: u for m in page for u in m.get("includes", {}).get("users", ())}
            body["includes"] = {"users": list(users.values())}
            meta["newest_id"], meta["oldest_id"] = page[0]["data"]["id"], page[-1]["data"]["id"]
        if offset + size < len(found):
            meta["next_token"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
        return _json(body, headers=self._rate_headers())


# -- Reddit ----------------------------------------------------------------------------

R_TOKEN = "/api/v1/access_token"


def link(id36: str, title: str, selftext: str = "", *, subreddit: str = "ChatGPT",
         created: float = 1755079200.0, author: str = "alice", url: str | None = None,
         score: int = 1, num_comments: int = 0) -> dict[str, Any]:
    """A ``t3`` Listing child (a post), with the fields Reddit sends that we read."""
    slug = re.sub(r"\W+", "_", title.lower())[:40]
    permalink = f"/r/{subreddit}/comments/{id36}/{slug}/"
    return {"kind": "t3", "data": {
        "id": id36, "name": f"t3_{id36}", "title": title, "selftext": selftext,
        "author": author, "subreddit": subreddit, "subreddit_name_prefixed": f"r/{subreddit}",
        "created_utc": created, "permalink": permalink, "is_self": url is None,
        "url": url or f"https://www.reddit.com{permalink}", "score": score, "ups": score,
        "num_comments": num_comments, "upvote_ratio": 1.0, "over_18": False,
        "domain": f"self.{subreddit}" if url is None else url.split("/")[2]}}


def comment(id36: str, body: str, *, link_id: str, parent_id: str | None = None,
            subreddit: str = "ChatGPT", created: float = 1755079260.0,
            author: str = "bob", score: int = 1) -> dict[str, Any]:
    """A ``t1`` Listing child (a comment)."""
    post = link_id.removeprefix("t3_")
    return {"kind": "t1", "data": {
        "id": id36, "name": f"t1_{id36}", "body": body, "author": author,
        "subreddit": subreddit, "created_utc": created, "link_id": link_id,
        "parent_id": parent_id or link_id, "score": score, "ups": score,
        "permalink": f"/r/{subreddit}/comments/{post}/x/{id36}/"}}


class FakeReddit(FakeAPI):
    """Reddit's OAuth token endpoint and subreddit Listings, with its rate-limit headers."""

    def __init__(self, client_id: str = "fake-reddit-client-id",
                 client_secret: str = "fake-reddit-client-secret", *,
                 budget: int = 1000, window: float = 600.0) -> None:
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self.budget, self.window = budget, window
        self.tokens: list[str] = []
        self.things: dict[str, list[dict[str, Any]]] = {"new": [], "comments": []}
        self._window_start = time.monotonic()
        self._used = 0
        self.refused = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.post(R_TOKEN, self._token),
                web.get(r"/r/{subs}/{listing:new|comments}", self._listing)]

    # -- thread-safe state changes ---------------------------------------------------

    def add(self, *things: dict[str, Any]) -> None:
        """Publish posts (t3) and comments (t1); listings stay newest first."""
        self.call(self._add, things)

    def delete(self, fullname: str) -> None:
        self.call(self._delete, fullname)

    def expire_tokens(self) -> None:
        self.call(self.tokens.clear)

    def listing_requests(self) -> list[Seen]:
        return [r for r in list(self.requests) if r.path.startswith("/r/")]

    def _add(self, things: Iterable[dict[str, Any]]) -> None:
        for thing in things:
            listing = self.things["new" if thing["kind"] == "t3" else "comments"]
            listing.append(thing)
            listing.sort(key=lambda t: -int(t["data"]["id"], 36))

    def _delete(self, fullname: str) -> None:
        for listing in self.things.values():
            listing[:] = [t for t in listing if t["data"]["name"] != fullname]

    # -- handlers -----------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(
            f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return _json({"message": "Unauthorized", "error": 401}, 401)
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"})
        token = f"fake-reddit-access-token-{len(self.tokens) + 1}"
        self.tokens.append(token)
        return _json({"access_token": token, "token_type": "bearer", "expires_in": 86400,
                      "scope": "*"})

    def _rate(self) -> dict[str, str]:
        now = time.monotonic()
        if now - self._window_start >= self.window:
            self._window_start, self._used = now, 0
        self._used += 1
        reset = max(0, int(self._window_start + self.window - now + 0.999))
        return {"X-Ratelimit-Used": str(self._used),
                "X-Ratelimit-Remaining": f"{max(0, self.budget - self._used):.1f}",
                "X-Ratelimit-Reset": str(reset)}

    async def _listing(self, request: web.Request) -> web.Response:
        headers = self._rate()
        agent = request.headers.get("User-Agent", "")
        if not agent or agent.startswith(("Python/", "python-requests")) or "aiohttp" in agent:
            return _json({"message": "Too Many Requests", "error": 429}, 429, headers)
        if self._used > self.budget:
            self.refused += 1
            return _json({"message": "Too Many Requests", "error": 429}, 429, headers)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return _json({"message": "Unauthorized", "error": 401}, 401, headers)
        subs = {s.lower() for s in request.match_info["subs"].split("+")}
        kind = "t3" if request.match_info["listing"] == "new" else "t1"
        things = [t for t in self.things[request.match_info["listing"]]
                  if t["data"]["subreddit"].lower() in subs]
        limit = min(100, int(request.query.get("limit", "25")))
        names = [t["data"]["name"] for t in things]
        before, after = request.query.get("before"), request.query.get("after")
        if before is not None:
            end = names.index(before) if before in names else 0  # unknown anchor: nothing
            start = max(0, end - limit)
        elif after is not None:
            start = names.index(after) + 1 if after in names else len(names)
            end = start + limit
        else:
            start, end = 0, limit
        page = things[start:end]
        return _json({"kind": "Listing", "data": {
            "after": page[-1]["data"]["name"] if page and end < len(things) else None,
            "before": page[0]["data"]["name"] if page and start > 0 else None,
            "dist": len(page), "modhash": None, "geo_filter": "",
            "children": [t for t in page if t["kind"] == kind]}}, headers=headers)


# -- feeds ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Feed:
    body: bytes
    etag: str | None
    modified: datetime | None
    content_type: str


class FakeFeeds(FakeAPI):
    """Feeds by path, with ETag / Last-Modified validators and 304 answers."""

    def __init__(self) -> None:
        super().__init__()
        self.feeds: dict[str, _Feed] = {}
        #: (path, status) of every answer, in order
        self.answers: list[tuple[str, int]] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/{path:.+}", self._feed)]

    def publish(self, path: str, body: bytes, *, etag: bool = True,
                last_modified: bool = True, content_type: str = "application/rss+xml") -> None:
        """Serve ``body`` at ``path``; a new body gets new validators."""
        def put() -> None:
            stamp = datetime.now(UTC).replace(microsecond=0)
            old = self.feeds.get(path)
            if old is not None and old.modified is not None:  # HTTP dates have 1 s resolution
                stamp = max(stamp, old.modified + timedelta(seconds=1))
            self.feeds[path] = _Feed(
                body, f'"{hashlib.sha1(body).hexdigest()[:16]}"' if etag else None,
                stamp if last_modified else None, content_type)

        self.call(put)

    def served(self, path: str) -> list[Seen]:
        return self.seen(path)

    async def _feed(self, request: web.Request) -> web.Response:
        response = self._answer(request)
        self.answers.append((request.path, response.status))
        return response

    def statuses(self, path: str) -> list[int]:
        return [status for where, status in list(self.answers) if where == path]

    def _answer(self, request: web.Request) -> web.Response:
        feed = self.feeds.get(request.path)
        if feed is None:
            return web.Response(status=404, text="no such feed")
        headers = {}
        if feed.etag:
            headers["ETag"] = feed.etag
        if feed.modified:
            headers["Last-Modified"] = format_datetime(feed.modified, usegmt=True)
        match = request.headers.get("If-None-Match")
        since = request.headers.get("If-Modified-Since")
        if match is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            if feed.etag and feed.etag in [t.strip() for t in match.split(",")]:
                return web.Response(status=304, headers=headers)
        elif since is not None and feed.modified is not None:
            with contextlib.suppress(TypeError, ValueError):
                if feed.modified <= parsedate_to_datetime(since):
                    return web.Response(status=304, headers=headers)
        return web.Response(body=feed.body, headers=headers, content_type=feed.content_type)


# -- driving sources ----------------------------------------------------------------------


@dataclass
class Hooks(HookLog):
    """``HookLog`` that takes any error kind (the X, Reddit and feed sources' tests)."""

    check_kinds: bool = False


class Pump:
    """Reads a source in a task as the runtime does; checkpoints commit at once.

    ``async with Pump(source) as pump: await pump.until(5)``.
    """

    def __init__(self, source: Source, cursors: MemoryCursorStore | None = None) -> None:
        self.source = source
        self.cursors = cursors if cursors is not None else MemoryCursorStore()
        self.posts: list[Post] = []
        self.rejected: list[Rejected] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async for item in self.source.stream():
            if isinstance(item, Rejected):
                self.rejected.append(item)
            else:
                self.posts.append(item)
                if item.checkpoint is not None:
                    self.cursors.commit({item.checkpoint[0]: item.checkpoint[1]})
            self._changed.set()

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def until(self, posts: int, *, rejected: int = 0, timeout: float = 10.0) -> list[Post]:
        """Wait until at least this many posts (and rejections) arrived; return the posts."""
        async with asyncio.timeout(timeout):
            while len(self.posts) < posts or len(self.rejected) < rejected:
                assert self._task is not None
                if self._task.done():
                    self._task.result()
                    raise AssertionError("the source ended")
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.1)
        return list(self.posts)

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.posts]
