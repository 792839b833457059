"""Tasks started from plain callbacks, held until they end: the event loop keeps only weak
references to tasks, so one that nobody holds can be collected before it finishes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class TaskSet:
    """The tasks one owner started and that are still running."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` on the running loop, held until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(set(self._running))  # a copy: tasks end (and leave) while callers go through them

    def __len__(self) -> int:
        return len(self._running)
