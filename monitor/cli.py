"""The one entry point: ``monitor COMMAND ...``.

Each command lives in its own module under :mod:`monitor.commands` and is
listed once in :data:`COMMANDS`; a module exposes ``register(subparsers)``
which adds its parser and sets ``func`` (args -> exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from monitor import __version__

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

#: Every command module, in the order ``monitor --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "monitor.commands.run",
    "monitor.commands.rules",
    "monitor.commands.archive",
    "monitor.commands.collect",
    "monitor.commands.worker",
    "monitor.commands.bench",
)


class UsageError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Watch an online campaign live: collect, tag, moderate, count, archive.",
    )
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"monitor {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
