"""The live progress line on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from monitor.runtime.local import RunStats

__all__ = ["Progress"]

log = logging.getLogger("monitor.progress")


class Progress:
    """Shows posts/s, processed, flagged, rejected and queue depth.

    On a terminal the line is rewritten in place every second; otherwise a
    log line is written every ``log_every`` seconds, so CI logs and
    journald stay readable.
    """

    def __init__(self, mode: str = "auto", stream: TextIO | None = None,
                 log_every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "tty" if self.stream.isatty() else "log"
        if mode not in ("tty", "log", "off"):
            raise ValueError(f"progress={mode!r}: use auto, tty, log or off")
        self.mode = mode
        self.log_every = log_every
        self._started = self._last = self._last_log = time.monotonic()
        self._last_processed = 0
        self._rate = 0.0

    def _line(self, stats: RunStats, depth: int) -> str:
        return (f"{self._rate:8.0f} posts/s | processed {stats.processed:,} | "
                f"flagged {stats.flagged:,} | rejected {stats.rejected:,} | "
                f"duplicates {stats.duplicates:,} | archived {stats.archived:,} | queue {depth:,}")

    def update(self, stats: RunStats, depth: int) -> None:
        now = time.monotonic()
        elapsed = now - self._last
        if elapsed > 0:
            self._rate = (stats.processed - self._last_processed) / elapsed
        self._last, self._last_processed = now, stats.processed
        if self.mode == "tty":
            self.stream.write("\r\033[K" + self._line(stats, depth))
            self.stream.flush()
        elif self.mode == "log" and now - self._last_log >= self.log_every:
            self._last_log = now
            log.info("%s", self._line(stats, depth))

    def finish(self, stats: RunStats, depth: int) -> None:
        if self.mode == "off":
            return
        total = time.monotonic() - self._started
        self._rate = stats.processed / total if total > 0 else 0.0
        if self.mode == "tty":
            self.stream.write("\r\033[K")
        log.info("done in %.1f s: %s", total, self._line(stats, depth).replace(
            "posts/s", "posts/s (average)", 1).strip())
