"""Midnight on demand for a real child process: libfaketime (Debian ``faketime``).

The monitor rolls its archive over when the wall clock passes UTC midnight.
``midnight_env(in_seconds)`` returns the environment that preloads
libfaketime with a fixed offset, so the child's clock (wall and monotonic
alike, which keeps sleeps and timeouts sane) reads 23:59:xx and passes
midnight ``in_seconds`` after the call, with no test-only code in the monitor.
"""

from __future__ import annotations

import glob
import math
import time

from tests.support.binaries import require_binary

__all__ = ["DAY_SECONDS", "libfaketime", "midnight_env"]

DAY_SECONDS = 86_400


def libfaketime() -> str:
    """The multithreading-safe libfaketime; skip (fail in CI) when it is not installed."""
    require_binary("faketime")
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        require_binary("libfaketimeMT.so.1")  # never found: skips or fails naming the package
    return found[0]


def midnight_env(in_seconds: float, library: str) -> tuple[dict[str, str], float]:
    """The child environment and the real ``time.time()`` at which its clock reads 00:00:00.

    The offset is whole seconds (libfaketime's ``+Ns``), so the real midnight
    lands within a second after ``in_seconds`` from now.
    """
    now = time.time()
    target = now + in_seconds
    offset = math.ceil(target / DAY_SECONDS) * DAY_SECONDS - target  # fake = real + offset
    whole = math.floor(offset)
    midnight = math.ceil((now + whole) / DAY_SECONDS) * DAY_SECONDS - whole
    return {"LD_PRELOAD": library, "FAKETIME": f"+{whole}s"}, midnight
