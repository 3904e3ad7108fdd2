"""MemoryWindow: per-key counts over a sliding window of event time, with hard bounds."""

from __future__ import annotations

import sys
from collections import OrderedDict, deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


class DequeWindow:
    """The reference: MemoryWindow as it was, a deque of times per key."""

    def __init__(self, window_seconds: float, max_keys: int, max_events: int) -> None:
        self.window, self.max_keys, self.max_events = window_seconds, max_keys, max_events
        self.events: OrderedDict[str, deque[float]] = OrderedDict()

    def add(self, key: str, now: float) -> int:
        times = self.events.get(key)
        if times is None:
            times = self.events[key] = deque(maxlen=self.max_events)
            if len(self.events) > self.max_keys:
                self.events.popitem(last=False)
        else:
            self.events.move_to_end(key)
        while times and times[0] <= now - self.window:
            times.popleft()
        times.append(now)
        return len(times)

    def count(self, key: str, now: float) -> int:
        times = self.events.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return len(times)


@given(st.lists(st.tuples(st.booleans(), st.sampled_from("abcd"), st.floats(0, 200)),
                max_size=200),
       st.integers(1, 3), st.integers(1, 4))
def test_counts_as_a_deque_of_times_would_with_times_in_any_order(
        steps: list[tuple[bool, str, float]], max_keys: int, max_events: int) -> None:
    window = MemoryWindow(30, max_keys=max_keys, max_events=max_events)
    reference = DequeWindow(30, max_keys, max_events)
    for add, key, now in steps:  # event times out of order too: late posts
        if add:
            assert window.add(key, now) == reference.add(key, now)
        else:
            assert window.count(key, now) == reference.count(key, now)
        assert window.memory_bytes() == walked_bytes(window)
    assert len(window) == len(reference.events)


def walked_bytes(window: MemoryWindow) -> int:
    """What memory_bytes() kept count of, summed over every key as it is now."""
    return sys.getsizeof(window._events) + sum(
        sys.getsizeof(key) + sys.getsizeof(times) + 24 * len(times)
        for key, times in window._events.items())


def test_the_memory_kept_count_of_is_what_a_walk_over_the_keys_finds() -> None:
    window = MemoryWindow(5, max_keys=300, max_events=40)
    for i in range(20_000):  # keys evicted, lists grown to max_events, expired, shrunk
        window.add(f"author-{i % 700 if i % 3 else i % 7:06d}", i * 0.001)
        if i % 97 == 0:
            window.count(f"author-{i % 11:06d}", i * 0.001 + 4.5)
    assert window.memory_bytes() == walked_bytes(window)


def test_a_key_with_one_event_costs_about_a_hundred_bytes() -> None:
    window = MemoryWindow(60, max_keys=10_000, max_events=11)
    for i in range(10_000):
        window.add(f"{i:016x}", i / 1000)
    per_key = window.memory_bytes() / len(window)
    assert per_key < 250, per_key  # a deque per key: ~850
