"""The full local pipeline as ``monitor run`` wires it, on a file, timed.

Replay -> Processor (dedup, all rules, moderation) -> Metrics -> ArchiveWriter,
through the real :class:`LocalRuntime`, into a temporary archive folder: the
figure includes everything a post costs, not only tagging.
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.codec import decode_post
from monitor.memory import freeze_long_lived, peak_rss_mib, tune_for_streams
from monitor.model import Post, TaggedPost
from monitor.moderation.moderator import Moderator
from monitor.processor import Processor
from monitor.runtime.local import LocalRuntime
from monitor.runtime.tagger_process import TaggerProcess
from monitor.sinks.archive import ArchiveWriter
from monitor.sinks.metrics import Metrics
from monitor.sources.base import Rejected
from monitor.sources.replay import ReplaySource
from monitor.tagging import Ruleset, default_rules_path, load_ruleset

if TYPE_CHECKING:
    from monitor.tagging import Tagger

__all__ = ["PipelineRun", "paced_latencies", "pipeline_rate"]


@dataclass(slots=True)
class PipelineRun:
    """What one timed pipeline run measured."""

    posts: int
    cpu_seconds: float
    wall_seconds: float
    peak_rss_mb: float
    archived: int


def _runtime(source: object, rules: Path | None, folder: Path,
             sinks: Sequence[object] = (), tagger_process: bool = False) -> LocalRuntime:
    """As ``monitor run`` wires it: with the tagging process, only the child compiles."""
    rs = load_ruleset(rules or default_rules_path())
    child = None
    if tagger_process:  # started before the clock: a firehose pays its start-up once
        freeze_long_lived()
        child = TaggerProcess(rs)
        asyncio.run(child.start())
        compiled: Ruleset | Tagger = rs
    else:
        from monitor.tagging import Tagger, compile_ruleset

        freeze_long_lived()  # as monitor run does: the imports, not the tagger
        compiled = Tagger(compile_ruleset(rs))
    processor = Processor(compiled,
                          moderator=Moderator(rs.moderation, rs.campaign.trusted_domains))
    archive = ArchiveWriter(folder / "archive", key_file=folder / "pseudonym.key")
    tune_for_streams()  # as monitor run does
    return LocalRuntime([source], processor, Metrics(rs), archive,  # type: ignore[list-item]
                        sinks=sinks, exit_when_done=True,  # type: ignore[arg-type]
                        tagger_process=child)


def _children() -> resource.struct_rusage:
    return resource.getrusage(resource.RUSAGE_CHILDREN)


def pipeline_rate(path: Path, rules: Path | None = None,
                  tagger_process: bool = False) -> PipelineRun:
    """Replay ``path`` at full speed through the whole pipeline; CPU and wall time.

    With the tagging process, its CPU time counts too (not its start-up) and
    the peak RSS is the sum of both processes' peaks."""
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        runtime = _runtime(ReplaySource(path, speed=None), rules, Path(tmp),
                           tagger_process=tagger_process)
        child = runtime.tagger_process
        child_start = child.cpu_seconds() if child is not None else 0.0
        before = _children()
        cpu, wall = time.process_time(), time.perf_counter()
        stats = asyncio.run(runtime.run())
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        after = _children()  # the tagging process has been reaped: its whole CPU time
        cpu += (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                - child_start)
    rss = peak_rss_mib() + (child.peak_rss_mib if child is not None else 0.0)
    return PipelineRun(stats.processed + stats.duplicates, cpu, wall, rss, stats.archived)


class _PacedSource:
    """Posts from a file at a fixed rate; remembers when each was due.

    Latency is measured from the moment a post was *due*, not when it was
    finally handed over, so a pipeline that falls behind shows it (no
    coordinated omission).
    """

    finite = True
    name = "replay"

    def __init__(self, path: Path, rate: float, limit: int) -> None:
        self.path, self.rate, self.limit = path, rate, limit
        self.due: dict[str, float] = {}

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        posts = []
        with self.path.open("rb") as fh:
            for line in fh:
                if len(posts) >= self.limit:
                    break
                if line.strip():
                    posts.append(decode_post(line.rstrip(b"\n"), default_source=self.name))
        clock = time.perf_counter
        start = clock()
        for i, post in enumerate(posts):
            due = start + i / self.rate
            if (wait := due - clock()) > 0:
                await asyncio.sleep(wait)
            self.due[post.id] = due
            yield post


class _LatencySink:
    """Notes when each tagged post came out of the processor."""

    name = "bench-latency"

    def __init__(self) -> None:
        self.done: dict[str, float] = {}

    async def start(self) -> None:
        return None

    async def write(self, batch: Sequence[TaggedPost]) -> None:
        now = time.perf_counter()
        for tagged in batch:
            self.done[tagged.post.id] = now

    async def close(self) -> None:
        return None


def paced_latencies(path: Path, rate: float, limit: int, rules: Path | None = None,
                    tagger_process: bool = False) -> list[float]:
    """Seconds from due to processed for each of the first ``limit`` posts at ``rate``/s."""
    source, sink = _PacedSource(path, rate, limit), _LatencySink()
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        runtime = _runtime(source, rules, Path(tmp), sinks=[sink],
                           tagger_process=tagger_process)
        asyncio.run(runtime.run())
    return sorted(sink.done[k] - due for k, due in source.due.items() if k in sink.done)
