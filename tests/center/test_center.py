"""The contact center's logic on a fake clock, with fake legs: offers, misses, callbacks, escalation and
agents changed while phones ring. tests/integration/test_queue_calls.py and test_callbacks.py do the
same with real phones."""

from __future__ import annotations

import pytest

from flows.interpreter import AgentConnected, JoinQueue, QueueLeft
from flows.schema import Key
from ivrd.config import AgentConfig, CallbackConfig, QueueConfig, RoutingConfig
from ivrd.media.dtmf import Digit
from ivrd.records import WrapUp
from routing.matcher import Escalation
from tests.center.fakes import FakeCaller, make_center

ADA = AgentConfig(name="Ada", skills={"billing": 3}, logged_in=True)
BOB = AgentConfig(name="Bob", skills={"billing": 2}, logged_in=True)


def routing(agents: dict[str, AgentConfig], **queue: object) -> RoutingConfig:
    return RoutingConfig(offer_timeout=20, queues={"billing": QueueConfig(skills="billing >= 1", wrap_up=10,
                                                                          **queue)},  # type: ignore[arg-type]
                         agents=agents)  # fmt: skip


def test_an_answered_offer_bridges_the_caller_and_counts_the_agents_handle_time():
    c = make_center(routing({"ada": ADA}))
    caller = FakeCaller("c1")
    c.center.join(caller, JoinQueue("billing"))
    (leg,) = c.dialer.placed
    assert leg.to == "sip:ada@phones" and leg.caller == caller.number
    assert ("call-info", "<http://127.0.0.1:9460/calls/c1>;purpose=info") in leg.extra
    assert c.desktops.pushed == [("ada", "offer")]
    leg.rings()
    c.clock.advance(4.0)
    leg.answers()
    assert caller.events == [AgentConnected("ada", 4.0)]
    assert caller.media.bridged_to is leg.media and caller.music[-1] is None  # hold music stopped first
    assert c.count("ivrd_queue_answered_total", queue="billing") == 1
    assert c.center.router.agents["ada"].state.value == "busy"
    c.clock.advance(34.0)
    assert c.center.handled_so_far(caller) == (30.0, 0.0, 10.0)  # the caller hangs up now: what it took
    leg.ends("bye")
    assert caller.gone == (30.0, 0.0, 10.0)
    assert c.count("ivrd_queue_handle_seconds_sum", queue="billing", phase="talk") == 30.0
    assert c.center.router.agents["ada"].state.value == "wrap_up"
    assert c.desktops.pushed[-2:] == [("ada", "answered"), ("ada", "ended")]


def test_a_missed_offer_puts_the_caller_first_again_and_rings_the_next_agent():
    c = make_center(routing({"ada": ADA, "bob": BOB}))
    caller = FakeCaller("c1")
    c.center.join(caller, JoinQueue("billing"))
    (to_ada,) = c.dialer.placed
    c.clock.advance(19.9)
    assert not to_ada.hung_up
    c.clock.advance(20.0)  # offer_timeout: the phone stops ringing
    assert to_ada.hung_up
    to_ada.ends("cancel", 487)
    assert c.count("ivrd_agent_offers_total", queue="billing", result="missed") == 1
    assert c.center.router.agents["ada"].misses_in_a_row == 1
    (to_bob,) = c.dialer.ringing()  # the caller is offered to the next free agent at once
    assert to_bob.to == "sip:bob@phones" and to_bob.extra == to_ada.extra
    assert c.desktops.pushed == [("ada", "offer"), ("ada", "missed"), ("bob", "offer")]
    to_bob.answers()
    assert caller.events == [AgentConnected("bob", 20.0)]


def test_the_caller_hanging_up_while_the_agent_rings_stops_the_phone():
    c = make_center(routing({"ada": ADA}))
    caller = FakeCaller("c1")
    c.center.join(caller, JoinQueue("billing"))
    c.clock.advance(3.0)
    c.center.caller_gone(caller)
    (leg,) = c.dialer.placed
    assert leg.hung_up
    leg.ends("cancel", 487)
    assert c.count("ivrd_queue_abandoned_total", queue="billing") == 1
    assert c.count("ivrd_queue_wait_seconds_count", queue="billing", outcome="abandoned") == 1
    assert c.center.router.agents["ada"].state.value == "available"
    assert len(c.dialer.placed) == 1


def test_an_agent_removed_while_their_phone_rings_is_never_offered_again():
    c = make_center(routing({"ada": ADA, "bob": BOB}, strategy="most_skilled", rank_skill="billing"))
    c.center.set_state("bob", "away", "lunch")
    caller = FakeCaller("c1")
    c.center.join(caller, JoinQueue("billing"))
    (to_ada,) = c.dialer.placed
    c.center.delete_agent("ada")  # an agent whose phone rings goes when the call ends
    to_ada.answers()  # picked up: bridged, the caller does not wait again
    assert caller.events == [AgentConnected("ada", 0.0)]
    to_ada.ends("bye")
    assert "ada" not in c.center.router.agents
    c.center.set_state("bob", "available")
    assert len(c.dialer.placed) == 1 and caller.gone is not None
    second = FakeCaller("c2")
    c.center.join(second, JoinQueue("billing"))
    assert c.dialer.placed[-1].to == "sip:bob@phones"


def test_an_escalation_due_while_the_agent_rings_is_carried_out_when_the_offer_is_missed():
    c = make_center(routing({"ada": ADA}, escalations=(Escalation(after=5, leave=True),)))
    caller = FakeCaller("c1")
    c.center.join(caller, JoinQueue("billing"))
    (leg,) = c.dialer.placed
    c.clock.advance(10.0)  # due at 5 s: the offer ringing goes on
    assert caller.events == [] and not leg.hung_up
    c.clock.advance(20.0)
    leg.ends("cancel", 487)  # missed: now the escalation applies
    assert caller.events == [QueueLeft("escalated")]
    assert c.count("ivrd_queue_overflowed_total", queue="billing", reason="escalated") == 1
    assert len(c.dialer.placed) == 1


CALLBACKS = CallbackConfig(gateway="sip:{number}@gateway", numbers=("+4930*",), attempts=2, retry_after=60)


def callback_center():
    config = routing({"ada": AgentConfig(name="Ada", skills={"billing": 3})}, callback_key=Key("9"), join_empty=True)
    return make_center(RoutingConfig(offer_timeout=20, queues=config.queues, agents=config.agents,
                                     callback=CALLBACKS))  # fmt: skip


def test_a_callback_not_answered_is_tried_again_in_place_then_given_up():
    c = callback_center()
    caller = FakeCaller("c1")
    c.center.join(caller, JoinQueue("billing"))
    c.clock.advance(30.0)
    assert c.center.key(caller, "9")
    assert caller.events == [QueueLeft("callback", "+4930123456")]
    c.center.caller_gone(caller)  # they hang up: the place is kept
    assert c.center.booked("c1") is caller
    c.center.set_state("ada", "available")
    (agent_leg,) = c.dialer.placed
    assert agent_leg.caller == "+4930123456" and ("subject", "callback, queue billing") in agent_leg.extra
    agent_leg.answers()
    to_caller = c.dialer.placed[1]
    assert to_caller.to == "sip:+4930123456@gateway" and agent_leg.said == ["Calling back 4 9 3 0 1 2 3 4 5 6."]
    to_caller.ends("failed", 486)  # busy
    assert agent_leg.hung_up
    agent_leg.ends("hangup")
    assert [r.outcome for r in c.records.added] == ["no_answer"]
    assert c.count("ivrd_queue_callbacks_total", queue="billing", result="no_answer") == 1
    c.clock.advance(30.0 + 59.0)
    assert len(c.dialer.placed) == 2  # not yet: retry_after is 60 s
    c.clock.advance(30.0 + 61.0)
    third = c.dialer.placed[2]  # the agent rings first again, for the same caller
    assert third.caller == "+4930123456"
    third.answers()
    c.dialer.placed[3].ends("timeout", 408)
    third.ends("hangup")
    assert c.count("ivrd_queue_callbacks_total", queue="billing", result="failed") == 1  # two attempts, given up
    assert c.center.booked("c1") is None
    c.clock.advance(1000.0)
    assert len(c.dialer.placed) == 4


def test_a_callback_that_connects_bridges_the_two_legs_and_is_recorded_once():
    c = callback_center()
    caller = FakeCaller("c1")
    c.center.join(caller, JoinQueue("billing"))
    c.center.key(caller, "9")
    c.center.caller_gone(caller)
    c.center.set_state("ada", "available")
    agent_leg = c.dialer.placed[0]
    agent_leg.answers()
    c.clock.advance(5.0)
    to_caller = c.dialer.placed[1]
    to_caller.answers()
    assert to_caller.media.bridged_to is agent_leg.media
    assert c.count("ivrd_queue_callbacks_total", queue="billing", result="connected") == 1
    c.clock.advance(65.0)
    to_caller.ends("bye")
    assert agent_leg.hung_up
    agent_leg.ends("hangup")
    (record,) = c.records.added
    assert (record.outcome, record.agent, record.wait, record.talk) == ("agent", "ada", 5.0, 65.0)
    assert c.center.booked("c1") is None


@pytest.mark.parametrize("number", ["+4989123456", "12345; drop table"])
def test_a_callback_to_a_number_not_allowed_is_refused_and_the_caller_keeps_waiting(number):
    c = callback_center()
    caller = FakeCaller("c1", number=number)
    c.center.join(caller, JoinQueue("billing"))
    assert c.center.key(caller, "9")  # the queue took the key: the caller is told why not
    assert caller.events == [] and caller.heard == [
        "Sorry, we cannot call you back at this number. Please stay on the line."]
    assert c.center.booked("c1") is None and c.center.queue_view("billing")["waiting"] == 1


def test_a_wrap_up_code_keyed_on_the_agents_phone_is_the_calls_disposition():
    c = make_center(routing({"ada": ADA}, dispositions=("resolved", "call back"),
                            disposition_keys={"1": "resolved", "2": "call back"}))  # fmt: skip
    caller = FakeCaller("c1")
    c.center.join(caller, JoinQueue("billing"))
    (leg,) = c.dialer.placed
    leg.answers()
    for key in "12*9*2":  # keys for the caller, then * and an unknown key, then * 2: "call back"
        leg.on_digit(Digit(key, 100, "rfc4733", 0.0))
    assert c.records.noted == [WrapUp("c1", "call back", None)]
