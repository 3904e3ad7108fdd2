"""Flags the scale-out commands share: the broker, topics and their shape, client logs."""

from __future__ import annotations

import argparse
import logging

from monitor.cli import UsageError
from monitor.config import Settings
from monitor.scaleout.topics import Topics
from monitor.scaleout.url import KafkaTarget, parse_kafka_url

__all__ = ["add_topic_options", "kafka_target", "quiet_client_logs", "topics_from"]

#: flag dest -> Settings field ([kafka] table of the config file)
TOPIC_OVERRIDES = {
    "posts_topic": "kafka_posts_topic", "tagged_topic": "kafka_tagged_topic",
    "flags_topic": "kafka_flags_topic", "partitions": "kafka_partitions",
    "replication": "kafka_replication", "group": "kafka_group",
}


def add_topic_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("topics (also the [kafka] table of --config)")
    group.add_argument("--posts-topic", help="posts topic (default posts)")
    group.add_argument("--tagged-topic", help="tagged posts topic (default tagged)")
    group.add_argument("--flags-topic", help="moderation flags topic (default flags)")
    group.add_argument("--partitions", type=int,
                       help="partitions of every topic, created if missing (default 8); "
                            "at most this many workers share the work")
    group.add_argument("--replication", type=int, help="replication factor (default 1)")
    group.add_argument("--group", help="consumer group of the workers (default monitor)")


def topics_from(settings: Settings, args: argparse.Namespace) -> Topics:
    """The [kafka] settings with the flags given over them."""
    for dest, name in TOPIC_OVERRIDES.items():
        if (value := getattr(args, dest, None)) is not None:
            setattr(settings, name, value)
    try:
        return Topics(settings.kafka_posts_topic, settings.kafka_tagged_topic,
                      settings.kafka_flags_topic, settings.kafka_partitions,
                      settings.kafka_replication)
    except ValueError as exc:
        raise UsageError(f"{exc}; check --partitions/--replication and the topic names") \
            from None


def kafka_target(flag: str, url: str, *, topic: bool | None) -> KafkaTarget:
    try:
        return parse_kafka_url(url, topic=topic)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def quiet_client_logs(verbose: bool) -> None:
    """Faust and aiokafka log every rebalance step at INFO; keep their warnings only."""
    if not verbose:
        for name in ("faust", "mode", "aiokafka"):
            logging.getLogger(name).setLevel(logging.WARNING)
