"""DTMF, sans-IO: RFC 4733 telephone-events and in-band tones in, one deduplicated digit stream per call;
RFC 4733 telephone-events out.

An RFC 4733 event is identified by its RTP timestamp: its first packet starts the digit (the
moment to stop a prompt), its end packets (sent three times) finish it, and the digit is reported
once with its duration. A phone that sends the same press both as RFC 4733 and as SIP INFO (or
whose RFC 4733 press is also heard in-band) yields one digit: :class:`DigitStream` drops a second
report of the same digit from another source while the first press is still fresh.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..sip.dtmf import KEYS

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
        if event.event >= len(KEYS):
            return None, None  # flash and other events: not digits
        if timestamp in self._finished:
            return None, None  # a repeated end packet
        started: str | None = None
        finished: Digit | None = None
        if timestamp != self._current:
            if self._current is not None:  # the previous press lost all its end packets
                finished = Digit(KEYS[self._current_event], None, "rfc4733", self._started_at)
                self._finished.add(self._current)
            self._current, self._current_event, self._started_at = timestamp, event.event, now
            started = KEYS[event.event]
        if event.end:
            finished = Digit(KEYS[event.event], event.duration * 1000 // RTP_CLOCK, "rfc4733", self._started_at)
            self._finished.add(timestamp)
            if len(self._finished) > 64:
                self._finished = {timestamp}
            self._current = None
        return started, finished


class Rfc4733Sender:
    """One digit sent as RFC 4733 telephone-events, one packet per 20 ms frame (§2.5): all with the
    timestamp of the event's start and the duration so far, the first with the marker bit, the last
    (the E bit set) sent three times so that a lost packet does not lose the end."""

    END_REPEATS = 3
    VOLUME = 10  # -10 dBm0, a usual level for a key press

    def __init__(self, digit: str, duration_ms: int = 100, frame_samples: int = 160) -> None:
        if len(digit) != 1 or digit not in KEYS:
            raise DtmfError(f"not a DTMF digit: {digit!r}")
        self.digit = digit
        self._event = KEYS.index(digit)
        self._frame = frame_samples
        self._frames = max(1, -(-duration_ms * RTP_CLOCK // 1000 // frame_samples))
        self._sent = 0

    def next_payload(self) -> tuple[bytes, bool] | None:
        """This frame's ``(payload, marker)``; None once the event is over."""
        index = self._sent
        if index >= self._frames + self.END_REPEATS - 1:
            return None
        self._sent += 1
        end = index >= self._frames - 1
        duration = min(index + 1, self._frames) * self._frame
        flags = (0x80 if end else 0) | self.VOLUME
        return bytes((self._event, flags)) + duration.to_bytes(2, "big"), index == 0


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


ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")


@functools.cache
def _basis(rate: int, block: int) -> npt.NDArray[np.complex128]:
    """The eight DTMF frequencies' Goertzel basis (the same for every call: made once)."""
    n = np.arange(block)
    basis: npt.NDArray[np.complex128] = np.exp(-2j * np.pi * np.outer(np.array(ROWS + COLUMNS), n) / rate)
    basis.flags.writeable = False  # shared by every detector
    return basis


class InbandDetector:
    """Tones in the audio (ITU-T Q.24), one 20 ms block at a time.

    Each block's energy at the eight DTMF frequencies (a Goertzel filter bank) must show one row
    and one column tone that stand clear of the rest of their group, with a twist (row/column
    level ratio) within ``-8 dB..+4 dB``, carrying most of the block's energy (speech spreads its
    energy; a tone pair concentrates it). A digit starts after ``min_blocks`` such blocks in a row
    and is reported when the tone stops.
    """

    def __init__(self, *, rate: int = 8000, block: int = 160, min_blocks: int = 2, min_level: float = 1.0e5) -> None:
        self._basis = _basis(rate, block)
        self._block = block
        self._min_blocks = min_blocks
        self._min_energy = min_level * block  # mean square amplitude floor, about -40 dBm0
        self._candidate: str | None = None
        self._run = 0
        self._active: str | None = None
        self._started_at = 0.0
        self._pending: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)

    def _classify(self, samples: npt.NDArray[np.int16]) -> str | None:
        x = samples.astype(np.float64)
        total = float(np.dot(x, x))
        if total < self._min_energy:
            return None
        energy = np.abs(self._basis @ x) ** 2 * (2.0 / self._block)
        rows, cols = energy[:4], energy[4:]
        r, c = int(np.argmax(rows)), int(np.argmax(cols))
        row, col = float(rows[r]), float(cols[c])
        if np.sort(rows)[-2] * 6.3 > row or np.sort(cols)[-2] * 6.3 > col:  # 8 dB above the rest of the group
            return None
        twist = row / col
        if not 0.4 <= twist <= 6.3:  # column at most 4 dB above, row at most 8 dB above
            return None
        if row + col < 0.7 * total:
            return None
        return KEYPAD[r][c]

    def feed(self, samples: npt.NDArray[np.int16], now: float) -> tuple[str | None, Digit | None]:
        """``(digit that starts now, digit that ended now)`` after the audio in ``samples`` (any length;
        it is cut into blocks, the remainder kept for the next call)."""
        pending = np.concatenate((self._pending, samples)) if len(self._pending) else samples
        started: str | None = None
        finished: Digit | None = None
        blocks = len(pending) // self._block
        for i in range(blocks):
            block_end = now - (blocks - 1 - i) * self._block / 8000
            s, f = self._step(pending[i * self._block : (i + 1) * self._block], block_end)
            started, finished = s or started, f or finished
        self._pending = pending[blocks * self._block :]
        return started, finished

    def _step(self, samples: npt.NDArray[np.int16], now: float) -> tuple[str | None, Digit | None]:
        found = self._classify(samples)
        started: str | None = None
        finished: Digit | None = None
        if found is not None and found == self._candidate:
            self._run += 1
        else:
            self._candidate, self._run = found, 1 if found else 0
        if self._active is not None and found != self._active:
            duration = round((now - self._started_at) * 1000)
            finished = Digit(self._active, duration, "inband", self._started_at)
            self._active = None
        if self._active is None and found is not None and self._run >= self._min_blocks:
            self._active = found
            self._started_at = now - (self._run - 1) * self._block / 8000
            started = found
        return started, finished
