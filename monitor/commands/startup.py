"""What the long-running commands (run, collect, worker, archive --from) set up the
same way, with the same messages when it fails: the ruleset and the metrics server."""

from __future__ import annotations

import asyncio
import errno
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.cli import UsageError
from monitor.memory import freeze_long_lived
from monitor.runtime.tagger_process import TaggerGone, TaggerProcess
from monitor.sinks.metrics import Metrics
from monitor.tagging import Ruleset, RulesetError, default_rules_path, load_ruleset

if TYPE_CHECKING:
    from monitor.tagging import Tagger

__all__ = ["build_tagger", "compile_rules", "load_rules", "serve_metrics",
           "start_tagger_process"]

log = logging.getLogger("monitor.metrics")


def _problems(exc: RulesetError) -> UsageError:
    return UsageError(f"the ruleset has {len(exc.problems)} problem(s):\n{exc}\n"
                      "run 'monitor rules check' after fixing them")


def load_rules(path: Path | None) -> Ruleset:
    """The ruleset at ``path`` (default: the shipped keep4o), not compiled."""
    try:
        return load_ruleset(path or default_rules_path())
    except RulesetError as exc:
        raise _problems(exc) from None


def build_tagger(path: Path | None) -> Tagger:
    """A tagger on the ruleset at ``path``; a pattern that does not compile is a usage
    error too."""
    return compile_rules(load_rules(path))


def compile_rules(ruleset: Ruleset) -> Tagger:
    """``ruleset`` compiled in this process; a pattern that does not compile is a usage
    error."""
    from monitor.tagging import Tagger, compile_ruleset

    freeze_long_lived()  # spaCy's modules just imported; the tagger built after it
    try:
        return Tagger(compile_ruleset(ruleset))
    except RulesetError as exc:
        raise _problems(exc) from None


def start_tagger_process(ruleset: Ruleset, *, required: bool) -> TaggerProcess | None:
    """A tagging process that has compiled ``ruleset``: rules it cannot compile are the
    same usage error as :func:`build_tagger`'s, and this process never compiles them.

    A child that cannot start is a usage error if it was asked for (``required``);
    otherwise (the "auto" default) this process tags: None."""
    child = TaggerProcess(ruleset)
    try:
        asyncio.run(child.start())
    except RulesetError as exc:
        raise _problems(exc) from None
    except TaggerGone as exc:
        if required:
            raise UsageError(f"--tagger-process: {exc}; --no-tagger-process tags in this "
                             "process") from None
        logging.getLogger("monitor.run").warning("%s: tagging in this process", exc)
        return None
    return child


def serve_metrics(metrics: Metrics, addr: str) -> Any:
    """Serve /metrics (port 0: any free one) and log where, for tests and users to find."""
    try:
        server = metrics.serve(addr)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"metrics address {addr} is in use; pass --metrics-addr "
                             "127.0.0.1:PORT with a free port (one per process)") from None
        raise UsageError(f"cannot serve metrics on {addr}: {exc}") from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    host, port = server.server_address[:2]
    log.info("serving metrics on http://%s:%s/metrics", host, port)
    return server
