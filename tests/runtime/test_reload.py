"""Hot rules reload: SIGHUP swaps the ruleset whole, a broken one is refused and counted."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.model import Post
from monitor.processor import Processor
from monitor.runtime.local import LocalRuntime
from monitor.runtime.progress import Progress
from monitor.sinks.metrics import Metrics
from monitor.sources.base import Rejected
from monitor.tagging import Tagger, load_tagger

RULES = Path(__file__).parent / "rules"
NOON = datetime(2025, 8, 13, 12, 0, tzinfo=UTC)


class Trickle:
    """A live source: one post every 20 ms until cancelled."""

    name = "replay"
    finite = False

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        i = 0
        while True:
            yield Post(id=f"trickle-{i}", source="replay", text="I miss 4o every day #keep4o",
                       created_at=NOON + timedelta(seconds=i), lang="en")
            i += 1
            await asyncio.sleep(0.02)


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder)
    return folder


def reloads(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value("social_rules_reloads_total", {"result": result})
    return value or 0.0


def runtime(rules: Path) -> tuple[LocalRuntime, Metrics]:
    tagger = load_tagger(rules)
    metrics = Metrics(tagger.ruleset, registry=CollectorRegistry())
    run = LocalRuntime([Trickle()], Processor(tagger), metrics, None, progress=Progress("off"),
                       reload_rules=lambda: load_tagger(rules))
    return run, metrics


async def test_a_changed_ruleset_is_swapped_in_whole(rules_copy: Path) -> None:
    run, metrics = runtime(rules_copy)
    task = asyncio.create_task(run.run())
    await asyncio.sleep(0.2)
    before = run.processor.tagger.ruleset.hash
    labels = rules_copy / "labels.yaml"
    labels.write_text(labels.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")

    assert await run.reload() is True

    assert run.processor.tagger.ruleset.hash != before
    assert reloads(metrics, "ok") == 1
    build = metrics.registry.get_sample_value(
        "social_build_info", {"version": run.processor.version, "ruleset": "runtime_fixture",
                              "ruleset_hash": run.processor.tagger.ruleset.hash})
    assert build == 1  # build info follows the reloaded ruleset
    run.stop()
    await task
    assert run.stats.processed > 0


async def test_a_broken_ruleset_is_refused_and_the_running_rules_stay(rules_copy: Path) -> None:
    run, metrics = runtime(rules_copy)
    task = asyncio.create_task(run.run())
    await asyncio.sleep(0.2)
    running: Tagger = run.processor.tagger
    (rules_copy / "labels.yaml").write_text("labels:\n  - label: Broken Label\n", encoding="utf-8")

    assert await run.reload() is False

    assert run.processor.tagger is running
    assert reloads(metrics, "failed") == 1
    processed = run.stats.processed
    await asyncio.sleep(0.2)
    assert run.stats.processed > processed  # the stream goes on with the old rules
    run.stop()
    await task


async def test_sighup_triggers_the_reload(rules_copy: Path) -> None:
    run, metrics = runtime(rules_copy)
    task = asyncio.create_task(run.run())
    await asyncio.sleep(0.2)
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(100):
        if reloads(metrics, "ok"):
            break
        await asyncio.sleep(0.05)
    assert reloads(metrics, "ok") == 1
    run.stop()
    await task
