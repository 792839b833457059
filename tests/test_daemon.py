"""The daemon in-process: what happens when a call's own code fails, or a task will not end."""

from __future__ import annotations

import asyncio
import socket

from ivrd.call import Call
from ivrd.commands.daemon import run_loop
from ivrd.config import Config, HttpConfig, Listen, SipConfig
from ivrd.server import Daemon, cancel_strays
from ivrd.sip.message import Response, parse_message
from tests.integration.daemon import free_port
from tests.sip.helpers import OFFER, request


def test_a_call_that_fails_is_rejected_not_left_ringing(monkeypatch):
    async def broken(self: Call) -> None:
        raise RuntimeError("bug in a flow")

    monkeypatch.setattr(Call, "run", broken)
    port = free_port()

    async def scenario() -> list[int]:
        daemon = Daemon(Config(sip=SipConfig(listen=(Listen("udp", "127.0.0.1", port),)), http=HttpConfig(port=0)))
        await daemon.start()
        loop = asyncio.get_running_loop()
        caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        caller.bind(("127.0.0.1", 0))
        caller.setblocking(False)
        here = f"127.0.0.1:{caller.getsockname()[1]}".encode()
        invite = request(body=OFFER).to_bytes().replace(b"10.0.0.2:5062", here)
        await loop.sock_sendto(caller, invite, ("127.0.0.1", port))
        statuses: list[int] = []
        while not statuses or statuses[-1] < 200:
            data = await asyncio.wait_for(loop.sock_recv(caller, 65535), 10)
            message = parse_message(data)
            assert isinstance(message, Response)
            statuses.append(message.status)
        caller.close()
        await daemon.shutdown()
        return statuses

    statuses = asyncio.run(scenario())
    assert statuses[-1] == 480 and all(status < 200 for status in statuses[:-1])



def test_a_task_that_will_not_end_is_said_and_does_not_keep_the_stopped_daemon(monkeypatch, caplog):
    monkeypatch.setattr("ivrd.server.STRAY_GRACE", 0.2)
    ended = []

    async def stubborn() -> None:  # as a library's read that swallows its cancellation
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    async def serving() -> None:
        asyncio.get_running_loop().create_task(stubborn(), name="stubborn")
        await asyncio.sleep(0)
        await cancel_strays()
        ended.append(True)  # not reached: the stuck task is reported instead

    run_loop(serving())  # returns: the daemon's process can exit
    assert ended == []
    (stuck,) = [r for r in caplog.records if r.getMessage() == "stop.stuck_task"]
    assert stuck.fields["task"] == "stubborn" and stuck.fields["coroutine"].endswith("<locals>.stubborn")
