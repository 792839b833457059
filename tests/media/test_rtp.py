import pytest

from ivrd.media.rtp import ReceiveStats, RtpError, RtpPacket, SourceLatch, build_rtp, is_rtcp, parse_rtp


def test_build_and_parse_round_trip():
    data = build_rtp(8, True, 65535, 2**32 - 1, 0xDEADBEEF, b"\xd5" * 160)
    packet = parse_rtp(data)
    fields = (packet.payload_type, packet.marker, packet.sequence, packet.timestamp, packet.ssrc, packet.payload)
    assert fields == (8, True, 65535, 2**32 - 1, 0xDEADBEEF, b"\xd5" * 160)


def test_csrc_extension_and_padding_are_skipped():
    header = bytes([0x80 | 0x20 | 0x10 | 2, 0]) + b"\x00\x01" + b"\x00" * 8
    csrcs = b"\x00" * 8
    extension = b"\xbe\xde\x00\x01" + b"\x00" * 4
    packet = parse_rtp(header + csrcs + extension + b"abc" + b"\x00\x02")
    assert packet.payload == b"abc"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80" * 11, b"\x40" + b"\x00" * 11, bytes([0x8F]) + b"\x00" * 20, bytes([0x90]) + b"\x00" * 12,
     bytes([0x90]) + b"\x00" * 13 + b"\xff\xff", bytes([0xA0]) + b"\x00" * 11 + b"ab\x09",
     bytes([0xA0]) + b"\x00" * 11 + b"ab\x00"],
)  # fmt: skip
def test_malformed_packets_raise_rtp_error_only(data):
    with pytest.raises(RtpError):
        parse_rtp(data)


def test_rtcp_is_told_apart():
    assert is_rtcp(b"\x80\xc8" + b"\x00" * 26)  # sender report
    assert not is_rtcp(build_rtp(0, False, 1, 1, 1, b""))


def test_sequence_wraps_at_65535_and_losses_are_counted():
    stats = ReceiveStats()
    seqs = (65533, 65534, 65535, 1, 2)
    exts = [stats.update(RtpPacket(0, False, seq, seq * 160, 1, b""), seq * 0.02) for seq in seqs]
    assert exts == [65533, 65534, 65535, 65537, 65538]
    assert (stats.expected, stats.received, stats.lost) == (6, 5, 1)
    assert stats.jitter == 0.0  # arrivals exactly on the RTP clock


def test_jitter_follows_rfc3550():
    stats = ReceiveStats()
    for i, arrival in enumerate([0.0, 0.025, 0.040, 0.065]):
        stats.update(RtpPacket(0, False, i, i * 160, 1, b""), arrival)
    # transit differences in timestamp units: 40, 40, 40 -> J = 40/16, then +(40-J)/16, ...
    j = 0.0
    for d in (40, 40, 40):
        j += (d - j) / 16
    assert stats.jitter == pytest.approx(j)


def test_latch_first_learns_a_nat_source_of_the_calls_own_host_in_sequence_then_drops_others():
    nat = ("203.0.113.5", 31000)  # the caller's public address: their SIP came from it too
    latch = SourceLatch(("10.0.0.2", 4000), mode="first", needed=3, hosts=frozenset({nat[0]}))
    latch.open(0.0)
    attacker = ("198.51.100.9", 5555)
    assert not any(latch.accept(attacker, seq, 0.01) for seq in range(10))  # not the call's host: never learned
    assert not latch.accept(nat, 10, 0.1) and not latch.accept(nat, 11, 0.12)  # on probation: dropped
    assert latch.latched is None and latch.send_to == ("10.0.0.2", 4000)
    assert latch.accept(nat, 12, 0.14) and latch.latched == nat
    assert not latch.accept(attacker, 13, 0.16)
    assert latch.foreign == 11 and latch.send_to == nat
    assert latch.accept(("10.0.0.2", 4000), 1, 0.2)  # the SDP's own address takes over, and keeps it
    assert latch.latched == ("10.0.0.2", 4000) and not latch.accept(nat, 13, 0.22)
    latch.relearn(("10.0.0.3", 4002))
    assert latch.latched is None and latch.send_to == ("10.0.0.3", 4002)


def test_latch_learns_only_in_its_window_and_any_learns_from_anywhere():
    stranger = ("198.51.100.9", 5555)
    late = SourceLatch(("10.0.0.2", 4000), mode="any", needed=3)
    late.open(0.0)
    assert not any(late.accept(stranger, seq, 5.5 + seq / 50) for seq in range(5))  # after the 5 s window
    early = SourceLatch(("10.0.0.2", 4000), mode="any", needed=3)
    early.open(0.0)
    assert [early.accept(stranger, seq, 1 + seq / 50) for seq in range(4)] == [False, False, True, True]
    strict = SourceLatch(("10.0.0.2", 4000), mode="sdp", hosts=frozenset({"198.51.100.9"}))
    strict.open(0.0)
    assert not any(strict.accept(stranger, seq, 0.1) for seq in range(5)) and strict.accept(("10.0.0.2", 4000), 1, 0.2)


def test_latch_sdp_accepts_only_the_offered_address():
    latch = SourceLatch(("10.0.0.2", 4000), mode="sdp")
    assert latch.accept(("10.0.0.2", 4000), 1, 0.0)
    assert not latch.accept(("10.0.0.2", 4001), 2, 0.02)
    assert latch.foreign == 1


def test_a_new_ssrc_starts_its_own_sequence_space():
    stats = ReceiveStats()
    for seq in (100, 101, 102):
        stats.update(RtpPacket(8, False, seq, seq * 160, 1, b""), seq * 0.02)
    for seq in (40000, 40001):
        stats.update(RtpPacket(101, False, seq, 9999, 2, b""), 3.0, timing=False)
    assert (stats.expected, stats.received, stats.lost, stats.source_changes) == (5, 5, 0, 1)
