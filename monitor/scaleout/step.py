"""One batch of the worker: posts topic records in, tagged and flag records out.

Plain synchronous code around :meth:`Processor.process`, so the Faust agent
only moves bytes and the logic is tested without a broker. A record that
does not decode is counted (``social_posts_rejected_total{source="kafka"}``)
and skipped: it was accepted upstream, so it is logged with its place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from monitor.codec import DecodeError, decode_post, encode_tagged, tagged_to_dict
from monitor.model import Post, TaggedPost
from monitor.processor import Processor
from monitor.scaleout.windows import PartitionWindows
from monitor.sinks.metrics import Metrics

__all__ = ["FLAG_FIELDS", "Record", "StepResult", "WorkerStep", "flag_records"]

log = logging.getLogger(__name__)

#: The post fields every flag record carries (as the MQTT flags do).
FLAG_FIELDS = ("id", "source", "created_at", "url", "lang", "themes", "author")


@dataclass(frozen=True, slots=True)
class Record:
    """One message to produce: key (the post id) and JSON value."""

    key: bytes
    value: bytes


@dataclass(slots=True)
class StepResult:
    """One batch's records for the tagged and flags topics, and its counts."""

    tagged: list[Record] = field(default_factory=list)
    flags: list[Record] = field(default_factory=list)
    processed: int = 0
    duplicates: int = 0
    rejected: int = 0


def flag_records(tagged: TaggedPost, author: Callable[[str], str] | None) -> list[Record]:
    """One record per flag: the flag and the post's headline fields."""
    record = tagged_to_dict(tagged, author=author)
    post = {name: record.get(name) for name in FLAG_FIELDS}
    key = tagged.post.id.encode()
    return [Record(key, orjson.dumps({**flag, "evidence": flag.get("evidence", ""), **post}))
            for flag in record["flags"]]


class WorkerStep:
    """Decode, process, count, encode: everything a worker does to one batch.

    ``author`` pseudonymizes the flags' author field (bots read them); the
    tagged records keep the handle as collected, because the archiver
    pseudonymizes with the archive's own key when it writes.
    ``windows``: moderation per source partition (the processor then has no
    moderator of its own); each call passes the records' partitions and offsets.
    """

    def __init__(self, processor: Processor, metrics: Metrics, *,
                 author: Callable[[str], str] | None = None,
                 windows: PartitionWindows | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if windows is not None and processor.moderator is not None:
            raise ValueError("moderate either per partition (windows) or in the processor")
        self.processor = processor
        self.metrics = metrics
        self.author = author
        self.windows = windows
        self.clock = clock

    def __call__(self, values: Sequence[bytes], timestamps: Sequence[float | None] = (),
                 where: Sequence[str] = (), *, partitions: Sequence[int] = (),
                 offsets: Sequence[int] = ()) -> StepResult:
        """``timestamps``: when each record entered the topic (wall seconds), for latency;
        ``partitions`` and ``offsets``: where each came from (needed with ``windows``)."""
        if self.windows is not None and not len(partitions) == len(offsets) == len(values):
            raise ValueError("per-partition moderation needs each record's partition and offset")
        out = StepResult()
        posts: list[Post] = []
        enqueued: list[float] = []
        place: dict[int, int] = {}  # id(post) -> index of its record
        wall, mono = self.clock(), time.monotonic()
        for i, value in enumerate(values):
            try:
                posts.append(decode_post(value))
            except DecodeError as exc:
                out.rejected += 1
                self.metrics.record_rejected("kafka", exc.reason)
                log.warning("record %s does not decode: %s", where[i] if where else i, exc)
                continue
            stamp = timestamps[i] if i < len(timestamps) else None
            enqueued.append(mono - max(0.0, wall - stamp) if stamp else mono)
            place[id(posts[-1])] = i
        if not posts:
            return out
        result = self.processor.process(posts)
        if self.windows is not None and result.tagged:
            self._moderate(result.tagged, place, partitions, offsets)
        metrics = self.metrics
        kept = {id(t.post) for t in result.tagged}
        metrics.record_tagged(result.tagged,
                              [t for p, t in zip(posts, enqueued, strict=True) if id(p) in kept],
                              wall)
        if result.duplicates:
            metrics.record_duplicates(p.source for p in result.duplicates)
        if result.failed:
            metrics.record_failed(p.source for p, _ in result.failed)
        out.processed = len(result.tagged)
        out.duplicates = len(result.duplicates)
        author = self.author
        for tagged in result.tagged:
            out.tagged.append(Record(tagged.post.id.encode(), encode_tagged(tagged)))
            if tagged.all_flags:
                out.flags.extend(flag_records(tagged, author))
        return out

    def _moderate(self, tagged: list[TaggedPost], place: dict[int, int],
                  partitions: Sequence[int], offsets: Sequence[int]) -> None:
        """Each partition's posts through its own windows, in offset order."""
        assert self.windows is not None
        first: dict[int, int] = {}
        for partition, offset in zip(partitions, offsets, strict=True):
            if partition not in first or offset < first[partition]:
                first[partition] = offset
        groups: dict[int, list[TaggedPost]] = {}
        for item in tagged:
            groups.setdefault(partitions[place[id(item.post)]], []).append(item)
        for partition, items in groups.items():
            flags = self.windows.moderate(
                partition, [offsets[place[id(t.post)]] for t in items], [t.post for t in items],
                [t.tags for t in items], first_offset=first[partition])
            for item, extra in zip(items, flags, strict=True):
                item.flags = extra
