"""The Faust worker: the posts topic in batches through :class:`WorkerStep`, out to
``tagged`` and ``flags``.

Processing guarantee: at least once. ``stream.take_events`` acknowledges a
batch's offsets only when the loop comes back for the next batch, and the
loop first awaits the broker's acknowledgement of every record it produced,
so a worker killed at any point leaves its partitions' committed offsets
behind anything not yet in ``tagged``; the worker taking the partitions
over processes those posts again and the archive keeps one copy per post id.
The moderation windows live per source partition in the ``moderation``
table (:mod:`monitor.scaleout.windows`), created when the step has them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from monitor.scaleout.flow import App
from monitor.scaleout.step import Record, StepResult, WorkerStep
from monitor.scaleout.topics import Topics
from monitor.scaleout.windows import PartitionKeyedTable

__all__ = ["Emit", "WorkerConfig", "build_app"]

log = logging.getLogger(__name__)

#: Produces one batch's records and returns once the broker acknowledged them all.
Emit = Callable[[StepResult], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How a worker joins: the group (Faust app id), batching and failure detection."""

    group: str = "monitor"
    batch_size: int = 256
    batch_wait: float = 0.05
    #: seconds without heartbeats before the group gives a dead worker's partitions away
    session_timeout: float = 10.0
    data_dir: Path = Path("state/faust")


def build_app(broker: str, topics: Topics, step: WorkerStep, config: WorkerConfig, *,
              emit: Emit | None = None) -> tuple[faust.App, Any]:
    """The Faust app and its agent.

    ``broker``: :attr:`KafkaTarget.faust_broker`. ``emit``: where a batch's
    records go instead of the ``tagged`` and ``flags`` topics; unit tests pass
    one that keeps them, and run ``agent.test_context()`` with no broker.
    """
    app = App(
        config.group,
        broker=broker,
        datadir=str(config.data_dir),
        topic_partitions=topics.partitions,
        topic_replication_factor=topics.replication,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=config.session_timeout,
        broker_heartbeat_interval=max(0.5, config.session_timeout / 10),
        producer_acks=-1,
        # a batch's records leave in a few requests, not one each (the loop awaits them anyway)
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,
        # The table lives in memory (no RocksDB files that could outlive their topic),
        # so a local offset past the broker's highwater only means the broker under-
        # reports it (Tansu 0.6.0's ListOffsets does); the check would crash the worker
        # on every such rebalance instead of recovering.
        recovery_consistency_check=False,
    )
    posts = app.topic(topics.posts, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw",
                      partitions=topics.partitions)
    if emit is None:
        emit = _topic_emit(app, topics)
    if step.windows is not None:
        table = app.tables.add(PartitionKeyedTable(
            app, name="moderation", beacon=app.tables.beacon, partitions=topics.partitions,
            key_type=bytes, value_type=bytes,  # raw: the values are our JSON, never pickles
            help="each partition's moderation windows: one record per post in them"))
        table.windows, table.source_topic = step.windows, topics.posts
        step.windows.table = table

    @app.agent(posts, name="process")
    async def process(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(config.batch_size, within=config.batch_wait):
            messages = [e.message for e in events]
            result = step([m.value for m in messages], [m.timestamp for m in messages],
                          [f"{m.topic}[{m.partition}]@{m.offset}" for m in messages],
                          partitions=[m.partition for m in messages],
                          offsets=[m.offset for m in messages])
            await _until_delivered(emit, result, step)

    return app, process


async def _until_delivered(emit: Emit, result: StepResult, step: WorkerStep) -> None:
    """Retry a batch's output until the broker takes it (at least once: some records
    may go twice); its offsets are acknowledged only after this returns."""
    delay = 0.5
    while True:
        try:
            await emit(result)
            return
        except Exception as exc:
            step.metrics.sink_errors.labels("kafka").inc()
            log.warning("producing a batch of %d tagged posts failed (%s); retrying in %.1f s",
                        len(result.tagged), exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def _topic_emit(app: faust.App, topics: Topics) -> Emit:
    tagged, flags = (app.topic(name, key_serializer="raw", value_serializer="raw",
                               partitions=topics.partitions)
                     for name in (topics.tagged, topics.flags))

    async def send_all(topic: faust.TopicT, records: Sequence[Record]) -> list[Any]:
        return [await topic.send(key=r.key, value=r.value) for r in records]

    async def emit(result: StepResult) -> None:
        pending = [*await send_all(tagged, result.tagged), *await send_all(flags, result.flags)]
        if pending:
            await asyncio.gather(*pending)

    return emit
