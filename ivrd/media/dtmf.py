"""DTMF, sans-IO: RFC 4733 telephone-events in, and one deduplicated digit stream per call.

An RFC 4733 event is identified by its RTP timestamp: its first packet starts the digit (the
moment to stop a prompt), its end packets (sent three times) finish it, and the digit is reported
once with its duration. A phone that sends the same press both as RFC 4733 and as SIP INFO (or
whose RFC 4733 press is also heard in-band) yields one digit: :class:`DigitStream` drops a second
report of the same digit from another source while the first press is still fresh.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_DIGITS = "0123456789*#ABCD"
RTP_CLOCK = 8000


class DtmfError(Exception):
    """A telephone-event payload that cannot be read."""


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str
    duration_ms: int | None
    source: str  # "rfc4733", "info" or "inband"
    at: float  # when the press began (monotonic seconds)


@dataclass(frozen=True, slots=True)
class EventPayload:
    event: int
    end: bool
    volume: int
    duration: int  # timestamp units


def parse_event(payload: bytes) -> EventPayload:
    """RFC 4733 §2.3: event, E bit, volume, duration. Extra bytes (redundant blocks) are ignored."""
    if len(payload) < 4:
        raise DtmfError("telephone-event payload shorter than 4 bytes")
    return EventPayload(payload[0], bool(payload[1] & 0x80), payload[1] & 0x3F, int.from_bytes(payload[2:4], "big"))


class Rfc4733Receiver:
    """Turns telephone-event packets into digit starts and finished digits."""

    def __init__(self) -> None:
        self._current: int | None = None  # RTP timestamp of the event in progress
        self._current_event = 0
        self._started_at = 0.0
        self._finished: set[int] = set()

    def packet(self, timestamp: int, payload: bytes, now: float) -> tuple[str | None, Digit | None]:
        """``(digit that starts now, digit that finished now)``; either may be None."""
        event = parse_event(payload)
        if event.event >= len(EVENT_DIGITS):
            return None, None  # flash and other events: not digits
        if timestamp in self._finished:
            return None, None  # a repeated end packet
        started: str | None = None
        finished: Digit | None = None
        if timestamp != self._current:
            if self._current is not None:  # the previous press lost all its end packets
                finished = Digit(EVENT_DIGITS[self._current_event], None, "rfc4733", self._started_at)
                self._finished.add(self._current)
            self._current, self._current_event, self._started_at = timestamp, event.event, now
            started = EVENT_DIGITS[event.event]
        if event.end:
            finished = Digit(EVENT_DIGITS[event.event], event.duration * 1000 // RTP_CLOCK, "rfc4733", self._started_at)
            self._finished.add(timestamp)
            if len(self._finished) > 64:
                self._finished = {timestamp}
            self._current = None
        return started, finished


class DigitStream:
    """Merges digits from every source into one stream without doubles (see the module docstring)."""

    def __init__(self, window: float = 0.3) -> None:
        self.window = window
        self.digits: list[Digit] = []

    def add(self, digit: Digit) -> bool:
        """Record ``digit``; False when it repeats a press another source already reported."""
        for seen in reversed(self.digits):
            if digit.at - seen.at > self.window:
                break
            if seen.digit == digit.digit and seen.source != digit.source:
                return False
        self.digits.append(digit)
        return True

    @property
    def text(self) -> str:
        return "".join(d.digit for d in self.digits)
