"""Expected wait for a caller in line: from recent handle times and the agents staffed."""

from __future__ import annotations

import math


class HandleTime:
    """A moving average of how long a queue's calls keep an agent (talk plus wrap-up), in seconds."""

    def __init__(self, initial: float = 180.0, weight: float = 0.2) -> None:
        self.seconds = initial  # a typical contact-center call until calls have been measured
        self.samples = 0
        self._weight = weight

    def add(self, seconds: float) -> None:
        self.seconds = seconds if not self.samples else (1 - self._weight) * self.seconds + self._weight * seconds
        self.samples += 1


def expected_wait(position: int, handle_seconds: float, staffed: int) -> float:
    """Seconds until the caller at ``position`` (1 = next) is answered: the callers ahead, and this one's
    turn, shared among the agents staffed (none staffed: unknown, ``inf``)."""
    if staffed <= 0:
        return math.inf
    return max(0, position) * handle_seconds / staffed

