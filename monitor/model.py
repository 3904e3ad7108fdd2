"""The data model every source, processor, sink and test shares.

Plain slotted dataclasses: cheap to build on the hot path, immutable where
they cross a boundary. The JSON form lives in :mod:`monitor.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, TypeVar

__all__ = [
    "FLAG_KINDS",
    "LAYERS",
    "SEVERITIES",
    "Flag",
    "LabelScore",
    "Post",
    "TaggedPost",
    "Tags",
]

#: The four tagging layers and the flag layer, in the order reports list them.
LAYERS: tuple[str, ...] = ("theme", "claim", "reason", "flag")

#: Moderation flag kinds: a fixed set because alerts and dashboards key on it.
FLAG_KINDS: tuple[str, ...] = ("spam", "nsfw", "csam_risk", "harassment", "off_topic")

#: Flag severities, least to most urgent.
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")


_T = TypeVar("_T")


def _pickled_by_constructor(cls: type[_T]) -> type[_T]:
    """Pickle as one constructor call. Tags cross the tagging process's pipe by the
    thousand a second, and a slotted dataclass's own ``__setstate__`` (Python, field by
    field) made loading them cost ~17 us a post in the event loop's process; ~5 now."""
    values = attrgetter(*(f.name for f in fields(cls)))  # type: ignore[arg-type]

    def __reduce__(self: _T) -> tuple[type[_T], tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls


@dataclass(slots=True)
class Post:
    """One post as a collector saw it, before any tagging."""

    id: str
    source: str
    text: str
    created_at: datetime
    author: str | None = None
    lang: str | None = None
    url: str | None = None
    hashtags: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    reply_to: str | None = None
    quote_of: str | None = None
    repost_of: str | None = None
    engagement: dict[str, int] | None = None
    collector: str | None = None
    source_url: str | None = None
    retrieved_at: datetime | None = None
    raw: Any = None
    #: (cursor key, position) to commit once this post is durable; never encoded
    checkpoint: tuple[str, str] | None = None


@_pickled_by_constructor
@dataclass(slots=True, frozen=True)
class LabelScore:
    """A label given (or, in shadow mode, that would be given) and why."""

    label: str
    score: float
    rules: tuple[str, ...]


@_pickled_by_constructor
@dataclass(slots=True, frozen=True)
class Flag:
    """A moderation signal: never a verdict, always traceable to one rule."""

    kind: str
    severity: str
    rule: str
    evidence: str = ""
    detail: dict[str, Any] | None = None


@_pickled_by_constructor
@dataclass(slots=True)
class Tags:
    """What the rules said about one post."""

    lang: str
    themes: tuple[LabelScore, ...] = ()
    claim: LabelScore | None = None
    reasons: tuple[LabelScore, ...] = ()
    flags: tuple[Flag, ...] = ()
    relevance: float = 0.0
    shadow: tuple[LabelScore, ...] = ()
    rule_hits: tuple[str, ...] = ()


@dataclass(slots=True)
class TaggedPost:
    """A post with its tags and the provenance needed to reproduce them."""

    post: Post
    tags: Tags
    ruleset: str
    ruleset_hash: str
    processor_version: str
    flags: tuple[Flag, ...] = field(default=())

    @property
    def all_flags(self) -> tuple[Flag, ...]:
        """Content flags from the rules plus stateful moderation flags."""
        return self.tags.flags + self.flags
