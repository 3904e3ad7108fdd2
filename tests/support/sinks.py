"""A sink for tests: what the runtime hands to every output, kept in memory."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.model import TaggedPost

__all__ = ["Collecting"]


class Collecting:
    """A Sink keeping every tagged post it is given, in order, as an MQTT or Kafka sink
    would send them."""

    name = "collect"

    def __init__(self) -> None:
        self.posts: list[TaggedPost] = []

    async def start(self) -> None:
        pass

    async def write(self, batch: Sequence[TaggedPost]) -> None:
        self.posts.extend(batch)

    async def close(self) -> None:
        pass

    @property
    def ids(self) -> list[str]:
        return [t.post.id for t in self.posts]
