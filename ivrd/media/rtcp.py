"""RTCP (RFC 3550 §6), sans-IO: compound reports out (SR or RR, then SDES CNAME), reports in.

:func:`parse_rtcp` walks a compound packet checking every length field against the bytes that
are there (a BYE reason longer than its packet is a known way to crash RTP stacks) and raises
:class:`RtcpError` and nothing else. Packet types it does not use are skipped by their length.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SR, RR, SDES, BYE = 200, 201, 202, 203
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)
_BLOCK = struct.Struct("!IB3sIIII")


class RtcpError(Exception):
    """A datagram that is not a well-formed RTCP compound packet."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """What one side says about the stream from ``ssrc`` (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int  # of 256, since the previous report
    cumulative_lost: int
    highest_seq: int  # extended
    jitter: int  # timestamp units
    lsr: int  # middle 32 bits of the NTP time of the last SR received from ``ssrc``
    dlsr: int  # delay since that SR, in 1/65536 s

    def pack(self) -> bytes:
        lost = max(-(2**23), min(2**23 - 1, self.cumulative_lost)) & 0xFFFFFF
        return _BLOCK.pack(self.ssrc, self.fraction_lost, lost.to_bytes(3, "big"), self.highest_seq & 0xFFFFFFFF,
                           self.jitter & 0xFFFFFFFF, self.lsr, self.dlsr)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp: int  # 64-bit NTP timestamp
    rtp_timestamp: int
    packets: int
    octets: int
    blocks: tuple[ReportBlock, ...]


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    blocks: tuple[ReportBlock, ...]


Report = SenderReport | ReceiverReport


def ntp_time(unix_seconds: float) -> int:
    """A Unix time as a 64-bit NTP timestamp."""
    return int((unix_seconds + NTP_EPOCH_OFFSET) * 2**32) & 0xFFFFFFFFFFFFFFFF


def _header(kind: int, count: int, body: bytes) -> bytes:
    return struct.pack("!BBH", 0x80 | count, kind, len(body) // 4) + body


def _sdes_cname(ssrc: int, cname: str) -> bytes:
    text = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(text)) + text + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return _header(SDES, 1, chunk)


def build_report(ssrc: int, cname: str, block: ReportBlock | None, *, sender: SenderReport | None = None) -> bytes:
    """A compound RTCP packet: an SR when ``sender`` info is given (we have sent RTP), else an RR,
    with ``block`` about the peer's stream, then an SDES CNAME."""
    blocks = block.pack() if block is not None else b""
    count = 1 if block is not None else 0
    if sender is not None:
        body = struct.pack("!IQIII", ssrc, sender.ntp, sender.rtp_timestamp & 0xFFFFFFFF,
                           sender.packets & 0xFFFFFFFF, sender.octets & 0xFFFFFFFF) + blocks  # fmt: skip
        first = _header(SR, count, body)
    else:
        first = _header(RR, count, struct.pack("!I", ssrc) + blocks)
    return first + _sdes_cname(ssrc, cname)


def _blocks(data: bytes, offset: int, count: int, end: int) -> tuple[ReportBlock, ...]:
    if offset + count * _BLOCK.size > end:
        raise RtcpError("report blocks run past their packet")
    blocks = []
    for i in range(count):
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset + i * _BLOCK.size)
        cumulative = int.from_bytes(lost, "big", signed=True)
        blocks.append(ReportBlock(ssrc, fraction, cumulative, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def parse_rtcp(data: bytes) -> list[Report]:
    """The sender and receiver reports in a compound packet (other packet types are skipped)."""
    reports: list[Report] = []
    offset = 0
    if len(data) < 8:
        raise RtcpError("shorter than an RTCP header")
    while offset < len(data):
        if len(data) - offset < 4:
            raise RtcpError("trailing bytes after the last RTCP packet")
        first, kind, words = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != 2:
            raise RtcpError("not RTCP version 2")
        end = offset + 4 + 4 * words
        if end > len(data):
            raise RtcpError("RTCP length runs past the datagram")
        count = first & 0x1F
        if kind == SR:
            if end - offset < 28:
                raise RtcpError("sender report too short")
            ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", data, offset + 4)
            reports.append(SenderReport(ssrc, ntp, rtp_ts, packets, octets, _blocks(data, offset + 28, count, end)))
        elif kind == RR:
            if end - offset < 8:
                raise RtcpError("receiver report too short")
            (ssrc,) = struct.unpack_from("!I", data, offset + 4)
            reports.append(ReceiverReport(ssrc, _blocks(data, offset + 8, count, end)))
        elif kind == BYE and count and offset + 4 + 4 * count < end:
            reason_length = data[offset + 4 + 4 * count]
            if offset + 5 + 4 * count + reason_length > end:
                raise RtcpError("BYE reason runs past its packet")
        offset = end
    return reports
