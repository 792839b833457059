"""When the garbage collector may hold up the event loop, and so every call's audio.

A collection walks every object of the generations it collects, and the loop waits it out. At
1,000 calls (about 115 tracked objects each):

- a full collection walks every live call, 50-100 ms: three to five frames skipped on every call.
  CPython starts one after every hundred young collections (once a quarter of the old generation
  is newer than the last full one): within seconds of a rush of new calls, every few minutes when
  ten calls a second are replaced. Calls are freed by reference counting as they end
  (``tests/test_call_cycles.py`` holds them to that), so these collections reclaim nothing of
  theirs: ivrd lets thirty times as many young collections go by first.
- a middle-generation collection walks the objects of the calls set up since the last one: 3-9 ms
  after ten young collections under that churn, under 2 ms after three. ivrd runs them after three.

Cycles that other code leaves (a closed HTTP connection, a replaced flow set) wait longer to be
reclaimed; ``ivrd_gc_pause_seconds`` and ``python_gc_objects_collected_total`` show what the
collector does.
"""

from __future__ import annotations

import gc
from typing import Final

MIDDLE_AFTER: Final = 3  # young collections before a middle-generation one (CPython: 10)
FULL_AFTER: Final = 1000  # middle-generation collections before a full one may start (CPython: 10)


def settle() -> None:
    """Once start-up is done: collect, freeze what start-up left (it lives as long as the process,
    and no later collection walks it again), and set the thresholds above."""
    gc.collect()
    gc.freeze()
    young, _, _ = gc.get_threshold()
    gc.set_threshold(young, MIDDLE_AFTER, FULL_AFTER)
