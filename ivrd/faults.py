"""Faults that cost one thing (a message, an event, a task's work) and never the daemon: each is logged
where it happens, with its traceback, and counted here by place (``ivrd_internal_errors_total``)."""

from __future__ import annotations


class Faults:
    """Counts of the faults caught so far, by where they were caught (``sip.receive``, ``call.task``, ...)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, where: str) -> None:
        self.counts[where] = self.counts.get(where, 0) + 1
