import pytest

from ivrd.media.dtmf import Digit, DigitStream, DtmfError, Rfc4733Receiver, parse_event


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
