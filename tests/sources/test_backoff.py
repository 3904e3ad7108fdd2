"""The shared retry schedule: jitter bounds, the documented floor, linear steps, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from monitor.sources.backoff import MAX_RETRY_AFTER, Backoff, parse_retry_after


def test_full_jitter_stays_between_zero_and_the_capped_schedule() -> None:
    backoff = Backoff(base=1.0, cap=30.0, rng=random.Random(1))
    for attempt in range(12):
        ceiling = min(30.0, 2.0 ** attempt)
        assert 0.0 <= backoff.next_delay() <= ceiling
    assert backoff.attempts == 12


def test_full_jitter_actually_spreads_the_delays() -> None:
    delays = [Backoff(base=8.0, cap=8.0, rng=random.Random(seed)).next_delay()
              for seed in range(50)]
    assert min(delays) < 2.0 and max(delays) > 6.0


def test_a_floor_is_never_undercut_by_jitter() -> None:
    backoff = Backoff(base=5.0, cap=320.0, rng=random.Random(2), floor=True)
    for floor in (5, 10, 20, 40, 80, 160, 320, 320, 320):
        assert floor <= backoff.next_delay() <= floor * 1.25


def test_linear_adds_one_step_per_attempt_up_to_the_cap() -> None:
    backoff = Backoff(base=0.25, cap=1.0, rng=random.Random(3), linear=True, floor=True)
    for floor in (0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0):
        assert floor <= backoff.next_delay() <= floor + 0.25
    full = Backoff(base=0.25, cap=1.0, rng=random.Random(3), linear=True)
    for ceiling in (0.0, 0.25, 0.5, 0.75, 1.0, 1.0):
        assert 0.0 <= full.next_delay() <= ceiling


def test_many_failures_in_a_row_stay_at_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=60.0, rng=random.Random(4), floor=True)
    backoff.attempts = 5000
    assert 60.0 <= backoff.next_delay() <= 75.0


@pytest.mark.parametrize("floor", [False, True])
def test_retry_after_is_honoured_beyond_the_cap(floor: bool) -> None:
    backoff = Backoff(base=1.0, cap=10.0, rng=random.Random(5), floor=floor)
    assert backoff.next_delay(retry_after=900.0) == 900.0  # far over 4 x cap
    assert backoff.next_delay(retry_after=0.0) <= 2.5  # a short one never shortens the schedule
    assert Backoff(cap=10.0).next_delay(retry_after=10 * 86_400.0) == MAX_RETRY_AFTER
    assert Backoff(cap=10.0, max_retry_after=60.0).next_delay(retry_after=600.0) == 60.0


def test_reset_starts_the_schedule_over() -> None:
    backoff = Backoff(base=2.0, cap=100.0, rng=random.Random(6), floor=True)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert 2.0 <= backoff.next_delay() <= 2.5


def test_retry_after_as_seconds() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("0") == 0.0


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2025, 8, 14, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert later == "Thu, 14 Aug 2025 12:01:30 GMT"
    assert parse_retry_after(later, now=now) == 90.0
    earlier = format_datetime(now - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5e3"])
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None
