"""The tagged topic -> the daily archive, offsets committed only behind an fsync.

Records are written to :class:`ArchiveWriter` as they arrive (it drops a post
id its day already holds, so redelivered posts are stored once). At least
once a second, and before partitions are given away in a rebalance, the
archive is flushed (compressed, appended, fsynced) and only then are the
offsets of the records written before the flush committed. A crash at any
point re-reads from the last commit; nothing committed is ever not durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from monitor.codec import DecodeError, decode_tagged
from monitor.sinks.archive import ArchiveWriter
from monitor.sinks.metrics import Metrics

__all__ = ["ArchiveStats", "TopicArchiver"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ArchiveStats:
    """Totals of one ``monitor archive --from`` run, logged when it ends."""

    consumed: int = 0
    rejected: int = 0
    committed: int = 0


class TopicArchiver:
    """Consumes ``consumer``'s subscription into ``archive`` until stopped."""

    def __init__(self, consumer: AIOKafkaConsumer, archive: ArchiveWriter, metrics: Metrics,
                 *, batch: int = 2_000, flush_interval: float = 1.0) -> None:
        self.consumer = consumer
        self.archive = archive
        self.metrics = metrics
        self.batch = batch
        self.flush_interval = flush_interval
        self.stats = ArchiveStats()
        #: next offset per partition of records written but not yet fsynced
        self._written: dict[TopicPartition, int] = {}
        self._last_flush = time.monotonic()
        self._stop = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive")
        archive.on_durable = lambda source, n: metrics.record_archived({source: n})

    def listener(self) -> ConsumerRebalanceListener:
        """Pass to ``consumer.subscribe``: make written records durable before a revoke."""
        archiver = self

        class _Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await archiver.flush_and_commit()

            async def on_partitions_assigned(self, assigned: Any) -> None:
                return None

        return _Listener()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> ArchiveStats:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        day = datetime.now(UTC).date()
        try:
            while not self._stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=self.batch)
                for tp, records in batches.items():
                    await self._write(tp, records)
                if time.monotonic() - self._last_flush >= self.flush_interval:
                    await self.flush_and_commit()
                if (today := datetime.now(UTC).date()) != day:
                    day = today
                    await loop.run_in_executor(self._executor, self.archive.rollover)
            await self.flush_and_commit()
        finally:
            await loop.run_in_executor(self._executor, self.archive.close)
            self._executor.shutdown(wait=True)
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return self.stats

    async def _write(self, tp: TopicPartition, records: list[Any]) -> None:
        tagged = []
        for record in records:
            try:
                tagged.append(decode_tagged(record.value))
            except DecodeError as exc:
                self.stats.rejected += 1
                self.metrics.record_rejected("kafka", exc.reason)
                log.warning("%s[%d]@%d does not decode, skipped: %s", tp.topic, tp.partition,
                            record.offset, exc)
        self.stats.consumed += len(records)
        if tagged:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self.archive.write_batch, tagged)
        if records:
            self._written[tp] = records[-1].offset + 1

    async def flush_and_commit(self) -> None:
        """fsync what was written, then commit exactly those offsets."""
        self._last_flush = time.monotonic()
        if not self._written:
            return
        offsets, self._written = self._written, {}
        await asyncio.get_running_loop().run_in_executor(self._executor, self.archive.flush)
        await self.consumer.commit(offsets)
        self.stats.committed += len(offsets)
