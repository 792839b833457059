"""Absolute-deadline pacing, sans-IO: frame ``n`` is due at ``start + n * interval``, never drifting."""

from __future__ import annotations

from bisect import bisect_left

# Upper bounds (seconds) for how late a frame leaves: a tick is due every 20 ms.
LATENESS_BOUNDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


class Pacer:
    """The schedule of a series of frames (the calls in one of the frame clock's slots).

    Deadlines are computed from the frame index, not by adding intervals, so lateness in one tick
    cannot carry into the next. When a tick comes more than a whole interval late (the loop was
    held up), :meth:`tick` reports how many frames were missed so they can be skipped, keeping
    the RTP clock true, instead of burst out.
    """

    def __init__(self, start: float, interval: float = 0.02) -> None:
        self.start = start
        self.interval = interval
        self.index = 0

    @property
    def deadline(self) -> float:
        """When the current frame is due."""
        return self.start + self.index * self.interval

    def tick(self, now: float) -> int:
        """Called when the current frame is sent at ``now``; returns the number of frames missed
        before it (0 when on time) and moves on to the next frame."""
        due = int((now - self.start) / self.interval)
        missed = max(0, due - self.index)
        self.index += missed + 1
        return missed


class Lateness:
    """How late frames were sent: a count per bucket (``bounds`` are upper bounds, inclusive; the
    last bucket is unbounded) and the sum. Cheap enough for every tick of every call."""

    def __init__(self, bounds: tuple[float, ...] = LATENESS_BOUNDS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds
