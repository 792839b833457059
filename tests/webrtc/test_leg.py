"""A browser leg's life over every way it can go: answered, passed, not answered in time, the caller
gone, the agent's hang-up, the browser lost, an offer that fails; ``on_ended`` says why, exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivrd.tasks import TaskSet
from ivrd.webrtc.leg import BrowserLeg, LegState
from ivrd.webrtc.peer import WebRtcError


class FakePeer:
    """The leg's peer: answers, or refuses; comes up or is lost when the test says."""

    def __init__(self, on_up, on_gone, refuse: bool) -> None:
        self.on_up, self.on_gone, self.refuse = on_up, on_gone, refuse
        self.session = object()
        self.closed = 0

    async def answer(self, offer: str) -> str:
        if self.refuse:
            raise WebRtcError("no common codec")
        return f"answer to {offer}"

    async def close(self) -> None:
        self.closed += 1


class Faults:
    def caught(self, *_: Any) -> None:
        raise AssertionError("a leg's task failed")


def _leg(refuse: bool = False) -> tuple[BrowserLeg, list[str], list[dict[str, Any]], list[FakePeer], list[str]]:
    told: list[dict[str, Any]] = []
    ended: list[str] = []
    answered: list[str] = []
    peers: list[FakePeer] = []

    def make_peer(on_up, on_gone) -> Any:
        peers.append(FakePeer(on_up, on_gone, refuse))
        return peers[-1]

    leg = BrowserLeg("ada", make_peer=make_peer, tell=told.append, tasks=TaskSet(Faults(), "test"))
    leg.on_ended = ended.append
    leg.on_answered = lambda: answered.append("up")
    return leg, ended, told, peers, answered


def test_accepted_then_up_then_hung_up_by_the_agent():
    async def run() -> None:
        leg, ended, told, peers, answered = _leg()
        assert leg.media is None and not leg.ended
        assert await leg.accept("offer") == "answer to offer"
        assert leg.state is LegState.CONNECTING and leg.media is None and answered == []
        peers[0].on_up()
        assert leg.state is LegState.UP and leg.media is peers[0].session and answered == ["up"]
        peers[0].on_up()  # ICE restarts say "connected" again: answered once
        assert answered == ["up"]
        leg.agent_hung_up()
        leg.agent_hung_up()
        leg.hang_up()
        await asyncio.sleep(0)
        assert ended == ["agent"] and leg.ended and leg.media is None
        assert told == [{"type": "ended", "leg": leg.id, "reason": "agent"}] and peers[0].closed == 1
        with pytest.raises(WebRtcError, match="not ringing"):
            await leg.accept("again")

    asyncio.run(run())


@pytest.mark.parametrize(("end", "reason"),
                         [("decline", "declined"), ("hang_up", "timeout"), ("agent_hung_up", "agent")])  # fmt: skip
def test_a_ringing_leg_ends_once_for_its_reason(end, reason):
    leg, ended, told, peers, _ = _leg()
    getattr(leg, end)()
    leg.decline()
    leg.hang_up()
    assert ended == [reason] and peers == [] and told[0]["reason"] == reason


def test_the_callers_hang_up_ends_a_call_in_progress_and_a_lost_browser_ends_it_too():
    async def run() -> tuple[list[str], list[str]]:
        first, first_ended, _, peers, _ = _leg()
        await first.accept("offer")
        peers[0].on_up()
        first.hang_up()
        second, second_ended, _, peers2, _ = _leg()
        await second.accept("offer")
        peers2[0].on_up()
        peers2[0].on_gone("connection failed")
        second.decline()  # too late: nothing more
        await asyncio.sleep(0)
        return first_ended, second_ended

    assert asyncio.run(run()) == (["caller"], ["lost"])


def test_an_offer_the_leg_cannot_answer_ends_it_as_failed():
    async def run() -> None:
        leg, ended, told, peers, answered = _leg(refuse=True)
        with pytest.raises(WebRtcError, match="no common codec"):
            await leg.accept("offer")
        await asyncio.sleep(0)
        assert ended == ["failed"] and answered == [] and peers[0].closed == 1 and told[0]["reason"] == "failed"

    asyncio.run(run())
