"""Sources: one module per platform behind :class:`monitor.sources.base.Source`.

A source is named by a URI (``replay:posts.jsonl?speed=max``); the scheme
picks the module from :data:`SOURCE_TYPES`, the one list of built-ins.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from monitor.sources.base import Rejected, Source, SourceContext

__all__ = ["SOURCE_TYPES", "Rejected", "Source", "SourceContext", "SourceError", "open_source"]

#: URI scheme -> "module:factory"; a factory takes (uri, SourceContext) and returns a Source.
SOURCE_TYPES: dict[str, str] = {
    "replay": "monitor.sources.replay:ReplaySource.from_uri",
    "bluesky": "monitor.sources.bluesky:BlueskySource.from_uri",
    "mastodon": "monitor.sources.mastodon:MastodonSource.from_uri",
    "mqtt": "monitor.sources.mqtt:MqttSource.from_uri",
    "x": "monitor.sources.x:XSource.from_uri",
    "reddit": "monitor.sources.reddit:RedditSource.from_uri",
    "rss": "monitor.sources.rss:FeedSource.from_uri",
}


class SourceError(ValueError):
    """A source URI that cannot be used, with what to write instead."""


def open_source(uri: str, context: SourceContext | None = None) -> Source:
    """Build the source a URI names, or raise SourceError saying what is wrong."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    target = SOURCE_TYPES.get(scheme)
    if target is None:
        known = ", ".join(f"{s}:" for s in SOURCE_TYPES)
        raise SourceError(f"unknown source {uri!r}; use one of {known} (e.g. replay:posts.jsonl)")
    module, _, attr = target.partition(":")
    factory: Callable[[str, SourceContext], Source] = importlib.import_module(module)  # type: ignore[assignment]
    for part in attr.split("."):
        factory = getattr(factory, part)
    return factory(uri, context or SourceContext())
