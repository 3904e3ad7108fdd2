"""``monitor worker``: the processor as a Faust worker on Kafka (scale-out)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from monitor.cli import UsageError
from monitor.commands.run import settings_from_args
from monitor.commands.startup import build_tagger, serve_metrics
from monitor.memory import tune_for_streams
from monitor.moderation.moderator import Moderator
from monitor.privacy import Pseudonymizer, PseudonymKeyError
from monitor.processor import Processor
from monitor.scaleout.agent import WorkerConfig, build_app
from monitor.scaleout.options import (
    add_topic_options,
    kafka_target,
    quiet_client_logs,
    topics_from,
)
from monitor.scaleout.step import WorkerStep
from monitor.scaleout.topics import TopicError, ensure_topics
from monitor.scaleout.windows import PartitionWindows
from monitor.sinks.metrics import Metrics

__all__ = ["register"]

log = logging.getLogger("monitor.worker")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("worker", help="tag the posts topic as one Faust worker (scale-out)",
                       description="Consume the posts topic in batches, tag and moderate them "
                                   "with the same processor as 'monitor run', produce to the "
                                   "tagged and flags topics. Start more to share the work.")
    p.add_argument("--broker", required=True, metavar="kafka://HOST:PORT[,HOST:PORT]",
                   help="the Kafka brokers")
    p.add_argument("--config", type=Path, help="a TOML file; flags override it")
    p.add_argument("--rules", type=Path, help="ruleset folder (default: the shipped keep4o)")
    p.add_argument("--metrics-addr",
                   help="serve this worker's /metrics on HOST:PORT (default 127.0.0.1:9464)")
    p.add_argument("--batch-size", type=int, help="posts per processor batch (default 256)")
    p.add_argument("--batch-wait", type=float,
                   help="seconds to wait for a batch to fill (default 0.05)")
    p.add_argument("--session-timeout", type=float, default=10.0,
                   help="seconds after which a silent worker's partitions go to the others "
                        "(default 10)")
    p.add_argument("--data-dir", type=Path,
                   help="Faust's local state (default STATE_DIR/faust-GROUP)")
    p.add_argument("--state-dir", type=Path, help="state folder (default ./state)")
    p.add_argument("--no-pseudonymize", dest="pseudonymize", action="store_false", default=None,
                   help="put authors' handles in flag records as they came")
    p.add_argument("--key-file", type=Path,
                   help="pseudonym key for flag records (default state/pseudonym.key); "
                        "MONITOR_PSEUDONYM_KEY takes precedence")
    add_topic_options(p)
    p.set_defaults(func=_worker, sources=None)


def _worker(args: argparse.Namespace) -> int:
    from faust.worker import Worker  # imports much; only this command needs it

    quiet_client_logs(args.verbose)
    settings = settings_from_args(args)
    if args.batch_wait is not None:
        settings.batch_wait = args.batch_wait
    if settings.batch_wait < 0 or args.session_timeout <= 0:
        raise UsageError("--batch-wait must be >= 0 and --session-timeout > 0")
    target = kafka_target("--broker", args.broker, topic=False)
    topics = topics_from(settings, args)
    tagger = build_tagger(settings.rules)
    metrics = Metrics(tagger.ruleset)
    try:
        author = Pseudonymizer.load(settings.key_file) if settings.pseudonymize else None
    except (PseudonymKeyError, OSError, ValueError) as exc:
        raise UsageError(f"--key-file: {exc}") from None
    processor = Processor(tagger, dedup_window=settings.dedup_window)
    windows = PartitionWindows.for_moderator(
        Moderator(tagger.ruleset.moderation, tagger.ruleset.campaign.trusted_domains))
    config = WorkerConfig(group=settings.kafka_group, batch_size=settings.batch_size,
                          batch_wait=settings.batch_wait, session_timeout=args.session_timeout,
                          data_dir=args.data_dir or settings.state_dir /
                          f"faust-{settings.kafka_group}")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(ensure_topics(target.bootstrap, topics.names,
                                              topics.partitions, topics.replication))
    except TopicError as exc:
        loop.close()
        raise UsageError(str(exc)) from None
    app, _agent = build_app(target.faust_broker, topics,
                            WorkerStep(processor, metrics, author=author, windows=windows), config)
    server = serve_metrics(metrics, settings.metrics_addr)
    log.info("worker of group %s: ruleset '%s' (%s), %s -> %s, %s on %s", config.group,
             tagger.ruleset.name, tagger.ruleset.hash, topics.posts, topics.tagged,
             topics.flags, target)
    worker = Worker(app, loop=loop, loglevel=logging.getLogger().level, quiet=True,
                    redirect_stdouts=False, override_logging=False)
    tune_for_streams()
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        server.shutdown()
    return 0
