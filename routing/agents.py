"""An agent's state, sans-IO: a table of (state, event) -> state, with the time spent in each state.

    available --offer--> offered --answer--> busy --end--> wrap_up --wrapped--> available
    offered --miss--> available (or away after too many misses in a row)
    any --away--> away --available--> available          (login, logout, breaks: "away" with a reason)

An agent offered a call cannot be offered another; an agent away or logged out gets nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class AgentState(enum.Enum):
    AVAILABLE = "available"
    OFFERED = "offered"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    AWAY = "away"


class Happening(enum.Enum):
    OFFER = "offer"
    ANSWER = "answer"
    MISS = "miss"  # no answer in time, busy, or an error: the caller goes back to the head of the line
    END = "end"  # the call the agent took is over
    WRAPPED = "wrapped"  # wrap-up time is up
    AWAY = "away"
    AVAILABLE = "available"


TABLE: dict[tuple[AgentState, Happening], AgentState] = {
    (AgentState.AVAILABLE, Happening.OFFER): AgentState.OFFERED,
    (AgentState.OFFERED, Happening.ANSWER): AgentState.BUSY,
    (AgentState.OFFERED, Happening.MISS): AgentState.AVAILABLE,
    (AgentState.BUSY, Happening.END): AgentState.WRAP_UP,
    (AgentState.WRAP_UP, Happening.WRAPPED): AgentState.AVAILABLE,
    (AgentState.AVAILABLE, Happening.AWAY): AgentState.AWAY,
    (AgentState.WRAP_UP, Happening.AWAY): AgentState.AWAY,
    (AgentState.AWAY, Happening.AWAY): AgentState.AWAY,  # a new reason
    (AgentState.AWAY, Happening.AVAILABLE): AgentState.AVAILABLE,
    (AgentState.WRAP_UP, Happening.AVAILABLE): AgentState.AVAILABLE,  # wrap-up ended early by the agent
}


class StateError(Exception):
    """A happening the agent's state does not allow (e.g. an offer to a busy agent)."""


@dataclass(eq=False)
class Agent:
    """One agent: skills with proficiency 0-5, and where they are."""

    id: str
    skills: dict[str, int]
    name: str = ""
    contact: str = ""
    state: AgentState = AgentState.AWAY
    reason: str = "logged out"
    since: float = 0.0  # when the current state began
    seconds_in: dict[AgentState, float] = field(default_factory=lambda: dict.fromkeys(AgentState, 0.0))
    misses_in_a_row: int = 0
    calls: int = 0

    def apply(self, happening: Happening, now: float, *, reason: str = "") -> AgentState:
        """Move on ``happening``; raise :class:`StateError` when the state does not allow it."""
        target = TABLE.get((self.state, happening))
        if target is None:
            raise StateError(f"agent {self.id}: cannot {happening.value} while {self.state.value}")
        self.seconds_in[self.state] += max(0.0, now - self.since)
        if happening is Happening.MISS:
            self.misses_in_a_row += 1
        elif happening is Happening.ANSWER:
            self.misses_in_a_row = 0
            self.calls += 1
        self.state, self.since = target, now
        self.reason = reason if target is AgentState.AWAY else ""
        return target

    def time_in_state(self, now: float) -> dict[str, float]:
        spent = dict(self.seconds_in)
        spent[self.state] += max(0.0, now - self.since)
        return {state.value: round(seconds, 3) for state, seconds in spent.items()}
