"""Sources -> the posts topic, each source's cursor advanced only behind the broker's acks.

One reader per source sends every post (key: the post id, so copies of a post
land in one partition and one worker's dedup window) and hands the delivery
future with the post's checkpoint to that source's confirmer. The confirmer
awaits the futures in order and commits the cursor of the last acknowledged
post, so a restart never skips a post that the broker did not take; the few
acknowledged after the last commit are sent again, and dropped downstream as
duplicates. A delivery that fails for good stops the collector with an
error: the cursor stays behind the failed post.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from monitor.codec import encode_post
from monitor.runtime.intake import accepted
from monitor.sinks.metrics import Metrics
from monitor.sources.base import Source, platform_label
from monitor.sources.cursor import CursorStore

__all__ = ["CollectStats", "DeliveryError", "PostProducer"]

log = logging.getLogger(__name__)

_END = object()


class DeliveryError(RuntimeError):
    """The broker did not take a post after the producer's retries."""


@dataclass(slots=True)
class CollectStats:
    """Totals of one ``monitor collect`` run, logged when it ends."""

    received: int = 0
    rejected: int = 0
    delivered: int = 0


class PostProducer:
    """Runs the sources into ``topic`` until they end (``exit_when_done``) or a signal."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, sources: Sequence[Source],
                 metrics: Metrics, cursors: CursorStore, *, in_flight: int = 10_000,
                 exit_when_done: bool = False) -> None:
        self.producer = producer
        self.topic = topic
        self.sources = list(sources)
        self.metrics = metrics
        self.cursors = cursors
        self.in_flight = in_flight
        self.exit_when_done = exit_when_done
        self.stats = CollectStats()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Stop reading; posts already sent are still confirmed (safe from a signal handler)."""
        self._stop.set()

    async def run(self) -> CollectStats:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        pairs = []
        for source in self.sources:
            queue: asyncio.Queue[Any] = asyncio.Queue(self.in_flight)
            pairs.append((asyncio.create_task(self._read(source, queue), name=source.name),
                          asyncio.create_task(self._confirm(queue), name=f"{source.name}:acks")))
        readers = [r for r, _ in pairs]
        confirmers = [c for _, c in pairs]
        stop = asyncio.create_task(self._stop.wait())
        try:
            finite = all(s.finite for s in self.sources)
            pending: set[asyncio.Task[Any]] = {stop, *readers, *confirmers}
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task in confirmers and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                if stop in done:
                    break
                if self.exit_when_done and finite and all(r.done() for r in readers):
                    break
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await asyncio.gather(*confirmers)  # every reader queued _END on its way out
        finally:
            stop.cancel()
            for task in (*readers, *confirmers):
                task.cancel()
            await asyncio.gather(stop, *readers, *confirmers, return_exceptions=True)
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return self.stats

    async def _read(self, source: Source, queue: asyncio.Queue[Any]) -> None:
        label = platform_label(source.name)
        metrics, stats, send, topic = self.metrics, self.stats, self.producer.send, self.topic
        metrics.source_up.labels(label).set(1)
        try:
            async for item in accepted(source, stats, metrics):
                future = await send(topic, encode_post(item), key=item.id.encode())
                await queue.put((future, item.checkpoint))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("source %s failed", source.name)
            metrics.record_source_error(source.name, "other")
        finally:
            metrics.source_up.labels(label).set(0)
            with contextlib.suppress(asyncio.CancelledError):  # the confirmer drains it
                await queue.put(_END)

    async def _confirm(self, queue: asyncio.Queue[Any]) -> None:
        """Await deliveries in order; commit the cursor behind the last one acknowledged."""
        while True:
            item = await queue.get()
            if item is _END:
                return
            positions: dict[str, str] = {}
            ended = False
            while True:
                future, checkpoint = item
                try:
                    await future
                except KafkaError as exc:
                    self.metrics.sink_errors.labels("kafka").inc()
                    raise DeliveryError(f"the broker did not take a post ({exc}); the "
                                        "source's cursor stays before it") from None
                self.stats.delivered += 1
                if checkpoint is not None:
                    positions[checkpoint[0]] = checkpoint[1]
                if queue.empty():
                    break
                item = queue.get_nowait()
                if item is _END:
                    ended = True
                    break
            if positions:
                await asyncio.to_thread(self.cursors.commit, positions)
            if ended:
                return

