"""Expected wait for a caller in line: from recent handle times and the agents staffed, with Erlang C beside it."""

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


def erlang_c(arrivals_per_second: float, handle_seconds: float, agents: int) -> float:
    """The probability that a call waits (Erlang C), for ``agents`` agents and the offered traffic."""
    traffic = arrivals_per_second * handle_seconds  # in Erlangs
    if agents <= 0 or traffic >= agents:
        return 1.0
    blocking = 1.0  # Erlang B by its recursion, stable for thousands of agents
    for k in range(1, agents + 1):
        blocking = traffic * blocking / (k + traffic * blocking)
    return agents * blocking / (agents - traffic * (1 - blocking))


def erlang_c_wait(arrivals_per_second: float, handle_seconds: float, agents: int) -> float:
    """The average speed of answer Erlang C predicts, in seconds (``inf`` when the agents cannot keep up)."""
    traffic = arrivals_per_second * handle_seconds
    if agents <= 0 or traffic >= agents:
        return math.inf
    return erlang_c(arrivals_per_second, handle_seconds, agents) * handle_seconds / (agents - traffic)
