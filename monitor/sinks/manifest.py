"""A day's manifest: what the day's files hold, provably.

``ARCHIVE/YYYY-MM-DD/manifest.json`` lists every data file with its sha256,
size and post count, the label counts, the event-time range and the
provenance of the day's data. The writer keeps a :class:`DayStats` per open
day and :func:`write_manifest` swaps the file in atomically, so a reader
never sees half a manifest. ``monitor archive verify`` recomputes the same
:class:`DayStats` from the files and compares.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from monitor.codec import format_time
from monitor.model import TaggedPost
from monitor.sinks.segment import FILE_MODE, fsync_dir

__all__ = [
    "COUNT_KEYS",
    "DATA_SUFFIX",
    "MANIFEST_NAME",
    "DayStats",
    "FileEntry",
    "ManifestError",
    "build_manifest",
    "day_folders",
    "looks_whole",
    "read_manifest",
    "remove_stale_temp",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
DATA_SUFFIX = ".jsonl.zst"
#: The label families counted per day, in the order the manifest lists them.
COUNT_KEYS: tuple[str, ...] = ("themes", "claims", "reasons", "flags", "langs")
_TMP_SUFFIX = ".tmp"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file."""


@dataclass(slots=True, frozen=True)
class FileEntry:
    """One data file as the manifest lists it; ``path`` is relative to the day folder."""

    path: str
    sha256: str
    posts: int
    bytes: int


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


class DayStats:
    """Label counts, event-time range and provenance of one day's posts.

    Each label counts posts (a post with two spam flags adds one to ``spam``).
    ``ruleset`` and ``processor_version`` are those of the day's latest post
    by event time (ties broken by the values themselves), so the result does
    not depend on write or file order and verify can recompute it exactly.
    """

    __slots__ = ("counts", "first", "last", "latest")

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {key: {} for key in COUNT_KEYS}
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.latest: tuple[datetime, str, str, str] | None = None

    def add_tagged(self, tagged: TaggedPost) -> None:
        """Count one post as the writer or verify holds it (the hot path)."""
        tags = tagged.tags
        self._add(
            {s.label for s in tags.themes},
            tags.claim.label if tags.claim else None,
            {s.label for s in tags.reasons},
            {f.kind for f in tagged.all_flags},
            tags.lang,
            _utc(tagged.post.created_at),
            (tagged.ruleset_hash, tagged.ruleset, tagged.processor_version),
        )

    def add_record(self, record: Mapping[str, Any]) -> None:
        """Count one archived line parsed as plain JSON (the fast reload path)."""
        ruleset = record.get("ruleset") or {}
        self._add(
            set(record.get("themes") or ()),
            record.get("claim"),
            set(record.get("reasons") or ()),
            {f["kind"] for f in record.get("flags") or ()},
            record.get("lang") or "",
            _utc(datetime.fromisoformat(record["created_at"])),
            (
                str(ruleset.get("hash", "")),
                str(ruleset.get("name", "")),
                str(record.get("processor_version", "")),
            ),
        )

    def _add(
        self,
        themes: Iterable[str],
        claim: str | None,
        reasons: Iterable[str],
        flags: Iterable[str],
        lang: str,
        when: datetime,
        provenance: tuple[str, str, str],
    ) -> None:
        counts = self.counts
        for family, labels in (("themes", themes), ("reasons", reasons), ("flags", flags)):
            table = counts[family]
            for label in labels:
                table[label] = table.get(label, 0) + 1
        if claim is not None:
            table = counts["claims"]
            table[claim] = table.get(claim, 0) + 1
        table = counts["langs"]
        table[lang] = table.get(lang, 0) + 1
        if self.first is None or when < self.first:
            self.first = when
        if self.last is None or when >= self.last:
            self.last = when
            candidate = (when, *provenance)
            if self.latest is None or candidate > self.latest:
                self.latest = candidate

    def counts_dict(self) -> dict[str, dict[str, int]]:
        """Counts with labels sorted, so equal days give byte-equal manifests."""
        return {key: dict(sorted(self.counts[key].items())) for key in COUNT_KEYS}


def day_folders(root: Path) -> list[Path]:
    """The ``YYYY-MM-DD`` folders of an archive, oldest first; other entries are ignored."""
    found = []
    for path in root.iterdir():
        if _DAY.match(path.name) and path.is_dir():
            try:
                date.fromisoformat(path.name)
            except ValueError:
                continue
            found.append(path)
    return sorted(found)


def looks_whole(folder: Path) -> bool:
    """Whether a day's files match its manifest by name and size: a cheap crash check.

    Only stats files; ``monitor archive verify`` does the full proof.
    """
    try:
        manifest = read_manifest(folder / MANIFEST_NAME)
        listed = {entry["path"]: entry["bytes"] for entry in manifest["files"]}
    except (ManifestError, KeyError, TypeError):
        return False
    data = {p.name: p.stat().st_size for p in folder.glob("*" + DATA_SUFFIX)}
    return data == listed and not (folder / (MANIFEST_NAME + _TMP_SUFFIX)).exists()


def build_manifest(day: date, files: Iterable[FileEntry], stats: DayStats) -> dict[str, Any]:
    """The manifest document for ``day``, in the schema's key order."""
    entries = sorted(files, key=lambda entry: entry.path)
    latest = stats.latest
    return {
        "day": day.isoformat(),
        "posts": sum(entry.posts for entry in entries),
        "files": [
            {"path": e.path, "sha256": e.sha256, "posts": e.posts, "bytes": e.bytes}
            for e in entries
        ],
        "counts": stats.counts_dict(),
        "first_created_at": format_time(stats.first) if stats.first else None,
        "last_created_at": format_time(stats.last) if stats.last else None,
        "ruleset": {"name": latest[2] if latest else None, "hash": latest[1] if latest else None},
        "processor_version": latest[3] if latest else None,
    }


def write_manifest(day_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest.json`` atomically: temp file, fsync, rename, fsync the folder."""
    target = day_dir / MANIFEST_NAME
    tmp = day_dir / (MANIFEST_NAME + _TMP_SUFFIX)
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    fsync_dir(day_dir)
    return target


def remove_stale_temp(day_dir: Path) -> None:
    """Drop a temp manifest left by a crash mid-write; the real one is intact."""
    (day_dir / (MANIFEST_NAME + _TMP_SUFFIX)).unlink(missing_ok=True)


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest as a dict; ManifestError names the file and what is wrong."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"{path}: missing") from None
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: not a JSON object")
    return data
