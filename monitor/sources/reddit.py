"""``reddit:r/SUB[+SUB...][?every=60]``: new posts and comments through Reddit's OAuth API.

Application-only OAuth: ``POST https://www.reddit.com/api/v1/access_token``
with ``grant_type=client_credentials`` and the app's id and secret
(``MONITOR_REDDIT_CLIENT_ID`` / ``MONITOR_REDDIT_CLIENT_SECRET``) as HTTP
Basic auth gives a bearer token for ``https://oauth.reddit.com``. Every
request carries a descriptive User-Agent, as Reddit's API rules ask
(``MONITOR_REDDIT_USERNAME``, if set, names the operator in it).

Each poll reads two Listings, ``/r/SUB/new`` (posts, ``t3_``) and
``/r/SUB/comments`` (comments, ``t1_``), with ``before=`` the newest
fullname seen, so only newer things come back, paging up to ten pages of
100. That fullname is the listing's cursor. A ``before`` anchor that was
deleted makes Reddit answer with an empty page forever; every fifth empty
poll the newest thing is compared with the anchor (base-36 ids grow with
time) and, when newer, the source catches up from the first page.

Requests stay within the budget Reddit announces in ``X-Ratelimit-Remaining``
/ ``-Reset`` / ``-Used``: when few are left, the source sleeps until the
window resets. ``?api=`` and ``?auth=`` point at other hosts (tests).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson

from monitor import __version__
from monitor.codec import DecodeError, format_time, post_from_mapping
from monitor.model import Post
from monitor.sources import SourceError
from monitor.sources.backoff import Backoff, parse_retry_after
from monitor.sources.base import Rejected, SourceContext
from monitor.sources.http import SourceFailure, read_body, status_kind
from monitor.sources.names import collector
from monitor.sources.polling import PollHealth, poll_forever
from monitor.sources.secret import Secret
from monitor.sources.seen import RecentIds
from monitor.textutil import extract_links

__all__ = ["DEFAULT_API", "DEFAULT_AUTH", "ENV_CLIENT_ID", "ENV_CLIENT_SECRET", "ENV_USERNAME",
           "RateBudget", "RedditSource", "RedditTimings", "thing_to_post", "user_agent"]

log = logging.getLogger(__name__)

ENV_CLIENT_ID = "MONITOR_REDDIT_CLIENT_ID"
ENV_CLIENT_SECRET = "MONITOR_REDDIT_CLIENT_SECRET"
#: Optional: the Reddit account that runs the monitor, named in the User-Agent.
ENV_USERNAME = "MONITOR_REDDIT_USERNAME"
DEFAULT_API = "https://oauth.reddit.com"
DEFAULT_AUTH = "https://www.reddit.com"
PERMALINK_ROOT = "https://www.reddit.com"
#: (listing path, thing kind): posts, then comments
LISTINGS: tuple[tuple[str, str], ...] = (("new", "t3"), ("comments", "t1"))
PAGE = 100
_SUBREDDIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}")
_FULLNAME = re.compile(r"t[13]_[0-9a-z]{1,13}")
_USERNAME = re.compile(r"[A-Za-z0-9_-]{3,20}")
_MAX_RESPONSE = 8 * 1024 * 1024
_GONE = frozenset({"[removed]", "[deleted]"})


@dataclass(frozen=True, slots=True)
class RedditTimings:
    """Polling pace and limits (tests shrink them)."""

    #: seconds between polls of both listings
    every: float = 60.0
    #: requests left in the rate window at which we wait for it to reset
    low_water: float = 5.0
    #: pages of 100 read per listing and poll at most
    max_pages: int = 10
    #: empty polls between checks that the ``before`` anchor still exists
    anchor_check: int = 5
    #: errors: exponential backoff with full jitter from this ...
    backoff_base: float = 2.0
    #: ... up to this
    backoff_cap: float = 300.0
    request_timeout: float = 30.0
    #: recent fullnames remembered to drop one seen twice
    remember: int = 4096


def user_agent(username: str | None = None) -> str:
    """Reddit's requested form: ``<platform>:<app id>:<version> (by /u/<username>)``."""
    who = f"by /u/{username}" if username else "open-source social-post monitor"
    return f"python:social-monitor:v{__version__} ({who})"


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class RateBudget:
    """Reddit's request budget from ``X-Ratelimit-Remaining/-Reset/-Used``.

    ``Reset`` is seconds until the window ends. When no more than
    ``low_water`` requests remain, :meth:`wait` says how long to sleep.
    """

    def __init__(self, low_water: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.low_water = low_water
        self.clock = clock
        self.remaining: float | None = None
        self.used: float | None = None
        self.reset_at = 0.0

    def update(self, headers: Mapping[str, str]) -> None:
        remaining = _number(headers.get("X-Ratelimit-Remaining"))
        reset = _number(headers.get("X-Ratelimit-Reset"))
        if remaining is None or reset is None:
            return
        self.remaining, self.reset_at = remaining, self.clock() + max(0.0, reset)
        self.used = _number(headers.get("X-Ratelimit-Used"))

    def reset_in(self) -> float:
        return max(0.0, self.reset_at - self.clock())

    def wait(self) -> float:
        """Seconds to sleep before the next request (0 while the budget lasts)."""
        if self.remaining is None or self.remaining > self.low_water:
            return 0.0
        if (delay := self.reset_in()) <= 0:
            self.remaining = None  # a new window: unknown until the next answer
        return delay

    def spend(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


def _id36(fullname: str) -> int:
    return int(fullname.partition("_")[2], 36)


def listing_children(body: object, path: str) -> list[dict[str, Any]]:
    """A Listing's children (a child that is not an object becomes ``{}``, rejected later)."""
    data = body.get("data") if isinstance(body, dict) else None
    children = data.get("children") if isinstance(data, dict) else None
    if not isinstance(body, dict) or body.get("kind") != "Listing" or not isinstance(children, list):
        raise SourceFailure("malformed", f"GET {path}: not a Listing")
    return [c if isinstance(c, dict) else {} for c in children]


def _fullname(thing: Mapping[str, Any], kind: str) -> str | None:
    data = thing.get("data")
    if not isinstance(data, dict):
        return None
    name = data.get("name") or (f"{kind}_{data['id']}" if isinstance(data.get("id"), str) else None)
    return name if isinstance(name, str) and _FULLNAME.fullmatch(name) else None


def thing_to_post(kind: str, data: Mapping[str, Any], *, source_url: str,
                  retrieved_at: datetime) -> Post:
    """A Listing child's ``data`` (``t3`` post or ``t1`` comment) to a Post, or DecodeError."""
    name = data.get("name")
    if not name:
        raise DecodeError("missing_field:id")
    if not isinstance(name, str) or not _FULLNAME.fullmatch(name) or not name.startswith(kind):
        raise DecodeError("bad_type:id", f"{kind} fullname expected, got {str(name)[:30]!r}")
    created = data.get("created_utc")
    if created is None:
        raise DecodeError("missing_field:created_at")
    if not isinstance(created, int | float) or isinstance(created, bool):
        raise DecodeError("bad_timestamp", "created_utc must be seconds since the epoch")
    try:
        created_at = format_time(datetime.fromtimestamp(created, UTC))
    except (OverflowError, OSError, ValueError):
        raise DecodeError("bad_timestamp", f"created_utc={created!r} is out of range") from None
    links: list[str] = []
    if kind == "t3":
        title = data.get("title")
        body = data.get("selftext")
        body = "" if not isinstance(body, str) or body in _GONE else body
        text = f"{title}\n\n{body}" if isinstance(title, str) and body else title
        if not data.get("is_self") and isinstance(data.get("url"), str):
            links.append(data["url"])
        engagement = {"score": data.get("score"), "comments": data.get("num_comments")}
        reply_to = None
        repost = data.get("crosspost_parent")
        repost_of = f"reddit:{repost}" if isinstance(repost, str) else None
    else:
        body = data.get("body")
        text = "" if body in _GONE else body
        engagement = {"score": data.get("score")}
        parent = data.get("parent_id")
        reply_to = f"reddit:{parent}" if isinstance(parent, str) else None
        repost_of = None
    if isinstance(body, str) and body:
        links.extend(extract_links(body))
    author = data.get("author")
    permalink = data.get("permalink")
    record = {
        "id": f"reddit:{name}",
        "source": "reddit",
        "text": text,
        "created_at": created_at,
        "author": None if author in _GONE else author,
        "url": PERMALINK_ROOT + permalink if isinstance(permalink, str) and
        permalink.startswith("/") else None,
        "links": list(dict.fromkeys(links)),
        "reply_to": reply_to,
        "repost_of": repost_of,
        "engagement": {k: v for k, v in engagement.items()
                       if isinstance(v, int) and not isinstance(v, bool)} or None,
        "collector": collector("reddit"),
        "source_url": source_url,
        "retrieved_at": format_time(retrieved_at),
        "raw": dict(data),
    }
    return post_from_mapping(record, default_source="reddit", keep_raw=True)


class RedditSource:
    """Polls the new posts and comments of one or more subreddits, politely."""

    name = "reddit"
    finite = False

    def __init__(self, subreddits: str, *, client_id: str, client_secret: str,
                 api: str = DEFAULT_API, auth: str = DEFAULT_AUTH,
                 context: SourceContext | None = None, timings: RedditTimings | None = None,
                 username: str | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 rng: random.Random | None = None) -> None:
        self.subreddits = subreddits
        self.api = api.rstrip("/")
        self.auth = auth.rstrip("/")
        self.context = context or SourceContext()
        self.timings = timings or RedditTimings()
        self.user_agent = user_agent(username)
        self._client = (client_id, Secret(client_secret))
        self._token: Secret | None = None
        self._token_expires = 0.0
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff = Backoff(self.timings.backoff_base, self.timings.backoff_cap, rng=rng)
        self.budget = RateBudget(self.timings.low_water)
        self._anchors: dict[str, str | None] = {}
        self._empty_polls: dict[str, int] = {}
        self._seen: RecentIds[str] = RecentIds(self.timings.remember)
        self._health = PollHealth(self.context, self.name, f"r/{subreddits}", log)

    def __repr__(self) -> str:
        return f"RedditSource('r/{self.subreddits}')"

    @classmethod
    def from_uri(cls, uri: str, context: SourceContext | None = None) -> RedditSource:
        """``reddit:r/SUB[+SUB...][?every=SECONDS&api=URL&auth=URL]``."""
        context = context or SourceContext()
        target, _, query = uri.split(":", 1)[1].partition("?")
        subs = target.removeprefix("/r/").removeprefix("r/").strip("/")
        names = subs.split("+")
        if not subs or not all(_SUBREDDIT.fullmatch(n) for n in names):
            raise SourceError(f"{uri}: write reddit:r/SUBREDDIT, or reddit:r/ONE+TWO for several "
                              "(names of 2-21 letters, digits or _)")
        options = {k: v[-1] for k, v in parse_qs(query).items()}
        unknown = set(options) - {"every", "api", "auth"}
        if unknown:
            raise SourceError(f"{uri}: unknown option(s) {', '.join(sorted(unknown))}; "
                              "use every=SECONDS, api=URL and auth=URL")
        for option in ("api", "auth"):
            if option in options and (urlsplit(options[option]).scheme not in ("http", "https")
                                      or not urlsplit(options[option]).netloc):
                raise SourceError(f"{uri}: {option}={options[option]!r} is not an http(s) URL")
        try:
            every = float(options.get("every", RedditTimings().every))
        except ValueError:
            every = 0.0
        if not 1 <= every <= 86_400:
            raise SourceError(f"{uri}: every={options.get('every')!r}: give seconds between polls, "
                              "1 to 86400")
        client_id = (context.environ.get(ENV_CLIENT_ID) or "").strip()
        secret = (context.environ.get(ENV_CLIENT_SECRET) or "").strip()
        missing = [n for n, v in ((ENV_CLIENT_ID, client_id), (ENV_CLIENT_SECRET, secret)) if not v]
        if missing:
            raise SourceError(f"{uri}: set {' and '.join(missing)} in the environment to your "
                              "Reddit app's client id and secret (reddit.com/prefs/apps)")
        username = (context.environ.get(ENV_USERNAME) or "").strip().removeprefix("u/")
        return cls(subs, client_id=client_id, client_secret=secret,
                   api=options.get("api", DEFAULT_API), auth=options.get("auth", DEFAULT_AUTH),
                   context=context, timings=RedditTimings(every=every),
                   username=username if _USERNAME.fullmatch(username) else None)

    def cursor_key(self, listing: str) -> str:
        return f"reddit:r/{self.subreddits}/{listing}"

    # -- the loop ------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        timeout = aiohttp.ClientTimeout(total=self.timings.request_timeout)
        async with aiohttp.ClientSession(headers={"User-Agent": self.user_agent},
                                         timeout=timeout) as session:
            try:
                async with aclosing(poll_forever(
                        lambda: self._poll_all(session), every=self.timings.every,
                        backoff=self._backoff, rng=self._rng,
                        wait_after=self._wait_after)) as items:
                    async for item in items:
                        yield item
            finally:
                self.context.up(self.name, False)

    async def _poll_all(self, session: aiohttp.ClientSession) -> AsyncIterator[Post | Rejected]:
        for listing, kind in LISTINGS:
            async for item in self._poll(session, listing, kind):
                yield item

    async def _wait_after(self, failure: SourceFailure) -> None:
        self.context.error(self.name, failure.kind)
        self._health.mark_down()
        retry_after = failure.retry_after
        if failure.kind == "rate_limited" and retry_after is None:
            retry_after = self.budget.reset_in() or None
        delay = self._backoff.next_delay(retry_after)
        log.warning("reddit: r/%s: %s; retrying in %.1f s", self.subreddits, failure, delay)
        await asyncio.sleep(delay)

    # -- requests ------------------------------------------------------------------

    async def _access_token(self, session: aiohttp.ClientSession) -> str:
        if self._token is not None and time.monotonic() < self._token_expires:
            return self._token.reveal()
        client_id, secret = self._client
        url = self.auth + "/api/v1/access_token"
        try:
            basic = base64.b64encode(f"{client_id}:{secret.reveal()}".encode()).decode()
            async with session.post(url, data={"grant_type": "client_credentials"},
                                    headers={"Authorization": f"Basic {basic}"},
                                    allow_redirects=False) as resp:
                status = resp.status
                wait = parse_retry_after(resp.headers.get("Retry-After"))
                body = await read_body(resp, 65_536, "the token endpoint") if status == 200 else b""
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            kind = "timeout" if isinstance(exc, TimeoutError) else "connect"
            raise SourceFailure(kind, f"the token endpoint: {exc.__class__.__name__}") from None
        if status != 200:
            kind = status_kind(status)
            hint = (f"; check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}"
                    if status in (400, 401, 403) else "")
            raise SourceFailure("auth" if kind == "http_4xx" else kind,
                                f"the token endpoint answered HTTP {status}{hint}", wait)
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            error = answer.get("error") if isinstance(answer, dict) else None
            code = error if isinstance(error, str) and re.fullmatch(r"[a-z_]{1,40}", error) else ""
            given = f" ({code})" if code else ""
            raise SourceFailure("auth", f"the token endpoint gave no token{given}; "
                                        f"check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}")
        expires = answer.get("expires_in")
        lifetime = float(expires) if isinstance(expires, int | float) else 3600.0
        self._token = Secret(token)
        self._token_expires = time.monotonic() + max(0.0, lifetime - 60)
        log.info("reddit: got an application-only access token (valid %.0f s)", lifetime)
        return token

    async def _get(self, session: aiohttp.ClientSession, path: str,
                   params: dict[str, str]) -> dict[str, Any]:
        url = self.api + path
        for attempt in (1, 2):
            if (delay := self.budget.wait()) > 0:
                log.info("reddit: %g requests left in the rate-limit window; waiting %.1f s for "
                         "it to reset", self.budget.remaining, delay)
                await asyncio.sleep(delay)
                self.budget.remaining = None
            token = await self._access_token(session)
            self.budget.spend()
            async with session.get(url, params=params, allow_redirects=False,
                                   headers={"Authorization": f"bearer {token}"}) as resp:
                self.budget.update(resp.headers)
                if resp.status == 401 and attempt == 1:
                    self._token = None  # expired or revoked: fetch a new one, once
                    continue
                if resp.status != 200:
                    hint = " (no such subreddit, or private?)" if resp.status in (
                        302, 403, 404) else ""
                    raise SourceFailure(status_kind(resp.status),
                                        f"GET {path}: HTTP {resp.status}{hint}",
                                        parse_retry_after(resp.headers.get("Retry-After")))
                body = await read_body(resp, _MAX_RESPONSE, f"GET {path}")
            try:
                answer = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise SourceFailure("malformed", f"GET {path}: invalid JSON") from None
            self._health.mark_up()
            return answer
        raise SourceFailure("auth", f"GET {path}: HTTP 401 with a fresh token")

    async def _listing(self, session: aiohttp.ClientSession, listing: str,
                       params: dict[str, str]) -> list[dict[str, Any]]:
        path = f"/r/{self.subreddits}/{listing}"
        return listing_children(await self._get(session, path, {**params, "raw_json": "1"}),
                                path)

    # -- one listing ------------------------------------------------------------------

    def _anchor(self, listing: str) -> str | None:
        if listing not in self._anchors:
            saved = self.context.cursors.get(self.cursor_key(listing))
            self._anchors[listing] = saved if saved and _FULLNAME.fullmatch(saved) else None
        return self._anchors[listing]

    async def _poll(self, session: aiohttp.ClientSession, listing: str,
                    kind: str) -> AsyncIterator[Post | Rejected]:
        anchor = self._anchor(listing)
        if anchor is None:  # first run: the newest page
            children = await self._listing(session, listing, {"limit": str(PAGE)})
            for item in self.read_page(listing, kind, children, after=None):
                yield item
            return
        for page in range(self.timings.max_pages):
            children = await self._listing(session, listing,
                                           {"limit": str(PAGE), "before": anchor})
            if not children:
                if page == 0:
                    async for item in self._check_anchor(session, listing, kind, anchor):
                        yield item
                return
            self._empty_polls[listing] = 0
            for item in self.read_page(listing, kind, children, after=None):
                yield item
            anchor = self._anchors[listing] or anchor
            if len(children) < PAGE:
                return

    async def _check_anchor(self, session: aiohttp.ClientSession, listing: str, kind: str,
                            anchor: str) -> AsyncIterator[Post | Rejected]:
        """Every few empty polls: if newer things exist, the anchor was deleted; catch up."""
        empty = self._empty_polls[listing] = self._empty_polls.get(listing, 0) + 1
        if empty % self.timings.anchor_check:
            return
        newest = [_fullname(c, kind) for c in
                  await self._listing(session, listing, {"limit": "1"})]
        if not newest or newest[0] is None or _id36(newest[0]) <= _id36(anchor):
            return
        log.warning("reddit: r/%s/%s: nothing newer than %s although %s exists; the anchor "
                    "was probably deleted, catching up from the newest page",
                    self.subreddits, listing, anchor, newest[0])
        children = await self._listing(session, listing, {"limit": str(PAGE)})
        for item in self.read_page(listing, kind, children, after=_id36(anchor)):
            yield item

    def read_page(self, listing: str, kind: str, children: list[dict[str, Any]],
                  after: int | None) -> list[Post | Rejected]:
        """A page (newest first) as posts oldest first; moves the listing's anchor."""
        key = self.cursor_key(listing)
        source_url = f"{self.api}/r/{self.subreddits}/{listing}"
        out: list[Post | Rejected] = []
        for child in reversed(children):
            name = _fullname(child, kind)
            if name is not None:
                if after is not None and _id36(name) <= after:
                    continue
                current = self._anchors.get(listing)
                if current is None or _id36(name) > _id36(current):
                    self._anchors[listing] = name
            if child.get("kind") != kind or not isinstance(child.get("data"), dict):
                out.append(Rejected(self.name, "bad_field", f"a {kind} listing child expected",
                                    source_url))
                continue
            try:
                post = thing_to_post(kind, child["data"], source_url=source_url,
                                     retrieved_at=self._clock())
            except DecodeError as exc:
                out.append(Rejected(self.name, exc.reason, exc.detail, f"{source_url} {name}"))
                continue
            except Exception as exc:  # an odd thing must not stop the listing
                log.warning("reddit: cannot read %s: %r", name, exc)
                out.append(Rejected(self.name, "bad_field", repr(exc)[:120], f"{source_url} {name}"))
                continue
            if not self._remember(post.id):
                continue
            post.checkpoint = (key, self._anchors[listing] or name or "")
            out.append(post)
        return out

    def _remember(self, post_id: str) -> bool:
        return self._seen.add(post_id)
