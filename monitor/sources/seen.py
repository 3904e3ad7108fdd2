"""A bounded set of recently seen ids, to drop a post delivered twice."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["RecentIds"]

K = TypeVar("K", bound=Hashable)


class RecentIds(Generic[K]):
    """The last ``size`` ids added, oldest forgotten first; iterates oldest first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[K, None] = OrderedDict()

    def add(self, key: K) -> bool:
        """Remember ``key``; False when it was already remembered."""
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def __iter__(self) -> Iterator[K]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)
