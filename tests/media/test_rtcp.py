import struct

import pytest

from ivrd.media.rtcp import (
    BYE,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SenderReport,
    build_report,
    ntp_time,
    parse_rtcp,
)
from ivrd.media.rtp import ReceiveStats, RtpPacket

BLOCK = ReportBlock(ssrc=0xCAFE, fraction_lost=25, cumulative_lost=-3, highest_seq=70000, jitter=40, lsr=123, dlsr=456)


def test_sender_report_round_trip_with_sdes_skipped():
    sender = SenderReport(0xBEEF, ntp_time(1_700_000_000.5), 160_000, 500, 80_000, ())
    (report,) = parse_rtcp(build_report(0xBEEF, "ivrd@host", BLOCK, sender=sender))
    assert report == SenderReport(0xBEEF, sender.ntp, 160_000, 500, 80_000, (BLOCK,))
    assert report.ntp >> 32 == 1_700_000_000 + 2_208_988_800 and (report.ntp & 0xFFFFFFFF) == 2**31


def test_receiver_report_without_blocks():
    data = build_report(7, "x", None)
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == [ReceiverReport(7, ())]


def bye(reason_length: int, actual: bytes) -> bytes:
    body = struct.pack("!I", 1) + bytes([reason_length]) + actual
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!BBH", 0x81, BYE, len(body) // 4) + body


@pytest.mark.parametrize(
    "data",
    [b"\x80\xc9\x00", b"\x40\xc9\x00\x01\x00\x00\x00\x00", b"\x80\xc9\x00\x09\x00\x00\x00\x00",  # short, v1, overrun
     b"\x81\xc9\x00\x01\x00\x00\x00\x01",  # one report block announced, none there
     b"\x80\xc8\x00\x01\x00\x00\x00\x01",  # a sender report without its sender info
     build_report(1, "x", None) + b"\x80",  # trailing garbage
     bye(200, b"short")],  # a BYE reason longer than its packet
)  # fmt: skip
def test_malformed_compound_packets_raise_rtcp_error_only(data):
    with pytest.raises(RtcpError):
        parse_rtcp(data)


def test_a_well_formed_bye_is_skipped():
    assert parse_rtcp(build_report(1, "x", None) + bye(3, b"bye")) == [ReceiverReport(1, ())]


def test_fraction_lost_per_interval_follows_rfc3550_a3():
    stats = ReceiveStats()
    for seq in range(100):
        if seq % 10 != 3:  # 10 of 100 lost
            stats.update(RtpPacket(0, False, seq, seq * 160, 9, b""), seq * 0.02)
    assert stats.report()[:3] == (25, 10, 99)  # 10/100 of 256 -> 25
    for seq in range(100, 200):  # nothing lost in the next interval
        stats.update(RtpPacket(0, False, seq, seq * 160, 9, b""), seq * 0.02)
    assert stats.report()[:3] == (0, 10, 199)
