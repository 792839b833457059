"""Where queue and agent state lives: the interface the contact center drives, and its backends.

The contact center (:mod:`ivrd.center.center`) tells a backend what happens (a caller joins or hangs
up, an agent logs in, answers, ends a call; time passes) and carries out the decisions it hands
back (:class:`~routing.matcher.Offer`, :class:`~routing.matcher.Left`). The backend alone decides
who takes whom, so one backend shared by several ivrd nodes (Redis) can route for all of them; a
node keeps only what touches its own calls (their legs and media).

The in-memory :class:`~routing.matcher.Router` is the default backend; several nodes each drive a
:class:`~routing.replicated.NodeRouter` (times in the loop's clock here too: it converts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from .agents import Agent
from .matcher import Decision, QueueSpec, Requirement, Router


class RoutingBackend(Protocol):
    """The state of queues and agents, and the decisions over it. Times are the event loop's clock."""

    @property
    def agents(self) -> Mapping[str, Agent]:
        """Every configured agent, by id (a shared backend: as last seen by this node)."""

    @property
    def queues(self) -> Mapping[str, QueueSpec]:
        """The queues, by name."""

    # configuration: at start and on reload
    def reconfigure(self, queues: Iterable[QueueSpec], now: float) -> None: ...
    def check_reconfigure(self, queue_names: Iterable[str]) -> None: ...
    def add_agent(self, agent: Agent, now: float) -> None: ...
    def update_agent(self, agent_id: str, skills: dict[str, int], now: float) -> None: ...
    def remove_agent(self, agent_id: str) -> None: ...

    # agents
    def agent_available(self, agent_id: str, now: float) -> None: ...
    def agent_away(self, agent_id: str, now: float, reason: str) -> None: ...
    def call_ended(self, agent_id: str, now: float) -> None: ...

    # callers
    def join(self, caller_id: str, queue_name: str, now: float, *, priority: int = 0, skills: str | None = None,
             joined: float | None = None) -> None: ...  # fmt: skip
    def leave(self, caller_id: str, now: float) -> None: ...
    def answered(self, caller_id: str, now: float) -> None: ...
    def offer_failed(self, caller_id: str, now: float) -> None: ...

    # time and decisions
    def on_timer(self, now: float) -> None: ...
    def next_deadline(self) -> float | None: ...
    def take_decisions(self) -> list[Decision]: ...

    # what the announcements and the API show
    def requirement(self, queue_name: str) -> Requirement: ...
    def waiting(self, queue_name: str) -> int: ...
    def position(self, caller_id: str) -> int | None: ...


def memory_backend(queues: Iterable[QueueSpec]) -> RoutingBackend:
    """The default: everything in this process (one ivrd node)."""
    return Router(queues)
