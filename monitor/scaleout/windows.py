"""Moderation windows per source partition, remembered in a changelog-backed table.

A worker keeps one :class:`Moderator` per partition of the posts topic it
consumes, and writes each moderated post's :class:`Remembered` inputs (about
350 bytes of JSON: no text, no handle) to a table under the key
``b"P:OFFSET"``, which lands in partition P of the table's changelog. The
worker that takes partition P over after a crash rebuilds P's Moderator on
P's first batch by replaying the records older than that batch's first
offset, in offset order: the posts after it (the dead worker's uncommitted
ones) are processed again and rewrite their own keys, so nothing is counted
twice. Each partition's salt (author hashes) is in the table too (``b"P:salt"``),
so the new owner hashes authors as the old one did.

Bounded: a record is deleted (a changelog tombstone) once its event time is
older than the longest window behind the partition's newest post, or once the
partition holds more than ``max_records``; replay skips what expired.
The ``table`` is any ``MutableMapping[bytes, bytes]``: a Faust table in the
worker (:class:`PartitionKeyedTable`), a dict in unit tests.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust

from monitor.model import Flag, Post, Tags
from monitor.moderation.moderator import Moderator
from monitor.moderation.remembered import Remembered

__all__ = ["PartitionKeyedTable", "PartitionWindows", "Restored"]

log = logging.getLogger(__name__)

_SALT = b"salt"


def _key(partition: int, offset: int) -> bytes:
    return b"%d:%d" % (partition, offset)


def _partition_of(key: bytes) -> int:
    return int(key.split(b":", 1)[0])


@dataclass(frozen=True, slots=True)
class Restored:
    """One partition's rebuild: posts replayed, records skipped, seconds taken."""

    partition: int
    replayed: int
    expired: int
    rejected: int
    seconds: float


@dataclass(slots=True)
class _Partition:
    moderator: Moderator
    #: (event time, key) of every record written or restored, in offset order
    records: deque[tuple[float, bytes]] = field(default_factory=deque)
    newest: float = float("-inf")


class PartitionWindows:
    """One Moderator per source partition, each rebuilt from ``table`` when first needed.

    ``make(salt)`` builds an empty Moderator (the ruleset's settings).
    ``horizon``: seconds a post can still matter to a window (the longest one).
    """

    def __init__(self, make: Callable[[bytes], Moderator], horizon: float, *,
                 max_records: int = 50_000,
                 table: MutableMapping[bytes, bytes] | None = None) -> None:
        if horizon <= 0 or max_records < 1:
            raise ValueError("horizon and max_records must be positive")
        self.make = make
        self.horizon = horizon
        self.max_records = max_records
        self.table: MutableMapping[bytes, bytes] = {} if table is None else table
        self.restored: list[Restored] = []
        self._partitions: dict[int, _Partition] = {}

    @classmethod
    def for_moderator(cls, template: Moderator, **kwargs: Any) -> PartitionWindows:
        """Moderators configured like ``template``; the horizon its longest window."""
        config = template.config
        trusted = tuple(template.state.trusted)
        return cls(lambda salt: Moderator(config, trusted, template.detectors, salt=salt),
                   max(config.window_seconds, config.author_burst_seconds), **kwargs)

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions with a live Moderator here."""
        return frozenset(self._partitions)

    def forget(self, partitions: set[int] | frozenset[int]) -> None:
        """Drop these partitions' Moderators (revoked, or assigned anew: rebuilt when next
        needed, since another worker may have moved their windows on meanwhile)."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    def moderate(self, partition: int, offsets: Sequence[int], posts: Sequence[Post],
                 tags: Sequence[Tags], *, first_offset: int) -> list[tuple[Flag, ...]]:
        """Moderate one partition's posts of a batch (in offset order) and remember them.

        ``first_offset``: the batch's first offset in this partition (with posts
        that did not decode or were duplicates), where a rebuild stops replaying.
        """
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = self._restore(partition, first_offset)
        remembered: list[Remembered] = []
        flags = state.moderator.moderate(posts, tags, remembered)
        table, records = self.table, state.records
        for offset, item in zip(offsets, remembered, strict=True):
            key = _key(partition, offset)
            table[key] = item.to_json()
            records.append((item.time, key))
            if item.time > state.newest:
                state.newest = item.time
        self._expire(state)
        return flags

    def _expire(self, state: _Partition) -> None:
        records, table = state.records, self.table
        horizon = state.newest - self.horizon
        while records and (records[0][0] <= horizon or len(records) > self.max_records):
            table.pop(records.popleft()[1], None)

    def _salt(self, partition: int) -> bytes:
        key = b"%d:%s" % (partition, _SALT)
        stored = self.table.get(key)
        if stored is not None:
            try:
                salt = bytes.fromhex(stored.decode("ascii"))
                if len(salt) == 16:
                    return salt
            except (UnicodeDecodeError, ValueError):
                pass
            log.warning("partition %d: the moderation salt in the table is malformed; "
                        "authors are hashed with a new one", partition)
        salt = os.urandom(16)
        self.table[key] = salt.hex().encode()
        return salt

    def _restore(self, partition: int, first_offset: int) -> _Partition:
        started = time.perf_counter()
        prefix = b"%d:" % partition
        found: list[tuple[int, bytes]] = []
        for key, value in list(self.table.items()):
            if key.startswith(prefix):
                tail = key[len(prefix):]
                if tail.isdigit() and int(tail) < first_offset:
                    found.append((int(tail), value))
        found.sort(key=lambda kv: kv[0])
        items: list[tuple[int, Remembered]] = []
        rejected = 0
        for offset, value in found:
            try:
                items.append((offset, Remembered.from_json(value)))
            except ValueError as exc:
                rejected += 1
                log.warning("partition %d: moderation record at offset %d skipped: %s",
                            partition, offset, exc)
        state = _Partition(self.make(self._salt(partition)))
        newest = max((r.time for _, r in items), default=float("-inf"))
        horizon = newest - self.horizon
        live = [(o, r) for o, r in items if r.time > horizon][-self.max_records:]
        kept = {o for o, _ in live}
        for offset, _ in found:
            if offset not in kept:
                self.table.pop(_key(partition, offset), None)
        replayed = state.moderator.replay(r for _, r in live)
        state.records.extend((r.time, _key(partition, o)) for o, r in live)
        state.newest = newest
        done = Restored(partition, replayed, len(items) - len(live), rejected,
                        time.perf_counter() - started)
        self.restored.append(done)
        if found:
            log.info("partition %d: moderation windows restored from %d posts in %.1f ms "
                     "(%d expired, %d rejected)", partition, replayed, done.seconds * 1e3,
                     done.expired, rejected)
        return state


class PartitionKeyedTable(faust.Table):  # type: ignore[misc]
    """A table whose keys name their changelog partition (``b"P:..."``).

    Faust picks a table write's changelog partition from the event being
    processed, which a batch taken with ``take_events`` does not have; the
    key says it here, and :meth:`partition_for_key` is the documented place
    to choose it. ``windows`` forgets the partitions a rebalance takes away
    or hands over, so they are rebuilt from the restored table.
    """

    windows: PartitionWindows | None = None
    source_topic: str = ""

    def partition_for_key(self, key: Any) -> int | None:
        return _partition_of(key)

    async def on_rebalance(self, assigned: set[Any], revoked: set[Any],
                           newly_assigned: set[Any], generation_id: int = 0) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        if self.windows is not None:
            self.windows.forget({tp.partition for tp in (*revoked, *newly_assigned)
                                 if tp.topic == self.source_topic})
