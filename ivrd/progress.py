"""Progress of long work for people: how far, how fast, how long still; a line redrawn in place on a
terminal, a line now and then in a log or a pipe. Work that ends quickly shows nothing at all."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from .logs import event

TERMINAL_EVERY = 0.2
LOG_EVERY = 5.0


@dataclass(frozen=True, slots=True)
class Report:
    """Where some work stands: ``done`` of ``total`` (None: not known) units after ``seconds``."""

    what: str
    done: int
    total: int | None
    seconds: float
    unit: str  # "B" counts bytes (shown in MB); anything else is a count of that
    final: bool

    @property
    def rate(self) -> float | None:
        """Units per second so far (None until some time has passed)."""
        return self.done / self.seconds if self.seconds > 0.05 else None

    @property
    def left(self) -> float | None:
        """Seconds still to go at the rate so far (None when the total or the rate is not known)."""
        rate = self.rate
        if self.total is None or not rate:
            return None
        return max(0.0, (self.total - self.done) / rate)

    def __str__(self) -> str:
        if self.unit == "B":
            amount = f"{self.done / 1e6:.1f}" + (f" / {self.total / 1e6:.1f}" if self.total else "") + " MB"
            speed = f"{self.rate / 1e6:.1f} MB/s" if self.rate is not None else ""
        else:
            amount = f"{self.done}" + (f"/{self.total}" if self.total is not None else "") + f" {self.unit}"
            speed = f"{self.rate:.0f}/s" if self.rate is not None else ""
        parts = [f"{self.what}: {amount}"]
        if self.total:
            parts.append(f"{100 * self.done // self.total}%")
        if speed:
            parts.append(speed)
        if self.final:
            parts.append(f"in {_seconds(self.seconds)}")
        elif self.left is not None:
            parts.append(f"{_seconds(self.left)} left")
        return "  ".join(parts)


def _seconds(value: float) -> str:
    value = round(value)
    return f"{value // 60} min {value % 60:02d} s" if value >= 60 else f"{value} s"


class Progress:
    """Hands ``report`` a :class:`Report` of ``what`` at most every ``every`` seconds, the first only
    once ``delay`` seconds have passed, and a final one from :meth:`end` when any was given."""

    def __init__(self, what: str, report: Callable[[Report], None], *, total: int | None = None, unit: str = "",
                 delay: float = 0.0, every: float = TERMINAL_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.what = what
        self.total = total
        self._report = report
        self._unit = unit
        self._every = every
        self._clock = clock
        self._started = clock()
        self._next = self._started + delay
        self._shown = False
        self.done = 0

    def update(self, done: int) -> None:
        """``done`` units of the work are done."""
        self.done = done
        now = self._clock()
        if now >= self._next:
            self._next = now + self._every
            self._shown = True
            self._report(self._now(now, final=False))

    def end(self) -> None:
        """The work is over: a last report, if any was shown (quick work stays quiet)."""
        if self._shown:
            self._report(self._now(self._clock(), final=True))

    def _now(self, now: float, *, final: bool) -> Report:
        return Report(self.what, self.done, self.total, now - self._started, self._unit, final)


class Stages:
    """A ``(stage, done, total)`` callback for work in stages (what ``load_deployment`` takes), each
    stage its own :class:`Progress` made by ``start(stage, total)``; :meth:`end` once the work is over."""

    def __init__(self, start: Callable[[str, int], Progress]) -> None:
        self._start = start
        self._current: Progress | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._current is None or self._current.what != stage:
            self.end()
            self._current = self._start(stage, total)
        self._current.update(done)

    def end(self) -> None:
        if self._current is not None:
            self._current.end()
            self._current = None


def on_stream(stream: TextIO, what: str, *, total: int | None = None, unit: str = "", delay: float = 0.0) -> Progress:
    """Progress on ``stream``: one line redrawn in place on a terminal; elsewhere a line every few
    seconds (a log file or CI's output gets no carriage returns)."""
    terminal = stream.isatty()

    def show(report: Report) -> None:
        if terminal:
            stream.write(f"\r{report}\x1b[K" + ("\n" if report.final else ""))
        else:
            stream.write(f"{report}\n")
        stream.flush()

    return Progress(what, show, total=total, unit=unit, delay=delay, every=TERMINAL_EVERY if terminal else LOG_EVERY)


def in_log(logger: logging.Logger, name: str, what: str, *, total: int | None = None, unit: str = "",
           delay: float = 2.0) -> Progress:  # fmt: skip
    """Progress as log events ``name`` (what, done, total, seconds, final) every few seconds, for work a
    daemon does that takes longer than ``delay`` seconds."""

    def show(report: Report) -> None:
        event(logger, name, what=report.what, done=report.done, total=report.total,
              seconds=round(report.seconds, 1), final=report.final or None)  # fmt: skip

    return Progress(what, show, total=total, unit=unit, delay=delay, every=LOG_EVERY)
