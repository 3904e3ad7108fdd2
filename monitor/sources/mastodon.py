"""``mastodon:https://INSTANCE[,https://OTHER]``: the campaign hashtags on Mastodon instances.

For every instance and every campaign hashtag the source follows the
public hashtag timeline:

* **polling** (no token): ``GET /api/v1/timelines/tag/:tag?min_id=ID&limit=40``
  pages forward (Mastodon answers the 40 statuses right after ``min_id``,
  newest first, and names the next page in the ``Link`` header's
  ``rel="prev"``) until it is caught up, then waits ``poll_interval``;
* **streaming** (with a token): ``GET /api/v1/streaming/hashtag?tag=TAG``,
  server-sent events (``event: update`` + ``data: {status}``; ``:thump``
  heartbeats every 15 s). After every (re)connect the gap since the last
  status is filled from the REST timeline before the stream is read. A
  token the instance refuses sends that instance back to polling.

Requests to one instance stay within its rate limit (300 requests per 5
minutes by default): they are spaced ``window / limit`` apart, and when
``X-RateLimit-Remaining`` runs low the next one waits for
``X-RateLimit-Reset``. Errors back off exponentially with jitter; a 429 or
503 waits at least its ``Retry-After`` (or the reset time).

A status becomes a Post with ``id = "mastodon:" + status["uri"]``: the
canonical URI, the same on every instance, so a status federated to two
followed instances is archived once (the processor drops the second copy).
``content`` HTML becomes text; ``author`` is the full handle
(``acct``, with the instance's domain added for local accounts);
``reply_to`` is the API URL of the parent (Mastodon only gives its
instance-local id). The cursor, per instance and hashtag, is the ``min_id``
of the last durable status.

The token comes from ``MONITOR_MASTODON_TOKEN_<HOST>`` (the host upper-cased,
non-alphanumerics as ``_``: ``MONITOR_MASTODON_TOKEN_MASTODON_SOCIAL``) or
else ``MONITOR_MASTODON_TOKEN``; it is sent as a bearer header, never in a
URL, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
from yarl import URL

from monitor.codec import MAX_RECORD_BYTES, DecodeError, format_time, post_from_mapping
from monitor.model import Post
from monitor.sources import SourceError
from monitor.sources.backoff import Backoff, parse_retry_after
from monitor.sources.base import Rejected, SourceContext
from monitor.sources.html import parse_html
from monitor.sources.http import SourceFailure, read_body, status_kind
from monitor.sources.names import collector as collector_name
from monitor.sources.names import user_agent
from monitor.textutil import extract_hashtags

__all__ = ["ENV_TOKEN", "MastodonSettings", "MastodonSource", "RateBudget", "status_to_post",
           "token_variable"]

log = logging.getLogger(__name__)

ENV_TOKEN = "MONITOR_MASTODON_TOKEN"
USER_AGENT = user_agent("+mastodon hashtag timeline")
TIMELINE_PATH = "/api/v1/timelines/tag/"
STREAM_PATH = "/api/v1/streaming/hashtag"
INSTANCE_PATH = "/api/v2/instance"
#: Largest REST response read (40 statuses are usually well under 1 MiB).
_MAX_BODY = 16 * 1024 * 1024
_ENV_SAFE = re.compile(r"[^A-Z0-9]")


@dataclass(frozen=True, slots=True)
class MastodonSettings:
    """Timings and limits of the Mastodon source (tests shrink them)."""

    #: seconds between two polls of one hashtag once caught up (jittered by +-20 %)
    poll_interval: float = 60.0
    #: statuses per page (Mastodon's maximum is 40)
    page_size: int = 40
    #: the rate limit assumed until an instance's headers say otherwise
    window_requests: int = 300
    window_seconds: float = 300.0
    #: requests left in a window that are never used (other clients of the same IP)
    reserve: int = 5
    request_timeout: float = 30.0
    #: no byte on a stream for this long (heartbeats come every 15 s): reconnect
    stall: float = 60.0
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    #: posts waiting between the instance tasks and the consumer
    buffer: int = 256


def token_variable(host: str) -> str:
    """``MONITOR_MASTODON_TOKEN_<HOST>``: where a token for one instance is read from."""
    return f"{ENV_TOKEN}_{_ENV_SAFE.sub('_', host.upper())}"


def _id_key(status_id: str) -> tuple[int, str]:
    """Order of status ids: numeric strings (Mastodon) and ULIDs (GoToSocial) alike."""
    return (len(status_id), status_id)


def _newer(status_id: str, than: str | None) -> bool:
    return than is None or _id_key(status_id) > _id_key(than)


class RateBudget:
    """Keeps the requests to one instance within ``limit`` per ``window`` seconds.

    Requests are spaced ``window / limit`` apart; when the instance reports
    (``X-RateLimit-Remaining``) that at most ``reserve`` are left, the next
    one waits until ``X-RateLimit-Reset``.
    """

    def __init__(self, limit: int = 300, window: float = 300.0, reserve: int = 5) -> None:
        self.limit, self.window, self.reserve = limit, window, reserve
        self.remaining: int | None = None
        self.reset_at: float | None = None  # on the monotonic clock
        self._next_at = 0.0
        self._lock = asyncio.Lock()

    def wait_time(self, now: float) -> float:
        wait = self._next_at - now
        if (self.remaining is not None and self.remaining <= self.reserve
                and self.reset_at is not None):
            wait = max(wait, self.reset_at - now)
        return max(0.0, wait)

    async def acquire(self) -> None:
        """Wait for this instance's next free slot (requests go one at a time)."""
        async with self._lock:
            while (wait := self.wait_time(time.monotonic())) > 0:
                await asyncio.sleep(wait)
            now = time.monotonic()
            self._next_at = now + self.window / max(1, self.limit)
            if self.reset_at is not None and now >= self.reset_at:
                self.remaining, self.reset_at = None, None
            elif self.remaining is not None:
                self.remaining -= 1

    def update(self, headers: Mapping[str, str]) -> None:
        """Read ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` from a response."""
        limit, remaining = _int(headers.get("X-RateLimit-Limit")), _int(
            headers.get("X-RateLimit-Remaining"))
        if limit:
            self.limit = limit
        if remaining is not None:
            self.remaining = remaining
        if (seconds := _until(headers.get("X-RateLimit-Reset"))) is not None:
            self.reset_at = time.monotonic() + min(seconds, 2 * self.window)

    def reset_in(self) -> float | None:
        """Seconds until the instance's window resets, if it said so."""
        return None if self.reset_at is None else max(0.0, self.reset_at - time.monotonic())


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _until(value: str | None) -> float | None:
    """Seconds from now to an ISO 8601 (or epoch seconds) reset time."""
    if not value:
        return None
    try:
        when = (datetime.fromtimestamp(float(value), UTC) if value.replace(".", "", 1).isdigit()
                else datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _full_handle(account: Mapping[str, Any], host: str) -> str | None:
    acct = account.get("acct")
    if not isinstance(acct, str) or not acct:
        return None
    if "@" in acct:
        return acct
    url = account.get("url")
    domain = urlsplit(url).hostname if isinstance(url, str) else None
    return f"{acct}@{domain or host}"


def _text(status: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    content = status.get("content")
    if not isinstance(content, str):
        raise DecodeError("bad_type:text", "content must be an HTML string")
    parsed = parse_html(content)
    warning = status.get("spoiler_text")
    text = f"{warning.strip()}\n\n{parsed.text}" if isinstance(warning, str) and \
        warning.strip() else parsed.text
    return text.strip(), parsed.links


def status_to_post(status: Mapping[str, Any], *, instance: str, source_url: str,
                   retrieved_at: datetime,
                   collector: str = collector_name("mastodon")) -> Post:
    """A Mastodon Status entity as a Post; DecodeError when it is malformed."""
    uri = status.get("uri")
    if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
        raise DecodeError("missing_field:id", "a status needs its canonical uri")
    host = urlsplit(instance).hostname or ""
    reblog = status.get("reblog")
    shown = reblog if isinstance(reblog, dict) else status
    text, links = _text(shown)
    account = status.get("account")  # for a boost, whoever boosted
    tags = shown.get("tags")
    hashtags = [t.get("name") for t in tags if isinstance(t, dict)] if isinstance(tags, list) \
        else []
    card = shown.get("card")
    if isinstance(card, dict) and isinstance(card.get("url"), str):
        links = (*links, card["url"])
    quote_obj = shown.get("quote")
    quoted = quote_obj.get("quoted_status") if isinstance(quote_obj, dict) else None
    parent = shown.get("in_reply_to_id")
    counts = {"replies": shown.get("replies_count"), "reblogs": shown.get("reblogs_count"),
              "favourites": shown.get("favourites_count")}
    engagement = {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}
    return post_from_mapping({
        "id": f"mastodon:{uri}",
        "source": "mastodon",
        "text": text,
        "created_at": status.get("created_at"),
        "author": _full_handle(account, host) if isinstance(account, dict) else None,
        "lang": shown.get("language") or None,
        "url": status.get("url") or shown.get("url") or uri,
        "hashtags": list(dict.fromkeys(
            [h.lower() for h in hashtags if isinstance(h, str) and h] + list(
                extract_hashtags(text)))),
        "links": list(dict.fromkeys(links)),
        "reply_to": f"{instance}/api/v1/statuses/{parent}" if isinstance(parent, str | int)
        and parent else None,
        "quote_of": f"mastodon:{quoted['uri']}" if isinstance(quoted, dict)
        and isinstance(quoted.get("uri"), str) else None,
        "repost_of": f"mastodon:{reblog['uri']}" if isinstance(reblog, dict)
        and isinstance(reblog.get("uri"), str) else None,
        "engagement": engagement or None,
        "collector": collector,
        "source_url": source_url,
        "retrieved_at": format_time(retrieved_at),
        "raw": dict(status),
    }, default_source="mastodon", keep_raw=True)


@dataclass(slots=True)
class _Instance:
    base: str
    host: str
    token: str | None = field(default=None, repr=False)
    budget: RateBudget = field(default_factory=RateBudget)
    #: where the streaming API lives (``/api/v2/instance``), once looked up
    streaming: str | None = None

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass(slots=True)
class _Follow:
    """One instance and one hashtag: its cursor key and the newest status id passed on."""

    instance: _Instance
    tag: str
    key: str
    min_id: str | None


class _SseReader:
    """Server-sent events from a response body, one ``(event, data)`` at a time."""

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self.content = content

    async def next(self) -> tuple[str, str] | None:
        """The next event, or None when the stream ends; comments (``:thump``) are skipped."""
        event, data, size = "message", [], 0
        while True:
            try:
                raw = await self.content.readline()
            except ValueError:  # a line longer than the read buffer
                raise SourceFailure("malformed", "an event line is too long") from None
            if not raw:
                return None
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                if data:
                    return event, "\n".join(data)
                event = "message"
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                size += len(value)
                if size > MAX_RECORD_BYTES:
                    raise SourceFailure("malformed", "an event is too large")
                data.append(value)


class MastodonSource:
    """Hashtag timelines of one or more instances; see the module docstring."""

    name = "mastodon"
    finite = False

    def __init__(self, instances: Iterable[str], *, context: SourceContext | None = None,
                 settings: MastodonSettings | None = None,
                 hashtags: Iterable[str] | None = None) -> None:
        self.context = context or SourceContext()
        self.settings = settings or MastodonSettings()
        tags = self.context.hashtags if hashtags is None else hashtags
        self.tags = tuple(sorted({t.lstrip("#").lower() for t in tags if t.strip("#")}))
        if not self.tags:
            raise SourceError("mastodon: the ruleset names no campaign hashtags to follow; add "
                              "campaign.hashtags to campaign.yaml")
        environ = self.context.environ
        self.instances: list[_Instance] = []
        for base in dict.fromkeys(instances):
            host = urlsplit(base).hostname or ""
            token = environ.get(token_variable(host)) or environ.get(ENV_TOKEN) or None
            self.instances.append(_Instance(base, host, token))
        if not self.instances:
            raise SourceError("mastodon: name an instance, e.g. mastodon:https://mastodon.social")
        self.collector = collector_name("mastodon")
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_uri(cls, uri: str, context: SourceContext | None = None) -> MastodonSource:
        """``mastodon:https://INSTANCE[,https://OTHER...]``."""
        targets = [t.strip() for t in uri.split(":", 1)[1].split(",")] if ":" in uri else []
        bases = []
        for target in filter(None, targets):
            try:
                parts = urlsplit(target)
                port = parts.port
            except ValueError:
                raise SourceError(f"{uri}: the port of {target!r} must be a number") from None
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise SourceError(f"{uri}: {target!r} is not an instance URL; write "
                                  "mastodon:https://mastodon.social (several: comma-separated)")
            if parts.username or parts.password or parts.query or parts.fragment or \
                    parts.path.strip("/"):
                raise SourceError(f"{uri}: give just the instance, e.g. "
                                  f"mastodon:{parts.scheme}://{parts.hostname}")
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            bases.append(f"{parts.scheme}://{host}{f':{port}' if port else ''}")
        if not bases:
            raise SourceError(f"{uri}: name an instance, e.g. mastodon:https://mastodon.social")
        return cls(bases, context=context)

    def __repr__(self) -> str:
        return f"MastodonSource({', '.join(i.base for i in self.instances)}; tags {self.tags})"

    def cursor_key(self, instance: str, tag: str) -> str:
        return f"mastodon:{instance}#{tag}"

    # -- the stream ------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        settings = self.settings
        queue: asyncio.Queue[Post | Rejected] = asyncio.Queue(settings.buffer)
        for inst in self.instances:
            inst.budget = RateBudget(settings.window_requests, settings.window_seconds,
                                     settings.reserve)
        async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT},
                                         read_bufsize=4 * MAX_RECORD_BYTES) as session:
            self._session = session
            follows = [_Follow(inst, tag, key, self.context.cursors.get(key))
                       for inst in self.instances for tag in self.tags
                       for key in (self.cursor_key(inst.base, tag),)]
            tasks = [asyncio.create_task(self._follow(f, queue), name=f"mastodon:{f.key}")
                     for f in follows]
            try:
                while True:
                    yield await queue.get()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._session = None
                self.context.up(self.name, False)

    async def _follow(self, follow: _Follow, out: asyncio.Queue[Post | Rejected]) -> None:
        """Stream one hashtag of one instance if there is a token, else poll it; forever."""
        backoff = Backoff(self.settings.backoff_base, self.settings.backoff_cap)
        while True:
            try:
                if follow.instance.token:
                    await self._stream(follow, out)  # returns when the token is refused
                await self._poll(follow, out)
            except Exception:  # a bug, not the network: say so, and carry on
                log.exception("mastodon %s: unexpected failure", follow.key)
                self.context.error(self.name, "other")
                await asyncio.sleep(backoff.next_delay())

    def _failed(self, follow: _Follow, exc: Exception, backoff: Backoff) -> float:
        kind = exc.kind if isinstance(exc, SourceFailure) else (
            "timeout" if isinstance(exc, TimeoutError) else "connect")
        retry_after = exc.retry_after if isinstance(exc, SourceFailure) else None
        if kind == "rate_limited" and retry_after is None:
            retry_after = follow.instance.budget.reset_in()
        self.context.up(self.name, False)
        self.context.error(self.name, kind)
        delay = backoff.next_delay(retry_after)
        log.warning("mastodon %s: %s (%s); retrying in %.1fs", follow.key,
                    exc or exc.__class__.__name__, kind, delay)
        return delay

    async def _poll(self, follow: _Follow, out: asyncio.Queue[Post | Rejected]) -> None:
        settings = self.settings
        backoff = Backoff(settings.backoff_base, settings.backoff_cap)
        failing = False
        while True:
            try:
                await self._catch_up(follow, out)
            except (SourceFailure, aiohttp.ClientError, OSError, TimeoutError) as exc:
                failing = True
                await asyncio.sleep(self._failed(follow, exc, backoff))
                continue
            self.context.up(self.name, True)
            if failing:
                self.context.reconnected(self.name)
                failing = False
            backoff.reset()
            await asyncio.sleep(settings.poll_interval * random.uniform(0.8, 1.2))

    async def _stream(self, follow: _Follow, out: asyncio.Queue[Post | Rejected]) -> None:
        """Read the hashtag stream, filling each reconnect's gap from REST; returns on 401."""
        settings, inst = self.settings, follow.instance
        backoff = Backoff(settings.backoff_base, settings.backoff_cap)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.request_timeout,
                                        sock_read=settings.stall)
        sessions = 0
        while True:
            try:
                url = f"{await self._streaming_base(inst)}{STREAM_PATH}"
                await inst.budget.acquire()
                async with self._http.get(url, params={"tag": follow.tag}, headers=inst.auth(),
                                          timeout=timeout) as response:
                    if response.status in (401, 403) and inst.token:
                        log.warning("mastodon %s: the token was refused (HTTP %d); polling "
                                    "instead", inst.base, response.status)
                        self.context.error(self.name, "auth")
                        inst.token = None
                        return
                    _check(response)
                    if not response.content_type.startswith("text/event-stream"):
                        raise SourceFailure("protocol", f"{response.content_type} is not an "
                                                          "event stream")
                    self.context.up(self.name, True)
                    if sessions:
                        self.context.reconnected(self.name)
                    sessions += 1
                    await self._catch_up(follow, out)  # the gap since the last status
                    backoff.reset()
                    reader = _SseReader(response.content)
                    while (event := await reader.next()) is not None:
                        if event[0] == "update":
                            await self._emit_streamed(follow, event[1], url, out)
                raise SourceFailure("connect", "the stream ended")
            except (SourceFailure, aiohttp.ClientError, OSError, TimeoutError) as exc:
                await asyncio.sleep(self._failed(follow, exc, backoff))

    async def _emit_streamed(self, follow: _Follow, data: str, url: str,
                             out: asyncio.Queue[Post | Rejected]) -> None:
        status = self.read_event(data, url)
        if isinstance(status, Rejected):
            await out.put(status)
            return
        status_id = status.get("id")
        if isinstance(status_id, str) and not _newer(status_id, follow.min_id):
            return  # already read by the REST catch-up
        await self._emit(follow, status, url, out)

    def read_event(self, data: str, url: str) -> dict[str, Any] | Rejected:
        """One streamed ``update`` event's data: the status object, or a counted rejection."""
        try:
            status = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return Rejected(self.name, "invalid_json", str(exc)[:120], url)
        if not isinstance(status, dict):
            return Rejected(self.name, "not_object", "a status is a JSON object", url)
        return status

    def read_status(self, status: dict[str, Any], *, key: str, instance: str,
                    url: str) -> Post | Rejected:
        """One status (REST or streamed) of ``instance``'s timeline whose cursor is ``key``."""
        status_id = status.get("id")
        try:
            if not isinstance(status_id, str) or not status_id:
                raise DecodeError("bad_field", "a status needs a string id")
            post = status_to_post(status, instance=instance, source_url=url,
                                  retrieved_at=datetime.now(UTC), collector=self.collector)
        except DecodeError as exc:
            return Rejected(self.name, exc.reason, exc.detail, f"{url} id={str(status_id)[:40]}")
        except Exception as exc:  # an odd status must not stop the timeline
            log.warning("mastodon %s: cannot read status %.40s: %r", key, status_id, exc)
            return Rejected(self.name, "bad_field", repr(exc)[:120], f"{url} id={str(status_id)[:40]}")
        post.checkpoint = (key, status_id)
        return post

    async def _emit(self, follow: _Follow, status: dict[str, Any], url: str,
                    out: asyncio.Queue[Post | Rejected]) -> None:
        status_id = status.get("id")
        post = self.read_status(status, key=follow.key, instance=follow.instance.base, url=url)
        await out.put(post)  # waits while the consumer is slow: backpressure
        if isinstance(status_id, str) and _newer(status_id, follow.min_id):
            follow.min_id = status_id

    # -- REST --------------------------------------------------------------------------

    @property
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("MastodonSource: requests are made only inside stream()")
        return self._session

    async def _catch_up(self, follow: _Follow, out: asyncio.Queue[Post | Rejected]) -> None:
        """Page forward from ``min_id`` until caught up; without one, read the newest page."""
        url = f"{follow.instance.base}{TIMELINE_PATH}{quote(follow.tag, safe='')}"
        page = self.settings.page_size
        while True:
            params = {"limit": str(page)}
            if follow.min_id is not None:
                params["min_id"] = follow.min_id
            statuses, links = await self._get_json(follow.instance, url, params)
            if not isinstance(statuses, list):
                raise SourceFailure("malformed", "the timeline is not a JSON array")
            ordered = sorted((s for s in statuses if isinstance(s, dict)),
                             key=lambda s: _id_key(str(s.get("id", ""))))
            for odd in (s for s in statuses if not isinstance(s, dict)):
                await out.put(Rejected(self.name, "not_object", type(odd).__name__, url))
            before = follow.min_id
            for status in ordered:
                await self._emit(follow, status, url, out)
            prev = _link_min_id(links, url)
            if prev is not None and _newer(prev, follow.min_id):
                follow.min_id = prev
            if before is None or len(statuses) < page or follow.min_id == before:
                return

    async def _get_json(self, inst: _Instance, url: str,
                        params: dict[str, str]) -> tuple[Any, Any]:
        """One budgeted GET: the decoded body and the parsed Link header."""
        await inst.budget.acquire()
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout)
        try:
            async with self._http.get(url, params=params, headers=inst.auth(),
                                      timeout=timeout) as response:
                inst.budget.update(response.headers)
                _check(response)
                body = await read_body(response, _MAX_BODY, "the answer", kind="malformed")
                links = response.links
        except TimeoutError:
            raise SourceFailure("timeout", f"no answer within {self.settings.request_timeout}s") \
                from None
        try:
            return orjson.loads(body), links
        except orjson.JSONDecodeError:
            raise SourceFailure("malformed", "the answer is not JSON") from None

    async def _streaming_base(self, inst: _Instance) -> str:
        """The streaming API's origin from ``/api/v2/instance``; the instance itself if unsaid."""
        if inst.streaming is None:
            inst.streaming = inst.base
            try:
                info, _ = await self._get_json(inst, f"{inst.base}{INSTANCE_PATH}", {})
                urls = info.get("configuration", {}).get("urls", {}) if isinstance(
                    info, dict) else {}
                streaming = urls.get("streaming") if isinstance(urls, dict) else None
                if isinstance(streaming, str) and streaming.startswith(("wss://", "ws://")):
                    inst.streaming = "http" + streaming.removeprefix("ws").rstrip("/")
            except (SourceFailure, aiohttp.ClientError, OSError, AttributeError) as exc:
                log.info("mastodon %s: no streaming URL in %s (%s); using the instance",
                         inst.base, INSTANCE_PATH, exc)
        return inst.streaming


def _check(response: aiohttp.ClientResponse) -> None:
    if response.status == 200:
        return
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is None and response.status == 429:
        retry_after = _until(response.headers.get("X-RateLimit-Reset"))
    raise SourceFailure(status_kind(response.status), f"HTTP {response.status}", retry_after)


def _link_min_id(links: Any, url: str) -> str | None:
    """``min_id`` of the Link header's ``rel="prev"`` (the next newer page) for this URL."""
    prev = links.get("prev") if links else None
    target = prev.get("url") if prev else None
    if not isinstance(target, URL) or target.origin() != URL(url).origin():
        return None
    value = target.query.get("min_id")
    return value if isinstance(value, str) and value else None
