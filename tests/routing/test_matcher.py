"""The router and the agent state machine on a fake clock."""

from __future__ import annotations

import itertools

import pytest

from flows.expressions import ExpressionError
from routing.agents import TABLE, Agent, AgentState, Happening, StateError
from routing.matcher import Escalation, Left, Offer, QueueSpec, ReconfigureError, Router


def ready(router: Router, now: float, agent_id: str, **skills: int) -> Agent:
    agent = Agent(agent_id, dict(skills))
    router.add_agent(agent, now)
    router.agent_available(agent_id, now)
    return agent


def test_every_state_and_happening_follows_the_table():
    for state, happening in itertools.product(AgentState, Happening):
        agent = Agent("a", {}, state=state)
        target = TABLE.get((state, happening))
        if target is None:
            with pytest.raises(StateError):
                agent.apply(happening, 1.0)
            assert agent.state is state
        else:
            assert agent.apply(happening, 1.0) is target


def test_time_in_each_state_is_kept():
    agent = Agent("a", {}, since=0.0)
    agent.apply(Happening.AVAILABLE, 10.0)
    agent.apply(Happening.OFFER, 15.0)
    agent.apply(Happening.ANSWER, 20.0)
    assert agent.time_in_state(50.0) == {"available": 5.0, "offered": 5.0, "busy": 30.0, "wrap_up": 0.0,
                                         "away": 10.0}  # fmt: skip
    assert agent.calls == 1


def test_the_longest_idle_agent_with_the_skills_gets_the_call():
    router = Router([QueueSpec("billing", skills="billing >= 3 and spanish")])
    ready(router, 1, "x", billing=5)
    ready(router, 2, "y", billing=3, spanish=1)
    ready(router, 3, "z", billing=2, spanish=5)
    ready(router, 4, "w", billing=4, spanish=2)
    router.join("c1", "billing", 10)
    router.join("c2", "billing", 11)
    assert router.take_decisions() == [Offer("c1", "y", "billing"), Offer("c2", "w", "billing")]


def test_most_skilled_first_then_longest_idle():
    router = Router([QueueSpec("tech", skills="tech >= 1", strategy="most_skilled")])
    ready(router, 1, "junior", tech=2)
    ready(router, 2, "senior", tech=5)
    ready(router, 3, "senior2", tech=5)
    for n in range(3):
        router.join(f"c{n}", "tech", 10 + n)
    assert [d.agent for d in router.take_decisions()] == ["senior", "senior2", "junior"]


def test_fewest_calls_before_longest_idle():
    router = Router([QueueSpec("q", strategy="fewest_calls")])
    busy = ready(router, 1, "busy")
    busy.calls = 9
    ready(router, 2, "fresh")
    router.join("c1", "q", 5)
    assert router.take_decisions() == [Offer("c1", "fresh", "q")]


def test_priority_then_waiting_time_when_an_agent_frees_up():
    router = Router([QueueSpec("q", join_empty=True)])
    router.join("early", "q", 1)
    router.join("vip", "q", 2, priority=5)
    router.join("late", "q", 3)
    assert router.take_decisions() == []
    for n in range(3):
        ready(router, 10 + n, f"a{n}")
    assert [d.caller for d in router.take_decisions()] == ["vip", "early", "late"]


def test_escalation_relaxes_the_skills_and_overflow_keeps_the_place():
    queues = [QueueSpec("expert", skills="billing >= 4", join_empty=True,
                        escalations=(Escalation(30, skills="billing >= 1"), Escalation(60, overflow="general"))),
              QueueSpec("general", join_empty=True)]  # fmt: skip
    router = Router(queues)
    router.join("patient", "expert", 0)
    router.join("other", "general", 10)
    novice = Agent("novice", {"sales": 3})
    router.add_agent(novice, 0)
    assert router.next_deadline() == 30
    router.on_timer(30)
    assert router.take_decisions() == []  # billing >= 1 still not met by a sales agent
    router.on_timer(60)  # overflow to general, where "other" (joined at 10) waits behind "patient" (0)
    router.agent_available("novice", 61)
    assert router.take_decisions() == [Offer("patient", "novice", "general")]
    assert router.waiting("general") == 2 and router.waiting("expert") == 0


def test_a_missed_offer_puts_the_caller_first_again_and_misses_send_the_agent_away():
    router = Router([QueueSpec("q", max_misses=2)])
    ready(router, 1, "sleepy")
    ready(router, 2, "awake")
    router.join("c1", "q", 5)
    assert router.take_decisions() == [Offer("c1", "sleepy", "q")]
    router.offer_failed("c1", 25)
    assert router.take_decisions() == [Offer("c1", "awake", "q")]  # not the agent who just missed
    router.offer_failed("c1", 45)
    assert router.take_decisions() == [Offer("c1", "sleepy", "q")]
    router.offer_failed("c1", 65)  # sleepy's second miss in a row
    sleepy = router.agents["sleepy"]
    assert (sleepy.state, sleepy.reason) == (AgentState.AWAY, "missed 2 calls in a row")
    assert router.take_decisions() == [Offer("c1", "awake", "q")]


def test_a_caller_who_hangs_up_while_offered_frees_the_agent_without_a_miss():
    router = Router([QueueSpec("q", join_empty=True)])
    agent = ready(router, 1, "a")
    router.join("c1", "q", 2)
    router.join("c2", "q", 3)
    router.take_decisions()
    router.leave("c1", 4)
    assert router.take_decisions() == [Offer("c2", "a", "q")]
    assert agent.misses_in_a_row == 0


def test_wrap_up_then_the_next_caller():
    router = Router([QueueSpec("q", wrap_up=15, join_empty=True)])
    agent = ready(router, 0, "a")
    router.join("c1", "q", 1)
    router.join("c2", "q", 2)
    router.answered("c1", 5)
    router.call_ended("a", 65)
    assert agent.state is AgentState.WRAP_UP and router.next_deadline() == 80
    router.on_timer(79)
    assert router.take_decisions() == [Offer("c1", "a", "q")]
    router.on_timer(80)
    assert router.take_decisions() == [Offer("c2", "a", "q")]
    assert agent.time_in_state(80)["wrap_up"] == 15.0


def test_max_wait_full_queues_and_nobody_logged_in():
    router = Router([QueueSpec("q", max_wait=120, max_waiting=1, join_empty=True), QueueSpec("empty")])
    router.join("c1", "q", 0)
    router.join("c2", "q", 1)
    router.join("c3", "empty", 2)
    router.on_timer(120)
    assert router.take_decisions() == [Left("c2", "q", "full"), Left("c3", "empty", "no_agents"),
                                       Left("c1", "q", "max_wait")]  # fmt: skip
    assert router.waiting("q") == 0


def test_a_callers_own_skills_pick_the_agent_then_escalation_relaxes_them():
    relax = (Escalation(30, skills="billing"),)
    router = Router([QueueSpec("q", skills="billing", join_empty=True, escalations=relax)])
    router.add_agent(Agent("basic", {"billing": 1}, state=AgentState.AVAILABLE), 0)
    router.join("vip", "q", 1, skills="billing >= 4")
    assert router.take_decisions() == []  # the only agent free is not skilled enough for this caller
    router.join("plain", "q", 2)
    assert router.take_decisions() == [Offer("plain", "basic", "q")]
    router.answered("plain", 3)
    router.call_ended("basic", 10)
    router.on_timer(25)  # wrapped up (10 s): free again, still not for the VIP
    assert router.take_decisions() == []
    router.on_timer(31)  # the VIP's first escalation step: the queue's own "billing"
    assert router.take_decisions() == [Offer("vip", "basic", "q")]


def test_a_bad_skills_expression_from_a_flow_is_refused_at_join():
    router = Router([QueueSpec("q", join_empty=True)])
    with pytest.raises(ExpressionError):
        router.join("c", "q", 0, skills="billing >=")
    assert router.waiting("q") == 0


def test_a_reconfiguration_keeps_every_callers_place_and_can_relax_a_queue_at_once():
    router = Router([QueueSpec("q", skills="billing >= 4", join_empty=True, max_wait=600)])
    novice = ready(router, 0, "novice", billing=2)
    router.join("first", "q", 10, priority=0)
    router.join("vip", "q", 20, priority=5)
    router.join("last", "q", 30)
    assert router.take_decisions() == [] and router.waiting("q") == 3
    # the queue now takes billing >= 2, waits at most 100 s, and relaxes after 50 s: the VIP goes first,
    # and the timers count from when each caller joined
    router.reconfigure([QueueSpec("q", skills="billing >= 2", join_empty=True, max_wait=100,
                                  escalations=(Escalation(50, skills="True"),))], 40)  # fmt: skip
    assert router.take_decisions() == [Offer("vip", "novice", "q")]
    assert router.waiting("q") == 3 and router.next_deadline() == 60  # "first" relaxes at 10 + 50
    router.on_timer(110)  # "first" has waited 100 s
    assert router.take_decisions() == [Left("first", "q", "max_wait")]
    router.offer_failed("vip", 111)  # missed: the VIP is first in line again, for any agent but this one
    assert router.take_decisions() == [Offer("last", "novice", "q")]
    assert router.waiting("q") == 2 and novice.state is AgentState.OFFERED


def test_a_queue_with_callers_cannot_go_and_agents_are_changed_in_place():
    router = Router([QueueSpec("a", join_empty=True), QueueSpec("b")])
    router.join("c", "a", 0)
    with pytest.raises(ReconfigureError, match="queue a still has callers"):
        router.reconfigure([QueueSpec("b")], 1)
    assert set(router.queues) == {"a", "b"} and router.waiting("a") == 1  # nothing changed
    ready(router, 2, "busy", sales=1)
    assert router.take_decisions() == [Offer("c", "busy", "a")]
    router.answered("c", 3)
    router.remove_agent("busy")  # on a call: goes when it is over
    assert "busy" in router.agents
    router.call_ended("busy", 10)
    assert "busy" not in router.agents
    idle = ready(router, 11, "idle", sales=1)
    router.join("d", "b", 12)
    router.join("e", "a", 12)
    assert router.take_decisions() == [Offer("d", "idle", "b")]
    router.answered("d", 13)
    router.update_agent("idle", {"support": 4}, 14)
    assert idle.skills == {"support": 4} and idle.state is AgentState.BUSY
    router.remove_agent("idle")
    router.call_ended("idle", 20)
    assert router.agents == {}


def test_callers_leave_a_leave_when_empty_queue_when_its_last_agent_logs_out():
    router = Router([QueueSpec("strict", skills="sales >= 1", join_empty=True, leave_when_empty=True, max_misses=2),
                     QueueSpec("patient", skills="sales >= 1", join_empty=True)])  # fmt: skip
    seller = ready(router, 0, "seller", sales=2)
    ready(router, 0, "helper", support=3)
    router.join("ringing", "strict", 1)
    assert router.take_decisions() == [Offer("ringing", "seller", "strict")]
    router.join("a", "strict", 2)
    router.join("b", "patient", 3)
    router.agent_away("helper", 4, "lunch")  # not a seller: nobody leaves
    assert router.take_decisions() == [] and router.waiting("strict") == 2
    router.offer_failed("ringing", 5)  # the seller misses once, and is offered the next in line
    assert router.take_decisions() == [Offer("a", "seller", "strict")]
    router.offer_failed("a", 6)  # a second miss sets the last seller away: "strict" empties, "patient" waits on
    assert sorted(router.take_decisions(), key=lambda d: d.caller) == [Left("a", "strict", "no_agents"),
                                                                      Left("ringing", "strict", "no_agents")]
    assert router.waiting("strict") == 0 and router.waiting("patient") == 1 and seller.state is AgentState.AWAY
    router.agent_available("seller", 7)
    assert router.take_decisions() == [Offer("b", "seller", "patient")]
    router.join("c", "strict", 8)
    router.offer_failed("b", 9)  # misses in a row count until an answer: away again, and "c" leaves
    assert router.take_decisions() == [Left("c", "strict", "no_agents")]


def test_an_escalation_step_can_send_the_caller_back_to_their_flow():
    steps = (Escalation(30, skills="True"), Escalation(120, leave=True))
    router = Router([QueueSpec("q", join_empty=True, escalations=steps)])
    router.join("c", "q", 0)
    router.on_timer(30)
    assert router.take_decisions() == [] and router.waiting("q") == 1
    router.on_timer(120)
    assert router.take_decisions() == [Left("c", "q", "escalated")] and router.waiting("q") == 0


def test_what_comes_due_while_an_agents_phone_rings_applies_when_the_offer_fails():
    router = Router([QueueSpec("q", join_empty=True, max_wait=100, escalations=(Escalation(30, leave=True),))])
    ready(router, 0, "a")
    router.join("c", "q", 10)
    assert router.take_decisions() == [Offer("c", "a", "q")]
    router.on_timer(45)  # the step is due, but the phone rings: the answer would take the call
    assert router.take_decisions() == [] and router.waiting("q") == 1
    router.offer_failed("c", 46)  # no answer: the caller is past the step, so out of the line at once
    assert router.take_decisions() == [Left("c", "q", "escalated")] and router.waiting("q") == 0


def test_an_overflow_takes_the_next_queues_steps_counted_from_when_the_caller_first_joined():
    a_steps = (Escalation(10, overflow="b"), Escalation(20, skills="x"))
    b_steps = (Escalation(40, leave=True),)
    router = Router([QueueSpec("a", join_empty=True, escalations=a_steps),
                     QueueSpec("b", join_empty=True, max_wait=60, escalations=b_steps)])  # fmt: skip
    router.join("c", "a", 100)
    router.on_timer(110)
    assert router.waiting("a") == 0 and router.waiting("b") == 1
    router.on_timer(120)  # queue a's second step no longer concerns the caller
    router.on_timer(139)
    assert router.take_decisions() == []
    router.on_timer(140)  # b's step, 40 s after the caller joined a
    assert router.take_decisions() == [Left("c", "b", "escalated")]


def test_a_caller_who_comes_back_takes_the_place_they_had():
    router = Router([QueueSpec("q", join_empty=True, max_wait=600)])
    router.join("early", "q", 10)
    router.join("later", "q", 20)
    router.leave("early", 30)  # gone to be called back, say; back later with the time they joined
    router.join("early", "q", 40, joined=10)
    agent = ready(router, 50, "a")
    assert router.take_decisions() == [Offer("early", "a", "q")] and agent.state is AgentState.OFFERED
    router.answered("early", 60)
    router.join("early", "q", 70)  # a new join: the timers of the earlier ones are not this caller's
    router.on_timer(620)
    assert router.take_decisions() == [Left("later", "q", "max_wait")] and router.waiting("q") == 1
    router.on_timer(670)
    assert router.take_decisions() == [Left("early", "q", "max_wait")]
