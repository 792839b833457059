"""The desk's sessions against a contact center wired to fakes: a session ends when its time is up (the
open socket is closed, a new one refused), signing out ends it, and a desk's messages act for its own
agent only (state, wrap-ups of their own calls)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from ivrd.config import AgentConfig, Config, HttpConfig, QueueConfig, RoutingConfig
from ivrd.http.desk import Desks
from ivrd.http.desktops import Desktops
from ivrd.media.clock import FrameClock
from ivrd.media.rtp_session import MediaSettings
from ivrd.records import BATCH_SECONDS, CallRecords, TranscriptLine
from ivrd.tasks import TaskSet
from tests.center.fakes import FakeCaller, make_center
from tests.test_records import record

ROUTING = RoutingConfig(queues={"billing": QueueConfig(dispositions=("resolved",))}, agents={
    "ada": AgentConfig(name="Ada", skills={"billing": 2}, contact="browser", password="ada-password"),
    "bob": AgentConfig(name="Bob", skills={"billing": 2}, contact="browser", password="bob-password")})  # fmt: skip


class Faults:
    def caught(self, *_: Any) -> None:
        raise AssertionError("a desk task failed")


async def _desk(wall: list[float]) -> tuple[TestClient, Desks]:
    config = Config(routing=ROUTING, http=HttpConfig(desk_session_hours=1.0))
    center = make_center(ROUTING).center
    desks = Desks(lambda: config, center, Desktops(TaskSet(Faults(), "push")), clock=FrameClock(),
                  media=MediaSettings(), records=None, tasks=TaskSet(Faults(), "desk"), on_closed=lambda _: None,
                  wall=lambda: wall[0])  # fmt: skip
    app = web.Application()
    desks.routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, desks


async def _sign_in(client: TestClient, agent: str, password: str) -> int:
    response = await client.post("/desk/signin", json={"agent": agent, "password": password})
    return response.status


def test_a_session_ends_when_its_time_is_up_and_when_its_agent_signs_out():
    async def run() -> None:
        wall = [1000.0]
        client, _ = await _desk(wall)
        try:
            assert await _sign_in(client, "ada", "ada-password") == 200
            ws = await client.ws_connect("/desk/socket")
            hello = await ws.receive_json()
            assert hello["agent"]["id"] == "ada" and hello["dispositions"] == {"billing": ["resolved"]}
            await ws.send_json({"type": "state", "state": "available"})
            assert (await ws.receive_json())["agent"]["state"] == "available"
            wall[0] += 3601  # an hour and a second later
            await ws.send_json({"type": "status"})
            closed = await ws.receive()
            assert closed.type is WSMsgType.CLOSE and ws.close_code == 4001
            refused = await client.get("/desk/socket", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
            assert refused.status == 401

            assert await _sign_in(client, "ada", "ada-password") == 200
            ws = await client.ws_connect("/desk/socket")
            await ws.receive_json()
            await client.post("/desk/signout")
            assert (await ws.receive()).type is WSMsgType.CLOSE
            refused = await client.get("/desk/socket", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
            assert refused.status == 401
        finally:
            await client.close()

    asyncio.run(run())


def test_a_desk_acts_for_its_own_agent_and_refuses_what_it_does_not_understand():
    async def run() -> None:
        client, _ = await _desk([1000.0])
        try:
            assert await _sign_in(client, "bob", "bob-password") == 200
            ws = await client.ws_connect("/desk/socket")
            await ws.receive_json()
            replies = []
            for message in ({"type": "wrap_up", "call": "someone-elses-call", "disposition": "resolved"},
                            {"type": "accept", "leg": "not-a-leg", "sdp": "v=0"},
                            {"type": "dtmf", "leg": "not-a-leg", "digit": "5"},
                            {"type": "state", "state": "asleep"},
                            {"type": "rm -rf"}):  # fmt: skip
                await ws.send_json(message)
                replies.append((await ws.receive_json())["message"])
            await ws.send_str("not json")
            replies.append((await ws.receive_json())["message"])
            assert replies[0] == "no such call of yours"
            assert replies[1] == "no such call ringing (it may have stopped)"
            assert replies[2].startswith("expected {")
            assert replies[3].startswith('expected {"state"')
            assert replies[4] == "unknown message 'rm -rf'"
            assert replies[5] == "unknown message 'None'"
            await ws.send_json({"type": "status"})
            assert (await ws.receive_json())["agent"]["id"] == "bob"  # the socket serves on
        finally:
            await client.close()

    asyncio.run(run())


def test_an_offer_rings_on_the_desk_with_the_callers_previous_calls_and_what_was_said_on_them(tmp_path):
    async def run() -> dict[str, Any]:
        records = CallRecords(tmp_path / "calls.db")
        await records.open()
        records.add(record(1, caller="+4930123456", outcome="agent", queue="billing", agent="bob", note="router"))
        records.add_transcript("id1", [TranscriptLine("caller", 2.0, 3.5, "my internet is not working"),
                                       TranscriptLine("agent", 4.0, 5.0, "let me check")])  # fmt: skip
        await asyncio.sleep(BATCH_SECONDS * 2)
        config = Config(routing=ROUTING)
        desks = Desks(lambda: config, make_center(ROUTING).center, Desktops(TaskSet(Faults(), "push")),
                      clock=FrameClock(), media=MediaSettings(), records=records, tasks=TaskSet(Faults(), "desk"),
                      on_closed=lambda _: None)  # fmt: skip
        app = web.Application()
        desks.routes(app)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            assert await _sign_in(client, "ada", "ada-password") == 200
            ws = await client.ws_connect("/desk/socket")
            await ws.receive_json()
            leg = desks.ring("ada", FakeCaller("c2"))
            assert leg is not None
            ring = await ws.receive_json()
            assert ring["type"] == "ring" and ring["leg"] == leg.id
            return cast(dict[str, Any], await ws.receive_json())
        finally:
            await client.close()
            await records.close()

    history = asyncio.run(run())
    assert history["type"] == "history"
    (previous,) = history["calls"]
    assert (previous["id"], previous["agent"], previous["note"]) == ("id1", "bob", "router")
    assert previous["conversation"] == [{"side": "caller", "start": 2.0, "text": "my internet is not working"},
                                        {"side": "agent", "start": 4.0, "text": "let me check"}]
