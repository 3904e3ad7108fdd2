"""Where each source resumes after a restart: one small JSON file per state folder.

Cursors are committed by the runtime only once the posts before them are
durable in the archive (or processed, without an archive), so a restart
never skips a post; the few posts between the committed cursor and the
crash are read again and dropped as duplicates.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Protocol

__all__ = ["CursorStore", "FileCursorStore", "MemoryCursorStore"]


class CursorStore(Protocol):
    """Per-source resume positions (opaque strings the source understands)."""

    def get(self, key: str) -> str | None: ...

    def commit(self, positions: dict[str, str]) -> None:
        """Persist these positions; the store must be whole after a crash at any point."""
        ...


class MemoryCursorStore:
    """For tests and runs without a state folder."""

    def __init__(self, initial: dict[str, str] | None = None) -> None:
        self.positions = dict(initial or {})

    def get(self, key: str) -> str | None:
        return self.positions.get(key)

    def commit(self, positions: dict[str, str]) -> None:
        self.positions.update(positions)


class FileCursorStore:
    """``STATE/cursors.json``, replaced atomically (temp file, fsync, rename, fsync dir)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "cursors.json"
        self._lock = threading.Lock()
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            self.positions: dict[str, str] = {
                str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        except FileNotFoundError:
            self.positions = {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path}: unreadable cursor file ({exc}); move it away to "
                             "start the sources from their defaults") from None

    def get(self, key: str) -> str | None:
        return self.positions.get(key)

    def commit(self, positions: dict[str, str]) -> None:
        if not positions:
            return
        with self._lock:
            merged = {**self.positions, **positions}
            if merged == self.positions:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_suffix(".json.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, json.dumps(merged, indent=1, sort_keys=True).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self.positions = merged
