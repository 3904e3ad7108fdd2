"""Exponential backoff with full jitter, honouring a server's Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["Backoff", "parse_retry_after"]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Backoff:
    """Delays of base * factor**n with full jitter, capped; reset after a success.

    Full jitter spreads reconnecting clients apart, so a platform that just
    came back is not hit by all of them in the same second. A Retry-After
    from the server is a floor, never shortened by jitter.
    """

    def __init__(self, base: float = 1.0, cap: float = 300.0, factor: float = 2.0,
                 rng: random.Random | None = None) -> None:
        self.base, self.cap, self.factor = base, cap, factor
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * self.factor ** self.attempts)
        self.attempts += 1
        delay = self._rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap * 4))
        return delay

    def reset(self) -> None:
        self.attempts = 0
