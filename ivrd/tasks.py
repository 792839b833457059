"""Tasks started from plain callbacks, held until they end: the event loop keeps only weak
references to tasks, so one that nobody holds can be collected before it finishes. A task that
fails is logged with its traceback and counted, never dropped unseen."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from .faults import Faults

T = TypeVar("T")
log = logging.getLogger("ivrd")


class TaskSet:
    """The tasks one owner started and that are still running; ``where`` names them in the fault counts."""

    def __init__(self, faults: Faults, where: str) -> None:
        self._running: set[asyncio.Task[Any]] = set()
        self._faults = faults
        self._where = where

    def spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` on the running loop, held until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._running.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._faults.count(self._where)
            log.error("task.failed", exc_info=error, extra={"fields": {"where": self._where, "error": repr(error)}})

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(set(self._running))  # a copy: tasks end (and leave) while callers go through them

    def __len__(self) -> int:
        return len(self._running)
