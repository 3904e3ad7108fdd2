"""``monitor archive verify|export``: prove archive days whole, or hand them to analysts."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from monitor.archive_export import FORMATS, ExportError, export_day
from monitor.archive_verify import day_folders, verify_archive
from monitor.cli import UsageError
from monitor.scaleout.archive_from import add_from_options, cmd_from
from monitor.sinks.archive import DEFAULT_ARCHIVE_DIR

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "archive",
        help="verify or export the daily archive, or fill it from Kafka",
        description="Work with the daily archive written by `monitor run`, or fill it from "
                    "the tagged topic (--from kafka://HOST:PORT/tagged).",
    )
    add_from_options(parser)
    parser.set_defaults(func=cmd_from)
    actions = parser.add_subparsers(dest="archive_command", metavar="ACTION")

    verify = actions.add_parser(
        "verify",
        help="check every day against its manifest",
        description="Check manifests, checksums, post counts, decoding, duplicate ids and "
                    "label counts of every day. Exit 1 and print `DAY/FILE: what is wrong` "
                    "per mismatch; exit 0 with a summary when the archive is whole.",
    )
    verify.add_argument("dir", metavar="DIR", type=Path, nargs="?", default=DEFAULT_ARCHIVE_DIR,
                        help=f"the archive folder (default: {DEFAULT_ARCHIVE_DIR})")
    verify.add_argument("--day", action="append", metavar="YYYY-MM-DD",
                        help="verify only this day (repeatable)")
    verify.set_defaults(func=cmd_verify)

    export = actions.add_parser(
        "export",
        help="write one day as Parquet or CSV",
        description="Write one day as a flat table for pandas, DuckDB or R: Parquet keeps "
                    "themes, reasons and flags as lists; CSV joins them with ';'.",
    )
    export.add_argument("dir", metavar="DIR", type=Path, nargs="?", default=DEFAULT_ARCHIVE_DIR,
                        help=f"the archive folder (default: {DEFAULT_ARCHIVE_DIR})")
    export.add_argument("--day", required=True, metavar="YYYY-MM-DD", help="the UTC day")
    export.add_argument("--format", choices=FORMATS, default="parquet", dest="fmt",
                        help="output format (default: parquet)")
    export.add_argument("--out", type=Path, metavar="FILE",
                        help="output file (default: archive-DAY.FORMAT here)")
    export.set_defaults(func=cmd_export)


def _archive_dir(path: Path) -> Path:
    if not path.is_dir():
        raise UsageError(f"{path}: no such archive folder; pass the --archive-dir `monitor run` "
                         f"used (default {DEFAULT_ARCHIVE_DIR})")
    return path


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--day {value!r} is not a date; write it as YYYY-MM-DD") from None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def cmd_verify(args: argparse.Namespace) -> int:
    root = _archive_dir(args.dir)
    if args.day:
        folders = [root / _day(value).isoformat() for value in args.day]
        for folder in folders:
            if not folder.is_dir():
                raise UsageError(f"{folder}: no such day in the archive")
    else:
        folders = day_folders(root)
        if not folders:
            raise UsageError(f"{root}: no day folders (YYYY-MM-DD) found; is this the archive?")
    report = verify_archive(root, folders)
    for problem in report.problems:
        print(problem)
    if report.problems:
        print(f"archive {root}: {_count(len(report.problems), 'problem')} "
              f"in {_count(report.days, 'day')}")
        return 1
    print(f"archive {root}: OK, {_count(report.days, 'day')}, {_count(report.posts, 'post')}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    root = _archive_dir(args.dir)
    day = _day(args.day)
    out = args.out or Path(f"archive-{day.isoformat()}.{args.fmt}")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name")
    try:
        rows = export_day(root, day, args.fmt, out)
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {rows} posts of {day} to {out}")
    return 0
