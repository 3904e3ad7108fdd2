"""``x:[API_ROOT]``: the X API v2 filtered stream, its rules kept in step with the campaign.

Wire format: ``GET /2/tweets/search/stream`` answers with one JSON object per
line (``\\r\\n`` between them) and a bare ``\\r\\n`` keep-alive about every
20 s. An object carries ``data`` (the post), ``includes.users`` (its
author's username) and ``matching_rules``; one with only ``errors`` announces
that X is closing the stream.

Around that wire format this source:

* keeps the **rules** in step with the ruleset: one rule per campaign hashtag
  (``#keep4o``) tagged :data:`RULE_TAG`; rules with our tag that the ruleset
  no longer names are deleted, everyone else's are left alone;
* **reconnects** on X's documented schedule: at once, then 250 ms more per
  attempt up to 16 s after network errors and stalls (no byte, not even a
  keep-alive, for 30 s); 5 s doubling up to 320 s after HTTP errors; 60 s
  doubling after 429, and never before ``x-rate-limit-reset``/``Retry-After``;
* **fills the gap** of every disconnect (and of a restart from a saved
  cursor): the posts between the last id passed on and the first id after
  reconnecting come from ``GET /2/tweets/search/recent`` with ``since_id`` and
  ``until_id``, page by page (``next_token``), before that first post;
* commits as its cursor the highest post id passed on, so a restart resumes
  at the post after the last durable one;
* reads the bearer token from ``MONITOR_X_BEARER_TOKEN``; it never appears in
  a log line, an exception or a repr.
"""

from __future__ import annotations

import asyncio
import html
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from monitor.codec import MAX_RECORD_BYTES, DecodeError, format_time, post_from_mapping
from monitor.model import Post
from monitor.sources import SourceError
from monitor.sources.backoff import Backoff, parse_retry_after
from monitor.sources.base import Rejected, SourceContext
from monitor.sources.http import (
    SourceFailure,
    network_failure,
    read_body,
    read_upto,
    status_kind,
)
from monitor.sources.names import collector, user_agent
from monitor.sources.secret import Secret
from monitor.sources.seen import RecentIds

__all__ = ["DEFAULT_API", "ENV_TOKEN", "FIELDS", "RULE_TAG", "XSource", "XTimings", "rule_values",
           "tweet_to_post"]

log = logging.getLogger(__name__)

#: Where the bearer token (App-only auth) is read from.
ENV_TOKEN = "MONITOR_X_BEARER_TOKEN"
DEFAULT_API = "https://api.x.com"
#: The tag on every stream rule this monitor owns; only these are ever deleted.
RULE_TAG = "social-monitor"
STREAM_PATH = "/2/tweets/search/stream"
RULES_PATH = "/2/tweets/search/stream/rules"
SEARCH_PATH = "/2/tweets/search/recent"
#: Fields and expansions asked for on the stream and in recent search alike.
FIELDS: dict[str, str] = {
    "tweet.fields": "created_at,lang,entities,author_id,referenced_tweets,public_metrics",
    "expansions": "author_id",
    "user.fields": "username",
}
USER_AGENT = user_agent()
#: X's language codes that name no language (undetermined, media, hashtags only ...).
_NO_LANGUAGE = frozenset({"und", "zxx", "art", "qam", "qct", "qht", "qme", "qst"})
#: Largest rules or search response read.
_MAX_RESPONSE = 8 * 1024 * 1024
#: Failure kinds after which a gap fill is retried on the next connection.
_RETRY_GAP = frozenset({"connect", "timeout", "rate_limited", "http_5xx", "malformed", "protocol"})


@dataclass(frozen=True, slots=True)
class XTimings:
    """X's documented reconnect schedule and this source's limits (tests shrink them)."""

    #: no byte at all, keep-alives included, for this long: the stream stalled
    stall: float = 30.0
    #: network errors and stalls: linear, this much more per attempt ...
    network_step: float = 0.25
    #: ... up to this
    network_cap: float = 16.0
    #: HTTP errors: exponential from this ...
    http_base: float = 5.0
    #: ... up to this
    http_cap: float = 320.0
    #: HTTP 429: exponential from one minute ...
    rate_base: float = 60.0
    #: ... up to this (the server's reset time may ask for longer: obeyed, up to an hour)
    rate_cap: float = 960.0
    #: rules and recent-search requests
    request_timeout: float = 30.0
    #: recent-search pages (100 posts each) fetched for one gap at most
    gap_pages: int = 100
    #: recent post ids remembered to drop one delivered twice
    remember: int = 4096


def _server_wait(status: int, headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: Retry-After, or on 429 x-rate-limit-reset (epoch s)."""
    waits = []
    if (after := parse_retry_after(headers.get("Retry-After"))) is not None:
        waits.append(after)
    reset = headers.get("x-rate-limit-reset", "")
    if status == 429 and reset.strip().isdigit():
        waits.append(max(0.0, int(reset) - time.time()))
    return max(waits) if waits else None


async def _http_failure(resp: aiohttp.ClientResponse, what: str) -> SourceFailure:
    """A failure from an error response, with X's problem title and detail if it sent them."""
    problem = ""
    try:
        body = orjson.loads(await read_upto(resp, 4096))
        if isinstance(body, dict):
            parts = [body.get("title"), body.get("detail")]
            problem = "".join(f": {str(p)[:160]}" for p in parts if p)
    except (orjson.JSONDecodeError, aiohttp.ClientError, OSError, TimeoutError):
        pass
    return SourceFailure(status_kind(resp.status), f"{what}: HTTP {resp.status}{problem}",
                         _server_wait(resp.status, resp.headers))


async def _read_json(resp: aiohttp.ClientResponse, what: str) -> dict[str, Any]:
    body = await read_body(resp, _MAX_RESPONSE, what)
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SourceFailure("malformed", f"{what}: invalid JSON ({str(exc)[:80]})") from None
    if not isinstance(obj, dict):
        raise SourceFailure("malformed", f"{what}: not a JSON object")
    return obj


async def _lines(content: aiohttp.StreamReader, stall: float) -> AsyncIterator[bytes | None]:
    """The stream's lines without CR LF; None for a line over MAX_RECORD_BYTES (skipped).

    Raises TimeoutError after ``stall`` seconds without a byte. Holds at most
    one partial line, so memory stays bounded however the server writes.
    """
    buffer = bytearray()
    skipping = False
    while True:
        async with asyncio.timeout(stall):
            chunk = await content.readany()
        if not chunk:
            return
        buffer += chunk
        if b"\n" in chunk:
            *lines, rest = bytes(buffer).split(b"\n")
            buffer = bytearray(rest)
            for line in lines:
                if skipping:  # the end of an over-long line
                    skipping = False
                    continue
                yield line.rstrip(b"\r")
        if len(buffer) > MAX_RECORD_BYTES:
            if not skipping:
                yield None
            skipping = True
            buffer.clear()


def rule_values(hashtags: frozenset[str]) -> tuple[str, ...]:
    """The stream rule values for the campaign's hashtags: ``('#keep4o', ...)``, sorted."""
    return tuple(sorted(f"#{tag.lstrip('#').lower()}" for tag in hashtags if tag.strip("#")))


def _users(includes: object) -> dict[str, str]:
    users = includes.get("users") if isinstance(includes, dict) else None
    return {str(u["id"]): u["username"] for u in users or ()
            if isinstance(u, dict) and u.get("id") and isinstance(u.get("username"), str)}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def tweet_to_post(tweet: Mapping[str, Any], usernames: Mapping[str, str], *, collector: str,
                  source_url: str, retrieved_at: datetime) -> Post:
    """One X API v2 post object to a Post, or DecodeError with a counted reason."""
    post_id = tweet.get("id")
    if not post_id:
        raise DecodeError("missing_field:id")
    if not isinstance(post_id, str) or not post_id.isdigit() or len(post_id) > 20:
        raise DecodeError("bad_type:id", "an X post id is a string of digits")
    text = tweet.get("text")
    author_id = str(tweet.get("author_id") or "") or None
    username = usernames.get(author_id or "")
    entities = tweet.get("entities") if isinstance(tweet.get("entities"), dict) else {}
    hashtags = [h["tag"] for h in _dicts(entities.get("hashtags")) if isinstance(h.get("tag"), str)]
    links = [u.get("expanded_url") or u.get("url") for u in _dicts(entities.get("urls"))]
    refs = {r.get("type"): f"x:{r.get('id')}" for r in _dicts(tweet.get("referenced_tweets"))
            if isinstance(r.get("id"), str) and r["id"].isdigit()}
    metrics = tweet.get("public_metrics")
    engagement = ({k: v for k, v in metrics.items() if isinstance(v, int) and not isinstance(v, bool)}
                  if isinstance(metrics, dict) else None)
    lang = tweet.get("lang")
    record = {
        "id": f"x:{post_id}",
        "source": "x",
        # X escapes &, < and > in post text
        "text": html.unescape(text) if isinstance(text, str) else text,
        "created_at": tweet.get("created_at"),
        "author": username or author_id,
        "lang": None if lang in _NO_LANGUAGE else lang,
        "url": f"https://x.com/{username or 'i/web'}/status/{post_id}",
        "hashtags": hashtags,
        "links": [link for link in links if isinstance(link, str)],
        "reply_to": refs.get("replied_to"),
        "quote_of": refs.get("quoted"),
        "repost_of": refs.get("retweeted"),
        "engagement": engagement or None,
        "collector": collector,
        "source_url": source_url,
        "retrieved_at": format_time(retrieved_at),
        "raw": dict(tweet),
    }
    return post_from_mapping(record, default_source="x", keep_raw=True)


class XSource:
    """The filtered stream, reconnected forever, with every disconnect's gap filled."""

    name = "x"
    finite = False

    def __init__(self, api: str = DEFAULT_API, *, token: str,
                 context: SourceContext | None = None, timings: XTimings | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 rng: random.Random | None = None) -> None:
        self.api = api.rstrip("/")
        self.context = context or SourceContext()
        self.timings = timings or XTimings()
        self.cursor_key = f"x:{self.api}"
        self._token = Secret(token)
        self._clock = clock
        t = self.timings
        self._network = Backoff(t.network_step, t.network_cap, rng=rng, linear=True, floor=True)
        self._http = Backoff(t.http_base, t.http_cap, rng=rng, floor=True)
        self._rate = Backoff(t.rate_base, t.rate_cap, rng=rng, floor=True)
        self._rules = rule_values(self.context.hashtags)
        #: every post up to this id has been passed on (the cursor)
        self._position: int | None = None
        self._seen: RecentIds[int] = RecentIds(self.timings.remember)
        self._stream_url = self.api + STREAM_PATH
        self._rules_url = self.api + RULES_PATH
        self._search_url = self.api + SEARCH_PATH
        self._collector = collector("x")

    def __repr__(self) -> str:
        return f"XSource({self.api!r})"

    @classmethod
    def from_uri(cls, uri: str, context: SourceContext | None = None) -> XSource:
        """``x:`` (api.x.com) or ``x:https://HOST[:PORT]`` for another API root."""
        context = context or SourceContext()
        api = uri.split(":", 1)[1] or DEFAULT_API
        parts = urlsplit(api)
        if (parts.scheme not in ("http", "https") or not parts.netloc
                or parts.path not in ("", "/") or parts.query or parts.fragment):
            raise SourceError(f"{uri}: write x: for {DEFAULT_API}, or x:https://HOST[:PORT] for "
                              "another API root (no path, no options)")
        token = (context.environ.get(ENV_TOKEN) or "").strip()
        if not token:
            raise SourceError(f"the X source needs {ENV_TOKEN}: set it in the environment to "
                              "the bearer token of your X app (developer portal, Keys and tokens)")
        return cls(api, token=token, context=context)

    # -- the stream ------------------------------------------------------------

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        position = self.context.cursors.get(self.cursor_key)
        if position and position.isdigit():
            self._position = int(position)
        if not self._rules:
            log.warning("x: the ruleset names no campaign hashtags, so no stream rule is ours; "
                        "the stream delivers only posts matching this app's other rules")
        headers = {"User-Agent": USER_AGENT, "Authorization": f"Bearer {self._token.reveal()}"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, connect=30)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            try:
                await self._sync_rules_until_done(session)
                async for item in self._connections(session):
                    yield item
            finally:
                self.context.up(self.name, False)

    async def _wait_after(self, failure: SourceFailure, doing: str) -> None:
        self.context.error(self.name, failure.kind)
        if failure.kind == "rate_limited":
            schedule = self._rate
        elif failure.kind in ("connect", "timeout", "protocol"):
            schedule = self._network
        else:
            schedule = self._http
        delay = schedule.next_delay(failure.retry_after)
        log.warning("x: %s; %s in %.2f s", failure, doing, delay)
        await asyncio.sleep(delay)

    def _reset_backoff(self) -> None:
        for schedule in (self._network, self._http, self._rate):
            schedule.reset()

    async def _connections(self, session: aiohttp.ClientSession) -> AsyncIterator[Post | Rejected]:
        connected_before = False
        while True:
            try:
                timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, connect=30)
                async with session.get(self._stream_url, params=FIELDS, timeout=timeout,
                                       allow_redirects=False) as resp:
                    if resp.status != 200:
                        raise await _http_failure(resp, "connecting to the stream")
                    self.context.up(self.name, True)
                    if connected_before:
                        self.context.reconnected(self.name)
                    log.info("x: %s to the filtered stream at %s",
                             "reconnected" if connected_before else "connected", self.api)
                    connected_before = True
                    async for item in self._read(session, resp):
                        yield item
                raise SourceFailure("connect", "the stream ended")
            except SourceFailure as failure:
                self.context.up(self.name, False)
                await self._wait_after(failure, "reconnecting")
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.context.up(self.name, False)
                if isinstance(exc, aiohttp.ClientError) or not isinstance(exc, TimeoutError):
                    failure = network_failure(exc, "the stream")
                else:  # our own stall timer
                    failure = SourceFailure("timeout", f"the stream stalled: no data for "
                                                       f"{self.timings.stall:g} s")
                await self._wait_after(failure, "reconnecting")

    async def _read(self, session: aiohttp.ClientSession,
                    resp: aiohttp.ClientResponse) -> AsyncIterator[Post | Rejected]:
        """One connection's posts; the first one after the cursor's position fills the gap."""
        gap_from = self._position
        received = False
        async for line in _lines(resp.content, self.timings.stall):
            if not received:
                received = True
                self._reset_backoff()
            if line is None:
                yield Rejected(self.name, "too_large", f"over {MAX_RECORD_BYTES} bytes",
                               "x stream")
                continue
            post = self.read_line(line)
            if isinstance(post, dict):
                self._stream_problem(post)
                continue
            if not isinstance(post, Post):
                if post is not None:
                    yield post
                continue
            post_id = int(post.id[2:])
            if gap_from is not None and post_id > gap_from:
                since, gap_from = gap_from, None
                if post_id > since + 1:
                    try:
                        async for item in self._fill_gap(session, since, post_id):
                            yield item
                    except SourceFailure as failure:
                        if failure.kind not in _RETRY_GAP:
                            self.context.error(self.name, failure.kind)
                            log.warning("x: cannot fill the gap between posts %d and %d (%s); "
                                        "posts in it may be missing", since, post_id, failure)
                        else:  # pass this post on; the next connection refills the whole gap
                            if self._remember(post_id):
                                post.checkpoint = (self.cursor_key, str(since))
                                yield post
                            raise SourceFailure(failure.kind, f"recent search for the gap "
                                                f"after post {since}: {failure}",
                                                failure.retry_after) from None
            if not self._remember(post_id):
                continue
            if gap_from is None:
                self._position = max(self._position or 0, post_id)
            if self._position is not None:
                post.checkpoint = (self.cursor_key, str(self._position))
            yield post

    def read_line(self, line: bytes) -> Post | Rejected | dict[str, Any] | None:
        """One stream line: a Post, a counted rejection, a message without a post (X's
        notices, a dict), or None (a keep-alive)."""
        if not line.strip():
            return None
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return Rejected(self.name, "invalid_json", str(exc)[:120], "x stream")
        if not isinstance(message, dict):
            return Rejected(self.name, "not_object", "a stream message is a JSON object",
                            "x stream")
        tweet = message.get("data")
        if not isinstance(tweet, dict):
            return message
        try:
            return tweet_to_post(tweet, _users(message.get("includes")),
                                 collector=self._collector, source_url=self._stream_url,
                                 retrieved_at=self._clock())
        except DecodeError as exc:
            return Rejected(self.name, exc.reason, exc.detail, f"x stream post {tweet.get('id')}")
        except Exception as exc:  # an odd post must not stop the stream
            log.warning("x: cannot read stream post %r: %r", str(tweet.get("id"))[:30], exc)
            return Rejected(self.name, "bad_field", repr(exc)[:120], "x stream")

    def _stream_problem(self, message: dict[str, Any]) -> None:
        """A message without a post: X's notice that it closes the stream, or noise."""
        errors = _dicts(message.get("errors"))
        if not errors:
            self.context.error(self.name, "protocol")
            log.warning("x: a stream message without data or errors (keys %s); skipped",
                        sorted(message)[:5])
            return
        first = errors[0]
        summary = ": ".join(str(first.get(k))[:160] for k in ("title", "detail") if first.get(k))
        if first.get("disconnect_type") or first.get("connection_issue") or \
                "disconnect" in str(first.get("title", "")).lower():
            raise SourceFailure("protocol", f"X is closing the stream ({summary})")
        self.context.error(self.name, "protocol")
        log.warning("x: the stream reported an error: %s", summary)

    def _remember(self, post_id: int) -> bool:
        """Record a post id; False if it was passed on recently already."""
        return self._seen.add(post_id)

    # -- the gap after a disconnect ---------------------------------------------

    async def _fill_gap(self, session: aiohttp.ClientSession, since: int,
                        until: int) -> AsyncIterator[Post | Rejected]:
        """Posts strictly between two ids from recent search, a page (100) at a time.

        Pages come newest first; each page is passed on oldest first. The cursor
        stays at ``since`` throughout, so a crash mid-gap refills it.
        """
        if not self._rules:
            return
        params = {"query": " OR ".join(self._rules), "since_id": str(since),
                  "until_id": str(until), "max_results": "100", **FIELDS}
        found = 0
        for _page in range(self.timings.gap_pages):
            body = await self._request(session, "GET", self._search_url, params=params)
            usernames = _users(body.get("includes"))
            for tweet in reversed(_dicts(body.get("data"))):
                try:
                    post = tweet_to_post(tweet, usernames, collector=self._collector,
                                         source_url=self._search_url,
                                         retrieved_at=self._clock())
                except DecodeError as exc:
                    yield Rejected(self.name, exc.reason, exc.detail,
                                   f"x recent search post {tweet.get('id')}")
                    continue
                post_id = int(post.id[2:])
                if since < post_id < until and self._remember(post_id):
                    post.checkpoint = (self.cursor_key, str(since))
                    found += 1
                    yield post
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            token = meta.get("next_token")
            if not isinstance(token, str) or not token:
                log.info("x: filled the gap between posts %d and %d with %d posts",
                         since, until, found)
                return
            params["next_token"] = token
        log.warning("x: the gap between posts %d and %d holds more than %d pages; older posts "
                    "in it were not fetched", since, until, self.timings.gap_pages)

    # -- rules -------------------------------------------------------------------

    async def _request(self, session: aiohttp.ClientSession, method: str, url: str,
                       **kwargs: Any) -> dict[str, Any]:
        what = f"{method} {urlsplit(url).path}"
        timeout = aiohttp.ClientTimeout(total=self.timings.request_timeout)
        try:
            async with session.request(method, url, timeout=timeout, allow_redirects=False,
                                       **kwargs) as resp:
                if resp.status >= 300:
                    raise await _http_failure(resp, what)
                return await _read_json(resp, what)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise network_failure(exc, what) from None

    async def _sync_rules_until_done(self, session: aiohttp.ClientSession) -> None:
        while True:
            try:
                await self.sync_rules(session)
            except SourceFailure as failure:
                await self._wait_after(failure, "retrying the rules")
                continue
            self._http.reset()
            self._rate.reset()
            return

    async def sync_rules(self, session: aiohttp.ClientSession) -> None:
        """Add a rule per campaign hashtag missing; delete our rules the ruleset dropped."""
        body = await self._request(session, "GET", self._rules_url)
        rules = _dicts(body.get("data"))
        present = {r.get("value") for r in rules}
        stale = sorted(str(r["id"]) for r in rules if r.get("tag") == RULE_TAG
                       and r.get("value") not in self._rules and r.get("id"))
        missing = [value for value in self._rules if value not in present]
        if stale:
            await self._request(session, "POST", self._rules_url,
                                json={"delete": {"ids": stale}})
        if missing:
            answer = await self._request(session, "POST", self._rules_url, json={
                "add": [{"value": value, "tag": RULE_TAG} for value in missing]})
            for error in _dicts(answer.get("errors")):
                if error.get("title") != "DuplicateRule":
                    self.context.error(self.name, "protocol")
                    log.warning("x: X refused the rule %r: %s", error.get("value"),
                                str(error.get("title") or error.get("detail"))[:160])
        log.info("x: stream rules in step with the campaign: %d ours, %d added, %d deleted",
                 len(self._rules), len(missing), len(stale))
