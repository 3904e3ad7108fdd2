"""The embedded runtime: sources -> bounded queue -> processor -> sinks, in one process.

Backpressure end to end: a source waits when the post queue is full, the
processor waits when the archive's batch queue is full, so memory stays
flat however fast a source is. The archive works on its own thread (zstd
and fsync release the GIL) while the next batch is tagged. SIGINT and
SIGTERM stop the sources, drain both queues, close the archive (manifests
written) and return 0.

With a :class:`TaggerProcess` the tagging moves to a second process: while
it tags one batch (the next one already waiting in its pipe), this one
finishes the batch before (moderation, metrics, archive), so the two
overlap on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitor.model import Post, Tags
from monitor.processor import BatchResult, Processor, tag_isolated
from monitor.runtime.intake import accepted
from monitor.runtime.progress import Progress
from monitor.runtime.tagger_process import TaggerGone, TaggerProcess
from monitor.sinks.archive import ArchiveWriter
from monitor.sinks.base import Sink
from monitor.sinks.metrics import Metrics
from monitor.sources.base import Source, platform_label
from monitor.sources.cursor import CursorStore, MemoryCursorStore
from monitor.tagging.refresh import IDLE_STEP_SECONDS
from monitor.tagging.ruleset import Ruleset

if TYPE_CHECKING:
    from monitor.tagging import Tagger

__all__ = ["LocalRuntime", "RunStats"]

log = logging.getLogger(__name__)

_DONE = object()
#: Processed batches that may wait for the archive thread.
_ARCHIVE_QUEUE_BATCHES = 8
#: seconds between two updates of social_moderation_memory_bytes
_MEMORY_TICKS = 10
#: batches sent to the tagging process while the oldest is finished here: the child
#: finds one waiting when it is done, whichever side was slower on the last batch
#: (with one: busy ~90% of the time, with two ~94%, on 30,000 posts)
TAGGING_AHEAD = 2


@dataclass(slots=True)
class _Batch:
    """A batch between its start (dedup, tagging sent off) and its finish (counted, stored)."""

    enqueued: list[float]
    checkpoints: dict[str, str]
    result: BatchResult
    fresh: list[Post] = field(default_factory=list)
    #: the tagging process's answer, while the batch is there
    tagging: asyncio.Future[tuple[Sequence[Tags | None], str, str]] | None = None


@dataclass(slots=True)
class RunStats:
    """Running totals shown by the progress line and returned at the end."""

    received: int = 0
    rejected: int = 0
    processed: int = 0
    duplicates: int = 0
    flagged: int = 0
    failed: int = 0
    archived: int = 0


class LocalRuntime:
    """Wires sources, the processor and sinks together for one ``monitor run``."""

    def __init__(
        self,
        sources: list[Source],
        processor: Processor,
        metrics: Metrics,
        archive: ArchiveWriter | None,
        *,
        sinks: Sequence[Sink] = (),
        queue_size: int = 10_000,
        batch_size: int = 256,
        exit_when_done: bool = False,
        progress: Progress | None = None,
        cursors: CursorStore | None = None,
        reload_rules: Callable[[], Ruleset] | None = None,
        tagger_process: TaggerProcess | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sources = sources
        self.processor = processor
        self.metrics = metrics
        self.archive = archive
        self.sinks = list(sinks)
        self.batch_size = batch_size
        self.exit_when_done = exit_when_done
        self.progress = progress
        self.cursors = cursors if cursors is not None else MemoryCursorStore()
        #: loads the rules folder again; SIGHUP calls it (None: no reload)
        self.reload_rules = reload_rules
        #: tags in a second process when given (started by run(), stopped at its end)
        self.tagger_process = tagger_process
        self._tagger_started: asyncio.Task[None] | None = None
        self._tagger_restart: asyncio.Task[None] | None = None
        self._reloading: asyncio.Task[None] | None = None
        #: checkpoints of batches handed to the archive but not yet fsynced
        self._unflushed: dict[str, str] = {}
        self.clock = clock
        self.stats = RunStats()
        self._queue: asyncio.Queue[tuple[float, Post] | object] = asyncio.Queue(queue_size)
        self._archive_queue: asyncio.Queue[list | object] = asyncio.Queue(_ARCHIVE_QUEUE_BATCHES)
        self._sink_queues: list[asyncio.Queue[list | object]] = [
            asyncio.Queue(_ARCHIVE_QUEUE_BATCHES) for _ in self.sinks]
        self._stop = asyncio.Event()
        #: posts a reader held when it was cancelled while the queue was full
        self._carry: list[tuple[float, Post]] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive")
        if archive is not None:
            archive.on_durable = self._on_durable

    def _on_durable(self, source: str, count: int) -> None:
        """Called on the archive thread after an fsync made ``count`` posts durable."""
        self.stats.archived += count
        self.metrics.record_archived({source: count})

    def stop(self) -> None:
        """Begin a clean shutdown: stop reading, drain, close (safe from a signal handler)."""
        if not self._stop.is_set():
            log.info("stopping: draining %d queued posts", self._queue.qsize())
        self._stop.set()

    async def run(self) -> RunStats:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                loop.add_signal_handler(sig, self.stop)
        if self.reload_rules is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        if self.tagger_process is not None:
            self._tagger_started = asyncio.create_task(self.tagger_process.start())
        readers = [asyncio.create_task(self._read(s), name=f"source:{s.name}")
                   for s in self.sources]
        processor = asyncio.create_task(self._process(), name="processor")
        archiver = asyncio.create_task(self._archive(), name="archive")
        for sink in self.sinks:
            await sink.start()
        outputs = [asyncio.create_task(self._feed(sink, queue), name=f"sink:{sink.name}")
                   for sink, queue in zip(self.sinks, self._sink_queues, strict=True)]
        ticker = asyncio.create_task(self._tick(), name="progress")
        try:
            await self._wait_for_end(readers)
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for entry in self._carry:  # the processor is still draining, so these fit
                await self._queue.put(entry)
            self._carry.clear()
            await self._queue.put(_DONE)
            await processor
            await archiver
            await asyncio.gather(*outputs)
        finally:
            ticker.cancel()
            for task in (*readers, processor, archiver, *outputs):
                task.cancel()
            await asyncio.gather(ticker, processor, archiver, *outputs, return_exceptions=True)
            for sink in self.sinks:
                try:
                    await sink.close()
                except Exception:
                    log.exception("closing sink %s failed", sink.name)
            if self.archive is not None:
                await loop.run_in_executor(self._executor, self.archive.close)
                if self._unflushed:  # close() flushed everything written
                    self.cursors.commit(self._unflushed)
                    self._unflushed = {}
            self._executor.shutdown(wait=True)
            if self.tagger_process is not None:
                for task in (self._tagger_started, self._tagger_restart):
                    if task is not None:
                        await asyncio.gather(task, return_exceptions=True)
                await self.tagger_process.close()
            if self._reloading is not None:
                await asyncio.gather(self._reloading, return_exceptions=True)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            if self.progress is not None:
                self.progress.finish(self.stats, self._queue.qsize())
        return self.stats

    async def _wait_for_end(self, readers: list[asyncio.Task[None]]) -> None:
        """Until a signal, or (with exit_when_done) until every finite source is exhausted."""
        stop = asyncio.create_task(self._stop.wait())
        finite = [t for t, s in zip(readers, self.sources, strict=True) if s.finite]
        live = len(finite) < len(readers)
        pending: set[asyncio.Task[object]] = {stop, *finite}
        while not self._stop.is_set():
            _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if self.exit_when_done and not live and not (pending - {stop}):
                break
        stop.cancel()

    async def _read(self, source: Source) -> None:
        label = platform_label(source.name)
        metrics, stats, queue, clock = self.metrics, self.stats, self._queue, time.monotonic
        metrics.source_up.labels(label).set(1)
        finished = False
        try:
            async for item in accepted(source, stats, metrics):
                entry = (clock(), item)
                try:
                    await queue.put(entry)
                except asyncio.CancelledError:
                    self._carry.append(entry)  # received, so it must still be processed
                    raise
            finished = source.finite
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("source %s failed", source.name)
            metrics.record_source_error(source.name, "other")
        finally:
            if finished:  # a replay that ended is done, not down: no SocialSourceDown alert
                with contextlib.suppress(KeyError):
                    metrics.source_up.remove(label)
            else:
                metrics.source_up.labels(label).set(0)

    async def _process(self) -> None:
        queue = self._queue
        #: batches whose tags the tagging process is working on, oldest first
        inflight: deque[_Batch] = deque()
        while True:
            if inflight and queue.empty():
                await self._finish(inflight.popleft())  # nothing to send meanwhile
                continue
            if queue.empty() and self.processor.refresh.pending:
                self.processor.refresh_step(IDLE_STEP_SECONDS)  # idle: build the refresh
                await asyncio.sleep(0)
                continue
            first = await queue.get()
            if first is _DONE:
                break
            batch = [first]
            ended = False
            while len(batch) < self.batch_size and not queue.empty():
                item = queue.get_nowait()
                if item is _DONE:
                    ended = True
                    break
                batch.append(item)
            started = self._start(batch)  # type: ignore[arg-type]
            if started.tagging is not None:
                await asyncio.sleep(0)  # the task's first step queues the batch for sending
                inflight.append(started)
                if len(inflight) > TAGGING_AHEAD:
                    await self._finish(inflight.popleft())
            else:
                while inflight:
                    await self._finish(inflight.popleft())
                await self._finish(started)
            await asyncio.sleep(0)  # let sources and the archive run between batches
            if ended:
                break
        while inflight:
            await self._finish(inflight.popleft())
        await self._archive_queue.put(_DONE)
        for sink_queue in self._sink_queues:
            await sink_queue.put(_DONE)

    def _start(self, batch: list[tuple[float, Post]]) -> _Batch:
        """Dedup, and tag here or send the batch to the tagging process."""
        posts = [p for _, p in batch]
        checkpoints = {p.checkpoint[0]: p.checkpoint[1] for p in posts if p.checkpoint}
        enqueued = [t for t, _ in batch]
        if self.tagger_process is None:
            return _Batch(enqueued, checkpoints, self.processor.process(posts))
        result, fresh = self.processor.admit(posts)
        started = _Batch(enqueued, checkpoints, result, fresh)
        if fresh:
            started.tagging = asyncio.ensure_future(self._tag_remote(fresh))
        return started

    async def _tag_remote(self, fresh: list[Post]) -> tuple[Sequence[Tags | None], str, str]:
        """Tags from the tagging process; from this one if it is not there."""
        tagger_process = self.tagger_process
        assert tagger_process is not None
        ids = [p.id for p in fresh]
        items = [(p.text, p.lang, p.hashtags) for p in fresh]
        try:
            if self._tagger_started is not None:
                await asyncio.shield(self._tagger_started)
            answer = await tagger_process.tag(ids, items)
            return answer.tags, answer.ruleset_name, answer.ruleset_hash
        except Exception as exc:  # TaggerGone, or a bug on either side of the pipe
            if self._tagger_restart is None or self._tagger_restart.done():
                log.error("tagging in this process until a new tagging process is up: %s",
                          exc, exc_info=not isinstance(exc, TaggerGone))
                self._tagger_restart = asyncio.create_task(self._restart_tagger())
        # compiled here the first time a child is missed (on the loop, ~2 s, once: a
        # thread could finish compiling rules a reload has just replaced)
        tagger = self.processor.tagger
        return tag_isolated(tagger, items, ids), tagger.ruleset.name, tagger.ruleset.hash

    async def _restart_tagger(self) -> None:
        assert self.tagger_process is not None
        try:
            await self.tagger_process.restart()
            self._tagger_started = None
        except Exception as exc:
            log.error("the tagging process could not be restarted (the next batch tries "
                      "again): %s", exc)

    async def _finish(self, batch: _Batch) -> None:
        """Moderate (if tagged elsewhere), count, and hand the batch to the archive and sinks."""
        stats, metrics, queue = self.stats, self.metrics, self._queue
        result, checkpoints = batch.result, batch.checkpoints
        if batch.tagging is not None:
            tags, name, digest = await batch.tagging
            result = self.processor.complete(result, batch.fresh, tags, name, digest)
        stats.processed += len(result.tagged)
        stats.duplicates += len(result.duplicates)
        stats.failed += len(result.failed)
        stats.flagged += sum(1 for t in result.tagged if t.all_flags)
        metrics.record_tagged(result.tagged, batch.enqueued, self.clock())
        if result.duplicates:
            metrics.record_duplicates(p.source for p in result.duplicates)
        if result.failed:
            metrics.record_failed(p.source for p, _ in result.failed)
        metrics.queue_depth.set(queue.qsize())
        if self.archive is not None:
            if result.tagged or checkpoints:
                await self._archive_queue.put((result.tagged, checkpoints))
        elif checkpoints:  # nothing to make durable: processed is as far as it goes
            self.cursors.commit(checkpoints)
        if result.tagged:
            for sink_queue in self._sink_queues:
                await sink_queue.put(result.tagged)

    async def _feed(self, sink: Sink, queue: asyncio.Queue[list | object]) -> None:
        """One sink's loop: a failing write is logged and counted, never fatal."""
        while (batch := await queue.get()) is not _DONE:
            try:
                await sink.write(batch)  # type: ignore[arg-type]
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.sink_errors.labels(sink.name).inc()
                log.exception("sink %s failed on a batch of %d", sink.name, len(batch))  # type: ignore[arg-type]

    async def _archive(self) -> None:
        """Hand batches to the archive thread; flush at least every second; roll at midnight."""
        loop = asyncio.get_running_loop()
        archive, queue = self.archive, self._archive_queue
        while True:
            try:
                batch = await asyncio.wait_for(queue.get(), timeout=0.5)
            except TimeoutError:
                batch = None
            if batch is _DONE:
                break
            if archive is None:
                continue
            if batch:
                tagged, checkpoints = batch  # type: ignore[misc]
                if tagged:
                    await loop.run_in_executor(self._executor, archive.write_batch, tagged)
                self._unflushed.update(checkpoints)
            await loop.run_in_executor(self._executor, self._flush_and_commit)

    def _flush_and_commit(self) -> None:
        """On the archive thread: roll at midnight, flush if due; once nothing is pending,
        commit the cursors.

        The archive keeps the day it opened in, so asking it every time (a date
        comparison) cannot miss a midnight that passed before the runtime started.
        """
        archive = self.archive
        assert archive is not None
        archive.rollover()
        archive.maybe_flush()
        if self._unflushed and archive.pending_posts == 0:
            positions, self._unflushed = self._unflushed, {}
            self.cursors.commit(positions)

    def request_reload(self) -> None:
        """SIGHUP: reload the rules in the background; one reload at a time."""
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> bool:
        """Load and compile the rules off the event loop, then swap them in atomically.

        With a tagging process the child compiles them (this process keeps
        only the ruleset). A ruleset with problems is refused whole: the
        running rules stay, the problems are logged and
        ``social_rules_reloads_total{result="failed"}`` counts it. Batches
        already being tagged finish with the old rules.
        """
        if self.reload_rules is None:
            return False
        try:
            rules = await self._load_and_compile(self.reload_rules)
        except Exception as exc:
            self.metrics.rules_reloads.labels("failed").inc()
            log.error("rules reload refused, the running rules stay: %s", exc)
            return False
        self.processor.swap_rules(rules)
        ruleset = self.processor.ruleset
        self.metrics.set_ruleset(ruleset)
        self.metrics.rules_reloads.labels("ok").inc()
        log.info("rules reloaded: ruleset '%s' (%s)", ruleset.name, ruleset.hash)
        return True

    async def _load_and_compile(self, load: Callable[[], Ruleset]) -> Tagger | Ruleset:
        """The reloaded rules, compiled where they will be used; raises if they cannot be."""
        loop = asyncio.get_running_loop()
        ruleset = await loop.run_in_executor(None, load)
        if self.tagger_process is not None:
            try:
                await self.tagger_process.use(ruleset)
                return ruleset
            except TaggerGone:  # this process tags until the next child, which gets them
                pass
        from monitor.tagging import Tagger, compile_ruleset

        tagger = await loop.run_in_executor(None, lambda: Tagger(compile_ruleset(ruleset)))
        if self.tagger_process is not None:
            self.tagger_process.ruleset = ruleset
        return tagger

    async def _tick(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            self.metrics.queue_depth.set(self._queue.qsize())
            # Sizing the windows walks the near-duplicate index's buckets and clusters (~13
            # ms with full windows, on the event loop; the authors' and domains' are kept
            # count of): every 10 s is fresh enough for a gauge scraped every 15 s.
            if ticks % _MEMORY_TICKS == 0 and (moderator := self.processor.moderator) is not None:
                for structure, size in moderator.memory_bytes().items():
                    self.metrics.moderation_memory.labels(structure).set(size)
            ticks += 1
            if self.progress is not None:
                self.progress.update(self.stats, self._queue.qsize())
