"""Prove archive days whole: ``monitor archive verify DIR``.

For every day folder: the manifest is present; every listed file exists and
its sha256, size and post count match; every line decodes with
:func:`monitor.codec.decode_tagged` and belongs to that UTC day; no post id
repeats within the day; no file sits in the folder unlisted; and the label
counts, time range and provenance recomputed from the lines equal the
manifest's. Each mismatch is one :class:`Problem` printed ``DAY/FILE: what``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date
from pathlib import Path
from typing import Any

from monitor.codec import DecodeError, decode_tagged
from monitor.sinks.idset import IdSet
from monitor.sinks.manifest import (
    COUNT_KEYS,
    MANIFEST_NAME,
    DayStats,
    FileEntry,
    ManifestError,
    build_manifest,
    day_folders,
    read_manifest,
)
from monitor.sinks.segment import FrameReader

__all__ = ["Problem", "VerifyReport", "day_folders", "verify_archive", "verify_day"]

#: Line-level problems reported per file before the rest are summed up.
_MAX_LINE_PROBLEMS = 10
_FILE_KEYS = ("path", "sha256", "posts", "bytes")


@dataclass(slots=True, frozen=True)
class Problem:
    """One mismatch; ``where`` is ``DAY/FILE``."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(slots=True)
class VerifyReport:
    days: int = 0
    posts: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_archive(root: Path, days: Iterable[Path] | None = None) -> VerifyReport:
    """Verify ``days`` (default: every day folder under ``root``)."""
    report = VerifyReport()
    for folder in day_folders(root) if days is None else days:
        posts, problems = verify_day(folder)
        report.days += 1
        report.posts += posts
        report.problems.extend(problems)
    return report


class _DayCheck:
    """State while checking one day: ids, recomputed stats, problems found."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.day = date.fromisoformat(folder.name)
        self.ids = IdSet()
        self.stats = DayStats()
        self.problems: list[Problem] = []
        self.entries: list[FileEntry] = []
        self.damaged = False

    def problem(self, name: str, what: str) -> None:
        self.problems.append(Problem(f"{self.folder.name}/{name}", what))

    def check_file(self, name: str, listed: dict[str, Any] | None) -> None:
        path = self.folder / name
        line_no = 0
        line_problems = 0

        def line_problem(what: str) -> None:
            nonlocal line_problems
            line_problems += 1
            if line_problems <= _MAX_LINE_PROBLEMS:
                self.problem(name, f"line {line_no}: {what}")

        with path.open("rb") as fileobj:
            reader = FrameReader(fileobj)
            for content in reader:
                for line in content.splitlines():
                    line_no += 1
                    try:
                        tagged = decode_tagged(line)
                    except DecodeError as exc:
                        line_problem(f"does not decode ({exc})")
                        continue
                    if not self.ids.add(tagged.post.id):
                        line_problem(f"duplicate id {tagged.post.id!r} within the day")
                        continue
                    if tagged.post.created_at.astimezone(UTC).date() != self.day:
                        line_problem(f"created_at {tagged.post.created_at.isoformat()} "
                                     f"is not in day {self.day}")
                    self.stats.add_tagged(tagged)
        if line_problems > _MAX_LINE_PROBLEMS:
            self.problem(name, f"{line_problems - _MAX_LINE_PROBLEMS} more bad lines")
        size = path.stat().st_size
        if reader.problem:
            self.damaged = True
            self.problem(name, f"{reader.problem}; {size - reader.good_end} bytes from byte "
                               f"{reader.good_end} on cannot be read")
            with path.open("rb") as fileobj:
                sha = hashlib.file_digest(fileobj, "sha256").hexdigest()
        else:
            sha = reader.sha256.hexdigest()
        self.entries.append(FileEntry(name, sha, line_no, size))
        if listed is None:
            return
        readable = " readable" if reader.problem else ""
        for key, actual in (("bytes", size), ("posts", line_no), ("sha256", sha)):
            if listed.get(key) != actual:
                self.problem(name, f"{key}: manifest says {listed.get(key)}, "
                                   f"file has {actual}{readable if key == 'posts' else ''}")


def verify_day(folder: Path) -> tuple[int, list[Problem]]:
    """Check one day folder; returns (posts read, problems)."""
    check = _DayCheck(folder)
    manifest = _load_manifest(check)
    present = {p.name for p in folder.iterdir()} - {MANIFEST_NAME}
    if manifest is None:
        # Without a manifest, still prove the lines themselves sound.
        for name in sorted(present):
            if (folder / name).is_file():
                check.check_file(name, None)
        return sum(e.posts for e in check.entries), check.problems
    listed = {entry["path"]: entry for entry in manifest["files"]}
    for name in sorted(present - set(listed)):
        check.problem(name, f"not listed in {MANIFEST_NAME}; move it out of the archive "
                            f"or restore the manifest that lists it")
    for name in sorted(listed):
        if "/" in name or name.startswith(".") or name == MANIFEST_NAME:
            check.problem(MANIFEST_NAME, f"file path {name!r} is not a plain data file name")
            check.damaged = True
        elif name not in present or not (folder / name).is_file():
            check.problem(name, f"listed in {MANIFEST_NAME} but missing")
            check.damaged = True
        else:
            check.check_file(name, listed[name])
    if not check.damaged:
        _compare(check, manifest)
    return sum(e.posts for e in check.entries), check.problems


def _load_manifest(check: _DayCheck) -> dict[str, Any] | None:
    path = check.folder / MANIFEST_NAME
    if not path.exists():
        check.problem(MANIFEST_NAME, "missing; stop the monitor cleanly to write it, "
                                     "or wait for the next midnight rollover")
        return None
    try:
        manifest = read_manifest(path)
    except ManifestError as exc:
        check.problem(MANIFEST_NAME, str(exc).removeprefix(f"{path}: "))
        return None
    files = manifest.get("files")
    if not isinstance(files, list) or not all(
        isinstance(e, dict) and all(k in e for k in _FILE_KEYS) for e in files
    ):
        check.problem(MANIFEST_NAME, "files must be a list of {path, sha256, posts, bytes}")
        return None
    return manifest


def _compare(check: _DayCheck, manifest: dict[str, Any]) -> None:
    expected = build_manifest(check.day, check.entries, check.stats)
    for key in ("day", "posts", "first_created_at", "last_created_at", "ruleset",
                "processor_version"):
        if manifest.get(key) != expected[key]:
            check.problem(MANIFEST_NAME, f"{key}: manifest says {manifest.get(key)!r}, "
                                         f"files give {expected[key]!r}")
    counts = manifest.get("counts")
    if not isinstance(counts, dict):
        check.problem(MANIFEST_NAME, "counts missing or not an object")
        return
    for family in COUNT_KEYS:
        said, found = counts.get(family) or {}, expected["counts"][family]
        if not isinstance(said, dict):
            check.problem(MANIFEST_NAME, f"counts.{family} is not an object")
            continue
        wrong = sorted(
            f"{label}: manifest {said.get(label, 0)}, files {found.get(label, 0)}"
            for label in set(said) | set(found)
            if said.get(label, 0) != found.get(label, 0)
        )
        if wrong:
            check.problem(MANIFEST_NAME, f"counts.{family} do not match ({'; '.join(wrong)})")
