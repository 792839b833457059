import pytest

from ivrd.media.dtmf import Digit, DigitStream, DtmfError, Rfc4733Receiver, Rfc4733Sender, parse_event


def event(digit_code, duration, end=False, volume=10):
    return bytes([digit_code, (0x80 if end else 0) | volume]) + duration.to_bytes(2, "big")


def test_a_press_starts_once_and_finishes_once_despite_three_end_packets():
    rx = Rfc4733Receiver()
    out = [rx.packet(1000, event(5, 400), 0.0), rx.packet(1000, event(5, 800), 0.05),
           rx.packet(1000, event(5, 1280, end=True), 0.1), rx.packet(1000, event(5, 1280, end=True), 0.11),
           rx.packet(1000, event(5, 1280, end=True), 0.12)]  # fmt: skip
    assert out[0] == ("5", None)
    assert out[2] == (None, Digit("5", 160, "rfc4733", 0.0))
    assert out[1] == out[3] == out[4] == (None, None)


def test_every_digit_and_a_long_press():
    rx = Rfc4733Receiver()
    got = []
    for i, code in enumerate(range(16)):
        _, done = rx.packet(i * 10000, event(code, 16000, end=True), float(i))
        got.append((done.digit, done.duration_ms))
    assert "".join(d for d, _ in got) == "0123456789*#ABCD"
    assert got[0][1] == 2000  # 16000 timestamp units at 8 kHz: a two-second press


def test_a_press_whose_end_packets_were_all_lost_is_reported_when_the_next_begins():
    rx = Rfc4733Receiver()
    rx.packet(100, event(1, 400), 0.0)
    started, finished = rx.packet(5000, event(2, 400), 1.0)
    assert started == "2" and finished == Digit("1", None, "rfc4733", 0.0)


def test_flash_is_not_a_digit_and_short_payloads_raise():
    assert Rfc4733Receiver().packet(1, event(16, 400, end=True), 0.0) == (None, None)
    with pytest.raises(DtmfError):
        parse_event(b"\x01\x02")


def test_digit_stream_drops_the_same_press_from_a_second_source():
    stream = DigitStream(window=0.3)
    assert stream.add(Digit("5", 160, "rfc4733", 1.00))
    assert not stream.add(Digit("5", None, "info", 1.05))
    assert stream.add(Digit("5", 160, "rfc4733", 1.10))  # the same source twice: a second press
    assert stream.add(Digit("5", None, "info", 2.0))  # far apart: a new press
    assert stream.text == "555"


def test_a_sent_press_is_what_rfc_4733_asks_and_reads_back_as_the_same_digit():
    sender = Rfc4733Sender("7", duration_ms=100)
    packets = []
    while (event := sender.next_payload()) is not None:
        packets.append(event)
    parsed = [parse_event(payload) for payload, _ in packets]
    # 100 ms = five 20 ms frames with growing durations, then the end sent three times in all
    assert [p.duration for p in parsed] == [160, 320, 480, 640, 800, 800, 800]
    assert [p.end for p in parsed] == [False] * 4 + [True] * 3
    assert [marker for _, marker in packets] == [True] + [False] * 6
    assert {p.event for p in parsed} == {7} and {p.volume for p in parsed} == {10}
    receiver = Rfc4733Receiver()
    results = [receiver.packet(48000, payload, 0.0) for payload, _ in packets]
    assert results[0][0] == "7" and [r[1] for r in results if r[1] is not None] == [Digit("7", 100, "rfc4733", 0.0)]
    with pytest.raises(DtmfError):
        Rfc4733Sender("x")
