"""How the kernel schedules the event loop's thread.

Every call's audio is paced on this one thread, so a process that takes the CPU from it delays
every call at once. At a real-time priority (``CPUSchedulingPolicy=rr`` in ``systemd/ivrd.service``)
nothing at normal priority can. That priority belongs to the loop alone: with reset-on-fork
(``CPUSchedulingResetOnFork=yes``, ``chrt -R``) the threads the loop starts (speech recognition,
records) and its child processes (espeak-ng) run at normal priority. Without it they would inherit
real-time priority, and busy recognizers could starve the rest of the machine.
"""

from __future__ import annotations

import os
from typing import Final

_NAMES: Final = {os.SCHED_OTHER: "normal", os.SCHED_BATCH: "batch", os.SCHED_IDLE: "idle",
                 os.SCHED_FIFO: "fifo", os.SCHED_RR: "rr"}  # fmt: skip
_REALTIME: Final = (os.SCHED_FIFO, os.SCHED_RR)


def loop_scheduling() -> tuple[str, bool]:
    """The calling thread's scheduling, as ``(name, inherited)``: the name is the policy, with the priority
    when it is real-time (``"normal"``, ``"rr/20"``); ``inherited`` is True when a real-time priority would
    pass to the threads and processes this thread starts (no reset-on-fork)."""
    policy = os.sched_getscheduler(0)
    reset = bool(policy & os.SCHED_RESET_ON_FORK)
    policy &= ~os.SCHED_RESET_ON_FORK
    name = _NAMES.get(policy, str(policy))
    if policy not in _REALTIME:
        return name, False
    return f"{name}/{os.sched_getparam(0).sched_priority}", not reset
