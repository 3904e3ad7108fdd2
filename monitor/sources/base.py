"""The one small interface every source implements, built-ins included."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from monitor.model import Post
from monitor.sources.cursor import CursorStore, MemoryCursorStore

__all__ = ["ERROR_KINDS", "PLATFORMS", "Rejected", "Source", "SourceContext", "platform_label"]

#: Bounded kinds of source errors, the ``kind`` label of social_source_errors_total.
ERROR_KINDS: frozenset[str] = frozenset(
    {"connect", "timeout", "rate_limited", "http_4xx", "http_5xx", "auth", "malformed",
     "protocol", "other"}
)

#: Source names that may appear as a metric label; anything else counts as "other".
PLATFORMS: frozenset[str] = frozenset(
    {"bluesky", "mastodon", "x", "reddit", "rss", "mqtt", "replay", "kafka"}
)


def platform_label(name: str | None) -> str:
    """A bounded metric label for a source name taken from untrusted input."""
    return name if name in PLATFORMS else "other"


@dataclass(slots=True, frozen=True)
class Rejected:
    """Input a source could not turn into a Post: counted by reason, never fatal."""

    source: str
    reason: str
    detail: str = ""
    where: str = ""


def _ignore(*_args: object) -> None:
    return None


@dataclass(slots=True)
class SourceContext:
    """What the runtime gives every source: resume positions, campaign filters, hooks.

    The hooks are how a source reports its health without importing the
    metrics module: ``up(name, bool)``, ``reconnected(name)``,
    ``error(name, kind)`` with ``kind`` from ERROR_KINDS.
    """

    cursors: CursorStore = field(default_factory=MemoryCursorStore)
    hashtags: frozenset[str] = frozenset()
    terms: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    up: Callable[[str, bool], None] = _ignore
    reconnected: Callable[[str], None] = _ignore
    error: Callable[[str, str], None] = _ignore


@runtime_checkable
class Source(Protocol):
    """An async stream of posts (and counted rejections) from one place."""

    #: platform name, used as the ``source`` metric label
    name: str
    #: True when the stream ends by itself (a replay file), False for live feeds
    finite: bool

    def stream(self) -> AsyncIterator[Post | Rejected]:
        """Yield posts until exhausted or cancelled; cancellation must be clean."""
        ...
