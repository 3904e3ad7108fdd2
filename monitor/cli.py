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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, that command's alone.

    A command's module imports what the command needs (spaCy, Faust, Kafka's
    client, pyarrow), so ``monitor run`` parses with its own module only: its
    process then carries none of the others' libraries (~120 MiB with a
    tagging process, which imports spaCy where it is needed instead)."""
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Watch an online campaign live: collect, tag, moderate, count, archive.",
    )
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is None or name.rpartition(".")[2] == only:
            importlib.import_module(name).register(sub)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, if it is one (anything else gets the whole parser's
    help or error)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    known = {name.rpartition(".")[2] for name in COMMANDS}
    return first if first in known else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
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
