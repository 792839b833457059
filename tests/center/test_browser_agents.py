"""Agents whose phone is their browser are routed as phone agents are: offered by skill, a pass or no
answer in time is a miss and the next agent is rung, an answer bridges the caller, hold plays the queue's
music and is counted as hold, either side's hang-up ends the other, handle time and wrap-up follow.
The desk is a stand-in that makes real :class:`BrowserLeg` objects over a stand-in peer; the contact
center is real, on a fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

from flows.interpreter import AgentConnected, JoinQueue
from ivrd.config import AgentConfig, QueueConfig, RoutingConfig
from ivrd.tasks import TaskSet
from ivrd.webrtc.leg import BrowserLeg, LegState
from tests.center.fakes import FakeCaller, FakeMedia, make_center

ADA = AgentConfig(name="Ada", skills={"billing": 3}, contact="browser", password="ada-password", logged_in=True)
BOB = AgentConfig(name="Bob", skills={"billing": 2}, contact="browser", password="bob-password", logged_in=True)
MUSIC = object()


class Faults:
    def caught(self, *_: Any) -> None:
        raise AssertionError("a leg's task failed")


class FakePeer:
    def __init__(self, on_up: Any, on_gone: Any) -> None:
        self.on_up, self.on_gone = on_up, on_gone
        self.session = FakeMedia()

    async def answer(self, offer: str) -> str:
        return "answer"

    async def close(self) -> None:
        pass


class FakeDesks:
    """Desks open for ``open`` agents; every leg rung and closed is kept."""

    def __init__(self, *open_desks: str) -> None:
        self.open = set(open_desks)
        self.rung: list[BrowserLeg] = []
        self.closed_legs: list[BrowserLeg] = []
        self.peers: list[FakePeer] = []

    def is_open(self, agent_id: str) -> bool:
        return agent_id in self.open

    def ring(self, agent_id: str, caller: Any) -> BrowserLeg | None:
        if agent_id not in self.open:
            return None

        def make_peer(on_up: Any, on_gone: Any) -> Any:
            self.peers.append(FakePeer(on_up, on_gone))
            return self.peers[-1]

        leg = BrowserLeg(agent_id, make_peer=make_peer, tell=lambda _: None, tasks=TaskSet(Faults(), "test"))
        self.rung.append(leg)
        return leg

    def closed(self, leg: BrowserLeg) -> None:
        self.closed_legs.append(leg)


def _center(desks: FakeDesks) -> Any:
    routing = RoutingConfig(offer_timeout=20, queues={"billing": QueueConfig(skills="billing >= 1", wrap_up=10)},
                            agents={"ada": ADA, "bob": BOB})  # fmt: skip
    c = make_center(routing)
    c.center.hold_music = {"billing": MUSIC}
    c.center.use_desks(desks)
    return c


def test_a_pass_and_a_ring_out_are_misses_and_the_next_agent_is_rung():
    desks = FakeDesks("ada", "bob")
    c = _center(desks)
    caller = FakeCaller("c1")
    c.center.join(caller, JoinQueue("billing"))
    (first,) = desks.rung
    assert first.agent == "ada"  # more skilled? no: longest idle, and both are; ada was defined first
    first.decline()
    assert first.ended and desks.closed_legs == [first]
    assert c.count("ivrd_agent_offers_total", queue="billing", result="missed") == 1
    second = desks.rung[-1]
    assert second.agent == "bob" and second.state is LegState.RINGING
    c.clock.advance(20.0)  # offer_timeout: no answer
    assert second.ended and c.count("ivrd_agent_offers_total", queue="billing", result="missed") == 2
    assert c.center.router.agents["ada"].misses_in_a_row == 1
    assert caller.events == []  # still waiting, first in line


def test_an_agent_with_no_desk_open_is_not_rung():
    desks = FakeDesks()
    c = _center(desks)
    assert not c.center.agent_view(c.center.router.agents["ada"])["reachable"]
    c.center.join(FakeCaller("c1"), JoinQueue("billing"))
    assert desks.rung == [] and c.count("ivrd_agent_offers_total", queue="billing", result="failed") >= 1


async def _answered(after: float) -> tuple[Any, FakeDesks, FakeCaller, BrowserLeg]:
    """A caller in line, Ada's desk rung, and after ``after`` seconds her browser takes the call."""
    desks = FakeDesks("ada")
    c = _center(desks)
    caller = FakeCaller("c1")
    c.center.join(caller, JoinQueue("billing"))
    (leg,) = desks.rung
    c.clock.advance(after)
    assert await leg.accept("offer") == "answer"
    desks.peers[0].on_up()
    return c, desks, caller, leg


def test_an_answer_bridges_hold_is_counted_and_the_agents_hang_up_ends_the_caller():
    async def run() -> None:
        c, desks, caller, leg = await _answered(3.0)
        assert caller.events == [AgentConnected("ada", 3.0)]
        assert caller.media.bridged_to is desks.peers[0].session
        assert c.center.router.agents["ada"].state.value == "busy"
        c.clock.advance(13.0)
        c.center.hold(leg, True)
        assert caller.music[-1] is MUSIC and caller.media.bridged_to is None
        c.center.hold(leg, True)  # twice is once
        c.clock.advance(18.0)
        c.center.hold(leg, False)
        assert caller.music[-1] is None and caller.media.bridged_to is desks.peers[0].session
        c.clock.advance(23.0)
        leg.agent_hung_up()
        await asyncio.sleep(0)
        assert caller.gone == (15.0, 5.0, 10.0)  # talk 20 s less 5 s held; hold; the queue's wrap-up
        assert c.center.router.agents["ada"].state.value == "wrap_up"
        assert desks.closed_legs == [leg]

    asyncio.run(run())


def test_the_callers_hang_up_ends_the_agents_browser_call():
    async def run() -> None:
        c, desks, caller, leg = await _answered(0.0)
        c.center.caller_gone(caller)
        await asyncio.sleep(0)
        assert leg.ended and desks.closed_legs == [leg]

    asyncio.run(run())
