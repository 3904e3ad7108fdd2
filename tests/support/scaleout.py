"""One scale-out deployment as real processes on a Tansu broker: ``monitor collect``,
two ``monitor worker`` in one group, ``monitor archive --from``.

    pipeline = Pipeline(tmp_path, tansu, session_timeout=3)
    await pipeline.start()                        # archiver and workers, until they serve
    await pipeline.collect(replay)                # collect to the end (--exit-when-done)
    await pipeline.wait_archived(count)
    await pipeline.wait_committed(count)          # the workers' offsets, per partition
    await pipeline.stop()                         # SIGTERM each, exit code 0
    pipeline.kill()                               # in a finally: whatever still runs

Every process is a :class:`MonitorProcess`, so a test can SIGKILL one and
``start()`` it again with the same arguments and state folder.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
import pytest

from monitor.codec import decode_post
from monitor.privacy import Pseudonymizer
from tests.support.monitor_process import RULES, MonitorProcess, metric_sum, run_cli
from tests.support.tansu import Tansu

__all__ = ["PROCESSED", "Pipeline", "unique_ids"]

PROCESSED = "social_posts_processed_total"


def unique_ids(replay: Path) -> set[str]:
    return {decode_post(line).id for line in replay.read_bytes().splitlines() if line.strip()}


class Pipeline:
    """The processes of one scale-out deployment, everything under ``folder``.

    ``session_timeout``: of the workers' and the archiver's consumer groups,
    how soon a killed member's partitions go to the others (or to its restart).
    """

    def __init__(self, folder: Path, broker: Tansu, name: str = "scale", *,
                 partitions: int = 4, session_timeout: float = 6.0) -> None:
        self.folder, self.broker, self.name = folder, broker, name
        self.partitions, self.session_timeout = partitions, session_timeout
        self.key = folder / "pseudonym.key"
        Pseudonymizer.load(self.key)  # one key for every process, as in production
        self.archive = folder / "archive"
        self.workers = [self.worker(i) for i in range(2)]
        self.archiver = MonitorProcess(folder, argv=[
            "archive", "--from", f"{broker.url}/{self.tagged}", *self.topic_args(),
            "--archive-dir", str(self.archive), "--key-file", str(self.key),
            "--session-timeout", str(session_timeout)])

    @property
    def posts(self) -> str:
        return f"{self.name}-posts"

    @property
    def tagged(self) -> str:
        return f"{self.name}-tagged"

    @property
    def archive_group(self) -> str:
        """The archiver's consumer group (``monitor archive --from`` appends ``-archive``)."""
        return f"{self.name}-archive"

    def topic_args(self) -> list[str]:
        return ["--posts-topic", self.posts, "--tagged-topic", self.tagged,
                "--flags-topic", f"{self.name}-flags", "--partitions", str(self.partitions),
                "--group", self.name, "--rules", str(RULES), "--metrics-addr", "127.0.0.1:0"]

    def worker(self, number: int) -> MonitorProcess:
        return MonitorProcess(self.folder, argv=[
            "worker", "--broker", self.broker.url, *self.topic_args(),
            "--state-dir", str(self.folder / f"worker{number}"), "--key-file", str(self.key),
            "--session-timeout", str(self.session_timeout), "--batch-size", "64"])

    def collect_argv(self, source: str) -> list[str]:
        """``monitor collect --source SOURCE`` into the posts topic, until the source ends."""
        return ["collect", "--source", source, "--to", f"{self.broker.url}/{self.posts}",
                *self.topic_args(), "--state-dir", str(self.folder / "collector"),
                "--exit-when-done"]

    async def start(self) -> None:
        for process in (self.archiver, *self.workers):
            await process.start()
        for process in (self.archiver, *self.workers):
            await process.metrics_url()

    async def collect(self, replay: Path) -> None:
        code, out = await run_cli(*self.collect_argv(f"replay:{replay}"))
        assert code == 0, out

    async def metric(self, process: MonitorProcess, name: str) -> float:
        async with aiohttp.ClientSession() as session, \
                session.get(await process.metrics_url()) as response:
            return metric_sum(await response.text(), name)

    async def wait_archived(self, count: int, timeout: float = 120.0) -> None:
        done = -1.0
        try:
            async with asyncio.timeout(timeout):
                while (done := await self.metric(self.archiver, "social_archive_posts_total")) \
                        < count:
                    await asyncio.sleep(0.2)
        except TimeoutError:
            logs = "\n".join(p.log for p in (*self.workers, self.archiver))
            pytest.fail(f"{done:g} of {count} posts archived within {timeout:g}s\n{logs}")

    async def wait_committed(self, count: int, timeout: float = 30.0) -> list[int]:
        """Until the workers' committed offsets on the posts topic add up to ``count``
        (a partition's offsets start at 0 with no gaps); returns them, per partition."""
        committed: list[int] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while sum(committed := [
                        await self.broker.committed(self.name, self.posts, p) or 0
                        for p in range(self.partitions)]) < count:
                    await asyncio.sleep(0.5)
        return committed

    async def stop(self) -> None:
        for process in (*self.workers, self.archiver):
            if process.proc is not None and process.proc.returncode is None:
                assert await process.stop() == 0, process.log

    def kill(self) -> None:
        for process in (*self.workers, self.archiver):
            process.kill()
