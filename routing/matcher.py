"""The router, sans-IO: callers wait in queues, agents free up, timers escalate; offers come out.

Every decision is event-driven (a caller joins, an agent becomes available, a timer fires) and
touches only what the event concerns:

- Available agents are indexed by skill (and by skill and proficiency level), each index in the
  order the agents became available, so "the longest idle agent with billing >= 3" is the first
  match in the smallest index a queue's expression requires, not a scan of every agent.
- Waiting callers sit in one heap per (queue, escalation step), ordered by priority, then by
  when they joined; a caller whose offer fails or who overflows to another queue keeps that
  time, and so their place.
- When an agent frees up, only the heads of the heaps are compared.
"""

from __future__ import annotations

import ast
import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from flows.expressions import Expression, ExpressionError, compile_expression
from flows.schema import OverflowReason

from .agents import Agent, AgentState, Happening

Strategy = Literal["longest_idle", "most_skilled", "round_robin", "fewest_calls"]
LEVELS = range(5, -1, -1)


@dataclass(frozen=True, slots=True)
class Escalation:
    """After ``after`` seconds of waiting: new required skills, another queue (keeping the caller's place),
    or, with ``leave``, out of the line and back to the caller's flow (reason ``escalated``)."""

    after: float
    skills: str | None = None
    overflow: str | None = None
    leave: bool = False


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    skills: str = "True"
    strategy: Strategy = "longest_idle"
    rank_skill: str | None = None  # most_skilled: the skill ranked (default: the first the expression requires)
    escalations: tuple[Escalation, ...] = ()
    max_waiting: int = 1000
    max_wait: float = 3600.0
    join_empty: bool = False  # False: a caller is refused when no agent who could take them is logged in
    leave_when_empty: bool = False  # True: callers waiting leave when the last agent who could take them goes
    wrap_up: float = 10.0
    max_misses: int = 3  # offers missed in a row before the agent is set away


@dataclass(frozen=True, slots=True)
class Offer:
    caller: str
    agent: str
    queue: str




@dataclass(frozen=True, slots=True)
class Left:
    """A caller leaves the queue without an agent, for one of :data:`flows.schema.OVERFLOW_REASONS`."""

    caller: str
    queue: str
    reason: OverflowReason


Decision = Offer | Left


class Requirement:
    """A skills expression over an agent's skills, with the skills it cannot do without."""

    def __init__(self, text: str) -> None:
        self.expression: Expression = compile_expression(text)
        self.required = _required(ast.parse(text.strip(), mode="eval").body)

    def matches(self, skills: dict[str, int]) -> bool:
        try:
            return self.expression.truth(skills)
        except ExpressionError:
            return False


def _required(node: ast.expr) -> frozenset[str]:
    """Skills every match must have: named by a top-level ``and`` term that is ``skill`` or ``skill >= n``."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return frozenset().union(*(_required(value) for value in node.values))
    if isinstance(node, ast.Name) and node.id not in ("True", "False"):
        return frozenset({node.id})
    if (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Name)
            and isinstance(node.ops[0], (ast.Gt, ast.GtE, ast.Eq)) and isinstance(node.comparators[0], ast.Constant)
            and isinstance(node.comparators[0].value, int) and node.comparators[0].value > 0):  # fmt: skip
        return frozenset({node.left.id})
    return frozenset()


@dataclass(eq=False)
class _Caller:
    id: str
    queue: str
    priority: int
    joined: float
    step: int = 0
    offered_to: str | None = None
    seq: int = 0
    skills: str | None = None  # this caller's own skills expression (until the first escalation step)
    deferred: list[tuple[str, str]] = field(default_factory=list)  # (timer, whose) due while offered

    @property
    def group_key(self) -> tuple[str, int, str | None]:
        return (self.queue, self.step, self.skills if self.step == 0 else None)


@dataclass(eq=False)
class _Group:
    """The callers of one queue at one escalation step."""

    queue: QueueSpec
    step: int
    requirement: Requirement
    skills: str | None  # a caller's own expression, or None for the queue's
    heap: list[tuple[int, float, int, str]] = field(default_factory=list)


class ReconfigureError(Exception):
    """A new configuration the router cannot take while it serves (nothing was changed)."""


class Router:
    def __init__(self, queues: Iterable[QueueSpec]) -> None:
        self.queues = {q.name: q for q in queues}
        self.agents: dict[str, Agent] = {}
        self.callers: dict[str, _Caller] = {}
        self._groups = self._queue_groups()
        self._retiring: set[str] = set()  # agents taken out of the configuration while on a call
        self._available: dict[str, dict[str, None]] = {"": {}}  # skill -> agents, longest idle first; "": all
        self._by_level: dict[tuple[str, int], dict[str, None]] = {}
        self._timers: list[tuple[float, int, str, str, str]] = []  # (when, seq, kind, id, whose: see _whose)
        self._seq = itertools.count()
        self._decisions: list[Decision] = []
        self._last_offer: dict[tuple[str, str], float] = {}  # (queue, agent) -> when (round robin)
        self._waiting: dict[str, int] = dict.fromkeys(self.queues, 0)
        self._took_from: dict[str, str] = {}  # agent -> the queue of the call they took (its wrap-up)
        self.touched: set[str] = set()  # agents whose state changed since the owner last emptied this

    def _queue_groups(self) -> dict[tuple[str, int, str | None], _Group]:
        groups: dict[tuple[str, int, str | None], _Group] = {}
        for queue in self.queues.values():
            texts = [queue.skills]
            for step in queue.escalations:
                texts.append(step.skills or texts[-1])
            for index, text in enumerate(texts):
                groups[(queue.name, index, None)] = _Group(queue, index, Requirement(text), None)
        return groups

    # ---- configuration changes while serving ------------------------------------------------------

    def reconfigure(self, queues: Iterable[QueueSpec], now: float) -> None:
        """New queue definitions. Callers keep their place (when they joined) and their escalation step;
        their max-wait and next escalation timers are set again from when they joined. Raises
        :class:`ReconfigureError`, changing nothing, when a queue with callers in it would go."""
        fresh = {q.name: q for q in queues}
        self.check_reconfigure(fresh)
        self.queues = fresh
        self._groups = self._queue_groups()
        self._waiting = dict.fromkeys(fresh, 0)
        self._timers = [t for t in self._timers if t[2] == "wrapped"]
        heapq.heapify(self._timers)
        for caller in sorted(self.callers.values(), key=lambda c: c.seq):
            self._waiting[caller.queue] += 1
            caller.step = min(caller.step, len(fresh[caller.queue].escalations))
            caller.deferred.clear()
            self._arm(caller)
            if caller.offered_to is None:
                group = self._group(*caller.group_key)
                heapq.heappush(group.heap, (-caller.priority, caller.joined, caller.seq, caller.id))
        self._serve_available(now)  # a relaxed queue may now match an agent who was idle

    def check_reconfigure(self, queue_names: Iterable[str]) -> None:
        """Raise :class:`ReconfigureError` when a queue with callers in it is not among ``queue_names``."""
        occupied = sorted({c.queue for c in self.callers.values()} - set(queue_names))
        if occupied:
            raise ReconfigureError(f"queue {', '.join(occupied)} still has callers: remove it once it is empty")

    def update_agent(self, agent_id: str, skills: dict[str, int], now: float) -> None:
        """New skills for an agent, whatever their state (a call in progress goes on)."""
        agent = self.agents[agent_id]
        self._retiring.discard(agent_id)
        indexed = agent_id in self._available[""]
        if indexed:
            self._unindex(agent)
        agent.skills = dict(skills)
        if indexed:
            self._index(agent)
            self._serve_agent(agent, now)

    def remove_agent(self, agent_id: str) -> None:
        """Take an agent out; one who is ringing or talking goes once that call is over."""
        agent = self.agents[agent_id]
        if agent.state in (AgentState.OFFERED, AgentState.BUSY):
            self._retiring.add(agent_id)
            return
        self._unindex(agent)
        del self.agents[agent_id]
        self._leave_if_empty()

    def _retired(self, agent_id: str) -> bool:
        """Whether the agent was taken out during the call now over: then they go now."""
        if agent_id not in self._retiring:
            return False
        self._retiring.discard(agent_id)
        del self.agents[agent_id]
        return True

    def _serve_available(self, now: float) -> None:
        for agent_id in list(self._available[""]):
            agent = self.agents[agent_id]
            if agent.state is AgentState.AVAILABLE and agent_id in self._available[""]:
                self._serve_agent(agent, now)

    # ---- what happens --------------------------------------------------------------------------

    def add_agent(self, agent: Agent, now: float) -> None:
        self.agents[agent.id] = agent
        if agent.state is AgentState.AVAILABLE:
            self._index(agent)
            self._serve_agent(agent, now)

    def agent_available(self, agent_id: str, now: float) -> None:
        agent = self.agents[agent_id]
        self._happen(agent, Happening.AVAILABLE, now)
        self._index(agent)
        self._serve_agent(agent, now)

    def agent_away(self, agent_id: str, now: float, reason: str) -> None:
        agent = self.agents[agent_id]
        self._happen(agent, Happening.AWAY, now, reason=reason)
        self._unindex(agent)
        self._leave_if_empty()

    def join(self, caller_id: str, queue_name: str, now: float, *, priority: int = 0,
             skills: str | None = None, joined: float | None = None) -> None:  # fmt: skip
        """A caller waits in a queue (the decision may be an offer at once, or a refusal). ``skills``
        replaces the queue's expression for this caller until the first escalation step; it raises
        :class:`~flows.expressions.ExpressionError` when it is not an expression. ``joined``: when the
        caller first joined, for one who comes back (a callback tried again) to their place."""
        queue = self.queues[queue_name]
        group = self._group(queue_name, 0, skills)
        if self._waiting[queue_name] >= queue.max_waiting:
            self._decisions.append(Left(caller_id, queue_name, "full"))
            return
        if not queue.join_empty and not self._anyone_for(group.requirement):
            self._decisions.append(Left(caller_id, queue_name, "no_agents"))
            return
        caller = _Caller(caller_id, queue_name, priority, now if joined is None else joined, seq=next(self._seq),
                         skills=skills)  # fmt: skip
        self.callers[caller_id] = caller
        self._waiting[queue_name] += 1
        self._arm(caller)
        self._wait(caller, now)

    def leave(self, caller_id: str, now: float) -> None:
        """The caller hung up (abandoned), even while an agent's phone rings for them."""
        caller = self._drop(caller_id)
        if caller is not None and caller.offered_to is not None:
            self._missed(caller.offered_to, caller.queue, now, count=False)

    def answered(self, caller_id: str, now: float) -> None:
        caller = self._drop(caller_id)
        assert caller is not None and caller.offered_to is not None
        self._happen(self.agents[caller.offered_to], Happening.ANSWER, now)
        self._took_from[caller.offered_to] = caller.queue

    def offer_failed(self, caller_id: str, now: float) -> None:
        """No answer, busy or an error: the agent misses, the caller is first in line again."""
        caller = self.callers[caller_id]
        agent_id, caller.offered_to = caller.offered_to, None
        assert agent_id is not None
        self._missed(agent_id, caller.queue, now, count=True)
        if caller_id in self.callers:  # not gone with the agent (leave_when_empty)
            self._back_in_line(caller, now, skip=agent_id)

    def offer_lost(self, caller_id: str, now: float) -> None:
        """The offer can no longer be answered, by nobody's doing (the node that rang the agent died): the
        caller back at their place first, then the agent free for the head of the line; no miss counted."""
        caller = self.callers[caller_id]
        agent_id, caller.offered_to = caller.offered_to, None
        assert agent_id is not None
        self._back_in_line(caller, now)
        self._missed(agent_id, caller.queue, now, count=False)

    def _back_in_line(self, caller: _Caller, now: float, *, skip: str | None = None) -> None:
        deferred, caller.deferred = caller.deferred, []
        for kind, whose in deferred:  # what came due while the phone rang applies now, in order
            if _whose(caller) == whose and not self._apply(caller, kind):
                return
        self._wait(caller, now, skip=skip)

    def call_ended(self, agent_id: str, now: float) -> None:
        agent = self.agents[agent_id]
        self._happen(agent, Happening.END, now)
        queue = self.queues.get(self._took_from.pop(agent_id, ""))
        if self._retired(agent_id):
            return
        self._timer(now + (queue.wrap_up if queue else 0.0), "wrapped", agent_id, "")

    def on_timer(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, key, whose = heapq.heappop(self._timers)
            if kind == "wrapped":
                agent = self.agents.get(key)
                if agent is not None and agent.state is AgentState.WRAP_UP:
                    self._happen(agent, Happening.WRAPPED, now)
                    self._index(agent)
                    self._serve_agent(agent, now)
                continue
            caller = self.callers.get(key)
            if caller is None or _whose(caller) != whose:
                continue  # gone (maybe back since, with timers of their own), or moved on to another queue
            if caller.offered_to is not None:
                caller.deferred.append((kind, whose))  # ringing an agent: that call decides first
            elif self._apply(caller, kind):
                self._wait(caller, now)

    def next_deadline(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def take_decisions(self) -> list[Decision]:
        decisions, self._decisions = self._decisions, []
        return decisions

    def requirement(self, queue_name: str) -> Requirement:
        """The skills a queue asks for before any escalation."""
        return self._groups[(queue_name, 0, None)].requirement

    def waiting(self, queue_name: str) -> int:
        """Callers in the queue (those whose agent's phone rings included)."""
        return self._waiting[queue_name]

    def position(self, caller_id: str) -> int | None:
        """Where a caller is in their queue's line (1: next, by priority then time joined); None if not in one."""
        caller = self.callers.get(caller_id)
        if caller is None:
            return None
        key = _place(caller)
        return 1 + sum(1 for c in self.callers.values() if c.queue == caller.queue and _place(c) < key)

    def positions(self) -> dict[str, int]:
        """Every waiting caller's :meth:`position`, at once."""
        lines: dict[str, list[_Caller]] = {}
        for caller in self.callers.values():
            lines.setdefault(caller.queue, []).append(caller)
        return {c.id: n for line in lines.values() for n, c in enumerate(sorted(line, key=_place), 1)}

    def _drop(self, caller_id: str) -> _Caller | None:
        caller = self.callers.pop(caller_id, None)
        if caller is not None:
            self._waiting[caller.queue] -= 1
        return caller

    # ---- matching -------------------------------------------------------------------------------

    def _wait(self, caller: _Caller, now: float, *, skip: str | None = None) -> None:
        group = self._group(*caller.group_key)
        agent = self._best_agent(group, skip=skip)
        if agent is not None:
            self._offer(caller, agent, now)
            return
        heapq.heappush(group.heap, (-caller.priority, caller.joined, caller.seq, caller.id))

    def _apply(self, caller: _Caller, kind: str) -> bool:
        """A caller's timer (``max_wait`` or ``step<n>``) takes effect; False when the caller left the queue."""
        queue = self.queues[caller.queue]
        step = 0 if kind == "max_wait" else int(kind[4:])
        if step > len(queue.escalations) or 0 < step <= caller.step:
            return True  # a step a reload took away, or one taken already
        rule = queue.escalations[step - 1] if step else None
        if rule is None or rule.leave:
            self._drop(caller.id)
            self._decisions.append(Left(caller.id, caller.queue, "escalated" if rule else "max_wait"))
            return False
        if rule.overflow is not None and rule.overflow in self.queues:
            self._waiting[caller.queue] -= 1
            self._waiting[rule.overflow] += 1
            caller.queue, caller.step, caller.skills = rule.overflow, 0, None  # same joined time: the same place
            self._arm(caller)
        else:
            caller.step = step
        return True

    def _arm(self, caller: _Caller) -> None:
        """The caller's max-wait and escalation timers in their queue, counted from when they joined."""
        queue, whose = self.queues[caller.queue], _whose(caller)
        self._timer(caller.joined + queue.max_wait, "max_wait", caller.id, whose)
        for index, step in enumerate(queue.escalations, start=1):
            if index > caller.step:
                self._timer(caller.joined + step.after, f"step{index}", caller.id, whose)

    def _serve_agent(self, agent: Agent, now: float) -> None:
        """An agent is free: the best caller among the heads of the groups the agent can serve."""
        best: tuple[tuple[int, float, int], _Group] | None = None
        for group in self._groups.values():
            head = self._head(group)
            if head is None or not group.requirement.matches(agent.skills):
                continue
            key = head[:3]
            if best is None or key < best[0]:
                best = (key, group)
        if best is not None:
            _, _, _, caller_id = heapq.heappop(best[1].heap)
            self._offer(self.callers[caller_id], agent, now)

    def _group(self, queue_name: str, step: int, skills: str | None) -> _Group:
        """The group of a queue's step, made for a caller's own skills expression when it is new."""
        group = self._groups.get((queue_name, step, skills))
        if group is None:
            assert skills is not None  # the queues' own groups are made with the router
            if len(self._groups) > 10_000:  # callers' expressions come from flow variables: bounded
                self._groups = {key: g for key, g in self._groups.items() if key[2] is None or g.heap}
            group = self._groups[(queue_name, step, skills)] = _Group(
                self.queues[queue_name], step, Requirement(skills), skills)  # fmt: skip
        return group

    def _head(self, group: _Group) -> tuple[int, float, int, str] | None:
        """The group's first caller still waiting in it (entries of callers who left or moved are dropped)."""
        while group.heap:
            head = group.heap[0]
            caller = self.callers.get(head[3])
            if (caller is not None and caller.offered_to is None and caller.seq == head[2]
                    and caller.step == group.step and caller.queue == group.queue.name
                    and (caller.skills if caller.step == 0 else None) == group.skills):  # fmt: skip
                return head
            heapq.heappop(group.heap)
        return None

    def _best_agent(self, group: _Group, *, skip: str | None = None) -> Agent | None:
        requirement, queue = group.requirement, group.queue
        candidates = (a for a in self._candidates(requirement, queue) if a.id != skip)
        matching = (a for a in candidates if requirement.matches(a.skills))
        if queue.strategy in ("longest_idle", "most_skilled"):
            return next(matching, None)  # the candidates come in the strategy's order
        pool = list(matching)
        if not pool:
            return None
        if queue.strategy == "fewest_calls":
            return min(pool, key=lambda a: (a.calls, a.since))
        return min(pool, key=lambda a: self._last_offer.get((queue.name, a.id), float("-inf")))

    def _candidates(self, requirement: Requirement, queue: QueueSpec) -> Iterator[Agent]:
        if queue.strategy == "most_skilled":
            rank = queue.rank_skill or min(requirement.required, default=None)
            if rank is not None:
                for level in LEVELS:
                    yield from (self.agents[a] for a in self._by_level.get((rank, level), {}))
                return
        buckets = [self._available.get(skill, {}) for skill in requirement.required] or [self._available[""]]
        # no copy: the caller stops iterating before an offer changes the index
        yield from (self.agents[a] for a in min(buckets, key=len))

    def _leave_if_empty(self) -> None:
        """Callers waiting in a ``leave_when_empty`` queue leave when no one who could take them is left
        (those whose agent's phone rings stay: that call decides)."""
        for queue in self.queues.values():
            if not queue.leave_when_empty or not self._waiting[queue.name]:
                continue
            staffed: dict[tuple[str, int, str | None], bool] = {}  # one look at the agents per group
            for caller in [c for c in self.callers.values() if c.queue == queue.name and c.offered_to is None]:
                key = caller.group_key
                if key not in staffed:
                    staffed[key] = self._anyone_for(self._group(*key).requirement)
                if not staffed[key]:
                    self._drop(caller.id)
                    self._decisions.append(Left(caller.id, queue.name, "no_agents"))

    def _anyone_for(self, requirement: Requirement) -> bool:
        return any(a.state is not AgentState.AWAY and requirement.matches(a.skills) for a in self.agents.values())

    def _offer(self, caller: _Caller, agent: Agent, now: float) -> None:
        self._happen(agent, Happening.OFFER, now)
        self._unindex(agent)
        caller.offered_to = agent.id
        self._last_offer[(caller.queue, agent.id)] = now
        self._decisions.append(Offer(caller.id, agent.id, caller.queue))

    def _missed(self, agent_id: str, queue_name: str, now: float, *, count: bool) -> None:
        agent = self.agents[agent_id]
        self._happen(agent, Happening.MISS, now)
        if not count:
            agent.misses_in_a_row -= 1  # the caller hung up: not the agent's miss
        if self._retired(agent_id):
            return
        if agent.misses_in_a_row >= self.queues[queue_name].max_misses:
            self._happen(agent, Happening.AWAY, now, reason=f"missed {agent.misses_in_a_row} calls in a row")
            self._leave_if_empty()
            return
        self._index(agent)
        self._serve_agent(agent, now)

    def _happen(self, agent: Agent, happening: Happening, now: float, *, reason: str = "") -> None:
        agent.apply(happening, now, reason=reason)
        self.touched.add(agent.id)

    # ---- the whole state, to hand to another process ----------------------------------------------

    def export(self) -> dict[str, Any]:
        """Everything the router knows, as JSON-able data; :meth:`restore` makes the same router from it
        (one that decides exactly as this one would from here on). Decisions not yet taken are not in it."""
        seq = next(self._seq)
        self._seq = itertools.count(seq)  # looking must not change what comes next
        return {
            "agents": [agent_state(a) for a in self.agents.values()],
            "available": list(self._available[""]),
            "callers": [[c.id, c.queue, c.priority, c.joined, c.step, c.offered_to, c.seq, c.skills,
                         [list(d) for d in c.deferred]] for c in self.callers.values()],
            "retiring": sorted(self._retiring),
            "timers": [list(t) for t in self._timers],
            "seq": seq,
            "last_offer": [[q, a, when] for (q, a), when in self._last_offer.items()],
            "took_from": dict(self._took_from),
        }

    @classmethod
    def restore(cls, queues: Iterable[QueueSpec], state: dict[str, Any]) -> Router:
        """The router :meth:`export` described, serving ``queues`` (the ones it served then)."""
        router = cls(queues)
        for fields_ in state["agents"]:
            agent = agent_from(fields_)
            router.agents[agent.id] = agent
        for agent_id in state["available"]:
            router._index(router.agents[agent_id])
        for cid, queue, priority, joined, step, offered_to, seq, skills, deferred in state["callers"]:
            caller = _Caller(cid, queue, priority, joined, step, offered_to, seq, skills,
                             [(kind, whose) for kind, whose in deferred])  # fmt: skip
            router.callers[cid] = caller
            router._waiting[queue] += 1
            if offered_to is None:
                heapq.heappush(router._group(*caller.group_key).heap, (-priority, joined, seq, cid))
        router._retiring = set(state["retiring"])
        router._timers = [(when, seq, kind, key, whose) for when, seq, kind, key, whose in state["timers"]]
        heapq.heapify(router._timers)
        router._seq = itertools.count(state["seq"])
        router._last_offer = {(q, a): when for q, a, when in state["last_offer"]}
        router._took_from = dict(state["took_from"])
        return router

    # ---- indexes --------------------------------------------------------------------------------

    def _index(self, agent: Agent) -> None:
        self._available[""][agent.id] = None
        for skill, level in agent.skills.items():
            self._available.setdefault(skill, {})[agent.id] = None
            self._by_level.setdefault((skill, level), {})[agent.id] = None

    def _unindex(self, agent: Agent) -> None:
        self._available[""].pop(agent.id, None)
        for skill, level in agent.skills.items():
            self._available.get(skill, {}).pop(agent.id, None)
            self._by_level.get((skill, level), {}).pop(agent.id, None)

    def _timer(self, when: float, kind: str, key: str, whose: str) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), kind, key, whose))


def agent_state(agent: Agent) -> dict[str, Any]:
    """An agent as JSON-able data (:func:`agent_from` reads it back)."""
    return {"id": agent.id, "skills": agent.skills, "name": agent.name, "contact": agent.contact,
            "state": agent.state.value, "reason": agent.reason, "since": agent.since,
            "seconds_in": {s.value: t for s, t in agent.seconds_in.items()},
            "misses_in_a_row": agent.misses_in_a_row, "calls": agent.calls}  # fmt: skip


def agent_from(state: dict[str, Any]) -> Agent:
    return Agent(state["id"], dict(state["skills"]), name=state["name"], contact=state["contact"],
                 state=AgentState(state["state"]), reason=state["reason"], since=state["since"],
                 seconds_in={AgentState(s): t for s, t in state["seconds_in"].items()},
                 misses_in_a_row=state["misses_in_a_row"], calls=state["calls"])  # fmt: skip


def _place(caller: _Caller) -> tuple[int, float, int]:
    return -caller.priority, caller.joined, caller.seq


def _whose(caller: _Caller) -> str:
    """What a caller's timer belongs to: this join of theirs (not an earlier one), in this queue."""
    return f"{caller.seq}:{caller.queue}"
