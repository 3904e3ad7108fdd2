"""A day's post ids in bounded memory, for the archive's duplicate check.

A Python set of strings costs ~100 bytes an id; a busy day holds millions.
:class:`IdSet` keeps 64-bit keyed hashes in sorted arrays instead, about
8.5 bytes an id, at the price of a stated, tiny false-duplicate chance.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
from array import array
from bisect import bisect_left

__all__ = ["IdSet"]

_RUN_BLOCK = 65_536


class IdSet:
    """Post ids seen in one day, in about 8.5 bytes per id (17 at a merge's peak).

    Each id becomes a 64-bit keyed BLAKE2b hash. New hashes go to a small set;
    when it fills, it is sorted into an ``array('Q')`` run, and runs are merged
    while the previous one is less than twice the size of the newest, so there
    are at most log2(n / recent_max) runs. Each run carries a fence: for every
    bucket of the hash's top bits, where the bucket starts (about 8-16 hashes
    a bucket, half a byte per id), so a lookup is a short bisection per run.

    Collision odds: a new id is wrongly taken for a duplicate with probability
    about n / 2**64 given n ids already held; over a day of n ids the chance of
    any false duplicate is about n**2 / 2**65 (1e6 ids: 3e-8; 1e7: 3e-6;
    1e8: 3e-4). The hash key is random per process, so nobody can craft
    colliding ids and a false duplicate does not repeat after a restart.
    """

    __slots__ = ("_key", "_len", "_recent", "_recent_max", "_runs")

    def __init__(self, *, recent_max: int = 4096) -> None:
        self._key = secrets.token_bytes(16)
        self._recent: set[int] = set()
        self._recent_max = recent_max
        self._runs: list[_Run] = []
        self._len = 0

    def hash(self, post_id: str) -> int:
        """The 64-bit keyed hash of an id, to pass to :meth:`has_hash` / :meth:`add_hash`."""
        digest = hashlib.blake2b(
            post_id.encode("utf-8", "surrogatepass"), digest_size=8, key=self._key
        ).digest()
        return int.from_bytes(digest, "little")

    def has_hash(self, value: int) -> bool:
        if value in self._recent:
            return True
        for values, fence, shift in self._runs:
            bucket = value >> shift
            lo, hi = fence[bucket], fence[bucket + 1]
            if lo < hi:
                i = bisect_left(values, value, lo, hi)
                if i < hi and values[i] == value:
                    return True
        return False

    def add_hash(self, value: int) -> bool:
        """Add a hash from :meth:`hash`; False when it was already there."""
        if self.has_hash(value):
            return False
        self.insert_hash(value)
        return True

    def insert_hash(self, value: int) -> None:
        """Add a hash the caller just found absent with :meth:`has_hash` (no second lookup)."""
        self._recent.add(value)
        self._len += 1
        if len(self._recent) >= self._recent_max:
            self._spill()

    def add(self, post_id: str) -> bool:
        """Add an id; False when it was already there."""
        return self.add_hash(self.hash(post_id))

    def __contains__(self, post_id: object) -> bool:
        return isinstance(post_id, str) and self.has_hash(self.hash(post_id))

    def __len__(self) -> int:
        return self._len

    def memory_bytes(self) -> int:
        """``sys.getsizeof`` of the run and fence arrays, the recent set and its ints."""
        recent = sys.getsizeof(self._recent) + sum(sys.getsizeof(v) for v in self._recent)
        arrays = sum(sys.getsizeof(v) + sys.getsizeof(f) for v, f, _ in self._runs)
        return recent + arrays

    def _spill(self) -> None:
        values = array("Q", sorted(self._recent))
        self._recent.clear()
        runs = self._runs
        while runs and len(runs[-1][0]) < 2 * len(values):
            values = _merge(runs.pop()[0], values)
        runs.append(_fenced(values))


_Run = tuple["array[int]", "array[int]", int]


def _fenced(values: array[int]) -> _Run:
    """A run with its fence: ``fence[b]`` is the first index whose top bits are >= b."""
    bits = max(0, len(values).bit_length() - 4)
    shift = 64 - bits
    fence = array("I", [bisect_left(values, b << shift) for b in range(1 << bits)])
    fence.append(len(values))
    return values, fence, shift


def _merge(a: array[int], b: array[int]) -> array[int]:
    """Merge two sorted runs block by block, so the transient list stays small."""
    if len(a) < len(b):
        a, b = b, a
    out = array("Q")
    j = 0
    for i in range(0, len(a), _RUN_BLOCK):
        block = a[i : i + _RUN_BLOCK]
        k = len(b) if i + _RUN_BLOCK >= len(a) else bisect_left(b, block[-1], j)
        out.extend(sorted(block + b[j:k]))
        j = k
    return out
