"""``monitor run``: the embedded monitor, one process, no broker."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.cli import UsageError
from monitor.commands.startup import (
    build_tagger,
    compile_rules,
    load_rules,
    serve_metrics,
    start_tagger_process,
)
from monitor.config import ConfigError, Settings, load_settings
from monitor.memory import freeze_long_lived, tune_for_streams
from monitor.moderation.moderator import Moderator
from monitor.privacy import Pseudonymizer, PseudonymKeyError
from monitor.processor import Processor
from monitor.runtime.local import LocalRuntime
from monitor.runtime.progress import Progress
from monitor.runtime.tagger_process import usable_cpus, wanted
from monitor.sinks.archive import ArchiveWriter
from monitor.sinks.metrics import Metrics
from monitor.sinks.mqtt import MqttSink
from monitor.sources import SourceContext, SourceError, open_source
from monitor.sources.cursor import FileCursorStore
from monitor.tagging import Ruleset, default_rules_path, load_ruleset

if TYPE_CHECKING:
    from monitor.tagging import Tagger

__all__ = ["register"]

log = logging.getLogger("monitor.run")

#: flag dest -> Settings field, for flags that override the config file
_OVERRIDES = {
    "rules": "rules", "exit_when_done": "exit_when_done", "batch_size": "batch_size",
    "queue_size": "queue_size", "metrics_addr": "metrics_addr", "archive_dir": "archive_dir",
    "archive": "archive", "pseudonymize": "pseudonymize", "key_file": "key_file",
    "keep_raw": "keep_raw", "progress": "progress", "state_dir": "state_dir",
    "mqtt_publish": "mqtt_publish", "mqtt_buffer": "mqtt_buffer",
    "tagger_process": "tagger_process",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run the monitor in this process (the embedded default)",
                       description="Collect, tag, count and archive posts in one process.")
    p.add_argument("--source", dest="sources", action="append", metavar="URI",
                   help="a source URI, repeatable: replay:FILE[?speed=..&resume=true], "
                        "bluesky:[wss://HOST/subscribe], mastodon:https://INSTANCE[,…], "
                        "x:[https://HOST], reddit:r/SUB[+SUB], rss:URL[?every=S], "
                        "mqtt://HOST:PORT/TOPIC")
    p.add_argument("--config", type=Path, help="a TOML file; flags override it")
    p.add_argument("--rules", type=Path, help="ruleset folder (default: the shipped keep4o)")
    p.add_argument("--metrics-addr", help="serve /metrics on HOST:PORT (default 127.0.0.1:9464)")
    p.add_argument("--archive-dir", type=Path, help="daily archive folder (default ./archive)")
    p.add_argument("--no-archive", dest="archive", action="store_false", default=None,
                   help="do not archive")
    p.add_argument("--no-pseudonymize", dest="pseudonymize", action="store_false", default=None,
                   help="store authors' handles as they came (default: keyed pseudonyms)")
    p.add_argument("--key-file", type=Path,
                   help="pseudonym key file, created if missing (default state/pseudonym.key); "
                        "MONITOR_PSEUDONYM_KEY in the environment takes precedence")
    p.add_argument("--state-dir", type=Path,
                   help="where source cursors are kept between runs (default ./state)")
    p.add_argument("--keep-raw", action="store_true", default=None,
                   help="archive the platform's raw payload too (it carries account data)")
    p.add_argument("--exit-when-done", action="store_true", default=None,
                   help="exit once finite sources (replay) are exhausted and archived")
    p.add_argument("--batch-size", type=int, help="posts per processor batch (default 256)")
    p.add_argument("--queue-size", type=int, help="posts the queue holds (default 10000)")
    p.add_argument("--tagger-process", action=argparse.BooleanOptionalAction, default=None,
                   help="tag in a second process, on a second core: ~1.4-1.8x the posts per "
                        "second for ~60 MB more memory (default: when two or more CPUs are "
                        "usable)")
    p.add_argument("--mqtt-publish", metavar="URL",
                   help="publish flags and tagged posts to mqtt[s]://HOST:PORT/PREFIX (QoS 1); "
                        "credentials from MONITOR_MQTT_USERNAME / MONITOR_MQTT_PASSWORD")
    p.add_argument("--mqtt-buffer", type=int, metavar="N",
                   help="MQTT messages kept while the broker is away (default 10000)")
    p.add_argument("--progress", choices=("auto", "tty", "log", "off"),
                   help="progress display (default: a live line on a terminal, logs otherwise)")
    p.set_defaults(func=_run)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Defaults, then --config, then every flag that was given."""
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    for dest, name in _OVERRIDES.items():
        if (value := getattr(args, dest, None)) is not None:
            setattr(settings, name, value)
    if args.sources:
        settings.sources = list(args.sources)
    if settings.batch_size < 1 or settings.queue_size < 1:
        raise UsageError("--batch-size and --queue-size must be at least 1")
    return settings


#: What `monitor run` watches with no --source and no config: no credentials needed.
LIVE_DEFAULT: tuple[str, ...] = (
    "bluesky:",
    "mastodon:https://mastodon.social,https://fosstodon.org,https://mastodon.online",
)
#: host:port pairs whose reachability decides whether the live default can work at all
_LIVE_PROBES: tuple[tuple[str, int], ...] = (
    ("jetstream2.us-east.bsky.network", 443), ("jetstream1.us-west.bsky.network", 443),
    ("mastodon.social", 443), ("fosstodon.org", 443),
)


def _network_reachable(probes: tuple[tuple[str, int], ...] = _LIVE_PROBES,
                       timeout: float = 3.0) -> bool:
    """True if any live-default endpoint answers a TCP connect (DNS included)."""
    import socket

    for host, port in probes:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def _run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if not settings.sources:
        if not _network_reachable():
            raise UsageError(
                "no --source given, so the live default (Bluesky Jetstream and Mastodon "
                "hashtag timelines) would run, but none of their servers can be reached from "
                "here (no network?). Run the bundled sample instead: 'make run', or "
                "'monitor run --source replay:samples/stream.jsonl'")
        settings.sources = list(LIVE_DEFAULT)
        log.info("no --source given: watching the live default %s", ", ".join(LIVE_DEFAULT))
    tagger_process = wanted(settings.tagger_process)
    if tagger_process and settings.tagger_process is None:
        log.info("tagging in a second process (%d CPUs usable; --no-tagger-process tags in "
                 "this one)", usable_cpus())
    if tagger_process:  # the child compiles the rules: this process needs no spaCy
        ruleset = load_rules(settings.rules)
        rules: Tagger | Ruleset = ruleset
        freeze_long_lived()
    else:
        rules = build_tagger(settings.rules)
        ruleset = rules.ruleset
    metrics = Metrics(ruleset)
    try:
        cursors = FileCursorStore(settings.state_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    context = SourceContext(
        cursors=cursors,
        hashtags=ruleset.campaign.hashtags,
        terms=ruleset.campaign.terms,
        up=metrics.record_source_up,
        reconnected=metrics.record_reconnect,
        error=metrics.record_source_error,
    )
    try:
        sources = [open_source(uri, context) for uri in settings.sources]
    except (SourceError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    server = serve_metrics(metrics, settings.metrics_addr)
    archive = None
    if settings.archive:
        try:
            archive = ArchiveWriter(settings.archive_dir, pseudonymize=settings.pseudonymize,
                                    key_file=settings.key_file, keep_raw=settings.keep_raw)
        except (PseudonymKeyError, OSError, ValueError) as exc:
            raise UsageError(f"cannot open the archive {settings.archive_dir}: {exc}") from None
        log.info("archiving to %s", settings.archive_dir)
    sinks = []
    if settings.mqtt_publish:
        try:
            author = Pseudonymizer.load(settings.key_file) if settings.pseudonymize else None
            sinks.append(MqttSink(settings.mqtt_publish, registry=metrics.registry,
                                  author=author, buffer_size=settings.mqtt_buffer))
        except (PseudonymKeyError, ValueError) as exc:
            raise UsageError(f"--mqtt-publish: {exc}") from None
        log.info("publishing flags and tagged posts to %s", sinks[0].target)
    log.info("ruleset '%s' (%s), %d sources: %s", ruleset.name, ruleset.hash,
             len(sources), ", ".join(settings.sources))
    child = None
    if tagger_process:
        child = start_tagger_process(ruleset, required=settings.tagger_process is True)
        if child is None:  # auto, and no child could start
            rules = compile_rules(ruleset)
    runtime = LocalRuntime(
        sources,
        Processor(rules, dedup_window=settings.dedup_window,
                  moderator=Moderator(ruleset.moderation, ruleset.campaign.trusted_domains)),
        metrics,
        archive,
        sinks=sinks,
        queue_size=settings.queue_size,
        batch_size=settings.batch_size,
        exit_when_done=settings.exit_when_done,
        progress=Progress(settings.progress),
        cursors=cursors,
        reload_rules=lambda: load_ruleset(settings.rules or default_rules_path()),
        tagger_process=child,
    )
    tune_for_streams()
    try:
        asyncio.run(runtime.run())
    finally:
        server.shutdown()
    return 0
