"""MemoryWindow: per-key counts over a sliding window of event time, with hard bounds."""

from __future__ import annotations

import pytest

from monitor.moderation.window import MemoryWindow


def test_counts_the_events_of_a_key_within_the_window() -> None:
    window = MemoryWindow(60)
    assert [window.add("spam.example", t) for t in (0, 10, 20)] == [1, 2, 3]
    assert window.add("other.example", 25) == 1
    assert window.count("spam.example", 30) == 3
    assert window.count("never.seen", 30) == 0


def test_events_leave_the_window_once_it_has_passed_them() -> None:
    window = MemoryWindow(60)
    for t in (0, 30, 45):
        window.add("k", t)
    assert window.count("k", 59.9) == 3
    assert window.count("k", 60) == 2  # an event exactly one window old is out
    assert window.count("k", 100) == 1
    assert window.count("k", 105) == 0
    assert window.add("k", 200) == 1  # a new start, not a continuation


def test_count_does_not_record_an_event() -> None:
    window = MemoryWindow(60)
    window.add("k", 0)
    for _ in range(5):
        assert window.count("k", 1) == 1


def test_the_least_recently_used_key_is_evicted_past_max_keys() -> None:
    window = MemoryWindow(600, max_keys=2)
    window.add("a", 0)
    window.add("b", 1)
    window.add("a", 2)  # a is now more recent than b
    window.add("c", 3)  # one key too many: b goes
    assert len(window) == 2
    assert window.count("b", 4) == 0
    assert window.count("a", 4) == 2
    assert window.count("c", 4) == 1


def test_a_count_saturates_at_max_events() -> None:
    window = MemoryWindow(600, max_events=5)
    assert [window.add("k", t) for t in range(8)] == [1, 2, 3, 4, 5, 5, 5, 5]
    assert window.count("k", 8) == 5


@pytest.mark.parametrize("args", [
    {"window_seconds": 0}, {"window_seconds": -1}, {"window_seconds": 60, "max_keys": 0},
    {"window_seconds": 60, "max_events": 0},
])
def test_bounds_must_be_positive(args: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        MemoryWindow(**args)  # type: ignore[arg-type]


def test_memory_grows_with_keys_then_stays_bounded_by_max_keys_and_max_events() -> None:
    window = MemoryWindow(60, max_keys=500, max_events=20)
    empty = window.memory_bytes()
    for i in range(250):
        window.add(f"author-{i:06d}", i * 0.01)
    half = window.memory_bytes()
    for i in range(250, 500):
        window.add(f"author-{i:06d}", i * 0.01)
    full = window.memory_bytes()
    assert empty < half < full
    # Fill every key to max_events: the most the window can hold for these keys.
    for t in range(40):
        for i in range(500):
            window.add(f"author-{i:06d}", 5 + t * 0.01)
    saturated = window.memory_bytes()
    # A long stream of new keys and bursts never takes it past that.
    highest = saturated
    for i in range(500, 20_000):
        now = 10 + i * 0.01
        for _ in range(1 + i % 30):
            window.add(f"author-{i:06d}", now)
        highest = max(highest, window.memory_bytes()) if i % 500 == 0 else highest
    assert len(window) == 500
    assert highest <= saturated * 1.05, (highest, saturated)
    assert window.memory_bytes() <= saturated * 1.05
