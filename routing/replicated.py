"""One router for several ivrd nodes, sans-IO: the router's inputs as one shared, ordered log.

Every node appends what happens to its callers and agents (a caller joins, an agent answers) to the log
as an :data:`Entry`; one node at a time, the one holding the lease, folds the log into a
:class:`~routing.matcher.Router` (a :class:`Replica`) and hands each decision to the node that holds the
caller. The router is deterministic, and each entry carries the time it was logged at, so any node that
folds the same log reaches the same state: a node taking the lease over restores the last
:meth:`Replica.export` and folds the entries after it. Timers are entries too (``tick``), logged by the
lease holder when the router's next deadline comes.

Nodes see the router's agents and queue sizes as the lease holder publishes them (:class:`NodeRouter`);
an entry that the state no longer allows when it is folded (an agent logged out twice, by two
supervisors on two nodes) changes nothing and is counted in :attr:`Replica.stale`.

A booked callback outlives the call that booked it, so it must outlive the node too: its node logs the
callback's card (who to call, their place, what the agent should know), and when that node dies the
node that buries it (the lease holder) adopts its callbacks, back in line at their places.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from flows.expressions import ExpressionError

from .agents import TABLE, Agent, AgentState, Happening, StateError
from .matcher import (
    Decision,
    Escalation,
    Left,
    Offer,
    QueueSpec,
    ReconfigureError,
    Requirement,
    Router,
    agent_from,
    agent_state,
)

Entry = dict[str, Any]  # {"op": ..., and its arguments}: JSON


@dataclass(frozen=True, slots=True)
class Addressed:
    """A decision, for the node that holds its caller."""

    node: str
    decision: Decision


@dataclass(frozen=True, slots=True)
class Published:
    """What a fold of entries produced: decisions by node, the agents that changed (None: removed), and
    how many callers each queue holds."""

    decisions: list[Addressed]
    agents: dict[str, dict[str, Any] | None]
    waiting: dict[str, int]
    positions: dict[str, int] | None = None  # every waiting caller's place in line, when asked for
    adopted: tuple[tuple[str, Entry], ...] = ()  # (node, card): callbacks a node takes over from a dead one


def spec_entry(queues: Iterable[QueueSpec]) -> Entry:
    """The entry that sets the queues (a node's configuration, at start and on reload)."""
    return {"op": "queues", "queues": [asdict(q) for q in queues]}


def specs_of(entry: Entry) -> list[QueueSpec]:
    return [QueueSpec(**{**q, "escalations": tuple(Escalation(**e) for e in q["escalations"])})
            for q in entry["queues"]]  # fmt: skip


class Replica:
    """The shared router, folded from the log by the lease holder."""

    def __init__(self, queues: Iterable[QueueSpec]) -> None:
        self.router = Router(queues)
        self.node_of: dict[str, str] = {}  # waiting caller -> the node holding their call
        self.busy_on: dict[str, str] = {}  # agent on a call -> the node bridging it
        self.cards: dict[str, Entry] = {}  # caller -> their booked callback's card, with the node keeping it
        self.handed: dict[str, str] = {}  # adopted callback -> the node buried with it (which may come back)
        self.gone: set[str] = set()  # nodes buried, until they say hello again
        self.stale = 0
        self._decisions: list[Addressed] = []
        self._adopted: list[tuple[str, Entry]] = []
        self._agents: dict[str, dict[str, Any] | None] = {}

    def apply(self, entry: Entry, now: float) -> None:
        """Fold one entry, logged at ``now``."""
        try:
            applied = self._apply(entry, now)
        except (KeyError, StateError, ExpressionError, ValueError, TypeError):
            applied = False
        if not applied:
            self.stale += 1
        self._collect()

    def take(self, *, positions: bool = False) -> Published:
        """What the entries folded since the last call produced (``positions``: with the callers' places,
        which the nodes announce; asked for now and then, as a line's order is costly to send)."""
        router = self.router
        published = Published(self._decisions, self._agents, {q: router.waiting(q) for q in router.queues},
                              router.positions() if positions else None, tuple(self._adopted))  # fmt: skip
        self._decisions, self._agents, self._adopted = [], {}, []
        return published

    def next_deadline(self) -> float | None:
        return self.router.next_deadline()

    def export(self) -> dict[str, Any]:
        return {"router": self.router.export(), "queues": spec_entry(self.router.queues.values()),
                "node_of": self.node_of, "busy_on": self.busy_on, "cards": self.cards, "handed": self.handed,
                "gone": sorted(self.gone)}  # fmt: skip

    @classmethod
    def restore(cls, state: Mapping[str, Any]) -> Replica:
        replica = cls(())
        replica.router = Router.restore(specs_of(state["queues"]), state["router"])
        replica.node_of, replica.busy_on = dict(state["node_of"]), dict(state["busy_on"])
        replica.cards, replica.handed = dict(state.get("cards", {})), dict(state.get("handed", {}))
        replica.gone = set(state.get("gone", ()))
        return replica

    def _apply(self, entry: Entry, now: float) -> bool:
        router, op = self.router, entry["op"]
        caller = router.callers.get(entry.get("caller", ""))
        agent = router.agents.get(entry.get("agent", ""))
        if op == "tick":
            router.on_timer(now)
        elif op == "join":
            if caller is not None or entry["queue"] not in router.queues or self._handed_from(entry):
                return False
            self.node_of[entry["caller"]] = entry["node"]
            router.join(entry["caller"], entry["queue"], now, priority=entry.get("priority", 0),
                        skills=entry.get("skills"), joined=entry.get("joined"))  # fmt: skip
        elif op in ("leave", "answered", "offer_failed"):
            if caller is None or (op != "leave" and caller.offered_to is None):
                return False
            if op == "leave":
                router.leave(caller.id, now)
            elif op == "answered":
                self.busy_on[caller.offered_to or ""] = self.node_of.get(caller.id, "")
                router.answered(caller.id, now)
            else:
                router.offer_failed(caller.id, now)
            if caller.id not in router.callers:
                self.node_of.pop(caller.id, None)
        elif op in ("available", "away", "ended"):
            happening = {"available": Happening.AVAILABLE, "away": Happening.AWAY, "ended": Happening.END}[op]
            if agent is None or (agent.state, happening) not in TABLE:
                return False
            if op == "available":
                router.agent_available(agent.id, now)
            elif op == "away":
                router.agent_away(agent.id, now, entry.get("reason") or "away")
            else:
                self.busy_on.pop(agent.id, None)
                router.call_ended(agent.id, now)
        elif op == "agent":
            self._define(entry, now)
        elif op == "remove_agent":
            if agent is None:
                return False
            router.remove_agent(agent.id)
            router.touched.add(agent.id)
        elif op == "queues":
            router.reconfigure(specs_of(entry), now)
        elif op == "callback":
            if self._handed_from(entry):
                return False
            self.cards[entry["caller"]] = entry["card"] | {"node": entry["node"]}
        elif op == "callback_over":
            card = self.cards.get(entry["caller"])
            if card is None or card["node"] != entry["node"]:
                return False
            del self.cards[entry["caller"]]
        elif op == "node_gone":
            self._node_gone(entry["node"], entry.get("heir"), now)
        elif op == "hello":  # a node (re)started or reconnected: it learns every agent from what this publishes
            router.touched.update(router.agents)
            self.gone.discard(entry.get("node", ""))  # cut off rather than dead: it may be buried again
        else:
            return False
        return True

    def _define(self, entry: Entry, now: float) -> None:
        """An agent as a node's configuration or API defines them: new ones added (logged in if the
        definition says so), known ones keep their state and take the new skills."""
        router, agent_id = self.router, entry["agent"]
        agent = router.agents.get(agent_id)
        if agent is None:
            router.add_agent(Agent(agent_id, dict(entry["skills"]), name=entry.get("name") or agent_id,
                                   contact=entry.get("contact", ""), since=now), now)  # fmt: skip
            if entry.get("logged_in"):
                router.agent_available(agent_id, now)
        else:
            agent.name, agent.contact = entry.get("name") or agent_id, entry.get("contact", "")
            if agent.skills != entry["skills"]:
                router.update_agent(agent_id, dict(entry["skills"]), now)
        router.touched.add(agent_id)

    def _node_gone(self, node: str, heir: str | None, now: float) -> None:
        """A node died: its callers died with it, but ``heir`` adopts its callbacks; the agents it bridged
        are free after their wrap-up."""
        router = self.router
        self.gone.add(node)
        for caller_id, card in list(self.cards.items()):
            if card["node"] == node and heir is not None:
                self._adopt(caller_id, card | {"node": heir, "from": node}, now)
        for caller_id in [c for c, n in self.node_of.items() if n == node]:
            self.node_of.pop(caller_id)
            if caller_id in router.callers:
                router.leave(caller_id, now)
        for agent_id in [a for a, n in self.busy_on.items() if n == node]:
            self.busy_on.pop(agent_id)
            agent = router.agents.get(agent_id)
            if agent is not None and agent.state is AgentState.BUSY:
                router.call_ended(agent_id, now)

    def _adopt(self, caller_id: str, card: Entry, now: float) -> None:
        """``card``'s callback, now its heir's, back in line at its place: a ringing offer (its agent's leg
        died with the node) is undone without counting a miss, and one between tries or talking (its legs
        died too) waits again."""
        router, heir = self.router, card["node"]
        self.cards[caller_id] = card
        self.handed[caller_id] = card["from"]
        self._adopted.append((heir, card))
        self.node_of[caller_id] = heir
        caller = router.callers.get(caller_id)
        if caller is not None and caller.offered_to is not None:
            router.offer_lost(caller_id, now)
        elif caller is None and card["queue"] in router.queues:  # a queue gone since: the heir gives it up
            router.join(caller_id, card["queue"], now, priority=card["priority"], skills=card["skills"],
                        joined=card["joined"])  # fmt: skip

    def _handed_from(self, entry: Entry) -> bool:
        """``entry`` is about a callback its node was buried with: another node has it now (the one that
        logged it was cut off, not dead, and does not know yet), so it changes nothing."""
        return bool(self.handed.get(entry["caller"]) == entry["node"])

    def _collect(self) -> None:
        router = self.router
        for decision in router.take_decisions():
            node = self.node_of.get(decision.caller, "")
            if isinstance(decision, Left):
                self.node_of.pop(decision.caller, None)
            self._decisions.append(Addressed(node, decision))
        for agent_id in router.touched:
            agent = router.agents.get(agent_id)
            self._agents[agent_id] = agent_state(agent) if agent is not None else None
        router.touched.clear()


class NodeRouter:
    """The routing backend of one node of several: what happens goes out as entries (:attr:`outbox`,
    ``on_entry`` hears of each), the decisions for this node's callers and the agents' states come back
    (:meth:`receive`). It checks what it can at once (an unknown agent, a state that does not allow the
    change, a skills expression that is not one) so that the API answers as with one node.

    The log keeps its own time (``skew``: the log's clock minus this node's), and while the log cannot
    be reached (``up`` False) a caller joining leaves at once with ``no_agents``: nobody could route them."""

    def __init__(self, node: str, queues: Iterable[QueueSpec]) -> None:
        self.node = node
        self.queues = {q.name: q for q in queues}
        self.agents: dict[str, Agent] = {}
        self.outbox: list[Entry] = []
        self.on_entry: Callable[[], None] = lambda: None
        self.skew = 0.0
        self.up = True
        self._decisions: list[Decision] = []
        self._adopted: list[Entry] = []
        self._disowned: list[str] = []
        self._waiting: dict[str, int] = dict.fromkeys(self.queues, 0)
        self._positions: dict[str, int] = {}
        self._requirements = {q.name: Requirement(q.skills) for q in self.queues.values()}

    def receive(self, published: Published) -> None:
        """What the lease holder published: this node's decisions are kept for :meth:`take_decisions`."""
        self._decisions.extend(a.decision for a in published.decisions if a.node == self.node)
        for node, card in published.adopted:
            if node == self.node:
                self._adopted.append(card | {"joined": card["joined"] - self.skew})
            elif card["from"] == self.node:
                self._disowned.append(card["caller"]["id"])
        for agent_id, state in published.agents.items():
            if state is None:
                self.agents.pop(agent_id, None)
            else:
                self.agents[agent_id] = agent = agent_from(state)
                agent.since -= self.skew
        self._waiting.update(published.waiting)
        if published.positions is not None:
            self._positions = published.positions

    def position(self, caller_id: str) -> int | None:
        """The caller's place in line as the lease holder last published it (None: not yet)."""
        return self._positions.get(caller_id)

    def went_down(self) -> None:
        """The log could not take the outbox: the callers whose joins it holds leave (``no_agents``) and
        their joins are dropped; the rest waits for the log to come back, in order."""
        self.up = False
        for entry in self.outbox:
            if entry["op"] == "join":
                self._decisions.append(Left(entry["caller"], entry["queue"], "no_agents"))
        self.outbox = [e for e in self.outbox if e["op"] != "join"]

    def _log(self, entry: Entry) -> None:
        self.outbox.append(entry)
        self.on_entry()

    # configuration
    def reconfigure(self, queues: Iterable[QueueSpec], now: float) -> None:
        fresh = {q.name: q for q in queues}
        self.check_reconfigure(fresh)
        self.queues = fresh
        self._requirements = {q.name: Requirement(q.skills) for q in fresh.values()}
        self._log(spec_entry(fresh.values()))

    def check_reconfigure(self, queue_names: Iterable[str]) -> None:
        names = set(queue_names)
        occupied = sorted(q for q, n in self._waiting.items() if n and q not in names)
        if occupied:
            raise ReconfigureError(f"queue {', '.join(occupied)} still has callers: remove it once it is empty")

    def add_agent(self, agent: Agent, now: float) -> None:
        self.agents[agent.id] = agent
        self.define(agent, logged_in=agent.state is AgentState.AVAILABLE)

    def define(self, agent: Agent, *, logged_in: bool) -> None:
        """Log ``agent``'s definition (its state a new agent starts in: ``logged_in``), leaving this node's
        view as it is: the lease holder keeps the state of an agent it knows."""
        self._log({"op": "agent", "agent": agent.id, "skills": agent.skills, "name": agent.name,
                   "contact": agent.contact, "logged_in": logged_in})  # fmt: skip

    def update_agent(self, agent_id: str, skills: dict[str, int], now: float) -> None:
        agent = self.agents[agent_id]
        agent.skills = dict(skills)
        self._log({"op": "agent", "agent": agent_id, "skills": agent.skills, "name": agent.name,
                   "contact": agent.contact})  # fmt: skip

    def hello(self) -> None:
        """This node (re)joins: the lease holder publishes every agent, which :meth:`receive` mirrors."""
        self._log({"op": "hello", "node": self.node})

    def remove_agent(self, agent_id: str) -> None:
        self.agents.pop(agent_id)
        self._log({"op": "remove_agent", "agent": agent_id})

    # agents
    def agent_available(self, agent_id: str, now: float) -> None:
        self._agent_entry(agent_id, Happening.AVAILABLE, now, {"op": "available", "agent": agent_id})

    def agent_away(self, agent_id: str, now: float, reason: str) -> None:
        self._agent_entry(agent_id, Happening.AWAY, now, {"op": "away", "agent": agent_id, "reason": reason},
                          reason=reason)  # fmt: skip

    def call_ended(self, agent_id: str, now: float) -> None:
        # not checked here: the answer that made the agent busy may not be folded yet
        self._log({"op": "ended", "agent": agent_id})

    def _agent_entry(self, agent_id: str, happening: Happening, now: float, entry: Entry, *,
                     reason: str = "") -> None:  # fmt: skip
        """Change the local view at once (the API shows it), and log the change for the lease holder."""
        self.agents[agent_id].apply(happening, now, reason=reason)
        self._log(entry)

    # callers
    def join(self, caller_id: str, queue_name: str, now: float, *, priority: int = 0, skills: str | None = None,
             joined: float | None = None) -> None:  # fmt: skip
        if skills is not None:
            Requirement(skills)  # raises ExpressionError here, as the router would
        if not self.up:
            self._decisions.append(Left(caller_id, queue_name, "no_agents"))
            return
        self._log({"op": "join", "node": self.node, "caller": caller_id, "queue": queue_name, "priority": priority,
                   "skills": skills, "joined": None if joined is None else joined + self.skew})  # fmt: skip

    def leave(self, caller_id: str, now: float) -> None:
        self._log({"op": "leave", "caller": caller_id})

    def answered(self, caller_id: str, now: float) -> None:
        self._log({"op": "answered", "caller": caller_id})

    def offer_failed(self, caller_id: str, now: float) -> None:
        self._log({"op": "offer_failed", "caller": caller_id})

    # callbacks: their cards, kept where any node can adopt them
    def callback(self, caller_id: str, card: Entry) -> None:
        """Keep (or update) a booked callback's card: JSON, its ``joined`` in this node's clock."""
        self._log({"op": "callback", "node": self.node, "caller": caller_id,
                   "card": card | {"joined": card["joined"] + self.skew}})  # fmt: skip

    def callback_over(self, caller_id: str) -> None:
        self._log({"op": "callback_over", "node": self.node, "caller": caller_id})

    def take_handovers(self) -> tuple[list[Entry], list[str]]:
        """Since the last call: the cards of the callbacks this node adopted from a dead one, and the
        callers whose callbacks this node was buried with (it was cut off) and another adopted."""
        adopted, disowned, self._adopted, self._disowned = self._adopted, self._disowned, [], []
        return adopted, disowned

    # time and decisions: the lease holder keeps the time
    def on_timer(self, now: float) -> None:
        pass

    def next_deadline(self) -> float | None:
        return None

    def take_decisions(self) -> list[Decision]:
        decisions, self._decisions = self._decisions, []
        return decisions

    def requirement(self, queue_name: str) -> Requirement:
        return self._requirements[queue_name]

    def waiting(self, queue_name: str) -> int:
        return self._waiting.get(queue_name, 0)


def published_to_json(published: Published) -> dict[str, Any]:
    """What a fold produced, as JSON-able data for the nodes (:func:`published_from_json` reads it)."""
    decisions = [["offer", a.node, d.caller, d.agent, d.queue] if isinstance(d := a.decision, Offer)
                 else ["left", a.node, d.caller, d.queue, d.reason] for a in published.decisions]  # fmt: skip
    data: dict[str, Any] = {"decisions": decisions, "agents": published.agents, "waiting": published.waiting}
    if published.adopted:
        data["adopted"] = [list(a) for a in published.adopted]
    return data if published.positions is None else data | {"positions": published.positions}


def published_from_json(data: Mapping[str, Any]) -> Published:
    # offer: agent, queue; left: queue, reason
    decisions = [Addressed(node, Offer(caller, first, second) if kind == "offer" else Left(caller, first, second))
                 for kind, node, caller, first, second in data["decisions"]]  # fmt: skip
    positions = data.get("positions")
    adopted = tuple((node, dict(card)) for node, card in data.get("adopted", ()))
    return Published(decisions, dict(data["agents"]), dict(data["waiting"]),
                     dict(positions) if positions is not None else None, adopted)  # fmt: skip
