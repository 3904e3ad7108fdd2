"""The one small interface every source implements, built-ins included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from monitor.model import Post

__all__ = ["PLATFORMS", "Rejected", "Source", "platform_label"]

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
