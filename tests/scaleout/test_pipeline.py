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
from pathlib import Path

import pytest

from monitor.bench.synth import write_jsonl
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
        survived = await pipeline.metric(survivor, PROCESSED)
        await pipeline.stop()
    finally:
        pipeline.kill()
    if sig is signal.SIGKILL:  # what the victim did not commit was done again by the survivor
        assert survived + done >= len(expected), (survived, done)
    # either way the survivor did more than its own half: it took partitions over
    assert survived > len(expected) / 2, (survived, done)
    ids = await verified_ids(pipeline.archive)
    assert len(ids) == len(set(ids)) and set(ids) == expected
