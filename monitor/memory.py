"""Give freed heap memory back to the operating system, where the C library allows it."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache

__all__ = ["release_free_memory"]


@lru_cache(maxsize=1)
def _trim() -> object | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Collect garbage, then ask glibc to unmap free pages (after a tagger refresh).

    Without it the old pipelines' memory stays mapped by the allocator and the
    process's RSS keeps the high-water mark of every refresh cycle.
    """
    gc.collect()
    trim = _trim()
    if trim is not None:
        trim(0)  # type: ignore[operator]
