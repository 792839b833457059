"""Property test: whatever the caller's address sends to a call's RTP port, the call's own stream goes on.
Streams mixing sound packets with the published RTP attack shapes (sequence and timestamp jumps and wraps,
SSRC changes mid-call, padding and CSRC counts that overrun the packet, extensions longer than it, other
versions, RFC 4733 events with any code, flag and duration, RTCP on the RTP port, noise) go through the
media core between its ticks: nothing escapes, every tick still sends the next packet of our stream, and
only keys that exist are reported."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivrd.media.dtmf import Digit
from ivrd.media.rtp import build_rtp, parse_rtp
from ivrd.media.rtp_session import MediaSettings, RtpSession
from ivrd.sip.dtmf import KEYS
from ivrd.sip.sdp import AudioSession

CALLER = ("192.0.2.10", 4000)
SOUND, EVENT = 0, 101


@st.composite
def sound(draw: st.DrawFn) -> bytes:
    """An audio packet, its numbers anywhere (jumps, wraps, going back) and its payload any length."""
    payload = b"\xff" * draw(st.sampled_from([0, 1, 160, 1400]))
    ssrc = draw(st.sampled_from([7, 8, 0, 0xFFFFFFFF]))
    return build_rtp(SOUND, draw(st.booleans()), draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFFFFFF)), ssrc,
                     payload)  # fmt: skip


@st.composite
def key_event(draw: st.DrawFn) -> bytes:
    """An RFC 4733 event: any code, end flag, volume and duration, and payloads cut short or too long."""
    payload = struct.pack("!BBH", draw(st.integers(0, 255)), draw(st.integers(0, 255)), draw(st.integers(0, 0xFFFF)))
    payload = payload[: draw(st.sampled_from([0, 2, 4, 4, 4]))] + b"\x00" * draw(st.sampled_from([0, 0, 4, 9]))
    timestamp = draw(st.sampled_from([0, 160, 2**32 - 1]))
    return build_rtp(EVENT, draw(st.booleans()), draw(st.integers(0, 0xFFFF)), timestamp, 7, payload)


@st.composite
def overrun(draw: st.DrawFn) -> bytes:
    """A header that promises more than the packet holds, or is not version 2."""
    packet = bytearray(draw(sound()))
    kind = draw(st.sampled_from(["padding", "csrc", "extension", "version"]))
    if kind == "padding":
        packet[0] |= 0x20
        packet[-1:] = bytes([draw(st.integers(0, 255))]) if len(packet) > 12 else b""
    elif kind == "csrc":
        packet[0] |= draw(st.integers(1, 15))
    elif kind == "extension":
        packet[0] |= 0x10
        packet[12:12] = struct.pack("!HH", 0xBEDE, draw(st.integers(0, 0xFFFF)))
    else:
        packet[0] = (packet[0] & 0x3F) | (draw(st.sampled_from([0, 1, 3])) << 6)
    return bytes(packet)


RTCP_SHAPED = st.builds(lambda pt, body: bytes([0x80, pt]) + body, st.integers(192, 223), st.binary(max_size=40))
NOT_NEGOTIATED = st.builds(lambda pt: build_rtp(pt, False, 1, 1, 7, b"\x00"), st.sampled_from([8, 13, 96, 127]))
PACKETS = st.one_of(sound(), key_event(), overrun(), st.binary(max_size=64), RTCP_SHAPED, NOT_NEGOTIATED)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(st.lists(PACKETS, max_size=8), min_size=1, max_size=30), mux=st.booleans())
def test_what_the_caller_sends_never_stops_the_calls_own_stream(frames: list[list[bytes]], mux: bool) -> None:
    digits: list[Digit] = []
    starts: list[str] = []
    audio = AudioSession(CALLER[0], CALLER[1], SOUND, "PCMU", EVENT, 20, "sendrecv", mux)
    core = RtpSession(audio, MediaSettings(), on_digit=digits.append, on_digit_start=starts.append)
    core.started(0, 0.0)
    sequences = []
    for index, packets in enumerate(frames):
        now = index * 0.02
        for data in packets:
            core.receive(data, CALLER, now)
        packet = core.tick(index, now)
        assert packet is not None  # idle, the call still sends silence: its stream never stops
        core.sent_packet(packet)
        sequences.append(parse_rtp(packet).sequence)
    assert sequences == [(sequences[0] + i) & 0xFFFF for i in range(len(frames))]
    assert all(d.digit in KEYS for d in digits) and all(key in KEYS for key in starts)
    counts = core.packet_counts()
    assert counts.received + counts.malformed <= sum(map(len, frames))
    assert core.report(len(frames) * 0.02, 1_700_000_000.0)
