"""Local aiohttp servers speaking the platforms' documented wire formats, for source tests.

    async with FakeJetstream() as jetstream:        # ws://127.0.0.1:PORT/subscribe
        jetstream.publish(jetstream_post("did:plc:a", "3k1", "hi #keep4o", time_us=...))
        await jetstream.disconnect()                # a server-side close

    async with FakeMastodon("a.example", token="t") as mastodon:   # http://127.0.0.1:PORT
        mastodon.add("keep4o", mastodon.status("alice", "<p>hi</p>"))
        mastodon.fail_next(429, retry_after=1)

Both servers are faithful where the sources depend on them and simple
elsewhere:

* **Jetstream** (github.com/bluesky-social/jetstream): one JSON text frame
  per event; ``wantedCollections`` filters commits (identity and account
  events always go out); ``cursor`` replays every event with ``time_us >=
  cursor``, no cursor tails live (only events published after the
  connection); ``maxMessageSizeBytes`` skips larger events. Frames are sent
  one ``await`` at a time, so a client that stops reading stalls the sender
  (``JetstreamConnection.sent`` shows how far it got).
* **Mastodon** (docs.joinmastodon.org): ``GET /api/v1/timelines/tag/:tag``
  with ``limit`` (max 40), ``min_id``/``max_id``/``since_id``, newest first,
  ``Link`` header (``rel="next"``: ``max_id`` = oldest, ``rel="prev"``:
  ``min_id`` = newest); ``X-RateLimit-Limit/Remaining/Reset`` on every answer
  and a 429 once the window's budget is spent; ``GET /api/v2/instance``;
  ``GET /api/v1/streaming/hashtag?tag=`` as server-sent events (``:)`` on
  connect, ``event: update`` + ``data: {status}``, ``:thump`` heartbeats),
  with a bearer token required when the server has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

from aiohttp import WSMsgType, web

from monitor.sources.base import ERROR_KINDS, SourceContext

__all__ = ["FakeJetstream", "FakeMastodon", "HookLog", "JetstreamConnection", "SseConnection",
           "jetstream_post", "jetstream_time", "take"]

T = TypeVar("T")

HOST = "127.0.0.1"
#: 2025-08-13T12:00:00Z in microseconds: the time base of the Jetstream events built here.
JETSTREAM_T0 = 1_755_086_400_000_000


def jetstream_time(offset_s: float) -> int:
    return JETSTREAM_T0 + int(offset_s * 1e6)


class _Server:
    """An aiohttp app on a free loopback port; ``async with`` starts and stops it."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        #: notified whenever what the server would send changes
        self._changed = asyncio.Condition()

    async def start(self) -> Self:
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _track(self) -> None:
        """Remember the running handler so stop() can end it (long-lived streams)."""
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    def _notify(self) -> None:
        """Wake the handlers waiting on ``_changed`` (callable from sync code on the loop)."""
        async def wake() -> None:
            async with self._changed:
                self._changed.notify_all()
        task = asyncio.get_running_loop().create_task(wake())
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)


# -- Jetstream ---------------------------------------------------------------------------


def jetstream_post(did: str, rkey: str, text: str, *, time_us: int,
                   created_at: str = "2025-08-13T12:00:00.000Z", langs: tuple[str, ...] = ("en",),
                   tags: tuple[str, ...] = (), links: tuple[str, ...] = (),
                   extra: dict[str, Any] | None = None,
                   operation: str = "create") -> dict[str, Any]:
    """A Jetstream commit event creating an ``app.bsky.feed.post``, as Bluesky clients write it.

    Every ``#tag`` in the text gets a ``app.bsky.richtext.facet#tag`` facet and
    every URL in ``links`` found in the text a ``#link`` facet, with UTF-8 byte
    offsets; ``tags`` go to the record's own ``tags`` (hidden hashtags).
    """
    encoded = text.encode()
    facets = []
    for word in text.split():
        if word.startswith("#") and len(word) > 1:
            start = encoded.find(word.encode())
            facets.append({"$type": "app.bsky.richtext.facet",
                           "index": {"byteStart": start, "byteEnd": start + len(word.encode())},
                           "features": [{"$type": "app.bsky.richtext.facet#tag",
                                         "tag": word[1:]}]})
    for link in links:
        start = encoded.find(link.encode())
        if start >= 0:
            facets.append({"$type": "app.bsky.richtext.facet",
                           "index": {"byteStart": start, "byteEnd": start + len(link.encode())},
                           "features": [{"$type": "app.bsky.richtext.facet#link",
                                         "uri": link}]})
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": text,
                              "createdAt": created_at, "langs": list(langs)}
    if facets:
        record["facets"] = facets
    if tags:
        record["tags"] = list(tags)
    record.update(extra or {})
    commit: dict[str, Any] = {"rev": f"3l{rkey[-8:]}rev", "operation": operation,
                              "collection": "app.bsky.feed.post", "rkey": rkey}
    if operation != "delete":
        commit["record"] = record
        commit["cid"] = f"bafyreib{rkey.lower():a<51}"[:59]
    return {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}


@dataclass
class JetstreamConnection:
    """One subscriber as the server saw it."""

    query: dict[str, list[str]]
    request: web.Request
    ws: web.WebSocketResponse
    sent: int = 0


class FakeJetstream(_Server):
    """A Jetstream instance; see the module docstring."""

    def __init__(self, *, close_after: int | None = None) -> None:
        super().__init__()
        #: (time_us, collection or None, frame text), in publication order
        self.events: list[tuple[int, str | None, str]] = []
        self.connections: list[JetstreamConnection] = []
        #: close each connection after sending this many frames (a flaky instance)
        self.close_after = close_after
        #: handshake answers to give instead of upgrading: (status, headers)
        self.refusals: list[tuple[int, dict[str, str]]] = []
        #: time.monotonic() of every request to /subscribe, refused ones included
        self.attempts: list[float] = []
        self.app.router.add_get("/subscribe", self._subscribe)

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}/subscribe"

    @property
    def open_connections(self) -> list[JetstreamConnection]:
        return [c for c in self.connections if not c.ws.closed]

    def publish(self, *events: dict[str, Any]) -> None:
        for event in events:
            commit = event.get("commit")
            collection = commit.get("collection") if isinstance(commit, dict) else None
            self.events.append((event["time_us"], collection, json.dumps(event)))
        self._notify()

    def publish_raw(self, frame: str, *, time_us: int) -> None:
        """A frame as given (malformed ones included), placed at ``time_us`` for cursors."""
        self.events.append((time_us, "app.bsky.feed.post", frame))
        self._notify()

    async def wait_for_connections(self, count: int, timeout: float = 10.0) -> JetstreamConnection:
        """Until ``count`` connections were made in all; the latest one."""
        async with asyncio.timeout(timeout):
            while len(self.connections) < count:
                await asyncio.sleep(0.01)
        return self.connections[-1]

    async def disconnect(self, *, abort: bool = False) -> None:
        """End every open connection: a close frame (1001), or an abrupt TCP reset."""
        for conn in self.open_connections:
            if abort and conn.request.transport is not None:
                conn.request.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code=1001, message=b"going away"), 2)
        self._notify()

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        self._track()
        self.attempts.append(time.monotonic())
        if self.refusals:
            status, headers = self.refusals.pop(0)
            return web.json_response({"error": "refused"}, status=status, headers=headers)
        wanted = set(request.query.getall("wantedCollections", []))
        cursor = request.query.get("cursor")
        max_size = int(request.query.get("maxMessageSizeBytes") or 0)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = JetstreamConnection({k: request.query.getall(k) for k in request.query},
                                   request, ws)
        self.connections.append(conn)
        start = int(cursor) if cursor else None
        index = (len(self.events) if start is None
                 else next((i for i, e in enumerate(self.events) if e[0] >= start),
                           len(self.events)))
        reader = asyncio.create_task(self._read_until_closed(ws))
        try:
            while not ws.closed:
                async with self._changed:
                    await self._changed.wait_for(
                        lambda i=index: i < len(self.events) or ws.closed)
                while index < len(self.events) and not ws.closed:
                    _time_us, collection, frame = self.events[index]
                    index += 1
                    if wanted and collection is not None and collection not in wanted:
                        continue
                    if max_size and len(frame.encode()) > max_size:
                        continue
                    await ws.send_str(frame)
                    conn.sent += 1
                    if self.close_after is not None and conn.sent >= self.close_after:
                        await ws.close(code=1001, message=b"going away")
        except (ConnectionError, RuntimeError):
            pass  # the client went away mid-send
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        return ws

    async def _read_until_closed(self, ws: web.WebSocketResponse) -> None:
        """Answer pings and notice the client's close (Jetstream ignores client frames)."""
        with contextlib.suppress(Exception):
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        async with self._changed:
            self._changed.notify_all()


# -- Mastodon ----------------------------------------------------------------------------


@dataclass
class SseConnection:
    """One streaming client."""

    tag: str
    request: web.Request
    response: web.StreamResponse
    authorization: str | None


@dataclass
class _RateWindow:
    limit: int
    window: float
    remaining: int = 0
    reset_at: float = 0.0  # wall clock

    def take(self) -> bool:
        now = time.time()
        if now >= self.reset_at:
            self.remaining, self.reset_at = self.limit, now + self.window
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def headers(self) -> dict[str, str]:
        reset = datetime.fromtimestamp(self.reset_at, UTC)
        return {"X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(0, self.remaining)),
                "X-RateLimit-Reset": reset.isoformat(timespec="milliseconds").replace(
                    "+00:00", "Z")}


@dataclass
class MastodonRequest:
    path: str
    query: dict[str, str]
    at: float  # time.monotonic()
    status: int
    authorization: str | None


class FakeMastodon(_Server):
    """A Mastodon instance; see the module docstring."""

    def __init__(self, domain: str = "mastodon.example", *, token: str | None = None,
                 rate_limit: int = 300, rate_window: float = 300.0, thump: float = 15.0) -> None:
        super().__init__()
        self.domain, self.token, self.thump = domain, token, thump
        #: tag -> statuses, oldest first
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[MastodonRequest] = []
        self.streams: list[SseConnection] = []
        #: answers to give to the next timeline requests instead: (status, headers)
        self.failures: list[tuple[int, dict[str, str]]] = []
        # local ids differ between instances, as they do between real ones
        self._ids = itertools.count(113_000_000_000_000_001 + sum(domain.encode()) * 10**9)
        self._rate = _RateWindow(rate_limit, rate_window)
        self._raw: list[tuple[str, bytes]] = []
        self.app.router.add_get("/api/v1/timelines/tag/{tag}", self._timeline)
        self.app.router.add_get("/api/v2/instance", self._instance)
        self.app.router.add_get("/api/v1/streaming/hashtag", self._stream)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def timeline_requests(self) -> list[MastodonRequest]:
        return [r for r in self.requests if r.path.startswith("/api/v1/timelines/tag/")]

    # -- content ---------------------------------------------------------------------

    def status(self, username: str, content: str, *, tags: tuple[str, ...] = ("keep4o",),
               created_at: str = "2025-08-13T12:00:00.000Z", language: str | None = "en",
               origin: str | None = None, **fields: Any) -> dict[str, Any]:
        """A Status entity as this instance's API shows it; ``origin`` is the author's
        home domain when the account is remote (its ``acct`` then carries the domain)."""
        home = origin or self.domain
        local_id = str(next(self._ids))
        remote_id = fields.pop("remote_id", local_id)
        status: dict[str, Any] = {
            "id": local_id,
            "created_at": created_at,
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": "public",
            "language": language,
            "uri": f"https://{home}/users/{username}/statuses/{remote_id}",
            "url": f"https://{home}/@{username}/{remote_id}",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": None,
            "content": content,
            "reblog": None,
            "application": None,
            "account": {
                "id": str(100_000 + sum(map(ord, username + home))),
                "username": username,
                "acct": username if home == self.domain else f"{username}@{home}",
                "display_name": username.title(),
                "locked": False,
                "bot": False,
                "created_at": "2023-01-01T00:00:00.000Z",
                "note": "",
                "url": f"https://{home}/@{username}",
                "avatar": f"https://{home}/avatars/original/missing.png",
                "followers_count": 10,
                "following_count": 10,
                "statuses_count": 100,
                "emojis": [],
                "fields": [],
            },
            "media_attachments": [],
            "mentions": [],
            "tags": [{"name": t, "url": f"https://{self.domain}/tags/{t}"} for t in tags],
            "emojis": [],
            "card": None,
            "poll": None,
        }
        status.update(fields)
        return status

    def federated_copy(self, status: dict[str, Any], origin: str) -> dict[str, Any]:
        """The same status as another instance shows it: a local id of its own,
        the same canonical ``uri``, the author's ``acct`` with the domain."""
        copy = json.loads(json.dumps(status))
        copy["id"] = str(next(self._ids))
        acct = copy["account"]["acct"]
        if "@" not in acct:
            copy["account"]["acct"] = f"{acct}@{origin}"
        copy["tags"] = [{"name": t["name"], "url": f"https://{self.domain}/tags/{t['name']}"}
                        for t in copy["tags"]]
        return copy

    def add(self, tag: str, *statuses: dict[str, Any]) -> None:
        """Statuses posted under ``tag``: on the timeline and to its streams."""
        timeline = self.statuses.setdefault(tag.lower(), [])
        timeline.extend(statuses)
        timeline.sort(key=lambda s: (len(s["id"]), s["id"]))
        self._notify()

    def stream_raw(self, tag: str, data: str) -> None:
        """An ``event: update`` with this data line for the streams of ``tag`` (malformed too)."""
        self.stream_bytes(tag, f"event: update\ndata: {data}\n\n".encode())

    def stream_bytes(self, tag: str, data: bytes) -> None:
        """Bytes written as they are to the streams of ``tag`` (a recorded transcript)."""
        self._raw.append((tag.lower(), data))
        self._notify()

    def fail_next(self, status: int, *, retry_after: float | None = None, times: int = 1) -> None:
        headers = {} if retry_after is None else {"Retry-After": str(int(retry_after))}
        self.failures.extend([(status, headers)] * times)

    async def drop_streams(self) -> None:
        """Cut every open stream (a restart of the streaming server)."""
        for conn in self.streams:
            if conn.request.transport is not None:
                conn.request.transport.close()
        self.streams.clear()
        self._notify()

    # -- handlers --------------------------------------------------------------------

    def _log(self, request: web.Request, status: int) -> None:
        self.requests.append(MastodonRequest(request.path, dict(request.query), time.monotonic(),
                                             status, request.headers.get("Authorization")))

    def _authorized(self, request: web.Request) -> bool:
        return self.token is None or request.headers.get("Authorization") == \
            f"Bearer {self.token}"

    async def _instance(self, request: web.Request) -> web.Response:
        self._log(request, 200)
        return web.json_response({
            "domain": self.domain, "title": self.domain, "version": "4.3.0",
            "configuration": {"urls": {"streaming": f"ws://{HOST}:{self.port}"}},
        })

    async def _timeline(self, request: web.Request) -> web.Response:
        tag = request.match_info["tag"].lower()
        if self.failures:
            status, headers = self.failures.pop(0)
            self._log(request, status)
            return web.json_response({"error": "Too many requests" if status == 429
                                      else "Service unavailable"}, status=status,
                                     headers={**self._rate.headers(), **headers})
        if not self._rate.take():
            self._log(request, 429)
            return web.json_response({"error": "Too many requests"}, status=429,
                                     headers=self._rate.headers())
        self._log(request, 200)
        query = request.query
        limit = min(40, max(1, int(query.get("limit", "20"))))
        key = lambda s: (len(s["id"]), s["id"])  # noqa: E731
        items = self.statuses.get(tag, [])
        if (max_id := query.get("max_id")) is not None:
            items = [s for s in items if key(s) < (len(max_id), max_id)]
        if (since_id := query.get("since_id")) is not None:
            items = [s for s in items if key(s) > (len(since_id), since_id)]
        if (min_id := query.get("min_id")) is not None:
            items = [s for s in items if key(s) > (len(min_id), min_id)][:limit]
        else:
            items = items[-limit:]
        page = list(reversed(items))  # newest first, always
        headers = self._rate.headers()
        if page:
            base = f"{self.url}/api/v1/timelines/tag/{tag}"
            headers["Link"] = (f'<{base}?max_id={page[-1]["id"]}>; rel="next", '
                               f'<{base}?min_id={page[0]["id"]}>; rel="prev"')
        return web.json_response(page, headers=headers)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self._track()
        tag = request.query.get("tag", "").lower()
        if not self._authorized(request) or (self.token and "Authorization" not in
                                             request.headers):
            self._log(request, 401)
            return web.json_response({"error": "Error processing request: Missing access token"},
                                     status=401)
        self._log(request, 200)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store"})
        await response.prepare(request)
        conn = SseConnection(tag, request, response, request.headers.get("Authorization"))
        self.streams.append(conn)
        seen, raw_seen = len(self.statuses.get(tag, [])), len(self._raw)
        try:
            await response.write(b":)\n")
            while conn in self.streams:
                async with self._changed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), self.thump)
                timeline = self.statuses.get(tag, [])
                fresh = timeline[seen:]
                seen = len(timeline)
                raw = [d for t, d in self._raw[raw_seen:] if t == tag]
                raw_seen = len(self._raw)
                if not fresh and not raw:
                    await response.write(b":thump\n")
                for status in fresh:
                    await response.write(b"event: update\ndata: " + json.dumps(status).encode()
                                         + b"\n\n")
                for data in raw:
                    await response.write(data)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            with contextlib.suppress(ValueError):
                self.streams.remove(conn)
        return response



# -- driving a source --------------------------------------------------------------------


@dataclass
class HookLog:
    """What a source reported through its SourceContext hooks."""

    ups: list[bool] = field(default_factory=list)
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    #: every error kind must be one of ERROR_KINDS
    check_kinds: bool = True

    def context(self, **fields: Any) -> SourceContext:
        def up(_name: str, value: bool) -> None:
            self.ups.append(value)

        def reconnected(_name: str) -> None:
            self.reconnects += 1

        def error(_name: str, kind: str) -> None:
            assert not self.check_kinds or kind in ERROR_KINDS, kind
            self.errors.append(kind)

        return SourceContext(up=up, reconnected=reconnected, error=error, **fields)


async def take(stream: AsyncIterator[T], count: int, *, timeout: float = 10.0) -> list[T]:
    """The next ``count`` items of a source's stream, failing after ``timeout`` seconds."""
    items: list[T] = []
    async with asyncio.timeout(timeout):
        while len(items) < count:
            items.append(await anext(stream))
    return items
