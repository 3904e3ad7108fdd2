"""``monitor archive --from kafka://HOST:PORT/TOPIC``: the daily archive fed by the tagged topic."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from monitor.cli import UsageError
from monitor.commands.startup import load_rules, serve_metrics
from monitor.config import ConfigError, load_settings
from monitor.privacy import PseudonymKeyError
from monitor.scaleout.archiver import ArchiveStats, TopicArchiver
from monitor.scaleout.options import (
    add_topic_options,
    kafka_target,
    quiet_client_logs,
    topics_from,
)
from monitor.scaleout.topics import TopicError, Topics, ensure_topics
from monitor.sinks.archive import ArchiveWriter
from monitor.sinks.metrics import Metrics

__all__ = ["add_from_options", "cmd_from"]

log = logging.getLogger("monitor.archive")


def add_from_options(parser: argparse.ArgumentParser) -> None:
    """The flags of ``monitor archive --from`` (the verify/export actions ignore them)."""
    group = parser.add_argument_group("archiving from Kafka (scale-out)")
    group.add_argument("--from", dest="from_url", metavar="kafka://HOST:PORT/TOPIC",
                       help="archive the tagged topic continuously instead of an ACTION")
    group.add_argument("--config", type=Path, help="a TOML file; flags override it")
    group.add_argument("--archive-dir", type=Path, help="daily archive folder (default ./archive)")
    group.add_argument("--no-pseudonymize", dest="pseudonymize", action="store_false",
                       default=None, help="store authors' handles as they came")
    group.add_argument("--key-file", type=Path,
                       help="pseudonym key file (default state/pseudonym.key); "
                            "MONITOR_PSEUDONYM_KEY takes precedence")
    group.add_argument("--metrics-addr", help="serve /metrics on HOST:PORT (default 127.0.0.1:9464)")
    group.add_argument("--rules", type=Path, help="ruleset folder, for the metrics' label sets")
    group.add_argument("--session-timeout", type=float, default=10.0,
                       help="seconds after which a silent archiver is dropped from its group, "
                            "so a restarted one gets the partitions (default 10)")
    add_topic_options(parser)


def cmd_from(args: argparse.Namespace) -> int:
    if not args.from_url:
        raise UsageError("give an ACTION (verify, export) or --from kafka://HOST:PORT/tagged")
    quiet_client_logs(args.verbose)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    for dest, name in (("archive_dir", "archive_dir"), ("pseudonymize", "pseudonymize"),
                       ("key_file", "key_file"), ("metrics_addr", "metrics_addr"),
                       ("rules", "rules")):
        if (value := getattr(args, dest, None)) is not None:
            setattr(settings, name, value)
    if args.session_timeout <= 0:
        raise UsageError("--session-timeout must be > 0")
    target = kafka_target("--from", args.from_url, topic=True)
    assert target.topic is not None
    args.tagged_topic = target.topic
    topics = topics_from(settings, args)
    ruleset = load_rules(settings.rules)
    metrics = Metrics(ruleset)
    try:
        archive = ArchiveWriter(settings.archive_dir, pseudonymize=settings.pseudonymize,
                                key_file=settings.key_file)
    except (PseudonymKeyError, OSError, ValueError) as exc:
        raise UsageError(f"cannot open the archive {settings.archive_dir}: {exc}") from None
    server = serve_metrics(metrics, settings.metrics_addr)
    group = f"{settings.kafka_group}-archive"
    log.info("archiving %s to %s (group %s)", target, settings.archive_dir, group)
    try:
        stats = asyncio.run(_consume(target.bootstrap, topics, group, archive, metrics,
                                     args.session_timeout))
    finally:
        server.shutdown()
    log.info("archive stopped: %d records consumed, %d rejected", stats.consumed, stats.rejected)
    return 0


async def _consume(bootstrap: str, topics: Topics, group: str, archive: ArchiveWriter,
                   metrics: Metrics, session_timeout: float) -> ArchiveStats:
    try:
        await ensure_topics(bootstrap, topics.names, topics.partitions, topics.replication)
    except TopicError as exc:
        archive.close()
        raise UsageError(str(exc)) from None
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=int(session_timeout * 1000),
                                heartbeat_interval_ms=max(100, int(session_timeout * 100)))
    archiver = TopicArchiver(consumer, archive, metrics)
    consumer.subscribe([topics.tagged], listener=archiver.listener())
    try:
        await consumer.start()
    except KafkaError as exc:
        archive.close()
        raise UsageError(f"cannot reach the Kafka broker at {bootstrap}: {exc}") from None
    try:
        return await archiver.run()
    finally:
        await consumer.stop()
