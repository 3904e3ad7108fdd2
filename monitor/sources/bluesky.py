"""``bluesky:[ENDPOINT]``: Bluesky posts from Jetstream, the JSON firehose, over WebSocket.

``bluesky:`` reads one of the four public Jetstream instances (the next
one after a failed connection); ``bluesky:wss://HOST/subscribe`` (or
``ws://`` for a local instance) reads only that one. No credentials.

Wire format: the source asks for ``wantedCollections=app.bsky.feed.post``
and gets one JSON text frame per event::

    {"did": "did:plc:...", "time_us": 1725911162329308, "kind": "commit",
     "commit": {"rev": "...", "operation": "create", "collection": "app.bsky.feed.post",
                "rkey": "3l3qo2vutsw2b", "cid": "bafy...",
                "record": {"$type": "app.bsky.feed.post", "text": "...", "createdAt": "...",
                           "langs": ["en"], "facets": [...], "tags": [...],
                           "reply": {...}, "embed": {...}}}}

``identity`` and ``account`` events, and post updates and deletions, are
ignored. A created post is passed on when it names a campaign hashtag (a
``app.bsky.richtext.facet#tag`` facet, the record's ``tags`` or ``#tag`` in
the text) or contains a campaign term; with no campaign at all, every post.

Resuming: the cursor is the ``time_us`` of the last durable post; a restart
and every reconnect ask for ``cursor=time_us`` a few seconds earlier than
the last event seen (Jetstream's advice for gapless playback, also across
instances, whose clocks differ slightly). Events read twice are dropped here
(the last ids passed on are remembered) and, beyond that, by the processor:
a post's id is ``bluesky:at://{did}/app.bsky.feed.post/{rkey}``.

A quiet campaign does not advance the cursor (only posts carry one), so a
restart may read back to the last matching post; Jetstream keeps about a
day of events.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson

from monitor.codec import MAX_RECORD_BYTES, DecodeError, format_time, parse_time, post_from_mapping
from monitor.model import Post
from monitor.sources import SourceError
from monitor.sources.backoff import Backoff, parse_retry_after
from monitor.sources.base import Rejected, SourceContext
from monitor.sources.http import status_kind
from monitor.sources.names import collector as collector_name
from monitor.sources.names import user_agent
from monitor.sources.seen import RecentIds
from monitor.textutil import extract_hashtags

__all__ = ["COLLECTION", "PUBLIC_INSTANCES", "BlueskySource", "CampaignFilter",
           "JetstreamSettings", "event_to_post", "record_hashtags"]

log = logging.getLogger(__name__)

#: The four public Jetstream instances run by Bluesky, tried in this order.
PUBLIC_INSTANCES: tuple[str, ...] = tuple(
    f"wss://jetstream{n}.us-{region}.bsky.network/subscribe"
    for region in ("east", "west") for n in (1, 2))
COLLECTION = "app.bsky.feed.post"
USER_AGENT = user_agent("+bluesky jetstream")
_TAG_FACET = "app.bsky.richtext.facet#tag"
_LINK_FACET = "app.bsky.richtext.facet#link"
_CLOSED = object()
_POST_URI = re.compile(r"at://[^/\s]+/app\.bsky\.feed\.post/[^/\s]+")


@dataclass(frozen=True, slots=True)
class JetstreamSettings:
    """Timings and limits of the Jetstream source (tests shrink them)."""

    #: seconds asked for again before the last event seen, on reconnect and restart
    rewind: float = 5.0
    #: WebSocket ping interval; a missing pong closes the connection
    heartbeat: float = 30.0
    #: no frame at all for this long: the connection is stale, reconnect
    stall: float = 120.0
    connect_timeout: float = 15.0
    backoff_base: float = 1.0
    backoff_cap: float = 120.0
    #: post ids remembered to drop the ones a rewound cursor sends again
    remember: int = 10_000


class CampaignFilter:
    """Does a post name a campaign hashtag or contain a campaign term?"""

    def __init__(self, hashtags: Iterable[str], terms: Iterable[str]) -> None:
        self.hashtags = frozenset(h.lstrip("#").lower() for h in hashtags if h.strip("#"))
        words = sorted({t.lower() for t in terms if t.strip()}, key=len, reverse=True)
        self._terms = (re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)",
                                  re.IGNORECASE) if words else None)

    @property
    def everything(self) -> bool:
        """No campaign given: every post passes."""
        return not self.hashtags and self._terms is None

    def matches(self, text: str, hashtags: Iterable[str]) -> bool:
        if self.everything:
            return True
        if self.hashtags and not self.hashtags.isdisjoint(hashtags):
            return True
        return self._terms is not None and self._terms.search(text) is not None


def _post_id(uri: str | None) -> str | None:
    return f"bluesky:{uri}" if isinstance(uri, str) and _POST_URI.fullmatch(uri) else None


def _embedded_post(embed: Any) -> str | None:
    """The quoted post of an ``app.bsky.embed.record`` (or ``recordWithMedia``) embed."""
    if not isinstance(embed, dict):
        return None
    record = embed.get("record")
    if isinstance(record, dict) and isinstance(record.get("record"), dict):
        record = record["record"]  # recordWithMedia wraps the record embed once more
    return _post_id(record.get("uri")) if isinstance(record, dict) else None


def _facet_features(record: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    facets = record.get("facets")
    for facet in facets if isinstance(facets, list) else ():
        features = facet.get("features") if isinstance(facet, dict) else None
        for feature in features if isinstance(features, list) else ():
            if isinstance(feature, dict):
                yield feature


def record_hashtags(record: Mapping[str, Any], text: str) -> list[str]:
    """Tag facets, the record's ``tags`` and ``#tags`` in the text: lower-case, once each."""
    tags = [f.get("tag") for f in _facet_features(record) if f.get("$type") == _TAG_FACET]
    extra = record.get("tags")
    tags += extra if isinstance(extra, list) else []
    found = [t.lstrip("#").lower() for t in tags if isinstance(t, str) and t.strip("#")]
    return list(dict.fromkeys([*found, *extract_hashtags(text)]))


def event_to_post(event: Mapping[str, Any], *, endpoint: str, retrieved_at: datetime,
                  collector: str = collector_name("bluesky")) -> Post:
    """A Jetstream commit event creating a post, as a Post; DecodeError if malformed."""
    did, commit = event.get("did"), event.get("commit")
    if not isinstance(did, str) or not did.startswith("did:") or not isinstance(commit, dict):
        raise DecodeError("bad_field", "a commit event needs did and commit")
    rkey, record = commit.get("rkey"), commit.get("record")
    if not isinstance(rkey, str) or not rkey or "/" in rkey or not isinstance(record, dict):
        raise DecodeError("bad_field", "a created post needs commit.rkey and commit.record")
    text = record.get("text")
    if not isinstance(text, str):
        raise DecodeError("bad_type:text", "record.text must be a string")
    features = list(_facet_features(record))
    links = [f.get("uri") for f in features if f.get("$type") == _LINK_FACET]
    embed = record.get("embed")
    external = embed.get("external") if isinstance(embed, dict) else None
    if isinstance(external, dict):
        links.append(external.get("uri"))
    langs = record.get("langs")
    reply = record.get("reply")
    parent = reply.get("parent") if isinstance(reply, dict) else None
    uri = f"at://{did}/{COLLECTION}/{rkey}"
    return post_from_mapping({
        "id": f"bluesky:{uri}",
        "source": "bluesky",
        "text": text,
        "created_at": _created_at(record.get("createdAt"), event.get("time_us")),
        "author": did,
        "lang": langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str)
        else None,
        "url": f"https://bsky.app/profile/{did}/post/{rkey}",
        "hashtags": record_hashtags(record, text),
        "links": list(dict.fromkeys(u for u in links if isinstance(u, str) and u)),
        "reply_to": _post_id(parent.get("uri")) if isinstance(parent, dict) else None,
        "quote_of": _embedded_post(embed),
        "collector": collector,
        "source_url": endpoint,
        "retrieved_at": format_time(retrieved_at),
        "raw": dict(event),
    }, default_source="bluesky", keep_raw=True)


def _created_at(value: object, time_us: object) -> str:
    """The record's createdAt; Jetstream's receive time when that is missing or absurd."""
    try:
        return format_time(parse_time(value, "createdAt"))
    except DecodeError:
        if isinstance(time_us, int) and not isinstance(time_us, bool) and time_us > 0:
            return format_time(datetime.fromtimestamp(time_us / 1e6, UTC))
        raise


class BlueskySource:
    """Created posts from Jetstream, filtered by the campaign; see the module docstring."""

    name = "bluesky"
    finite = False

    def __init__(self, endpoints: Iterable[str] = PUBLIC_INSTANCES, *,
                 context: SourceContext | None = None,
                 settings: JetstreamSettings | None = None,
                 cursor_key: str = "bluesky:jetstream") -> None:
        self.endpoints = tuple(endpoints)
        if not self.endpoints:
            raise SourceError("bluesky: at least one Jetstream endpoint is needed")
        self.context = context or SourceContext()
        self.settings = settings or JetstreamSettings()
        self.cursor_key = cursor_key
        self.filter = CampaignFilter(self.context.hashtags, self.context.terms)
        self.collector = collector_name("bluesky")
        #: time_us of the last event read (any kind); where a reconnect resumes
        self.last_time_us: int | None = None

    @classmethod
    def from_uri(cls, uri: str, context: SourceContext | None = None) -> BlueskySource:
        """``bluesky:`` (the public instances) or ``bluesky:ws[s]://HOST[:PORT]/subscribe``."""
        target = uri.split(":", 1)[1].strip() if ":" in uri else ""
        if not target:
            return cls(PUBLIC_INSTANCES, context=context)
        try:
            parts = urlsplit(target)
            parts.port  # noqa: B018 - validates the port
        except ValueError:
            raise SourceError(f"{uri}: the port must be a number 1-65535") from None
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise SourceError(f"{uri}: use bluesky: for the public Jetstream instances or "
                              "bluesky:wss://HOST/subscribe for one instance")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise SourceError(f"{uri}: give the endpoint without user, query or fragment, "
                              "e.g. bluesky:wss://jetstream2.us-east.bsky.network/subscribe")
        endpoint = f"{parts.scheme}://{parts.netloc}{parts.path or '/subscribe'}"
        return cls((endpoint,), context=context, cursor_key=f"bluesky:{endpoint}")

    def __repr__(self) -> str:
        return f"BlueskySource({', '.join(self.endpoints)})"

    def url(self, endpoint: str, cursor: int | None) -> str:
        query: dict[str, str | int] = {"wantedCollections": COLLECTION,
                                       "maxMessageSizeBytes": MAX_RECORD_BYTES}
        if cursor is not None:
            query["cursor"] = cursor
        return f"{endpoint}?{urlencode(query)}"

    def _resume_at(self) -> int | None:
        """Where the next connection starts: a little before the last event seen."""
        last = self.last_time_us
        if last is None:
            stored = self.context.cursors.get(self.cursor_key)
            last = int(stored) if stored and stored.isdigit() else None
        return None if last is None else max(0, last - int(self.settings.rewind * 1e6))

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        settings, context, name = self.settings, self.context, self.name
        backoff = Backoff(settings.backoff_base, settings.backoff_cap)
        recent: RecentIds[str] = RecentIds(settings.remember)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout)
        index, sessions = 0, 0
        async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT},
                                         timeout=timeout) as session:
            try:
                while True:
                    endpoint = self.endpoints[index]
                    retry_after: float | None = None
                    kind, read_any = "connect", False
                    try:
                        async with session.ws_connect(
                                self.url(endpoint, self._resume_at()),
                                heartbeat=settings.heartbeat, max_msg_size=4 * MAX_RECORD_BYTES,
                                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                        ) as ws:
                            context.up(name, True)
                            if sessions:
                                context.reconnected(name)
                            sessions += 1
                            log.info("bluesky: reading %s", endpoint)
                            while (item := await self._next(ws, endpoint, recent)) is not _CLOSED:
                                read_any = True
                                backoff.reset()
                                yield item  # type: ignore[misc]
                        log.warning("bluesky: %s closed the connection", endpoint)
                    except aiohttp.WSServerHandshakeError as exc:
                        kind = status_kind(exc.status)
                        retry_after = parse_retry_after((exc.headers or {}).get("Retry-After"))
                        log.warning("bluesky: %s refused the connection: HTTP %d",
                                    endpoint, exc.status)
                    except TimeoutError:
                        kind = "timeout"
                        log.warning("bluesky: %s went silent (no frame for %gs or no pong)",
                                    endpoint, settings.stall)
                    except aiohttp.WebSocketError as exc:
                        kind = "protocol"
                        log.warning("bluesky: %s: %s", endpoint, exc)
                    except (aiohttp.ClientError, OSError) as exc:
                        log.warning("bluesky: %s: %s", endpoint, exc or exc.__class__.__name__)
                    context.up(name, False)
                    context.error(name, kind)
                    if not read_any:
                        index = (index + 1) % len(self.endpoints)  # try the next instance
                    delay = backoff.next_delay(retry_after)
                    log.info("bluesky: reconnecting in %.1fs", delay)
                    await asyncio.sleep(delay)
            finally:
                context.up(name, False)

    async def _next(self, ws: aiohttp.ClientWebSocketResponse, endpoint: str,
                    recent: RecentIds[str]) -> Post | Rejected | object:
        """The next post or rejection of one connection; _CLOSED once it closes."""
        while True:
            message = await ws.receive(timeout=self.settings.stall)
            if message.type == aiohttp.WSMsgType.TEXT:
                item = self.decode(message.data, endpoint)
            elif message.type == aiohttp.WSMsgType.BINARY:
                item = Rejected(self.name, "invalid_json", "a binary frame (compression is off)",
                                endpoint)
            elif message.type == aiohttp.WSMsgType.ERROR:
                error = message.data
                raise error if isinstance(error, Exception) else aiohttp.WebSocketError(
                    1011, str(error))
            else:  # CLOSE, CLOSING, CLOSED
                return _CLOSED
            if item is None or (isinstance(item, Post) and not recent.add(item.id)):
                continue  # not a new campaign post, or one read again after a rewind
            return item

    def decode(self, data: str, endpoint: str) -> Post | Rejected | None:
        """One frame: a Post, a counted rejection, or None (not a new post, or off-campaign)."""
        if len(data) > MAX_RECORD_BYTES:
            return Rejected(self.name, "too_large", f"{len(data)} characters", endpoint)
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return Rejected(self.name, "invalid_json", str(exc)[:120], endpoint)
        if not isinstance(event, dict):
            return Rejected(self.name, "not_object", "an event is a JSON object", endpoint)
        time_us = event.get("time_us")
        if not isinstance(time_us, int) or isinstance(time_us, bool) or time_us <= 0:
            return Rejected(self.name, "bad_field", "time_us must be a positive integer",
                            endpoint)
        self.last_time_us = max(self.last_time_us or 0, time_us)
        commit = event.get("commit")
        if (event.get("kind") != "commit" or not isinstance(commit, dict)
                or commit.get("collection") != COLLECTION or commit.get("operation") != "create"):
            return None
        record = commit.get("record")
        if isinstance(record, dict) and not self.filter.everything:
            text = record.get("text") if isinstance(record.get("text"), str) else ""
            if not self.filter.matches(text, record_hashtags(record, text)):
                return None
        try:
            post = event_to_post(event, endpoint=endpoint, retrieved_at=datetime.now(UTC),
                                 collector=self.collector)
        except DecodeError as exc:
            return Rejected(self.name, exc.reason, exc.detail, f"{endpoint} time_us={time_us}")
        except Exception as exc:  # an odd record must not stop the stream
            log.warning("bluesky: cannot read the event at time_us=%d: %r", time_us, exc)
            return Rejected(self.name, "bad_field", repr(exc)[:120], f"{endpoint} time_us={time_us}")
        post.checkpoint = (self.cursor_key, str(time_us))
        return post

