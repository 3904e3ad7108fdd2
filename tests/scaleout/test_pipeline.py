"""The scale-out pipeline end to end, as processes: Tansu on loopback, ``monitor collect``
replaying a file, two ``monitor worker`` in one group, ``monitor archive --from``.

Every post ends up in the archive exactly once and the archive verifies, also
when one worker is SIGKILLed (or SIGTERMed) mid-run: the other takes its
partitions over and re-processes what the dead one had not committed; the
archive keeps one copy.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from monitor.bench.synth import write_jsonl
from monitor.codec import decode_tagged
from monitor.model import TaggedPost
from tests.support.monitor_process import verified_ids
from tests.support.scaleout import PROCESSED, Pipeline, unique_ids
from tests.support.tansu import Tansu


async def test_two_workers_archive_every_post_exactly_once(tmp_path: Path, tansu: Tansu) -> None:
    replay = Path(__file__).parents[2] / "samples" / "stream.jsonl"
    pipeline = Pipeline(tmp_path, tansu)
    try:
        await pipeline.start()
        await pipeline.collect(replay)
        expected = unique_ids(replay)
        await pipeline.wait_archived(len(expected))
        shares = [await pipeline.metric(w, PROCESSED) for w in pipeline.workers]
        await pipeline.stop()
    finally:
        pipeline.kill()
    assert all(share > 0 for share in shares), f"both workers take partitions: {shares}"
    assert sum(shares) == len(expected)  # no rebalance, so nothing was processed twice
    ids = await verified_ids(pipeline.archive)
    assert len(ids) == len(set(ids)) and set(ids) == expected


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_a_worker_stopped_mid_run_loses_nothing(tmp_path: Path, tansu: Tansu,
                                                     sig: signal.Signals) -> None:
    """SIGKILL: a crash, the survivor redoes what was not committed; SIGTERM: a clean
    leave, the worker finishes its batch and commits before its partitions move."""
    replay = tmp_path / "posts.jsonl"
    write_jsonl(str(replay), 12_000)
    expected = unique_ids(replay)
    pipeline = Pipeline(tmp_path, tansu)
    try:
        await pipeline.start()
        await pipeline.collect(replay)
        victim, survivor = pipeline.workers
        async with asyncio.timeout(60):
            while (done := await pipeline.metric(victim, PROCESSED)) < 500:
                await asyncio.sleep(0.05)
        total = done + await pipeline.metric(survivor, PROCESSED)
        if sig is signal.SIGKILL:
            victim.kill()
            assert await victim.proc.wait() == -signal.SIGKILL  # type: ignore[union-attr]
        else:
            assert await victim.stop(sig) == 0, victim.log
        assert total < len(expected), "killed after the work was done: use a bigger file"
        await pipeline.wait_archived(len(expected))
        # and nothing left to redo: a restart now would not read a post again
        committed = await pipeline.wait_committed(len(expected))
        survived = await pipeline.metric(survivor, PROCESSED)
        await pipeline.stop()
    finally:
        pipeline.kill()
    if sig is signal.SIGKILL:  # what the victim did not commit was done again by the survivor
        assert survived + done >= len(expected), (survived, done)
    # either way the survivor did more than its own half: it took partitions over
    assert survived > len(expected) / 2, (survived, done)
    assert sum(committed) == len(expected), committed
    ids = await verified_ids(pipeline.archive)
    assert len(ids) == len(set(ids)) and set(ids) == expected


#: A promotion flood as it comes: one text, the link's suffix and the emoji varied.
FLOOD = "Get GPT-4o back at https://gpt4o-back.app/?ref={ref} unlimited, no subscription {emoji}"


def write_flood(path: Path, numbers: range, start: datetime) -> Path:
    with path.open("wb") as fh:
        for i in numbers:
            fh.write(orjson.dumps({
                "id": f"x:flood{i}", "source": "x", "author": f"bot{i}", "lang": "en",
                "text": FLOOD.format(ref=f"k{i:x}z", emoji="🔥✨"[i % 2]) + " #keep4o",
                "created_at": (start + timedelta(seconds=5 * i)).isoformat()}) + b"\n")
    return path


async def read_tagged(broker: Tansu, topic: str, count: int) -> list[TaggedPost]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[TaggedPost] = []
    try:
        async with asyncio.timeout(30):
            while len(out) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out += [decode_tagged(r.value) for r in records if r.value]
    finally:
        await consumer.stop()
    return out


#: Tansu 0.6.0 answers ListOffsets(latest) with the last record batch's base offset + 1,
#: not the log end offset (fetches report it right), so Faust's recovery of a table with
#: no standby copy stops after the first batch of the changelog. Kafka answers right.
TANSU_END_OFFSETS = pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="Tansu 0.6.0 reports a partition's end offset as its last batch's "
                        "base offset + 1: Faust's changelog recovery stops early")


@pytest.mark.parametrize("standby", [True, pytest.param(False, marks=TANSU_END_OFFSETS)],
                         ids=["standby", "replacement"])
async def test_the_worker_taking_a_partition_over_keeps_its_flood_windows(
        tmp_path: Path, tansu: Tansu, standby: bool) -> None:
    """A flood's first 8 posts reach the worker owning the one partition, which flags the
    8th, commits and is SIGKILLed; the worker taking the partition over restores the
    windows from the table and flags the next 7. Starting empty it would flag none of
    them: a flood needs 8 posts in the window (the default ``near_duplicate.min_posts``).

    ``standby``: the other worker was running (it kept a standby copy of the table);
    ``replacement``: it starts after the kill and recovers the table from the changelog.
    """
    pipeline = Pipeline(tmp_path, tansu, name="windows", partitions=1)
    start = datetime.now(UTC).replace(microsecond=0)
    try:
        for worker in pipeline.workers[:2 if standby else 1]:
            await worker.start()
            await worker.metrics_url()
        running = [w for w in pipeline.workers if w.proc is not None]
        # In two halves, each processed and committed before the next: the changelog then
        # holds at least two record batches, and what a cold recovery restores does not
        # depend on how fast the worker went (all eight in one batch hid Tansu's bug)
        for half, posts in (("first", range(4)), ("second", range(4, 8))):
            await pipeline.collect(write_flood(tmp_path / f"{half}-half.jsonl", posts, start))
            async with asyncio.timeout(60):
                while sum([await pipeline.metric(w, PROCESSED) for w in running]) < posts.stop \
                        or (await tansu.committed("windows", "windows-posts") or 0) < posts.stop:
                    await asyncio.sleep(0.2)
        shares = [await pipeline.metric(w, PROCESSED) for w in running]
        assert sorted(shares)[-1] == 8 == sum(shares), shares  # one partition: one owner
        owner, other = pipeline.workers if shares[0] else pipeline.workers[::-1]
        owner.kill()
        assert await owner.proc.wait() == -signal.SIGKILL  # type: ignore[union-attr]
        if not standby:
            await other.start()
        await pipeline.collect(write_flood(tmp_path / "after.jsonl", range(8, 15), start))
        async with asyncio.timeout(60):
            while await pipeline.metric(other, PROCESSED) < 7:
                await asyncio.sleep(0.2)
        redone = await pipeline.metric(other, PROCESSED)
        await pipeline.stop()
    finally:
        pipeline.kill()
    assert redone == 7, "the first half was committed: the successor did not redo it"
    tagged = {t.post.id: t for t in await read_tagged(tansu, "windows-tagged", 15)}
    sizes = [next((f.detail["cluster_size"] for f in tagged[f"x:flood{i}"].all_flags  # type: ignore[index]
                   if f.rule == "moderation.near_duplicate"), None) for i in range(15)]
    assert sizes == [None] * 7 + list(range(8, 16)), (sizes, other.log)
