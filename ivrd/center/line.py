"""The callers waiting, and the router's decisions carried out as they come.

The :class:`Line` holds each caller's place (:class:`~ivrd.center.model.Waiting`) beside the router's
own state, runs the router's timer on the center's clock, and hands each decision to the room that
carries it out: an offer to an agent, or a caller leaving without one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from routing.agents import AgentState
from routing.backend import RoutingBackend
from routing.estimate import HandleTime, expected_wait
from routing.matcher import Left, Offer

from ..config import RoutingConfig
from .model import Clock, Timer, Waiting


class Line:
    """See the module docstring. ``on_offer`` and ``on_left`` carry out the router's decisions."""

    def __init__(self, router: RoutingBackend, clock: Clock, config: RoutingConfig) -> None:
        self.router = router
        self.clock = clock
        self.config = config
        self.waiting: dict[str, Waiting] = {}  # caller id -> their place
        self.handle_time = {name: HandleTime() for name in config.queues}
        self.on_offer: Callable[[Offer], None] = _unset
        self.on_left: Callable[[Left], None] = _unset
        self._timer: Timer | None = None

    def now(self) -> float:
        return self.clock.time()

    def reconfigured(self, config: RoutingConfig) -> None:
        self.config = config
        for name in config.queues:
            self.handle_time.setdefault(name, HandleTime())

    def decide(self) -> None:
        """Carry out what the router decided, then wait for its next deadline."""
        while decisions := self.router.take_decisions():
            for decision in decisions:
                if decision.caller not in self.waiting:
                    continue  # decided before the caller's leaving reached a shared router, which undoes it
                if isinstance(decision, Offer):
                    self.on_offer(decision)
                elif isinstance(decision, Left):
                    self.on_left(decision)
        deadline = self.router.next_deadline()
        if self._timer is not None and self._timer.when() == deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_at(deadline, self._on_timer) if deadline is not None else None

    def _on_timer(self) -> None:
        self._timer = None
        self.router.on_timer(self.now())
        self.decide()

    # ---- what a queue looks like --------------------------------------------------------------------

    def staffed(self, queue: str) -> int:
        """Agents logged in who can take the queue's callers."""
        requirement = self.router.requirement(queue)
        return sum(1 for a in self.router.agents.values() if a.state is not AgentState.AWAY
                   and requirement.matches(a.skills))  # fmt: skip

    def agents_by_state(self, queue: str) -> dict[str, int]:
        """The agents who can take the queue's callers (logged in or not), counted by state."""
        requirement = self.router.requirement(queue)
        counts = dict.fromkeys((state.value for state in AgentState), 0)
        for agent in self.router.agents.values():
            if requirement.matches(agent.skills):
                counts[agent.state.value] += 1
        return counts

    def position(self, place: Waiting) -> int:
        """Where ``place`` is in its queue's line (1: next), across every node sharing the queue; among
        this node's callers until the router has said."""
        known = self.router.position(place.caller.id)
        if known is not None:
            return known
        return 1 + sum(1 for w in self.waiting.values() if w.queue == place.queue
                       and (-w.priority, w.joined) < (-place.priority, place.joined))  # fmt: skip

    def expected_wait(self, queue: str, position: int) -> float:
        """Seconds a caller at ``position`` can expect to wait (inf: nobody staffed)."""
        return expected_wait(position, self.handle_time[queue].seconds, self.staffed(queue))

    def oldest_wait(self, queue: str) -> float:
        now = self.now()
        return max((now - w.joined for w in self.waiting.values() if w.queue == queue), default=0.0)

    def view(self, queue: str) -> dict[str, object]:
        """A queue's figures, for the API and the metrics."""
        handle = self.handle_time[queue].seconds
        return {"name": queue, "waiting": self.router.waiting(queue), "oldest_wait": round(self.oldest_wait(queue), 1),
                "staffed": self.staffed(queue), "handle_seconds": round(handle, 1),
                "waiting_here": sum(1 for w in self.waiting.values() if w.queue == queue)}  # fmt: skip


def _unset(_: object) -> None:
    raise AssertionError("a decision came before the line was wired")


def wait_phrase(seconds: float) -> str:
    """An expected wait as callers hear it."""
    if math.isinf(seconds) or seconds > 3600:
        return "more than an hour"
    return "less than a minute" if seconds < 60 else f"about {round(seconds / 60)} minutes"
