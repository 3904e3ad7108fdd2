"""What the scale-out worker's moderation table costs: changelog bytes, CPU, restore time.

    python -m monitor.bench.windows [--posts 40000] [--partitions 8] [--restore 10000 50000]

In this process, on synthetic posts spread over partitions by post id (as
the collector keys them), one batch of 256 at a time:

* ``moderator``: one :class:`Moderator` per partition, no table (the baseline);
* ``dict table``: :class:`PartitionWindows` remembering each post in a dict;
* ``faust table``: the same into the worker's :class:`PartitionKeyedTable` of a
  Faust app with no broker: every write goes through Faust's changelog path
  up to its producer buffer (what the network send adds is not counted).

CPU-µs per post are process CPU time (``time.process_time``), meaningful on
a shared machine. Changelog bytes count key + value of every write and the
key of every delete (tombstone), per post. ``restore`` times rebuilding one
partition's windows from N remembered posts (decode, sort, replay).
Content tags are empty: the detectors' state does not depend on them.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import zlib
from collections.abc import Callable, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from monitor.codec import post_from_mapping
from monitor.model import Post, Tags
from monitor.moderation.config import ModerationConfig
from monitor.moderation.moderator import Moderator
from monitor.scaleout.windows import PartitionKeyedTable, PartitionWindows

from .synth import synthetic_posts

__all__ = ["main"]

BATCH = 256
_TAGS = Tags("en")


class Counted(dict[bytes, bytes]):
    """A dict table that counts what its changelog would carry."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = self.writes = self.deletes = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.bytes += len(key) + len(value)
        self.writes += 1
        super().__setitem__(key, value)

    def pop(self, key: bytes, default: Any = None) -> Any:
        if key in self:
            self.bytes += len(key)
            self.deletes += 1
        return super().pop(key, default)


Placed = list[tuple[int, int, Post]]


def placed_posts(count: int, partitions: int) -> Placed:
    # a five-minute burst: the whole 10-minute window stays live, the table at its largest
    start = datetime(2026, 2, 21, 12, 0, tzinfo=UTC)
    offsets = [0] * partitions
    out = []
    for i, record in enumerate(synthetic_posts(count)):
        record["created_at"] = (start + timedelta(seconds=300 * i / count)).isoformat()
        post = post_from_mapping(record)
        partition = zlib.crc32(post.id.encode()) % partitions
        out.append((partition, offsets[partition], post))
        offsets[partition] += 1
    return out


def batches(placed: Placed) -> list[dict[int, tuple[list[int], list[Post]]]]:
    out = []
    for i in range(0, len(placed), BATCH):
        groups: dict[int, tuple[list[int], list[Post]]] = {}
        for partition, offset, post in placed[i:i + BATCH]:
            offsets, posts = groups.setdefault(partition, ([], []))
            offsets.append(offset)
            posts.append(post)
        out.append(groups)
    return out


def cpu_us_per_post(run: Callable[[], None], posts: int) -> float:
    started = time.process_time()
    run()
    return (time.process_time() - started) / posts * 1e6


def through_moderators(work: Sequence[dict[int, tuple[list[int], list[Post]]]]) -> None:
    moderators: dict[int, Moderator] = {}
    for groups in work:
        for partition, (_, posts) in groups.items():
            mod = moderators.setdefault(partition, Moderator(ModerationConfig()))
            mod.moderate(posts, [_TAGS] * len(posts))


def through_windows(work: Sequence[dict[int, tuple[list[int], list[Post]]]],
                    table: MutableMapping[bytes, bytes]) -> PartitionWindows:
    windows = PartitionWindows.for_moderator(Moderator(ModerationConfig()), table=table)
    for groups in work:
        for partition, (offsets, posts) in groups.items():
            windows.moderate(partition, offsets, posts, [_TAGS] * len(posts),
                             first_offset=offsets[0])
    return windows


def faust_table(partitions: int) -> PartitionKeyedTable:
    app = faust.App("bench-windows", broker="kafka://127.0.0.1:9", web_enabled=False,
                    topic_partitions=partitions)
    table = app.tables.add(PartitionKeyedTable(
        app, name="moderation", beacon=app.tables.beacon, partitions=partitions,
        key_type=bytes, value_type=bytes))
    return table


def restore_ms(records: int) -> tuple[float, float]:
    """(wall ms, CPU ms) to rebuild one partition from ``records`` remembered posts."""
    table: dict[bytes, bytes] = {}
    through_windows(batches(placed_posts(records, 1)), table)
    fresh = PartitionWindows.for_moderator(Moderator(ModerationConfig()), table=table,
                                           max_records=records)
    cpu = time.process_time()
    fresh.moderate(0, [], [], [], first_offset=records + 1)
    cpu = time.process_time() - cpu
    (done,) = fresh.restored
    assert done.replayed == min(records, len(table) - 1), (done, len(table))
    return done.seconds * 1e3, cpu * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.bench.windows",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=40_000, help="synthetic posts (40000)")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--restore", type=int, nargs="+", default=[10_000, 50_000],
                        help="remembered posts to restore one partition from (10000 50000)")
    args = parser.parse_args(argv)
    placed = placed_posts(args.posts, args.partitions)
    work = batches(placed)
    print(f"{args.posts} synthetic posts over 5 minutes, {args.partitions} partitions, "
          f"batches of {BATCH}", flush=True)
    base = cpu_us_per_post(lambda: through_moderators(work), args.posts)
    print(f"moderator    {base:7.1f} CPU-us/post", flush=True)
    counted = Counted()
    with_dict = cpu_us_per_post(lambda: through_windows(work, counted), args.posts)
    print(f"dict table   {with_dict:7.1f} CPU-us/post (+{with_dict - base:.1f}); changelog "
          f"{counted.bytes / args.posts:.0f} bytes/post ({counted.writes} writes, "
          f"{counted.deletes} deletes), {len(counted)} records held at the end", flush=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        table = faust_table(args.partitions)
        with_faust = cpu_us_per_post(lambda: through_windows(work, table), args.posts)
        print(f"faust table  {with_faust:7.1f} CPU-us/post (+{with_faust - base:.1f}) "
              "up to Faust's producer buffer", flush=True)
    finally:
        loop.close()
    for records in args.restore:
        wall, cpu = restore_ms(records)
        print(f"restore      {records:>7} posts: {wall:7.1f} ms wall, {cpu:7.1f} CPU-ms "
              f"({cpu / records * 1e3:.1f} CPU-us/post)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
