"""The daily archive: ``ARCHIVE/YYYY-MM-DD/SOURCE.jsonl.zst`` plus a manifest per day.

Posts are partitioned by their UTC event day (``post.created_at``), one file
per source, one TaggedPost record per line (:func:`monitor.codec.encode_tagged`).
:class:`ArchiveWriter` is plain synchronous code because compression and
fsync block; the async runtime calls it through a thread executor, ideally a
batch at a time (:meth:`ArchiveWriter.write_batch`). Per post it only hashes
the id, encodes the line and appends it to a buffer; compression, writing and
fsync happen in :meth:`ArchiveWriter.flush`, at least once a second.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType

import orjson

from monitor.codec import encode_tagged
from monitor.model import TaggedPost
from monitor.privacy import DEFAULT_KEY_FILE, Pseudonymizer
from monitor.sinks.idset import IdSet
from monitor.sinks.manifest import (
    DATA_SUFFIX,
    MANIFEST_NAME,
    DayStats,
    FileEntry,
    ManifestError,
    build_manifest,
    day_folders,
    looks_whole,
    read_manifest,
    remove_stale_temp,
    write_manifest,
)
from monitor.sinks.segment import Segment, make_dir

__all__ = ["DEFAULT_ARCHIVE_DIR", "TORN_DIR", "ArchiveError", "ArchiveWriter", "file_stem"]

log = logging.getLogger(__name__)

DEFAULT_ARCHIVE_DIR = Path("archive")
#: Folder under the archive root where cut torn tails are kept (never inside a day).
TORN_DIR = ".torn"
_STEM_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


class ArchiveError(ValueError):
    """The archive on disk cannot be used as found; the message names the file and the fix."""


def file_stem(source: str) -> str:
    """The file name (without suffix) for a source: safe on every filesystem."""
    stem = _STEM_BAD.sub("_", source).lstrip(".")
    return stem or "unknown"


class _Day:
    """One open day: its files, ids, counts and not-yet-durable lines."""

    __slots__ = ("buffers", "day", "dir", "dirty", "ids", "segments", "stats")

    def __init__(self, day: date, folder: Path) -> None:
        self.day = day
        self.dir = folder
        self.ids = IdSet()
        self.stats = DayStats()
        self.segments: dict[str, Segment] = {}
        self.buffers: dict[str, list[bytes]] = {}
        self.dirty = False

    def reload(self, content: bytes) -> None:
        for line in content.splitlines():
            record = orjson.loads(line)
            self.ids.add(record["id"])
            self.stats.add_record(record)

    def manifest(self) -> dict[str, object]:
        files = [
            FileEntry(seg.path.name, seg.sha256, seg.posts, seg.bytes)
            for seg in self.segments.values()
        ]
        return build_manifest(self.day, files, self.stats)


class ArchiveWriter:
    """Appends tagged posts to the daily archive; see the module docstring.

    Every public method takes one internal lock, so a flush from one executor
    thread and writes from another are serialized safely. At most
    ``max_open_days`` days are held in memory: opening another closes the
    least recently written one (manifest written, ids freed); a late post
    for a closed day reopens it, reloading its ids from its files.
    """

    def __init__(
        self,
        root: Path | str = DEFAULT_ARCHIVE_DIR,
        *,
        pseudonymize: bool = True,
        pseudonymizer: Callable[[str], str] | None = None,
        key_file: Path | str = DEFAULT_KEY_FILE,
        keep_raw: bool = False,
        max_open_days: int = 3,
        flush_interval: float = 1.0,
        max_buffer_bytes: int = 16 << 20,
        level: int = 3,
        on_durable: Callable[[str, int], None] | None = None,
        today: date | None = None,
        recover: bool = True,
    ) -> None:
        """``on_durable(source, n)`` is called after each flush that made n posts durable.

        ``pseudonymizer`` overrides the key file (tests, or a key from a
        secret store); with ``pseudonymize=False`` handles are stored as given.
        ``today`` is the UTC date :meth:`rollover` compares against (default: now).
        ``recover`` runs :meth:`recover` at once, as a restart after a crash needs.
        """
        if max_open_days < 1:
            raise ValueError(f"max_open_days={max_open_days}; at least 1 day must stay open")
        self.root = Path(root)
        self.keep_raw = keep_raw
        self.max_open_days = max_open_days
        self.flush_interval = flush_interval
        self.max_buffer_bytes = max_buffer_bytes
        self.level = level
        self.on_durable = on_durable
        self._author: Callable[[str], str] | None = None
        if pseudonymize:
            if pseudonymizer is None:
                _refuse_key_inside(Path(key_file), self.root)
                pseudonymizer = Pseudonymizer.load(key_file)
            self._author = pseudonymizer
        self._days: OrderedDict[date, _Day] = OrderedDict()
        self._stems: dict[str, str] = {}
        self._lock = threading.RLock()
        self._pending = 0
        self._pending_bytes = 0
        self._last_flush: float | None = None
        self._today = today or datetime.now(UTC).date()
        self._closed = False
        self.durable_posts = 0
        self.durable_by_source: dict[str, int] = {}
        if recover:
            self.recover()

    # -- writing -----------------------------------------------------------------

    def write(self, tagged: TaggedPost) -> bool:
        """Buffer one post for its day; False when its id is already in that day."""
        with self._lock:
            return self._write(tagged)

    def write_batch(self, batch: Iterable[TaggedPost]) -> int:
        """Buffer many posts under one lock (one executor hop); returns how many were new."""
        with self._lock:
            return sum(self._write(tagged) for tagged in batch)

    def _write(self, tagged: TaggedPost) -> bool:
        if self._closed:
            raise ArchiveError(f"{self.root}: archive writer is closed; open a new one")
        post = tagged.post
        when = post.created_at
        if when.tzinfo is not UTC:
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        day = when.date()
        state = self._days.get(day)
        if state is None:
            state = self._open_day(day)
        else:
            self._days.move_to_end(day)
        key = state.ids.hash(post.id)
        if state.ids.has_hash(key):
            return False
        line = encode_tagged(tagged, author=self._author, keep_raw=self.keep_raw) + b"\n"
        state.ids.insert_hash(key)
        buffer = state.buffers.get(post.source)
        if buffer is None:
            buffer = state.buffers[post.source] = []
        buffer.append(line)
        state.stats.add_tagged(tagged)
        state.dirty = True
        self._pending += 1
        self._pending_bytes += len(line)
        if self._pending_bytes >= self.max_buffer_bytes:
            self._flush()
        return True

    # -- durability --------------------------------------------------------------

    @property
    def pending_posts(self) -> int:
        """Posts written but not yet durable."""
        return self._pending

    @property
    def open_days(self) -> list[date]:
        """Days held open, least recently written first."""
        return list(self._days)

    def flush(self) -> int:
        """Compress, append and fsync everything buffered; returns posts newly durable."""
        with self._lock:
            return self._flush()

    def maybe_flush(self, now: float | None = None) -> int:
        """Flush if ``flush_interval`` seconds passed since the last (``now``: monotonic)."""
        with self._lock:
            now = time.monotonic() if now is None else now
            if self._last_flush is not None and now - self._last_flush < self.flush_interval:
                return 0
            return self._flush(now)

    def _flush(self, now: float | None = None) -> int:
        done: dict[str, int] = {}
        try:
            for state in self._days.values():
                self._flush_day(state, done)
        finally:
            self._last_flush = time.monotonic() if now is None else now
            self._account(done)
        return sum(done.values())

    def _flush_day(self, state: _Day, done: dict[str, int]) -> None:
        for source, lines in list(state.buffers.items()):
            segment = self._segment(state, source)
            segment.append(lines)
            del state.buffers[source]
            done[source] = done.get(source, 0) + len(lines)
            self._pending -= len(lines)
            self._pending_bytes -= sum(len(line) for line in lines)

    def _account(self, done: dict[str, int]) -> None:
        for source, count in done.items():
            self.durable_posts += count
            self.durable_by_source[source] = self.durable_by_source.get(source, 0) + count
            if self.on_durable is not None:
                try:
                    self.on_durable(source, count)
                except Exception:
                    log.exception("archive on_durable callback failed for %s", source)

    def _segment(self, state: _Day, source: str) -> Segment:
        stem = self._stems.get(source)
        if stem is None:
            stem = self._stems[source] = file_stem(source)
        segment = state.segments.get(stem)
        if segment is None:
            make_dir(state.dir)
            path = state.dir / (stem + DATA_SUFFIX)
            segment = state.segments[stem] = Segment.open(path, level=self.level)
        return segment

    # -- days and manifests ------------------------------------------------------

    def rollover(self, now: datetime | None = None) -> list[date]:
        """At UTC midnight, flush and write the manifests of dirty days; returns them.

        Cheap when the date has not changed, so call it on every tick.
        """
        with self._lock:
            when = datetime.now(UTC) if now is None else now
            today = when.astimezone(UTC).date() if when.tzinfo else when.date()
            if today == self._today:
                return []
            self._today = today
            dirty = [s.day.isoformat() for s in self._days.values() if s.dirty or s.buffers]
            log.info("archive: UTC day %s began; flushing, then the manifests of %s",
                     today, ", ".join(dirty) or "no day")
            self._flush()
            return [state.day for state in self._days.values() if self._write_manifest(state)]

    def recover(self) -> list[date]:
        """After a crash: cut torn tails and rewrite stale manifests; returns the days fixed.

        Days whose files match their manifest by name and size are only
        stat-ed; the others (normally the one or two being written when the
        process died) are opened, recovered and get a fresh manifest.
        """
        fixed = []
        with self._lock:
            if not self.root.is_dir():
                return fixed
            for folder in day_folders(self.root):
                if looks_whole(folder):
                    continue
                day = date.fromisoformat(folder.name)
                was_open = day in self._days
                state = self._days.get(day) or self._open_day(day)
                if self._write_manifest(state):
                    fixed.append(day)
                if not was_open:  # an old day: free its memory until a post needs it
                    self._close_day(self._days.pop(day))
        if fixed:
            log.warning("archive: recovered %s after an unclean stop",
                        ", ".join(d.isoformat() for d in fixed))
        return fixed

    def close(self) -> None:
        """Flush, refresh the manifests of dirty days, close every file."""
        with self._lock:
            if self._closed:
                return
            try:
                self._flush()
            finally:
                while self._days:
                    _, state = self._days.popitem(last=False)
                    self._close_day(state)
                self._closed = True

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write_manifest(self, state: _Day) -> bool:
        if not state.dirty or not state.segments or state.buffers:
            return False
        write_manifest(state.dir, state.manifest())
        state.dirty = False
        return True

    def _close_day(self, state: _Day) -> None:
        try:
            done: dict[str, int] = {}
            try:
                self._flush_day(state, done)
            finally:
                self._account(done)
            self._write_manifest(state)
        finally:
            for segment in state.segments.values():
                segment.close()

    def _open_day(self, day: date) -> _Day:
        while len(self._days) >= self.max_open_days:
            _, oldest = self._days.popitem(last=False)
            log.info("archive: closing day %s (more than %d open)", oldest.day, self.max_open_days)
            self._close_day(oldest)
        state = _Day(day, self.root / day.isoformat())
        if state.dir.is_dir():
            self._reload_day(state)
        self._days[day] = state
        return state

    def _reload_day(self, state: _Day) -> None:
        remove_stale_temp(state.dir)
        torn = self.root / TORN_DIR / state.dir.name
        for path in sorted(state.dir.glob("*" + DATA_SUFFIX)):
            try:
                segment = Segment.open(path, on_frame=state.reload, torn_dir=torn, level=self.level)
            except (KeyError, TypeError, ValueError) as exc:  # orjson's errors are ValueErrors
                for opened in state.segments.values():
                    opened.close()
                raise ArchiveError(
                    f"{path}: a line is not an archive record ({exc.__class__.__name__}: {exc}); "
                    f"run `monitor archive verify {self.root}` and move the bad file aside"
                ) from None
            state.segments[path.name[: -len(DATA_SUFFIX)]] = segment
        if state.segments:
            try:
                state.dirty = read_manifest(state.dir / MANIFEST_NAME) != state.manifest()
            except ManifestError:
                state.dirty = True
            log.info("archive: reopened %s with %d posts", state.day, len(state.ids))


def _refuse_key_inside(key_file: Path, root: Path) -> None:
    if key_file.resolve().is_relative_to(root.resolve()):
        raise ArchiveError(
            f"pseudonym key file {key_file} is inside the archive {root}; keep it with the "
            f"monitor's state (default {DEFAULT_KEY_FILE}) so the archive never holds the key"
        )
