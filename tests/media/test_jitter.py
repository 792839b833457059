from ivrd.media.jitter import LOST, JitterBuffer


def drain(buffer, ticks):
    return [buffer.pop() for _ in range(ticks)]


def test_reorders_within_the_target_depth():
    buffer = JitterBuffer(min_frames=3, max_frames=10)
    for seq in (100, 102, 101, 103, 104):
        buffer.push(seq, bytes([seq - 100]))
    assert drain(buffer, 5) == [b"\x00", b"\x01", b"\x02", b"\x03", b"\x04"]


def test_duplicates_and_late_packets_are_dropped_and_counted():
    buffer = JitterBuffer(min_frames=1)
    buffer.push(1, b"a")
    buffer.push(1, b"a")
    assert buffer.pop() == b"a"
    buffer.push(1, b"a")  # after it was played
    assert (buffer.stats.duplicates, buffer.stats.late) == (1, 1)


def test_a_lost_packet_is_concealed_once_later_ones_are_waiting():
    buffer = JitterBuffer(min_frames=2)
    for seq in (1, 3, 4):
        buffer.push(seq, b"x")
    assert drain(buffer, 4) == [b"x", LOST, b"x", b"x"]
    assert buffer.stats.lost == 1


def test_underflow_rebuffers_to_the_target():
    buffer = JitterBuffer(min_frames=2)
    buffer.push(1, b"a")
    assert buffer.pop() is None  # not yet at depth 2
    buffer.push(2, b"b")
    assert drain(buffer, 3) == [b"a", b"b", None]
    assert buffer.stats.underflows == 1


def test_extended_sequence_numbers_cross_the_16_bit_wrap():
    buffer = JitterBuffer(min_frames=1)
    for ext in (65534, 65535, 65536, 65537):
        buffer.push(ext, ext.to_bytes(4, "big"))
    assert [int.from_bytes(f, "big") for f in drain(buffer, 4)] == [65534, 65535, 65536, 65537]


def test_overflow_skips_ahead_and_the_target_adapts():
    buffer = JitterBuffer(min_frames=1, max_frames=4)
    for seq in range(10):
        buffer.push(seq, b"x")
    assert buffer.depth == 4 and buffer.stats.overflows == 6
    buffer.adapt(0.0)
    assert buffer.target == 1
    buffer.adapt(0.030)  # 30 ms of jitter: about 3 deviations -> 1 + 4.5 frames
    assert buffer.target == 4  # capped by max_frames


def test_drain_hands_over_what_is_still_buffered_in_order_with_gaps_marked():
    buffer = JitterBuffer(min_frames=3, max_frames=10)
    for seq in (10, 11, 13):
        buffer.push(seq, bytes([seq]))
    assert buffer.pop() == b"\x0a"
    assert buffer.drain() == [b"\x0b", LOST, b"\x0d"]
    assert buffer.drain() == []
    buffer.push(12, b"late")
    assert buffer.stats.late == 1
