"""A crash-safe, append-only file of zstd frames holding JSON lines.

Every flush appends one complete zstd frame (with a content checksum) and
fsyncs, so a crash can only tear the last frame. On open the frames are read
in order; the file is cut after the last frame that decompresses completely
and ends with a newline. Concatenated frames are one valid zstd stream, so
``zstd -d`` and any zstd reader read the file as plain JSON lines.

The cut bytes are never thrown away: they are saved under the archive's
``.torn/`` folder (outside every day, so verification ignores them), since
bit rot in the middle of a file looks the same as a torn tail to a reader.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

__all__ = ["DIR_MODE", "FILE_MODE", "FrameReader", "Segment", "fsync_dir", "make_dir"]

log = logging.getLogger(__name__)

#: Archive files and folders are owner-only: they hold personal data.
FILE_MODE = 0o600
DIR_MODE = 0o700
_CHUNK = 1 << 20


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a new or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(path: Path) -> None:
    """Create ``path`` and missing parents as 0700, each made durable in its parent."""
    if path.is_dir():
        return
    make_dir(path.parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return
    os.chmod(path, DIR_MODE)  # the umask may have narrowed it oddly; be exact
    fsync_dir(path.parent)


class FrameReader:
    """Iterates the decompressed content of each complete frame of a file.

    After iteration, ``good_end`` is the byte offset just past the last good
    frame, ``sha256`` the digest of bytes ``[0, good_end)``, and ``problem``
    says in plain words why reading stopped early (None when the file is whole).
    """

    def __init__(self, fileobj: BinaryIO, *, chunk_size: int = _CHUNK) -> None:
        self._file = fileobj
        self._chunk = chunk_size
        self.good_end = 0
        self.frames = 0
        self.sha256 = hashlib.sha256()
        self.problem: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        dctx = zstandard.ZstdDecompressor()
        pending = b""
        while True:
            if not pending:
                pending = self._file.read(self._chunk)
                if not pending:
                    return
            start = self.good_end
            dobj = dctx.decompressobj()
            fed: list[bytes] = []
            parts: list[bytes] = []
            data = pending
            while True:
                fed.append(data)
                try:
                    parts.append(dobj.decompress(data))
                except zstandard.ZstdError as exc:
                    self.problem = f"frame at byte {start} is corrupt ({exc})"
                    return
                if dobj.eof:
                    break
                data = self._file.read(self._chunk)
                if not data:
                    self.problem = f"frame at byte {start} is incomplete (torn write)"
                    return
            pending = dobj.unused_data
            raw = b"".join(fed)
            raw = raw[: len(raw) - len(pending)] if pending else raw
            content = b"".join(parts)
            if not content.endswith(b"\n"):
                self.problem = f"frame at byte {start} does not end with a newline"
                return
            self.sha256.update(raw)
            self.good_end = start + len(raw)
            self.frames += 1
            yield content


class Segment:
    """One archive file open for appending; ``append`` makes lines durable.

    ``posts``, ``bytes`` and ``sha256`` always describe the durable file, so
    a manifest can be written from memory without re-reading gigabytes.
    """

    def __init__(self, path: Path, fd: int, reader: FrameReader, posts: int, level: int) -> None:
        self.path = path
        self._fd = fd
        self._hash = reader.sha256
        self.bytes = reader.good_end
        self.posts = posts
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=True)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        on_frame: Callable[[bytes], None] | None = None,
        torn_dir: Path | None = None,
        level: int = 3,
    ) -> Segment:
        """Open (creating 0600) and recover ``path``; ``on_frame`` sees each good frame.

        A torn tail is cut off after being copied to ``torn_dir`` (when given).
        """
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            if created:
                os.fchmod(fd, FILE_MODE)
                fsync_dir(path.parent)
            posts = 0
            with os.fdopen(os.dup(fd), "rb") as fileobj:
                reader = FrameReader(fileobj)
                for content in reader:
                    posts += content.count(b"\n")
                    if on_frame is not None:
                        on_frame(content)
            size = os.fstat(fd).st_size
            if size > reader.good_end:
                _cut_tail(path, fd, reader, size, torn_dir)
            os.lseek(fd, reader.good_end, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, reader, posts, level)

    @property
    def sha256(self) -> str:
        """Hex digest of the durable file."""
        return self._hash.hexdigest()

    def append(self, lines: list[bytes]) -> None:
        """Write ``lines`` (each one record ending in its only newline) as one frame, fsync.

        On failure (disk full) the file is cut back to its last good frame, so
        a retry appends cleanly; the caller keeps the lines and retries.
        """
        frame = self._cctx.compress(b"".join(lines))
        try:
            view = memoryview(frame)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, self.bytes)
                os.lseek(self._fd, self.bytes, os.SEEK_SET)
            except OSError:
                log.exception("%s: could not cut back a failed write", self.path)
            raise
        self._hash.update(frame)
        self.bytes += len(frame)
        self.posts += len(lines)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _cut_tail(path: Path, fd: int, reader: FrameReader, size: int, torn_dir: Path | None) -> None:
    cut = size - reader.good_end
    saved = ""
    if torn_dir is not None:
        make_dir(torn_dir)
        keep = torn_dir / f"{path.name}.{reader.good_end}.torn"
        out = os.open(keep, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with open(path, "rb") as src, open(out, "wb") as dst:
            src.seek(reader.good_end)
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        fsync_dir(torn_dir)
        saved = f"; the cut bytes are kept in {keep}"
    os.ftruncate(fd, reader.good_end)
    os.fsync(fd)
    log.warning(
        "%s: %s; cut %d bytes after the last good frame (%d frames kept)%s",
        path, reader.problem or "trailing bytes", cut, reader.frames, saved,
    )
