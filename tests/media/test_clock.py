"""The shared frame clock on a fake loop: calls spread over the phase slots, ticks on absolute
deadlines without drift, missed frames reported as index jumps, and nothing called after leaving."""

from __future__ import annotations

import heapq
from collections.abc import Callable

import pytest

from ivrd.media.clock import FrameClock


class FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Timers run in deadline order, each ``late`` seconds after it was due."""

    def __init__(self, start: float = 500.0) -> None:
        self.now = start
        self.late = 0.0
        self._due: list[tuple[float, int, FakeTimer, Callable[..., None], tuple[object, ...]]] = []
        self._order = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., None], *args: object) -> FakeTimer:
        timer = FakeTimer()
        self._order += 1
        heapq.heappush(self._due, (when, self._order, timer, callback, args))
        return timer

    def pending(self) -> int:
        return sum(not timer.cancelled for _, _, timer, _, _ in self._due)

    def run_until(self, end: float) -> None:
        while self._due and self._due[0][0] <= end:
            when, _, timer, callback, args = heapq.heappop(self._due)
            if not timer.cancelled:
                self.now = max(self.now, when + self.late)
                callback(*args)
        self.now = max(self.now, end)


def clock_on(loop: FakeLoop) -> FrameClock:
    return FrameClock(loop=loop, measure=loop.time)


def test_calls_spread_evenly_over_the_slots_one_timer_each():
    loop = FakeLoop()
    clock = clock_on(loop)
    when: dict[int, list[float]] = {}
    for call in range(40):
        clock.join(lambda index, call=call: when.setdefault(call, []).append(loop.now))
    assert loop.pending() == 20  # one timer per slot, not one per call
    loop.run_until(500.0 + 0.0999)
    firsts = sorted(times[0] for times in when.values())
    phases = sorted({round((first - 500.0) * 1000) for first in firsts})
    assert phases == list(range(20))  # every millisecond of the 20 has its calls
    assert all(firsts.count(first) == 2 for first in firsts)  # two each: balanced


def test_ticks_keep_absolute_deadlines_over_10000_frames():
    loop = FakeLoop(start=1000.0)
    clock = clock_on(loop)
    indexes: list[int] = []
    _, first = clock.join(indexes.append)
    loop.late = 0.004  # every timer runs 4 ms late: deadlines must not slide
    loop.run_until(1000.0 + 10_000 * 0.02 - 0.001)
    assert indexes == list(range(first, first + 10_000))
    assert clock.lateness.counts[clock.lateness.bounds.index(0.005)] == 10_000  # all in the 2-5 ms bucket
    assert clock.lateness.sum == pytest.approx(10_000 * 0.004)


def test_a_stalled_loop_shows_as_an_index_jump_not_a_burst():
    loop = FakeLoop()
    clock = clock_on(loop)
    indexes: list[int] = []
    clock.join(indexes.append)
    loop.run_until(500.05)
    assert indexes == [0, 1, 2]  # at 500.00, .02 and .04
    loop.now = 500.15  # the loop was held up: frame 3 was due at .06
    loop.run_until(500.151)
    assert indexes == [0, 1, 2, 7]  # frames 3-6 are skipped, not burst; 7 is the one due now


def test_leaving_stops_the_tick_and_an_empty_slot_stops_its_timer():
    loop = FakeLoop()
    clock = clock_on(loop)
    calls: list[str] = []
    keys: dict[str, int] = {}

    def first(index: int) -> None:
        calls.append("first")
        clock.leave(keys["second"])  # a call ended by another's tick in the same round

    keys["first"], _ = clock.join(first)
    for _ in range(19):  # fill the other slots so that the next call shares the first one's
        clock.join(lambda index: None)
    keys["second"], _ = clock.join(lambda index: calls.append("second"))
    loop.run_until(500.09)  # five rounds: 500.00 to 500.08
    assert "second" not in calls and calls.count("first") == 5
    clock.leave(keys["first"])
    assert loop.pending() == 19  # the first slot is empty: its timer is gone
    loop.run_until(501.0)
    assert calls.count("first") == 5


def test_a_tick_that_fails_takes_out_its_own_call_only():
    loop = FakeLoop()
    errors: list[BaseException] = []
    clock = FrameClock(slots=1, loop=loop, measure=loop.time, on_error=errors.append)
    healthy: list[int] = []

    def broken(index: int) -> None:
        raise TypeError("a bug in one call's media")

    clock.join(broken)
    clock.join(healthy.append)  # the same slot: it ticks after the broken one, in the same round
    loop.run_until(500.0 + 0.1)
    assert len(healthy) == 6 and [type(e) for e in errors] == [TypeError]  # once: it left the clock
