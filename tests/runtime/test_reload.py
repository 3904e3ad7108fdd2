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

from monitor.model import Post, TaggedPost
from monitor.processor import Processor
from monitor.runtime.local import LocalRuntime
from monitor.runtime.progress import Progress
from monitor.runtime.tagger_process import TaggerProcess
from monitor.sinks.metrics import Metrics
from monitor.sources.base import Rejected
from monitor.tagging import Tagger, load_ruleset, load_tagger
from tests.support.sinks import Collecting

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


def make_uncompilable(rules: Path) -> None:
    """A ruleset the loader accepts and the compiler refuses (RE2 has no look-behind)."""
    labels = rules / "labels.yaml"
    labels.write_text(labels.read_text(encoding="utf-8").replace(
        'phrases: ["miss 4o"]', "regex: '(?<=i )miss 4o'", 1), encoding="utf-8")


def runtime(rules: Path) -> tuple[LocalRuntime, Metrics]:
    tagger = load_tagger(rules)
    metrics = Metrics(tagger.ruleset, registry=CollectorRegistry())
    run = LocalRuntime([Trickle()], Processor(tagger), metrics, None, progress=Progress("off"),
                       reload_rules=lambda: load_ruleset(rules))
    return run, metrics


def runtime_with_tagger_process(rules: Path) -> tuple[LocalRuntime, Metrics, Collecting]:
    """As ``monitor run --tagger-process`` wires it: this process keeps the ruleset only."""
    ruleset = load_ruleset(rules)
    metrics = Metrics(ruleset, registry=CollectorRegistry())
    sink = Collecting()
    run = LocalRuntime([Trickle()], Processor(ruleset), metrics, None, sinks=[sink],
                       progress=Progress("off"), reload_rules=lambda: load_ruleset(rules),
                       tagger_process=TaggerProcess(ruleset))
    return run, metrics, sink


async def tagged_after(sink: Collecting, count: int) -> list[TaggedPost]:
    """The next ``count`` posts to come out tagged (the stream is live)."""
    start = len(sink.posts)
    async with asyncio.timeout(60):
        while len(sink.posts) < start + count:
            await asyncio.sleep(0.02)
    return sink.posts[start:]


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


async def test_rules_that_do_not_compile_are_refused_and_the_running_rules_stay(
        rules_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    run, metrics = runtime(rules_copy)
    task = asyncio.create_task(run.run())
    await asyncio.sleep(0.2)
    running: Tagger = run.processor.tagger
    make_uncompilable(rules_copy)

    assert await run.reload() is False

    assert run.processor.tagger is running
    assert reloads(metrics, "failed") == 1
    assert "labels.yaml:7: rule 'grief.miss': regex '(?<=i )miss 4o' does not compile" \
        in caplog.text
    run.stop()
    await task


async def test_with_a_tagging_process_only_the_child_compiles_a_reload(
        rules_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    run, metrics, sink = runtime_with_tagger_process(rules_copy)
    task = asyncio.create_task(run.run())
    before = (await tagged_after(sink, 1))[0].ruleset_hash
    labels = rules_copy / "labels.yaml"
    labels.write_text(labels.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")

    assert await run.reload() is True
    edited = run.processor.ruleset.hash
    assert edited != before and reloads(metrics, "ok") == 1
    # (a batch the child tagged before the reload may still be on its way out)
    assert (await tagged_after(sink, 3))[-1].ruleset_hash == edited

    make_uncompilable(rules_copy)
    assert await run.reload() is False
    assert reloads(metrics, "failed") == 1
    assert "labels.yaml:7: rule 'grief.miss': regex '(?<=i )miss 4o' does not compile" \
        in caplog.text
    # the child kept the rules it had, and this process agrees
    assert run.processor.ruleset.hash == edited
    assert {t.ruleset_hash for t in await tagged_after(sink, 3)} == {edited}
    run.stop()
    await task
    assert not run.processor.compiled  # the child did every compile
    assert run.stats.failed == 0


async def test_a_reload_while_the_tagging_process_is_down_is_compiled_here(
        rules_copy: Path) -> None:
    run, _, _ = runtime_with_tagger_process(rules_copy)
    child = run.tagger_process
    assert child is not None
    await child.start()
    try:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        labels = rules_copy / "labels.yaml"
        labels.write_text(labels.read_text(encoding="utf-8") + "\n# edited\n",
                          encoding="utf-8")

        assert await run.reload() is True

        edited = run.processor.ruleset
        assert run.processor.compiled and run.processor.tagger.ruleset is edited
        assert child.ruleset is edited  # the next child starts with the new rules
        await child.restart()
        answer = await child.tag(["a"], [("I miss 4o every day", "en", ())])
        assert answer.ruleset_hash == edited.hash
    finally:
        await child.close()


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
