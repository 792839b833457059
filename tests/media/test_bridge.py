"""Two media sessions bridged on loopback: audio relayed (and μ-law/A-law mapped), a key pressed on one
side sent on to the other as RFC 4733 events."""

from __future__ import annotations

import asyncio
import socket

from ivrd.media.clock import FrameClock
from ivrd.media.dtmf import Digit, Rfc4733Sender, parse_event
from ivrd.media.rtp import build_rtp, parse_rtp
from ivrd.media.rtp_session import MediaSettings
from ivrd.media.session import MediaSession
from ivrd.media.sockets import MediaSockets
from ivrd.sip.sdp import AudioSession

SETTINGS = MediaSettings(jitter_min_frames=1, jitter_max_frames=4)


def udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def session(phone: socket.socket, codec: str, pt: int, digits: list[Digit], *, clock: FrameClock,
            sockets: MediaSockets) -> MediaSession:  # fmt: skip
    audio = AudioSession("127.0.0.1", phone.getsockname()[1], pt, codec, 101, 20, "sendrecv", False)
    return MediaSession(audio, SETTINGS, clock, sockets, on_digit=digits.append, on_digit_start=lambda _: None)


def test_a_bridge_maps_the_callers_audio_and_passes_their_key_on_as_events():
    async def scenario() -> tuple[list[bytes], list[tuple[int, bytes]], list[Digit]]:
        loop = asyncio.get_running_loop()
        caller_phone, agent_phone = udp(), udp()
        heard: list[Digit] = []
        clock, sockets = FrameClock(), MediaSockets()
        caller = session(caller_phone, "PCMU", 0, heard, clock=clock, sockets=sockets)
        agent = session(agent_phone, "PCMA", 8, [], clock=clock, sockets=sockets)
        caller_sock, agent_sock = udp(), udp()
        to_caller = caller_sock.getsockname()
        caller.open(caller_sock)
        agent.open(agent_sock)
        caller.start()
        agent.start()
        caller.bridge(agent)
        seq, ts = 1, 8000
        for _ in range(10):  # 200 ms of μ-law "loud" bytes (0x00), then the key 5
            await loop.sock_sendto(caller_phone, build_rtp(0, False, seq, ts, 1234, b"\x00" * 160), to_caller)
            seq, ts = seq + 1, ts + 160
            await asyncio.sleep(0.02)
        press = Rfc4733Sender("5", duration_ms=60)
        while (event := press.next_payload()) is not None:
            await loop.sock_sendto(caller_phone, build_rtp(101, event[1], seq, ts, 1234, event[0]), to_caller)
            seq += 1
            await asyncio.sleep(0.02)
        audio: list[bytes] = []
        events: list[tuple[int, bytes]] = []
        deadline = loop.time() + 5
        while loop.time() < deadline and not any(parse_event(p).end for _, p in events):
            data = await asyncio.wait_for(loop.sock_recv(agent_phone, 2048), 5)
            packet = parse_rtp(data)
            if packet.payload_type == 101:
                events.append((packet.timestamp, packet.payload))
            elif packet.payload_type == 8:
                audio.append(packet.payload)
        caller.unbridge()
        caller.close()
        agent.close()
        sockets.close()
        for sock in (caller_phone, agent_phone):
            sock.close()
        return audio, events, heard

    audio, events, heard = asyncio.run(scenario())
    assert b"\x2a" * 160 in audio  # μ-law 0x00 (most negative) is A-law 0x2A: mapped, not passed as is
    assert [d.digit for d in heard] == ["5"]  # the caller's own side still reports the key
    parsed = [parse_event(p) for _, p in events]
    assert {p.event for p in parsed} == {5} and parsed[-1].end and parsed[-1].duration == 480
    assert len({timestamp for timestamp, _ in events}) == 1  # one event: one timestamp on every packet
