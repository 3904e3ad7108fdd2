"""Moderation windows per source partition, kept in a table and rebuilt from it.

The table here is a dict: what a worker's Faust table holds once its
changelog partition is restored. A "crash" is a second PartitionWindows over
the same dict, resuming each partition at its committed offset (the dead
worker's last batch uncommitted, so processed again).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.codec import encode_post
from monitor.model import Flag, Post
from monitor.moderation.config import ModerationConfig
from monitor.moderation.moderator import Moderator
from monitor.processor import Processor
from monitor.scaleout.step import WorkerStep
from monitor.scaleout.windows import PartitionWindows
from monitor.sinks.metrics import Metrics
from monitor.tagging import Tagger
from tests.moderation.conftest import OFF_CAMPAIGN
from tests.moderation.synth import replay, to_posts

PARTITIONS = 2
BATCH = 32
Placed = tuple[int, int, Post]  # partition, offset, post


@pytest.fixture(scope="module")
def stream() -> tuple[list[Placed], frozenset[str]]:
    """3,000 ordinary posts over six hours and a 160-post flood, spread over two partitions
    by post id as the collector's key does, with each partition's offsets."""
    made = replay(3_000, 160, flood_after=timedelta(hours=2, minutes=40))
    next_offset = [0] * PARTITIONS
    placed = []
    for post in to_posts(made.records):
        partition = sum(post.id.encode()) % PARTITIONS
        placed.append((partition, next_offset[partition], post))
        next_offset[partition] += 1
    return placed, made.flood_ids


def windows(table: dict[bytes, bytes] | None = None, **kwargs: object) -> PartitionWindows:
    return PartitionWindows.for_moderator(Moderator(ModerationConfig()), table=table,
                                          **kwargs)  # type: ignore[arg-type]


def run(w: PartitionWindows, placed: list[Placed]) -> dict[str, tuple[Flag, ...]]:
    """Batches as a worker takes them: each partition's posts through its windows."""
    out: dict[str, tuple[Flag, ...]] = {}
    for i in range(0, len(placed), BATCH):
        batch = placed[i:i + BATCH]
        for partition in {p for p, _, _ in batch}:
            mine = [(o, post) for p, o, post in batch if p == partition]
            flags = w.moderate(partition, [o for o, _ in mine], [post for _, post in mine],
                               [OFF_CAMPAIGN] * len(mine), first_offset=mine[0][0])
            out.update((post.id, f) for (_, post), f in zip(mine, flags, strict=True))
    return out


def flagged(flags: dict[str, tuple[Flag, ...]], ids: frozenset[str]) -> int:
    return sum(1 for i in ids if flags.get(i))


def test_the_worker_taking_over_goes_on_with_the_dead_ones_windows(
        stream: tuple[list[Placed], frozenset[str]]) -> None:
    placed, flood = stream
    crash = [i for i, (_, _, p) in enumerate(placed) if p.id in flood][60]
    uninterrupted = run(windows(), placed)

    table: dict[bytes, bytes] = {}
    run(windows(table), placed[:crash])
    # The dead worker's last batch was not committed: its successor processes it again.
    resumed = crash - BATCH // 2
    successor = windows(table)
    after = run(successor, placed[resumed:])
    assert {p.id: after[p.id] for _, _, p in placed[resumed:]} == \
        {p.id: uninterrupted[p.id] for _, _, p in placed[resumed:]}
    assert sorted(r.partition for r in successor.restored) == list(range(PARTITIONS))
    assert sum(r.replayed for r in successor.restored) > 0

    later = frozenset(p.id for _, _, p in placed[crash:]) & flood
    assert flagged(after, later) == len(later) == 100
    # A successor without the table starts with empty windows: the flood's next posts
    # on each partition pass until it has counted eight there again.
    assert flagged(run(windows(), placed[resumed:]), later) < len(later)


def test_partitions_keep_separate_windows(stream: tuple[list[Placed], frozenset[str]]) -> None:
    """A flood counts per partition: the same posts all on one partition are flagged sooner."""
    placed, flood = stream
    flood_posts = [p for _, _, p in placed if p.id in flood][:20]
    one = run(windows(), [(0, i, p) for i, p in enumerate(flood_posts)])
    split = run(windows(), [(i % 4, i // 4, p) for i, p in enumerate(flood_posts)])
    assert flagged(one, frozenset(one)) > flagged(split, frozenset(split))


def test_the_table_keeps_only_what_the_windows_can_still_use(
        stream: tuple[list[Placed], frozenset[str]]) -> None:
    placed, _ = stream
    table: dict[bytes, bytes] = {}
    w = windows(table)
    run(w, placed)
    config = ModerationConfig()
    horizon = max(config.window_seconds, config.author_burst_seconds)
    newest = {p: max(post.created_at.timestamp() for q, _, post in placed if q == p)
              for p in range(PARTITIONS)}
    records = {k: v for k, v in table.items() if not k.endswith(b":salt")}
    assert 0 < len(records) < len(placed) / 10
    for key in records:
        partition, offset = (int(x) for x in key.split(b":"))
        _, _, post = next(t for t in placed if t[0] == partition and t[1] == offset)
        assert post.created_at.timestamp() > newest[partition] - horizon

    capped: dict[bytes, bytes] = {}
    run(windows(capped, max_records=25), placed)
    assert len(capped) == PARTITIONS * 25 + PARTITIONS  # and one salt each


def test_a_bad_record_in_the_table_is_skipped_and_counted(
        stream: tuple[list[Placed], frozenset[str]]) -> None:
    placed, _ = stream
    table: dict[bytes, bytes] = {}
    run(windows(table), placed[:200])
    key = next(k for k in table if k.startswith(b"0:") and not k.endswith(b":salt"))
    table[key] = b"\x80\x04not json"
    successor = windows(table)
    run(successor, placed[200:260])
    (restored,) = [r for r in successor.restored if r.partition == 0]
    assert restored.rejected == 1


def test_a_partition_handed_back_is_rebuilt_from_the_table(
        stream: tuple[list[Placed], frozenset[str]]) -> None:
    placed, _ = stream
    table: dict[bytes, bytes] = {}
    w = windows(table)
    run(w, placed[:100])
    assert w.partitions == {0, 1}
    w.forget({1})
    assert w.partitions == {0}
    run(w, placed[100:200])
    assert [r.partition for r in w.restored] == [0, 1, 1]


def test_the_worker_step_moderates_each_partition_apart(
        tagger: Tagger, stream: tuple[list[Placed], frozenset[str]]) -> None:
    placed, flood = stream
    flood_placed = [(p, o, post) for p, o, post in placed if post.id in flood][:40]
    w = windows()
    step = WorkerStep(Processor(tagger), Metrics(tagger.ruleset), windows=w)
    values = [encode_post(post) for _, _, post in flood_placed]
    result = step(values, partitions=[p for p, _, _ in flood_placed],
                  offsets=[o for _, o, _ in flood_placed])
    assert result.processed == 40 and w.partitions == {0, 1}
    # each partition flags its own eighth post on: 40 - 2 * 7
    assert len({r.key for r in result.flags}) == 40 - PARTITIONS * 7
    with pytest.raises(ValueError, match="partition and offset"):
        step(values)
    with pytest.raises(ValueError, match="either"):
        WorkerStep(Processor(tagger, moderator=Moderator()), Metrics(tagger.ruleset), windows=w)


