"""When the garbage collector may hold up the event loop, and so every call's audio.

A collection walks every object of the generations it collects, and the loop waits it out. At
1,000 calls (about 115 tracked objects each):

- a full collection walks every live call, 50-100 ms: three to five frames skipped on every call.
  CPython starts one after every hundred young collections (once a quarter of the old generation
  is newer than the last full one): within seconds of a rush of new calls, every few minutes when
  ten calls a second are replaced. Calls are freed by reference counting as they end
  (``tests/test_call_cycles.py`` holds them to that), so these collections reclaim nothing of
  theirs: ivrd lets a thousand middle-generation collections go by first (CPython: ten), half an
  hour at the pace below.
- a young collection walks the objects made since the last one that still live. CPython starts
  one when allocations less deallocations pass a threshold, and it counts every deallocation, old
  objects' too. When calls turn over, the calls that end free about as many objects as the new
  ones make: the count stays near zero, no collection comes, and the young generation fills with
  every new call's objects for minutes. The collection that at last comes walks them all, 20-90 ms
  at 1,000 calls and ten new calls a second. So :func:`pace` collects it twice a second whatever
  the count says: about a thousand objects each time, a fraction of a millisecond.
- a middle-generation collection walks the young survivors of the last few young collections:
  ivrd runs one after three young ones (CPython: ten), under 2 ms at 1,000 calls under churn.

Cycles that other code leaves (a closed HTTP connection, a replaced flow set) wait longer to be
reclaimed; ``ivrd_gc_pause_seconds`` and ``python_gc_objects_collected_total`` show what the
collector does.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Final

MIDDLE_AFTER: Final = 3  # young collections before a middle-generation one (CPython: 10)
FULL_AFTER: Final = 1000  # middle-generation collections before a full one may start (CPython: 10)
YOUNG_EVERY: Final = 0.5  # seconds between the young collections :func:`pace` runs


def settle() -> None:
    """Once start-up is done: collect, freeze what start-up left (it lives as long as the process,
    and no later collection walks it again), and set the thresholds above."""
    gc.collect()
    gc.freeze()
    young, _, _ = gc.get_threshold()
    gc.set_threshold(young, MIDDLE_AFTER, FULL_AFTER)


def collect_young() -> int | None:
    """Collect the young generation, and the middle one with it once :data:`MIDDLE_AFTER` young
    collections have gone by since its last; returns the generation collected. Collects nothing
    (``None``) while collection is switched off (``gc.disable()``: a test, a debugger)."""
    if not gc.isenabled():
        return None
    generation = 1 if gc.get_count()[1] >= MIDDLE_AFTER else 0
    gc.collect(generation)
    return generation


async def pace(every: float = YOUNG_EVERY) -> None:
    """Run :func:`collect_young` every ``every`` seconds, until cancelled. Full collections stay
    CPython's to start, at the thresholds :func:`settle` set."""
    while True:
        await asyncio.sleep(every)
        collect_young()
