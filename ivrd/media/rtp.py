"""RTP (RFC 3550) packets, receive statistics and source latching, sans-IO.

:func:`parse_rtp` checks every length against the bytes there (CSRC list, header extension,
padding) and raises :class:`RtpError` and nothing else.
"""

from __future__ import annotations

import struct
from typing import Final

_HEADER: Final = struct.Struct("!BBHII")
RTP_CLOCK: Final = 8000  # G.711 and telephone-event


class RtpError(Exception):
    """A datagram that is not a well-formed RTP packet."""


class RtpPacket:
    """One parsed packet. A plain class: one is built for every packet of every call, and compiled
    (see ``setup.py``) it is a C struct, which builds in less than half a named tuple's time."""

    def __init__(self, payload_type: int, marker: bool, sequence: int, timestamp: int, ssrc: int,  # noqa: PLR0917
                 payload: bytes) -> None:  # fmt: skip
        self.payload_type = payload_type
        self.marker = marker
        self.sequence = sequence
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload


def is_rtcp(data: bytes) -> bool:
    """RTCP sharing the RTP port (rtcp-mux, RFC 5761 §4): packet types 192-223 in the second byte."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse_rtp(data: bytes) -> RtpPacket:
    if len(data) < 12:
        raise RtpError("shorter than an RTP header")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise RtpError("not RTP version 2")
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        if len(data) < offset + 4:
            raise RtpError("header extension cut short")
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    end = len(data)
    if first & 0x20:
        if end <= offset:
            raise RtpError("padding without payload")
        end -= data[-1]
        if data[-1] == 0 or end < offset:
            raise RtpError("bad padding length")
    if offset > end:
        raise RtpError("header longer than the packet")
    return RtpPacket(second & 0x7F, bool(second & 0x80), sequence, timestamp, ssrc, data[offset:end])


def build_rtp(payload_type: int, marker: bool, sequence: int, timestamp: int, ssrc: int,  # noqa: PLR0917
              payload: bytes) -> bytes:  # fmt: skip
    return _HEADER.pack(0x80, payload_type | (0x80 if marker else 0), sequence & 0xFFFF,
                        timestamp & 0xFFFFFFFF, ssrc) + payload  # fmt: skip


class ReceiveStats:
    """RFC 3550 A.1/A.3/A.8: extended sequence numbers, expected vs received, interarrival jitter.

    Sequence numbers are per SSRC: when the sender's SSRC changes (a new stream, as when a call
    is transferred upstream) counting starts over, keeping what the earlier streams expected.
    """

    def __init__(self) -> None:
        self.received = 0
        self.ssrc: int | None = None
        self.source_changes = 0
        self._expected_before = 0
        self._received_stream = 0  # packets of the current SSRC
        self._prior = (0, 0)  # (expected, received) of the current SSRC at the last report
        self._base: int | None = None
        self._max = 0  # highest extended sequence number seen
        self._transit: float | None = None
        self.jitter = 0.0  # in timestamp units

    def extend(self, sequence: int) -> int:
        """The extended (wrap-free) sequence number of a 16-bit one, relative to the highest seen."""
        if self._base is None:
            return sequence
        delta = (sequence - (self._max & 0xFFFF) + 0x8000) % 0x10000 - 0x8000
        return self._max + delta

    def update(self, packet: RtpPacket, arrival: float, *, timing: bool = True) -> int:
        """Count ``packet`` (arrived at ``arrival`` seconds); returns its extended sequence number.

        ``timing=False`` counts it without feeding the jitter estimate: a telephone-event keeps one
        timestamp for the whole press, so its transit time says nothing about network jitter.
        """
        if packet.ssrc != self.ssrc:
            if self.ssrc is not None:
                self.source_changes += 1
                self._expected_before = self.expected
                self._base = None
                self._transit = None
                self._received_stream = 0
                self._prior = (0, 0)
            self.ssrc = packet.ssrc
        ext = self.extend(packet.sequence)
        if self._base is None:
            self._base = self._max = ext
        elif ext > self._max:
            self._max = ext
        self.received += 1
        self._received_stream += 1
        if not timing:
            return ext
        transit = arrival * RTP_CLOCK - packet.timestamp
        if self._transit is not None:
            self.jitter += (abs(transit - self._transit) - self.jitter) / 16
        self._transit = transit
        return ext

    @property
    def expected(self) -> int:
        current = 0 if self._base is None else self._max - self._base + 1
        return self._expected_before + current

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def report(self) -> tuple[int, int, int, int]:
        """For an RTCP report block on the current SSRC (RFC 3550 A.3): fraction lost since the last
        report (of 256), cumulative lost, extended highest sequence number, jitter. Starts a new interval."""
        expected = 0 if self._base is None else self._max - self._base + 1
        expected_interval = expected - self._prior[0]
        lost_interval = expected_interval - (self._received_stream - self._prior[1])
        fraction = (lost_interval << 8) // expected_interval if expected_interval > 0 and lost_interval > 0 else 0
        self._prior = (expected, self._received_stream)
        return min(fraction, 255), expected - self._received_stream, self._max, int(self.jitter)

    @property
    def jitter_seconds(self) -> float:
        return self.jitter / RTP_CLOCK


Address = tuple[str, int]


class SourceLatch:
    """Which source's packets a call accepts (the "RTP bleed" defence, CVE-2017-14099), the way
    rtpengine and Asterisk's ``strictrtp`` learn one.

    The address and port the peer's SDP names (``expected``) are always taken, and once they have sent,
    no other source ever is. Mode ``sdp``: only they. Modes ``first`` and ``any`` are for callers behind
    NAT, whose packets come from another address than their SDP says: within ``window`` seconds of
    :meth:`open` (the media starting) or of a renegotiation, a source that sends ``needed`` packets in
    sequence is learned, its packets taken from then on (those before are dropped). ``first`` learns
    only a source on one of ``hosts`` (the SDP's own host, and the host the call's SIP came from: a NAT
    maps both), so a stranger elsewhere can never take the call; ``any`` learns from anywhere (a proxy in
    front that leaves the SDP as it is). Every other packet is dropped and counted."""

    def __init__(self, expected: Address, *, mode: str = "sdp", needed: int = 3, window: float = 5.0,
                 hosts: frozenset[str] = frozenset()) -> None:  # fmt: skip
        self.mode = mode
        self.needed = needed
        self.window = window
        self.expected = expected
        self.hosts = hosts | {expected[0]}
        self.latched: Address | None = None
        self._learn_until: float | None = None  # None: from the first packet on
        self._candidate: Address | None = None
        self._run = 0
        self._last_seq = -1
        self.foreign = 0

    def open(self, now: float) -> None:
        """The media starts now: the learning window with it."""
        self._learn_until = now + self.window

    def accept(self, source: Address, sequence: int, now: float) -> bool:
        if source == self.latched:
            return True
        if source == self.expected:  # the SDP's own: taken at once, and kept
            self.latched = source
            return True
        if not self._may_learn(source, now):
            self.foreign += 1
            return False
        if source != self._candidate or sequence != (self._last_seq + 1) & 0xFFFF:
            self._candidate, self._run = source, 0
        self._run += 1
        self._last_seq = sequence
        if self._run < self.needed:
            return False
        self.latched = source
        return True

    def _may_learn(self, source: Address, now: float) -> bool:
        if self.mode == "sdp" or self.latched is not None:  # learned once: only the SDP's own may take over
            return False
        if self._learn_until is None:
            self._learn_until = now + self.window
        return now <= self._learn_until and (self.mode == "any" or source[0] in self.hosts)

    def relearn(self, expected: Address) -> None:
        """A renegotiation: the new SDP's address, and a new window from the next packet."""
        self.hosts = (self.hosts - {self.expected[0]}) | {expected[0]}
        self.expected = expected
        self.latched = None
        self._learn_until = None
        self._candidate, self._run = None, 0

    @property
    def send_to(self) -> Address:
        """Symmetric RTP: send where the caller's packets come from once latched, else to its SDP."""
        return self.latched or self.expected
