"""The 20 ms heartbeat every call's media runs on: one timer per phase slot, not one per call.

The interval is cut into ``slots`` phases (1 ms apart with the defaults). A call joins the slot with
the fewest calls, so the work of each 20 ms spreads evenly whenever the calls began, and each
slot's timer sends the frames of all its calls in one callback: the loop handles 1,000 timers a
second, whatever the number of calls, instead of 50 per call. Deadlines come from a
:class:`~ivrd.media.pacer.Pacer` per slot, so they never drift; a slot whose timer comes more than
an interval late tells its calls how many frames they missed, so they skip them rather than burst.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from math import ceil
from typing import Final, Protocol

from .pacer import Lateness, Pacer

TICK: Final = 0.02
SLOTS: Final = 20

# A call's tick, given the index of the frame now due (in its slot's count).
Tick = Callable[[int], None]


class Timers(Protocol):
    """What the clock needs of an event loop (a fake one in tests)."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[_Slot], None], slot: _Slot, /) -> asyncio.TimerHandle: ...


class _Slot:
    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.members: dict[int, Tick] = {}  # in joining order: calls that joined first send first
        self.timer: asyncio.TimerHandle | None = None


class FrameClock:
    """See the module docstring. ``lateness`` counts how late every call's frame left after its deadline.

    Deadlines are kept on the loop's clock, so a timer is due exactly when they are (uvloop counts
    whole milliseconds: slots a whole number of milliseconds apart fall on its ticks); lateness is
    measured on ``measure``, a finer clock on the same time base (``time.monotonic`` is the one
    both asyncio and uvloop read)."""

    def __init__(self, interval: float = TICK, slots: int = SLOTS, *, loop: Timers | None = None,
                 measure: Callable[[], float] = time.monotonic,
                 on_error: Callable[[BaseException], None] | None = None) -> None:  # fmt: skip
        self.interval = interval
        self._on_error = on_error
        self.lateness = Lateness()
        self._loop = loop
        self._measure = measure
        self._phases = slots
        self._slots: list[_Slot] = []
        self._where: dict[int, _Slot] = {}
        self._next_key = 0

    def join(self, tick: Tick) -> tuple[int, int]:
        """Have ``tick(index)`` called at every deadline of the least busy slot (the soonest among equals),
        from the next one on. Returns ``(key, index)``: the key to :meth:`leave` with, and the index of
        the first frame, so the call can tell the frames it missed from ``index`` jumps."""
        loop = self._timers()
        now = loop.time()
        slot = min(self._slots, key=lambda s: (len(s.members), self._next_deadline(s, now)))
        if slot.timer is None:  # an idle slot: it resumes on its own grid, at its next deadline
            slot.pacer.index = max(slot.pacer.index, ceil((now - slot.pacer.start) / self.interval))
            slot.timer = loop.call_at(slot.pacer.deadline, self._run, slot)
        key = self._next_key
        self._next_key += 1
        slot.members[key] = tick
        self._where[key] = slot
        return key, slot.pacer.index

    def leave(self, key: int) -> None:
        """Stop calling the tick that :meth:`join` gave ``key``; a slot left empty stops its timer."""
        slot = self._where.pop(key, None)
        if slot is None:
            return
        del slot.members[key]
        if not slot.members and slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None

    def _timers(self) -> Timers:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if not self._slots:  # the grid starts on the loop's clock, the first time a call needs it
            epoch = self._loop.time()
            self._slots = [_Slot(Pacer(epoch + k * self.interval / self._phases, self.interval))
                           for k in range(self._phases)]  # fmt: skip
        return self._loop

    def _next_deadline(self, slot: _Slot, now: float) -> float:
        if slot.timer is not None:
            return slot.pacer.deadline
        return slot.pacer.start + ceil((now - slot.pacer.start) / self.interval) * self.interval

    def _run(self, slot: _Slot) -> None:
        assert self._loop is not None
        pacer = slot.pacer
        pacer.tick(self._loop.time())
        index = pacer.index - 1  # the frame due now (the pacer has moved on to the next)
        deadline = pacer.start + index * self.interval
        lateness, measure, members = self.lateness, self._measure, slot.members
        for key, tick in list(members.items()):
            if key in members:  # not closed by an earlier call's tick in this round
                lateness.observe(max(0.0, measure() - deadline))
                try:
                    tick(index)
                except Exception as error:  # a bug in one call's tick: that call leaves, the others go on
                    self.leave(key)
                    if self._on_error is not None:
                        self._on_error(error)
        slot.timer = self._loop.call_at(pacer.deadline, self._run, slot) if members else None
