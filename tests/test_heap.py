"""The collector's pace (``ivrd/heap.py``): young collections that come whatever CPython's count says."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from ivrd import heap

OBJECTS = 20_000


@pytest.fixture
def collector() -> Iterator[None]:
    """No automatic collection (a threshold never reached), so whatever collects is what the test
    ran; the process's settings restored afterwards."""
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    gc.set_threshold(10**9, heap.MIDDLE_AFTER, heap.FULL_AFTER)
    gc.enable()
    gc.collect()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        (gc.enable if enabled else gc.disable)()


def _in_young(thing: object) -> bool:
    return any(young is thing for young in gc.get_objects(0))


def _turn_over() -> list[list[int]]:
    """As calls do when they turn over: old objects freed as many new ones are made. CPython's
    count of the young generation stays near zero while the generation fills."""
    old = [[n] for n in range(OBJECTS)]
    gc.collect()  # now old
    new = []
    while old:
        new.append([old.pop()[0]])
    return new


@pytest.mark.usefixtures("collector")
def test_a_young_generation_that_fills_while_the_count_stays_low_is_collected_at_the_pace() -> None:
    new = _turn_over()
    assert gc.get_count()[0] < OBJECTS / 100  # what would start an automatic collection
    assert len(gc.get_objects(0)) >= OBJECTS and _in_young(new[-1])  # what one would have to walk

    async def one_pace() -> None:
        collected = asyncio.Event()

        def on_collection(phase: str, info: dict[str, int]) -> None:
            if phase == "stop":
                collected.set()

        gc.callbacks.append(on_collection)
        pacing = asyncio.ensure_future(heap.pace(every=0.001))
        try:
            await asyncio.wait_for(collected.wait(), 10)
        finally:
            gc.callbacks.remove(on_collection)
            pacing.cancel()
            await asyncio.gather(pacing, return_exceptions=True)

    asyncio.run(one_pace())
    assert not _in_young(new[-1])
    assert len(gc.get_objects(0)) < OBJECTS / 10


@pytest.mark.usefixtures("collector")
def test_the_middle_generation_is_collected_with_every_young_collection_after_the_set_number() -> None:
    middle_before = gc.get_stats()[1]["collections"]
    generations = [heap.collect_young() for _ in range(2 * (heap.MIDDLE_AFTER + 1))]
    assert generations == 2 * ([0] * heap.MIDDLE_AFTER + [1])
    assert gc.get_stats()[1]["collections"] == middle_before + 2


@pytest.mark.usefixtures("collector")
def test_nothing_is_collected_while_collection_is_switched_off() -> None:
    new = _turn_over()
    young_before = gc.get_stats()[0]["collections"]
    gc.disable()
    assert heap.collect_young() is None
    assert gc.get_stats()[0]["collections"] == young_before
    assert _in_young(new[-1])
