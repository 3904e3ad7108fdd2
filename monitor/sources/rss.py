"""``rss:URL[?every=300]``: an RSS 2.0 or Atom feed, polled with conditional GET.

Every poll sends the last ``ETag`` as ``If-None-Match`` and the last
``Last-Modified`` as ``If-Modified-Since``; a ``304 Not Modified`` means
nothing new. Items are told apart by their ``guid`` (RSS) or ``id`` (Atom),
else their link: the post id is ``rss:{guid or link}``, and items already
passed on are never passed on again, however the server answers. The
cursor holds the validators and a bounded memory of item ids (as short
digests), so a restart neither refetches an unchanged feed nor repeats an
item. ``every`` is taken out of the URL; the rest of its query stays.

The XML is parsed with expat and refused if it declares a DTD or entities
(billion laughs, external entities), as defusedxml does; HTML summaries
become plain text, their links the post's links.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from xml.parsers import expat

import aiohttp
import orjson

from monitor.codec import MAX_TEXT_CHARS, DecodeError, format_time, post_from_mapping
from monitor.model import Post
from monitor.sources import SourceError
from monitor.sources.backoff import Backoff, parse_retry_after
from monitor.sources.base import Rejected, SourceContext
from monitor.sources.html import parse_html
from monitor.sources.http import SourceFailure, read_body, status_kind
from monitor.sources.names import collector, user_agent
from monitor.sources.polling import PollHealth, poll_forever
from monitor.sources.seen import RecentIds

__all__ = ["FeedEntry", "FeedError", "FeedSource", "FeedTimings", "html_to_text", "parse_feed",
           "parse_xml"]

log = logging.getLogger(__name__)

USER_AGENT = user_agent("feed reader; conditional GET")
ACCEPT = ("application/rss+xml, application/atom+xml;q=0.9, application/xml;q=0.8, "
          "text/xml;q=0.7, */*;q=0.1")
ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XHTML = "{http://www.w3.org/1999/xhtml}"
_MAX_ID_CHARS = 2048
_MAX_VALIDATOR = 512


@dataclass(frozen=True, slots=True)
class FeedTimings:
    """Polling pace and limits (tests shrink them)."""

    #: seconds between polls
    every: float = 300.0
    #: errors: exponential backoff with full jitter from this ...
    backoff_base: float = 5.0
    #: ... up to this
    backoff_cap: float = 1800.0
    request_timeout: float = 60.0
    #: largest feed read (after decompression)
    max_bytes: int = 10 * 1024 * 1024
    #: item ids remembered (in the cursor too) to pass each item on once
    remember: int = 1000


class FeedError(ValueError):
    """A response that is not a feed we read: not XML, unsafe XML, neither RSS nor Atom."""


def parse_xml(data: bytes) -> ET.Element:
    """Parse XML, refusing DTDs and entity declarations (defusedxml's rules)."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")

    def qname(name: str) -> str:
        uri, sep, local = name.rpartition(" ")
        return f"{{{uri}}}{local}" if sep else name

    def forbid(*_args: object) -> None:
        raise FeedError("the feed declares a DTD or entities; refused (entity expansion and "
                        "external entities are attacks on parsers)")

    parser.StartElementHandler = lambda tag, attrs: builder.start(
        qname(tag), {qname(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda tag: builder.end(qname(tag))
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.UnparsedEntityDeclHandler = forbid
    parser.ExternalEntityRefHandler = forbid  # type: ignore[assignment]
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise FeedError(f"not well-formed XML ({exc})") from None
    return builder.close()


def html_to_text(markup: str) -> tuple[str, tuple[str, ...]]:
    """Plain text of an HTML summary and its links (the shared :mod:`monitor.sources.html`)."""
    parsed = parse_html(markup)
    return parsed.text, parsed.links


@dataclass(slots=True)
class FeedEntry:
    """One item of a feed, format-neutral."""

    key: str | None
    title: str
    summary: str
    links: tuple[str, ...]
    link: str | None
    author: str | None
    published: datetime | None
    lang: str | None


def _text(element: ET.Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def _date(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset: unreadable like any other bad date
        return None


def _lang(value: str | None) -> str | None:
    primary = (value or "").strip().replace("_", "-").split("-")[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def _rss_entries(channel: ET.Element, base: str) -> Iterator[FeedEntry]:
    lang = _lang(_text(channel.find("language")))
    for item in channel.findall("item"):
        title, title_links = html_to_text(_text(item.find("title")))
        body = _text(item.find("description")) or _text(item.find(CONTENT + "encoded"))
        summary, links = html_to_text(body)
        link = _text(item.find("link"))
        link = urljoin(base, link) if link else None
        yield FeedEntry(
            key=_text(item.find("guid")) or link,
            title=title, summary=summary, links=(*title_links, *links), link=link,
            author=_text(item.find("author")) or _text(item.find(DC + "creator")) or None,
            published=_date(_text(item.find("pubDate")) or _text(item.find(DC + "date"))),
            lang=lang)


def _atom_text(element: ET.Element | None) -> tuple[str, tuple[str, ...]]:
    if element is None:
        return "", ()
    kind = element.get("type", "text")
    if kind == "html":
        return html_to_text(_text(element))
    if kind == "xhtml":
        links = tuple(a.get("href", "") for a in element.iter(XHTML + "a")
                      if a.get("href", "").startswith(("http://", "https://")))
        return " ".join(_text(element).split()), links
    return _text(element), ()


def _atom_link(entry: ET.Element, base: str) -> str | None:
    for link in entry.findall(ATOM + "link"):
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return urljoin(base, link.get("href", ""))
    return None


def _atom_entries(feed: ET.Element, base: str) -> Iterator[FeedEntry]:
    feed_author = _text(feed.find(f"{ATOM}author/{ATOM}name")) or None
    feed_lang = feed.get(XML_LANG)
    for entry in feed.findall(ATOM + "entry"):
        title, title_links = _atom_text(entry.find(ATOM + "title"))
        summary, links = _atom_text(entry.find(ATOM + "summary"))
        if not summary:
            summary, links = _atom_text(entry.find(ATOM + "content"))
        link = _atom_link(entry, base)
        yield FeedEntry(
            key=_text(entry.find(ATOM + "id")) or link,
            title=title, summary=summary, links=(*title_links, *links), link=link,
            author=_text(entry.find(f"{ATOM}author/{ATOM}name")) or feed_author,
            published=_date(_text(entry.find(ATOM + "published"))
                            or _text(entry.find(ATOM + "updated"))),
            lang=_lang(entry.get(XML_LANG) or feed_lang))


def parse_feed(data: bytes, base: str) -> Iterator[FeedEntry]:
    """The entries of an RSS 2.0 or Atom document, in document order."""
    root = parse_xml(data)
    if root.tag == "rss" and (channel := root.find("channel")) is not None:
        return _rss_entries(channel, base)
    if root.tag == ATOM + "feed":
        return _atom_entries(root, base)
    raise FeedError(f"neither RSS 2.0 nor Atom (root element {root.tag[:80]!r})")


def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


class FeedSource:
    """Polls one feed; each item is passed on once, in publication order."""

    name = "rss"
    finite = False

    def __init__(self, url: str, *, context: SourceContext | None = None,
                 timings: FeedTimings | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 rng: random.Random | None = None) -> None:
        self.url = url
        self.context = context or SourceContext()
        self.timings = timings or FeedTimings()
        self.cursor_key = f"rss:{url}"
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff = Backoff(self.timings.backoff_base, self.timings.backoff_cap, rng=rng)
        self._etag: str | None = None
        self._modified: str | None = None
        self._seen: RecentIds[str] = RecentIds(self.timings.remember)
        self._health = PollHealth(self.context, self.name, url, log)
        self._collector = collector("rss")

    def __repr__(self) -> str:
        return f"FeedSource({self.url!r})"

    @classmethod
    def from_uri(cls, uri: str, context: SourceContext | None = None) -> FeedSource:
        """``rss:https://HOST/PATH[?every=SECONDS]``; the feed's own query is kept."""
        url = uri.split(":", 1)[1]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SourceError(f"{uri}: write rss:https://HOST/PATH (an http or https feed URL)")
        query = parse_qsl(parts.query, keep_blank_values=True)
        every = [v for k, v in query if k == "every"]
        try:
            seconds = float(every[-1]) if every else FeedTimings().every
        except ValueError:
            seconds = 0.0
        if not 1 <= seconds <= 86_400:
            raise SourceError(f"{uri}: every={every[-1]!r}: give seconds between polls, "
                              "1 to 86400")
        feed_url = urlunsplit(parts._replace(
            query=urlencode([(k, v) for k, v in query if k != "every"]), fragment=""))
        return cls(feed_url, context=context, timings=FeedTimings(every=seconds))

    # -- the cursor ------------------------------------------------------------

    def _load_cursor(self) -> None:
        saved = self.context.cursors.get(self.cursor_key)
        if not saved:
            return
        try:
            state = orjson.loads(saved)
        except orjson.JSONDecodeError:
            log.warning("rss: %s: unreadable cursor; reading the feed from scratch", self.url)
            return
        if not isinstance(state, dict):
            return
        self._etag = state.get("etag") if isinstance(state.get("etag"), str) else None
        self._modified = state.get("modified") if isinstance(state.get("modified"), str) else None
        for digest in state.get("seen") or ():
            if isinstance(digest, str):
                self._remember(digest)

    def _position(self) -> str:
        return orjson.dumps({"etag": self._etag, "modified": self._modified,
                             "seen": list(self._seen)}).decode()

    def _remember(self, digest: str) -> bool:
        return self._seen.add(digest)

    # -- the loop ----------------------------------------------------------------

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        self._load_cursor()
        timeout = aiohttp.ClientTimeout(total=self.timings.request_timeout)
        headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            try:
                async with aclosing(poll_forever(
                        lambda: self._poll_items(session), every=self.timings.every,
                        backoff=self._backoff, rng=self._rng,
                        wait_after=self._wait_after)) as items:
                    async for item in items:
                        yield item
            finally:
                self.context.up(self.name, False)

    async def _poll_items(self, session: aiohttp.ClientSession) -> AsyncIterator[Post | Rejected]:
        for item in await self._poll(session):
            yield item

    async def _wait_after(self, failure: SourceFailure) -> None:
        self.context.error(self.name, failure.kind)
        self._health.mark_down()
        delay = self._backoff.next_delay(failure.retry_after)
        if failure.kind in ("http_4xx", "auth", "malformed", "protocol"):
            delay = max(delay, self.timings.every)  # no sooner than the next regular poll
        log.warning("rss: %s: %s; next attempt in %.1f s", self.url, failure, delay)
        await asyncio.sleep(delay)

    async def _poll(self, session: aiohttp.ClientSession) -> list[Post | Rejected]:
        """One conditional GET: the new items, oldest first (empty on 304)."""
        headers = {}
        if self._etag:
            headers["If-None-Match"] = self._etag
        if self._modified:
            headers["If-Modified-Since"] = self._modified
        async with session.get(self.url, headers=headers, max_redirects=5) as resp:
            if resp.status == 304:
                self._health.mark_up()
                self._etag = self._validator(resp.headers.get("ETag")) or self._etag
                return []
            if resp.status != 200:
                wait = (parse_retry_after(resp.headers.get("Retry-After"))
                        if resp.status in (429, 503) else None)
                raise SourceFailure(status_kind(resp.status), f"HTTP {resp.status}", wait)
            body = await read_body(resp, self.timings.max_bytes, "the feed")
            etag = self._validator(resp.headers.get("ETag"))
            modified = self._validator(resp.headers.get("Last-Modified"))
            final_url = str(resp.url)
        self._health.mark_up()
        try:
            entries = list(parse_feed(body, final_url))
        except FeedError as exc:
            raise SourceFailure("malformed", str(exc)) from None
        self._etag, self._modified = etag, modified
        return self.read_items(entries, final_url)

    @staticmethod
    def _validator(value: str | None) -> str | None:
        return value if value and len(value) <= _MAX_VALIDATOR else None

    def read_items(self, entries: list[FeedEntry], where: str) -> list[Post | Rejected]:
        retrieved = self._clock()
        ordered = sorted(reversed(entries), key=lambda e: e.published or retrieved)
        out: list[Post | Rejected] = []
        last_post: Post | None = None
        for entry in ordered:
            digest = _digest(entry.key or f"{entry.title}\x00{entry.summary}")
            if not self._remember(digest):
                continue
            try:
                post = self._to_post(entry, retrieved)
            except DecodeError as exc:
                out.append(Rejected(self.name, exc.reason, exc.detail,
                                    f"{where} item {(entry.key or entry.title)[:80]!r}"))
                continue
            out.append(post)
            last_post = post
        if last_post is not None:  # durable last item = every earlier one durable too
            last_post.checkpoint = (self.cursor_key, self._position())
        return out

    def _to_post(self, entry: FeedEntry, retrieved: datetime) -> Post:
        if not entry.key:
            raise DecodeError("missing_field:id", "an item needs a guid, an id or a link")
        if len(entry.key) > _MAX_ID_CHARS:
            raise DecodeError("bad_field", f"an item id of {len(entry.key)} characters")
        text = entry.title
        if entry.summary and entry.summary != entry.title:
            text = f"{text}\n\n{entry.summary}" if text else entry.summary
        record: dict[str, Any] = {
            "id": f"rss:{entry.key}",
            "source": "rss",
            "text": text[:MAX_TEXT_CHARS],
            "created_at": format_time(entry.published or retrieved),
            "author": entry.author,
            "lang": entry.lang,
            "url": entry.link,
            "links": list(dict.fromkeys(link for link in (entry.link, *entry.links) if link)),
            "collector": self._collector,
            "source_url": self.url,
            "retrieved_at": format_time(retrieved),
        }
        return post_from_mapping(record, default_source="rss")
