"""Retry delays with jitter, exponential or linear, honouring a server's Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["MAX_RETRY_AFTER", "Backoff", "parse_retry_after"]

#: Longest Retry-After obeyed (seconds); a larger one is taken as this.
MAX_RETRY_AFTER = 3600.0


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
    """Retry delays that grow per attempt up to ``cap``, jittered; :meth:`reset` after a success.

    The schedule after ``n`` failed attempts is ``base * factor**n`` or, with
    ``linear``, ``base * n`` (at once, then one ``base`` step more per attempt),
    never above ``cap``.

    Jitter spreads reconnecting clients apart, so a platform that just came
    back is not hit by all of them in the same second. By default it is full
    jitter: anywhere from 0 to the schedule. With ``floor`` the schedule is a
    documented minimum that jitter never undercuts: the delay is the schedule
    plus up to a quarter more (one step more, when linear).

    A server's Retry-After is honoured as given: the delay is never shorter,
    whatever the cap; only a wait beyond ``max_retry_after`` (an hour) is cut
    to that, so a broken header cannot stop a source for days.
    """

    def __init__(self, base: float = 1.0, cap: float = 300.0, factor: float = 2.0,
                 rng: random.Random | None = None, *, linear: bool = False,
                 floor: bool = False, max_retry_after: float = MAX_RETRY_AFTER) -> None:
        self.base, self.cap, self.factor = base, cap, factor
        self.linear, self.floor, self.max_retry_after = linear, floor, max_retry_after
        self.attempts = 0
        self._rng = rng or random.Random()

    def scheduled(self, attempt: int) -> float:
        """The un-jittered delay after ``attempt`` earlier failures."""
        try:
            grown = self.base * attempt if self.linear else self.base * self.factor ** attempt
        except OverflowError:  # thousands of failures in a row
            return self.cap
        return min(self.cap, grown)

    def next_delay(self, retry_after: float | None = None) -> float:
        scheduled = self.scheduled(self.attempts)
        self.attempts += 1
        if self.floor:
            delay = scheduled + self._rng.uniform(0, self.base if self.linear else scheduled / 4)
        else:
            delay = self._rng.uniform(0, scheduled)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def reset(self) -> None:
        self.attempts = 0
