"""Process memory: tune a streaming process (and freeze its imports), give freed heap back,
read a peak."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache

__all__ = ["MMAP_THRESHOLD", "STREAM_GC_THRESHOLDS", "freeze_long_lived", "peak_rss_mib",
           "release_free_memory", "tune_for_streams"]

#: gc thresholds of a streaming process: a young collection every 50,000 net allocations
#: (Python's default: 700), an older one every 20 of those, a full one every 10 of those
STREAM_GC_THRESHOLDS = (50_000, 20, 10)
#: a block of this many bytes or more gets a mapping of its own (glibc's starting value)
MMAP_THRESHOLD = 128 << 10
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
_frozen = False


@cache
def _glibc(function: str) -> object | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), function)  # glibc only
    except (OSError, AttributeError):
        return None


def freeze_long_lived() -> None:
    """Keep the objects alive now out of every later collection's walk (``gc.freeze``).

    A full collection walks every tracked object, and most of a tagging
    process's came from imports (spaCy and its language data: ~85,000, alive
    as long as the process): ~55 ms a walk on the development machine. The
    collection that returns a refreshed tagger's memory (every ~26,000 posts
    of a long-tail stream) stalled tagging that long; with them frozen it
    walks what was built since, in ~2 ms.

    Call it after the imports and before compiling rules. A frozen object is
    still freed when its last reference goes, but a frozen cycle never is,
    so whatever is ever replaced (a tagger, its pipelines) must be built
    after. Only the first call freezes.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def release_free_memory() -> None:
    """Collect young garbage, then ask glibc to unmap free pages (after a tagger refresh).

    Without the trim the old pipelines' memory stays mapped by the allocator
    and the process's RSS keeps the high-water mark of every refresh cycle.
    The old pipelines hold no reference cycles: dropping them frees them
    (tests/tagging/test_refresh.py checks it). A build leaves a few hundred
    cyclic objects of spaCy's config parsing, young ones; a full collection
    also walked everything else the process holds: ~130 ms where the
    moderation windows live (``monitor run`` in one process, scale-out
    workers), a stall at every refresh.
    """
    gc.collect(1)
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)  # type: ignore[operator]


def peak_rss_mib(pid: int | str = "self") -> float:
    """A process's peak resident set in MiB (Linux VmHWM; 0.0 if it cannot be read).

    Not ``getrusage().ru_maxrss``: Linux keeps that across exec, so a child
    Python process reports its parent's peak if that was higher.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def tune_for_streams() -> None:
    """Collect cycles far less often, and map big blocks alone, in a process that streams posts.

    Each post allocates a few dozen objects that live a batch, and the process
    holds millions that live for hours (compiled rules, windows, the dedup
    ring); with Python's defaults the collector kept walking them: on 20,000
    posts 0.68 s of ~8.3 s went to it, in five full collections of ~105 ms
    each (pauses of the event loop). With these thresholds: ~0.02 s.

    glibc maps a block of 128 KiB or more on its own, but raises that
    threshold (up to 32 MiB) each time such a block is freed; from then on
    big short-lived blocks (a batch on its way to the tagging process, a
    growing dict's table) come from the heap between long-lived objects and
    leave holes it cannot give back. A fixed threshold keeps them mapped:
    on 500,000 long-tail posts the event loop's process peaked at 166 MiB
    instead of 188, the tagging process at 213 instead of 220.
    """
    gc.set_threshold(*STREAM_GC_THRESHOLDS)
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)  # type: ignore[operator]
