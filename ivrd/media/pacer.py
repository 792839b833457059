"""Absolute-deadline pacing, sans-IO: frame ``n`` is due at ``start + n * interval``, never drifting."""

from __future__ import annotations


class Pacer:
    """The schedule of one call's outgoing frames.

    Deadlines are computed from the frame index, not by adding intervals, so lateness in one tick
    cannot carry into the next. When a tick comes more than a whole interval late (the loop was
    held up), :meth:`tick` reports how many frames were missed so the caller can skip them and
    keep the RTP clock true, instead of bursting them out.
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
