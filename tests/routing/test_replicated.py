"""One router for several nodes, on a fake log: the lease holder's :class:`Replica` folds the entries the
nodes' :class:`NodeRouter` write, and hands each decision to the node holding the caller."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.agents import Agent, AgentState
from routing.matcher import Escalation, Left, Offer, QueueSpec, Router
from routing.replicated import NodeRouter, Replica, published_from_json, published_to_json, spec_entry

QUEUES = [
    QueueSpec("sales", skills="sales >= 1", wrap_up=5, max_wait=300, max_misses=2,
              escalations=(Escalation(30, skills="True"), Escalation(200, overflow="help"))),
    QueueSpec("help", strategy="fewest_calls", join_empty=True, leave_when_empty=True, max_waiting=12),
]  # fmt: skip
SKILLS = [{"sales": 3}, {"sales": 1, "help": 2}, {}, {"help": 5}]


class Cluster:
    """The log, the lease holder folding it, and the nodes reading what it publishes; time is the log's."""

    def __init__(self, *nodes: str) -> None:
        self.nodes = {n: NodeRouter(n, QUEUES) for n in nodes}
        self.replica = Replica(QUEUES)
        self.log: list[tuple[float, dict]] = []
        self.now = 0.0
        self.offers: list[tuple[str, Offer]] = []  # (node, offer) in the order the nodes got them
        self.left: list[tuple[str, Left]] = []

    def pump(self, until: float | None = None) -> None:
        """Every node's entries into the log, folded; timers up to ``until`` as ticks."""
        for node in self.nodes.values():
            while node.outbox:
                self.fold(node.outbox.pop(0))
        if until is not None:
            while (deadline := self.replica.next_deadline()) is not None and deadline <= until:
                self.now = max(self.now, deadline)
                self.fold({"op": "tick"})
            self.now = max(self.now, until)

    def fold(self, entry: dict) -> None:
        entry = json.loads(json.dumps(entry))  # through the wire
        self.log.append((self.now, entry))
        self.replica.apply(entry, self.now)
        published = self.replica.take()
        for name, node in self.nodes.items():
            node.receive(published)
            for decision in node.take_decisions():
                (self.offers if isinstance(decision, Offer) else self.left).append((name, decision))

    def agent(self, node: str, agent_id: str, **skills: int) -> None:
        self.nodes[node].add_agent(Agent(agent_id, dict(skills), state=AgentState.AVAILABLE), self.now)
        self.pump()


def test_callers_on_two_nodes_are_offered_in_the_order_they_joined():
    cluster = Cluster("a", "b")
    for n in range(10):
        cluster.now = float(n)
        cluster.nodes["ab"[n % 2]].join(f"c{n}", "help", cluster.now)
        cluster.pump()
    cluster.agent("b", "x", help=1)
    served = []
    for _ in range(10):
        node, offer = cluster.offers[-1]
        served.append((node, offer.caller))
        cluster.nodes[node].answered(offer.caller, cluster.now)
        cluster.nodes[node].call_ended("x", cluster.now)
        cluster.pump(cluster.now + 10)  # the help queue's wrap-up
    assert served == [("ab"[n % 2], f"c{n}") for n in range(10)]


def test_one_agent_is_never_offered_two_callers_and_a_miss_keeps_the_callers_place():
    cluster = Cluster("a", "b")
    cluster.agent("a", "x", sales=1)
    cluster.nodes["a"].join("first", "sales", 0.0)
    cluster.now = 1.0
    cluster.nodes["b"].join("second", "sales", 1.0)
    cluster.pump()
    assert [(n, o.caller) for n, o in cluster.offers] == [("a", "first")]
    cluster.nodes["a"].offer_failed("first", 2.0)
    cluster.agent("b", "y", sales=1)
    # x missed and takes the next caller; first, back at the head of the line, goes to the next agent
    assert [(o.caller, o.agent) for _, o in cluster.offers] == [("first", "x"), ("second", "x"), ("first", "y")]
    assert cluster.nodes["b"].agents["x"].state is AgentState.OFFERED  # every node sees the agents


def test_a_dead_nodes_callers_leave_and_its_agents_are_free_after_wrap_up():
    cluster = Cluster("a", "b")
    cluster.agent("a", "x", sales=1)
    cluster.nodes["a"].join("talking", "sales", 0.0)
    cluster.pump()
    cluster.nodes["a"].answered("talking", 0.0)
    cluster.nodes["a"].join("waiting-on-a", "sales", 1.0)
    cluster.nodes["b"].join("waiting-on-b", "sales", 2.0)
    cluster.pump()
    cluster.now = 3.0
    cluster.replica.apply({"op": "node_gone", "node": "a"}, cluster.now)
    cluster.replica.take()
    assert set(cluster.replica.router.callers) == {"waiting-on-b"}
    assert cluster.replica.router.agents["x"].state is AgentState.WRAP_UP
    cluster.pump(until=3.0 + 5)
    assert cluster.offers[-1] == ("b", Offer("waiting-on-b", "x", "sales"))


def card(joined: float, attempts: int = 0) -> dict:
    return {"queue": "sales", "priority": 0, "skills": None, "joined": joined, "number": "+15550123",
            "attempts": attempts, "caller": {"id": "booked"}, "context": {"path": ["menu"]}}  # fmt: skip


def booked_while_x_is_busy() -> Cluster:
    """x talks to b's caller; a holds a callback booked at 1.0; b's "later" joined at 2.0."""
    cluster = Cluster("a", "b")
    cluster.agent("b", "x", sales=1)
    cluster.nodes["b"].join("talker", "sales", 0.0)
    cluster.pump()
    cluster.nodes["b"].answered("talker", 0.0)
    cluster.nodes["a"].join("booked", "sales", 1.0)
    cluster.nodes["a"].callback("booked", card(1.0))
    cluster.nodes["b"].join("later", "sales", 2.0)
    cluster.now = 3.0
    cluster.nodes["b"].call_ended("x", 3.0)
    cluster.pump(until=3.0 + 5)  # sales's wrap-up: x is offered the callback, first in line, on a
    assert cluster.offers[-1] == ("a", Offer("booked", "x", "sales"))
    return cluster


def test_a_dead_nodes_callback_ringing_an_agent_is_adopted_at_its_place_and_offered_again():
    cluster = booked_while_x_is_busy()
    cluster.fold({"op": "node_gone", "node": "a", "heir": "b"})
    (adopted,), _ = cluster.nodes["b"].take_handovers()
    assert adopted["caller"] == {"id": "booked"} and adopted["joined"] == 1.0 and adopted["node"] == "b"
    assert cluster.nodes["a"].take_handovers() == ([], ["booked"])  # were a alive, it would hear it lost it
    # the offer rang from a: undone, no miss; the callback is first in line still, now on b
    assert cluster.offers[-1] == ("b", Offer("booked", "x", "sales"))
    assert cluster.replica.router.agents["x"].misses_in_a_row == 0
    assert set(cluster.replica.router.callers) == {"booked", "later"}


def test_a_dead_nodes_callback_between_tries_is_back_in_line_at_its_first_place():
    cluster = booked_while_x_is_busy()
    cluster.nodes["a"].answered("booked", cluster.now)  # the agent answered; a dials the caller…
    cluster.nodes["a"].callback("booked", card(1.0, attempts=1))
    cluster.pump()
    assert "booked" not in cluster.replica.router.callers
    cluster.fold({"op": "node_gone", "node": "a", "heir": "b"})  # …and dies: both legs with it
    assert cluster.replica.router.callers["booked"].joined == 1.0  # ahead of "later"
    assert cluster.nodes["b"].take_handovers()[0][0]["attempts"] == 1
    cluster.pump(until=cluster.now + 5)  # x's wrap-up after the call a bridged
    assert cluster.offers[-1] == ("b", Offer("booked", "x", "sales"))


def test_a_node_buried_while_cut_off_loses_its_callbacks_but_not_its_callers():
    cluster = booked_while_x_is_busy()
    cluster.fold({"op": "node_gone", "node": "a", "heir": "b"})
    stale = cluster.replica.stale
    a = cluster.nodes["a"]
    a.hello()  # a was cut off, not dead: it reconnects and says again what it holds
    a.join("booked", "sales", cluster.now, joined=1.0)
    a.callback("booked", card(1.0))
    a.join("still-on-a", "sales", cluster.now)
    cluster.pump()
    assert cluster.replica.stale == stale + 2  # the callback is b's now; a's caller is back in line
    assert cluster.replica.cards["booked"]["node"] == "b" and cluster.replica.node_of["still-on-a"] == "a"
    b = cluster.nodes["b"]
    b.answered("booked", cluster.now)
    b.callback_over("booked")  # b called back; a, had it not heard, could not make it again
    a.join("booked", "sales", cluster.now, joined=1.0)
    cluster.pump()
    assert cluster.replica.cards == {} and "booked" not in cluster.replica.router.callers
    assert "a" not in cluster.replica.gone  # a may be buried again if it dies later
    restored = Replica.restore(json.loads(json.dumps(cluster.replica.export())))
    assert restored.handed == {"booked": "a"}


def test_an_entry_the_state_no_longer_allows_changes_nothing():
    cluster = Cluster("a", "b")
    cluster.nodes["a"].add_agent(Agent("x", {"sales": 1}), 0.0)  # logged out
    cluster.pump()
    cluster.nodes["a"].agent_available("x", 1.0)
    cluster.nodes["b"].agent_available("x", 1.0)  # b has not heard of a's yet: its own is stale
    cluster.replica.apply({"op": "answered", "caller": "nobody"}, 1.0)
    cluster.pump()
    assert cluster.replica.stale == 2
    assert cluster.nodes["b"].agents["x"].state is AgentState.AVAILABLE


# ---- the same state whoever folds it, from wherever it starts ---------------------------------------------

ACTIONS = st.lists(st.tuples(st.sampled_from(["join", "leave", "answer", "miss", "end", "away", "back", "wait",
                                               "define", "reconfigure"]),
                             st.integers(0, 7), st.floats(0, 60)), max_size=80)  # fmt: skip


def drive(router: Router, actions: list, start: float = 0.0) -> tuple[list, float]:
    """Valid router inputs made from ``actions``; every decision, in order."""
    now, decisions = start, []
    for kind, n, dt in actions:
        now += dt
        router.on_timer(now)
        caller, agent_id = f"c{n}", f"a{n % 4}"
        agent = router.agents.get(agent_id)
        offered = [c for c in router.callers.values() if c.offered_to is not None]
        if kind == "join" and caller not in router.callers:
            router.join(caller, "sales" if n % 3 else "help", now, priority=n % 2)
        elif kind == "leave" and caller in router.callers:
            router.leave(caller, now)
        elif kind in ("answer", "miss") and offered:
            pick = offered[n % len(offered)].id
            (router.answered if kind == "answer" else router.offer_failed)(pick, now)
        elif kind == "end" and agent is not None and agent.state is AgentState.BUSY:
            router.call_ended(agent_id, now)
        elif kind == "away" and agent is not None and agent.state in (AgentState.AVAILABLE, AgentState.WRAP_UP):
            router.agent_away(agent_id, now, "break")
        elif kind == "back" and agent is not None and agent.state in (AgentState.AWAY, AgentState.WRAP_UP):
            router.agent_available(agent_id, now)
        elif kind == "define" and agent is None:
            router.add_agent(Agent(agent_id, dict(SKILLS[n % 4]), since=now), now)
        elif kind == "reconfigure":
            router.reconfigure(QUEUES, now)
        decisions.extend(router.take_decisions())
    return decisions, now


@settings(max_examples=300, deadline=None)
@given(ACTIONS, ACTIONS)
def test_a_router_restored_from_its_export_decides_as_the_original_would(before, after):
    original = Router(QUEUES)
    _, now = drive(original, before)
    exported = original.export()
    restored = Router.restore(QUEUES, json.loads(json.dumps(exported)))
    assert original.export() == exported  # looking changed nothing
    assert drive(restored, after, now) == drive(original, after, now)
    assert restored.export() == original.export()


@settings(max_examples=100, deadline=None)
@given(ACTIONS, st.integers(0, 80))
def test_a_lease_holder_taking_over_from_an_export_reaches_the_same_state(actions, cut):
    """A new lease holder restores the last export and folds the rest of the log: the same state, the
    same decisions as the node that folded it all."""
    cluster = Cluster("a", "b")
    cluster.nodes["a"].reconfigure(QUEUES, 0.0)
    for n in range(4):
        cluster.agent("ab"[n % 2], f"a{n}", **SKILLS[n])
    for kind, n, dt in actions:
        node = cluster.nodes["ab"[n % 2]]
        caller, agent_id = f"c{n}", f"a{n % 4}"
        if kind == "join":
            node.join(caller, "sales" if n % 3 else "help", cluster.now)
        elif kind == "leave":
            node.leave(caller, cluster.now)
        elif kind == "answer":
            node.answered(caller, cluster.now)
        elif kind == "miss":
            node.offer_failed(caller, cluster.now)
        elif kind in ("end", "away", "back"):
            node.outbox.append({"op": {"end": "ended", "away": "away", "back": "available"}[kind], "agent": agent_id})
        cluster.pump(cluster.now + dt)
    log = cluster.log
    cut = min(cut, len(log))
    first = Replica(QUEUES)
    for when, entry in log[:cut]:
        first.apply(entry, when)
    first.take()
    taker = Replica.restore(json.loads(json.dumps(first.export())))
    for when, entry in log[cut:]:
        taker.apply(entry, when)
    taker.take()
    assert taker.export() == cluster.replica.export()
    assert taker.stale + first.stale == cluster.replica.stale


def test_queue_settings_travel_in_the_log():
    entry = json.loads(json.dumps(spec_entry(QUEUES)))
    replica = Replica(())
    replica.apply(entry, 0.0)
    assert list(replica.router.queues.values()) == QUEUES


def test_while_the_log_is_away_joins_leave_at_once_and_the_rest_waits_in_order():
    node = NodeRouter("a", QUEUES)
    woken: list[int] = []
    node.on_entry = lambda: woken.append(len(node.outbox))
    node.join("c1", "help", 0.0)
    node.leave("c0", 0.0)
    node.went_down()  # the outbox could not be written: c1's join is dropped, c1 leaves
    assert node.take_decisions() == [Left("c1", "help", "no_agents")]
    assert node.outbox == [{"op": "leave", "caller": "c0"}] and woken == [1, 2]
    node.join("c2", "help", 1.0)  # still away
    assert node.take_decisions() == [Left("c2", "help", "no_agents")] and len(node.outbox) == 1
    node.up = True
    node.join("c3", "help", 2.0)
    assert [e["op"] for e in node.outbox] == ["leave", "join"] and node.take_decisions() == []


def test_times_cross_between_the_logs_clock_and_the_nodes():
    cluster = Cluster("a")
    node = cluster.nodes["a"]
    node.skew = 1000.0  # the log's clock runs 1000 s ahead of this node's
    node.join("c1", "help", 5.0, joined=3.0)
    assert node.outbox[-1]["joined"] == 1003.0
    cluster.now = 1010.0
    cluster.agent("a", "x", help=1)
    assert node.agents["x"].since == 10.0  # back on the node's clock


def test_callers_learn_their_place_across_nodes_by_priority_then_time():
    cluster = Cluster("a", "b")
    for n, (node, priority) in enumerate([("a", 0), ("b", 0), ("a", 5), ("b", 0)]):
        cluster.now = float(n)
        cluster.nodes[node].join(f"c{n}", "help", cluster.now, priority=priority)
        cluster.pump()
    router = cluster.replica.router
    assert router.positions() == {"c2": 1, "c0": 2, "c1": 3, "c3": 4}
    assert {c: router.position(c) for c in router.callers} == router.positions()
    assert cluster.nodes["a"].position("c0") is None  # not published yet: the node counts its own
    published = cluster.replica.take(positions=True)
    for node in cluster.nodes.values():
        node.receive(json_round_trip(published))
    assert cluster.nodes["b"].position("c1") == 3 and cluster.nodes["a"].position("c2") == 1


def json_round_trip(published):
    return published_from_json(json.loads(json.dumps(published_to_json(published))))


def test_a_node_saying_again_what_it_holds_restores_a_lost_log_and_changes_nothing_in_a_kept_one():
    cluster = Cluster("a")
    node = cluster.nodes["a"]
    cluster.agent("a", "x", sales=3)
    node.agent_away("x", cluster.now, "lunch")
    cluster.now = 5.0
    node.join("c1", "help", 5.0)
    cluster.pump()
    kept = cluster.replica.export()

    def say_again() -> None:
        node.define(Agent("x", {"sales": 3}), logged_in=True)
        node.join("c1", "help", 9.0, joined=5.0)
        cluster.pump()

    say_again()  # the log kept everything: the definition is the same, the join stale; nothing changes
    assert cluster.replica.export() == kept and cluster.replica.stale == 1
    cluster.replica = Replica(QUEUES)  # Redis restarted without persistence: the state is gone
    say_again()
    router = cluster.replica.router
    assert router.callers["c1"].joined == 5.0  # in line again, at their own time
    assert router.callers["c1"].offered_to == "x"  # and x, defined again logged in, is offered them
    assert cluster.offers[-1] == ("a", Offer("c1", "x", "help"))
