"""The SIP transport in-process, over loopback: it sends what a command queued at once, and hands the
events a command causes over only after the handler that gave the command has returned."""

from __future__ import annotations

import asyncio
import logging
import socket

from ivrd.faults import Faults
from ivrd.sip.events import CallEnded, IncomingCall, MessageRejected, SipEvent
from ivrd.sip.flow import SipFlow
from ivrd.sip.message import Response, parse_message
from ivrd.sip.ua import UserAgent
from ivrd.transport import SipTransport
from tests.sip.helpers import OFFER, request


async def _exchange(on_event, invites: int = 1) -> tuple[list[int], Faults]:
    faults = Faults()
    transport = SipTransport(UserAgent(), on_event(lambda: transport), faults)
    port = await transport.listen("udp", "127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caller.bind(("127.0.0.1", 0))
    caller.setblocking(False)
    here = f"127.0.0.1:{caller.getsockname()[1]}".encode()
    statuses: list[int] = []
    try:
        for n in range(invites):
            invite = request(body=OFFER, call_id=f"c{n}", branch=f"z9hG4bK{n}").to_bytes()
            await loop.sock_sendto(caller, invite.replace(b"10.0.0.2:5062", here), ("127.0.0.1", port))
            while len(statuses) < n + 1:  # its final response (at once: no 100 before it)
                message = parse_message(await asyncio.wait_for(loop.sock_recv(caller, 65535), 5))
                assert isinstance(message, Response)
                statuses.append(message.status)
        await asyncio.sleep(0)  # the turn on which events a command caused are handed over
    finally:
        caller.close()
        transport.close()
    return statuses, faults


def test_a_commands_events_wait_for_the_handler_that_gave_it_to_return():
    seen: list[tuple[str, bool]] = []  # (event, whether a handler was running when it came)

    def handlers(transport):
        inside = False

        def on_event(happened: SipEvent) -> None:
            nonlocal inside
            seen.append((type(happened).__name__, inside))
            if isinstance(happened, IncomingCall):
                inside = True
                transport().reject(happened.leg, 486)  # its 486 goes out now; CallEnded comes later
                seen.append(("rejected", inside))
                inside = False

        return on_event

    statuses, faults = asyncio.run(_exchange(handlers))
    assert statuses == [486]
    assert seen == [("IncomingCall", False), ("rejected", True), ("CallEnded", False)]
    assert not faults.counts


def test_a_handler_that_fails_loses_its_event_not_the_ones_after_it():
    ended: list[SipEvent] = []

    def handlers(transport):
        def on_event(happened: SipEvent) -> None:
            if isinstance(happened, IncomingCall):
                transport().reject(happened.leg, 603)
                raise RuntimeError("a bug in the application")
            if isinstance(happened, CallEnded | MessageRejected):
                ended.append(happened)

        return on_event

    statuses, faults = asyncio.run(_exchange(handlers, invites=2))
    assert statuses == [603, 603]
    assert [type(e).__name__ for e in ended] == ["CallEnded", "CallEnded"]
    assert faults.counts == {"sip.event": 2}


def test_a_via_host_name_whose_resolver_hangs_holds_up_nobody_and_is_given_up(caplog):
    caplog.set_level(logging.WARNING, logger="ivrd.sip")

    async def scenario() -> tuple[list[str], list[str], int]:
        loop = asyncio.get_running_loop()
        asked: list[str] = []

        async def hanging(host: str, port: int) -> str:
            asked.append(host)
            await asyncio.Event().wait()  # a resolver that never answers
            return "127.0.0.1"

        transport = SipTransport(UserAgent(), lambda _: None, Faults(), resolve=hanging, resolve_timeout=0.3)
        port = await transport.listen("udp", "127.0.0.1", 0)
        slow, other = udp_client(), udp_client()
        via = f"127.0.0.1:{slow.getsockname()[1]};maddr=slow.example.invalid"
        try:
            for n in (1, 2):
                await loop.sock_sendto(slow, options_from(via, n), ("127.0.0.1", port))
            await loop.sock_sendto(other, options_from(f"127.0.0.1:{other.getsockname()[1]}", 3), ("127.0.0.1", port))
            answer = parse_message(await asyncio.wait_for(loop.sock_recv(other, 65535), 5))
            assert isinstance(answer, Response)
            meanwhile = list(asked)  # answered while the name was being asked, once for both messages
            while not any(r.msg == "sip.unresolvable" for r in caplog.records):
                await asyncio.sleep(0.05)  # the resolver is given up on its deadline
            await loop.sock_sendto(slow, options_from(via, 4), ("127.0.0.1", port))
            await loop.sock_sendto(other, options_from(f"127.0.0.1:{other.getsockname()[1]}", 5), ("127.0.0.1", port))
            await asyncio.wait_for(loop.sock_recv(other, 65535), 5)  # the fourth has been handled by now too
            return meanwhile, asked, answer.status
        finally:
            slow.close()
            other.close()
            transport.close()

    meanwhile, asked, status = asyncio.run(scenario())
    assert status == 200 and meanwhile == ["slow.example.invalid"]
    assert asked == ["slow.example.invalid"]  # the failure is remembered: the fourth asks nothing


def udp_client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def options_from(via: str, n: int) -> bytes:
    return (f"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bKo{n}\r\n"
            f"From: <sip:probe@127.0.0.1>;tag=o{n}\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: o{n}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()  # fmt: skip


def test_a_burst_is_taken_a_turn_at_a_time_in_order_with_timers_in_between(monkeypatch):
    """Past the turn's budget (here: none), messages wait in order for the next turns of the loop, and
    what is due meanwhile (every call's audio frames) runs between them; past the backlog's bound they
    are dropped, as a full socket buffer would."""
    monkeypatch.setattr("ivrd.transport.RECEIVE_BUDGET", 0.0)
    monkeypatch.setattr("ivrd.transport.MAX_BACKLOG", 12)

    async def scenario() -> tuple[list[str], list[int], int, int]:
        calls: list[str] = []
        all_in = asyncio.Event()

        def on_event(happened: SipEvent) -> None:
            if isinstance(happened, IncomingCall):
                calls.append(happened.leg.call_id)
                if len(calls) == 12:
                    all_in.set()

        transport = SipTransport(UserAgent(), on_event, Faults())
        port = await transport.listen("udp", "127.0.0.1", 0)
        caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        caller.bind(("127.0.0.1", 0))
        loop = asyncio.get_running_loop()
        seen_at_ticks: list[int] = []

        def tick() -> None:  # a frame timer: what it sees of the burst as it goes
            seen_at_ticks.append(len(calls))
            if not all_in.is_set():
                loop.call_later(0, tick)

        here = f"127.0.0.1:{caller.getsockname()[1]}"
        flow = SipFlow("udp", ("127.0.0.1", port), ("127.0.0.1", caller.getsockname()[1]))
        try:
            tick()
            for n in range(20):  # one read of a burst: 12 wait (none is taken at once on no budget), 8 are dropped
                invite = request(body=OFFER, call_id=f"c{n}", branch=f"z9hG4bK{n}").to_bytes()
                transport.feed(invite.replace(b"10.0.0.2:5062", here.encode()), flow)
            waiting = transport.backlog
            await asyncio.wait_for(all_in.wait(), 10)
        finally:
            caller.close()
            transport.close()
        return calls, seen_at_ticks, waiting, transport.backlog_dropped

    calls, seen_at_ticks, waiting, dropped = asyncio.run(scenario())
    assert calls == [f"c{n}" for n in range(12)] and waiting == 12 and dropped == 8
    assert len({seen for seen in seen_at_ticks if 0 < seen < 12}) >= 6  # the timer ran all along the burst
