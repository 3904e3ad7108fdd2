"""``monitor collect``: the sources of ``monitor run``, produced to a Kafka topic."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from monitor.cli import UsageError
from monitor.commands.run import settings_from_args
from monitor.commands.startup import load_rules, serve_metrics
from monitor.scaleout.options import (
    add_topic_options,
    kafka_target,
    quiet_client_logs,
    topics_from,
)
from monitor.scaleout.producer import CollectStats, DeliveryError, PostProducer
from monitor.scaleout.topics import TopicError, Topics, ensure_topics
from monitor.sinks.metrics import Metrics
from monitor.sources import SourceContext, SourceError, open_source
from monitor.sources.base import Source
from monitor.sources.cursor import CursorStore, FileCursorStore

__all__ = ["register"]

log = logging.getLogger("monitor.collect")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("collect", help="run the sources into a Kafka topic (scale-out)",
                       description="Collect posts and produce them to Kafka, keyed by post id; "
                                   "a source's cursor advances once the broker has them.")
    p.add_argument("--source", dest="sources", action="append", metavar="URI",
                   help="a source URI, repeatable, as for 'monitor run'")
    p.add_argument("--to", required=True, metavar="kafka://HOST:PORT/TOPIC",
                   help="the brokers and the posts topic")
    p.add_argument("--config", type=Path, help="a TOML file; flags override it")
    p.add_argument("--rules", type=Path,
                   help="ruleset folder: its campaign filters the sources (default keep4o)")
    p.add_argument("--state-dir", type=Path, help="where source cursors are kept (default ./state)")
    p.add_argument("--metrics-addr", help="serve /metrics on HOST:PORT (default 127.0.0.1:9464)")
    p.add_argument("--exit-when-done", action="store_true", default=None,
                   help="exit once finite sources (replay) are exhausted and delivered")
    add_topic_options(p)
    p.set_defaults(func=_collect)


def _collect(args: argparse.Namespace) -> int:
    quiet_client_logs(args.verbose)
    settings = settings_from_args(args)
    target = kafka_target("--to", args.to, topic=True)
    assert target.topic is not None
    args.posts_topic = target.topic
    topics = topics_from(settings, args)
    if not settings.sources:
        raise UsageError("no --source given; e.g. --source replay:samples/stream.jsonl")
    ruleset = load_rules(settings.rules)
    metrics = Metrics(ruleset)
    try:
        cursors = FileCursorStore(settings.state_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    context = SourceContext(cursors=cursors, hashtags=ruleset.campaign.hashtags,
                            terms=ruleset.campaign.terms, up=metrics.record_source_up,
                            reconnected=metrics.record_reconnect,
                            error=metrics.record_source_error)
    try:
        sources = [open_source(uri, context) for uri in settings.sources]
    except (SourceError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    server = serve_metrics(metrics, settings.metrics_addr)
    try:
        stats = asyncio.run(_produce(target.bootstrap, topics, sources, metrics, cursors,
                                     settings.exit_when_done))
    finally:
        server.shutdown()
    log.info("collected %d posts (%d rejected), %d delivered to %s", stats.received,
             stats.rejected, stats.delivered, target)
    return 0


async def _produce(bootstrap: str, topics: Topics, sources: list[Source], metrics: Metrics,
                   cursors: CursorStore, exit_when_done: bool) -> CollectStats:
    try:
        await ensure_topics(bootstrap, topics.names, topics.partitions, topics.replication)
    except TopicError as exc:
        raise UsageError(str(exc)) from None
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=256 * 1024)
    try:
        await producer.start()
    except KafkaError as exc:
        raise UsageError(f"cannot reach the Kafka broker at {bootstrap}: {exc}") from None
    log.info("producing %d sources to %s on %s", len(sources), topics.posts, bootstrap)
    try:
        return await PostProducer(producer, topics.posts, sources, metrics, cursors,
                                  exit_when_done=exit_when_done).run()
    except DeliveryError as exc:
        raise UsageError(str(exc)) from None
    finally:
        await producer.stop()
