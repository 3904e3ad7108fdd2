"""The scale-out topics, created with the partition counts the settings ask for.

Faust keeps a table's changelog partition in step with the partition of the
event being processed, and the archive and flags consumers scale by
partitions too, so every topic gets the same count. An existing topic with
another count is refused with the fix, never silently used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

__all__ = ["TopicError", "Topics", "ensure_topics"]

log = logging.getLogger(__name__)


class TopicError(RuntimeError):
    """A topic that cannot be created or has the wrong shape; the message says the fix."""


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names and their shape (the ``[kafka]`` table of the config, or flags)."""

    posts: str = "posts"
    tagged: str = "tagged"
    flags: str = "flags"
    partitions: int = 8
    replication: int = 1

    def __post_init__(self) -> None:
        if self.partitions < 1 or self.replication < 1:
            raise ValueError("partitions and replication must be at least 1")
        if len({self.posts, self.tagged, self.flags}) < 3:
            raise ValueError(f"the posts, tagged and flags topics must differ "
                             f"(got {self.posts!r}, {self.tagged!r}, {self.flags!r})")

    @property
    def names(self) -> tuple[str, str, str]:
        return (self.posts, self.tagged, self.flags)


async def ensure_topics(bootstrap: str, names: Iterable[str], partitions: int,
                        replication: int, *, timeout_ms: int = 15_000) -> None:
    """Create missing topics; refuse existing ones whose partition count differs."""
    wanted = list(dict.fromkeys(names))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await admin.start()
    except KafkaError as exc:
        raise TopicError(f"cannot reach the Kafka broker at {bootstrap} ({exc}); is it "
                         "running, and is the URL right?") from None
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(n, partitions, replication) for n in missing])
                log.info("created topics %s (%d partitions, replication %d)",
                         ", ".join(missing), partitions, replication)
            except TopicAlreadyExistsError:  # another process won the race
                pass
        described = await admin.describe_topics(wanted)
        for item in described:
            name = item["topic"]
            count = len(item.get("partitions") or ())
            if count != partitions:
                raise TopicError(
                    f"topic {name!r} has {count} partitions, the settings say {partitions}; "
                    f"pass --partitions {count} (or [kafka] partitions = {count}), or "
                    "recreate the topic")
    except KafkaError as exc:
        raise TopicError(f"creating topics on {bootstrap} failed: {exc}") from None
    finally:
        await admin.close()
