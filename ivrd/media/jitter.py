"""An adaptive jitter buffer, sans-IO: packets in by extended sequence number, one frame out per tick.

Playout starts once ``target`` frames are buffered; each :meth:`JitterBuffer.pop` returns the next
frame in order, :data:`LOST` when a later packet is there but this one is not (the caller conceals
it with silence), or None when nothing is due (an underflow, after which the buffer grows its
target). Duplicates and packets older than the playout point are dropped and counted. The target
follows the measured jitter within ``[min_frames, max_frames]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

LOST: Final = b""


@dataclass(slots=True)
class JitterStats:
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    underflows: int = 0
    overflows: int = 0


class JitterBuffer:
    def __init__(self, *, min_frames: int = 1, max_frames: int = 10, frame_seconds: float = 0.02) -> None:
        self.min_frames = min_frames
        self.max_frames = max_frames
        self.frame_seconds = frame_seconds
        self.target = min_frames
        self.stats = JitterStats()
        self._frames: dict[int, bytes] = {}
        self._next: int | None = None  # the extended sequence number to play next
        self._playing = False

    @property
    def depth(self) -> int:
        return len(self._frames)

    def push(self, ext_seq: int, payload: bytes) -> None:
        if self._next is None:
            self._next = ext_seq
        if ext_seq < self._next:
            self.stats.late += 1
            return
        if ext_seq in self._frames:
            self.stats.duplicates += 1
            return
        self._frames[ext_seq] = payload
        if len(self._frames) > self.max_frames:  # fell too far behind: skip ahead to the oldest kept
            self.stats.overflows += 1
            del self._frames[min(self._frames)]
            self._next = min(self._frames)

    def restart(self) -> None:
        """A new stream (SSRC): its sequence numbers start elsewhere; drop what is queued."""
        self._frames.clear()
        self._next = None
        self._playing = False

    def adapt(self, jitter_seconds: float) -> None:
        """Set the target depth from the RFC 3550 jitter estimate (about three deviations, plus a frame)."""
        wanted = 1 + int(3 * jitter_seconds / self.frame_seconds + 0.5)
        self.target = max(self.min_frames, min(self.max_frames, wanted))

    def drain(self) -> list[bytes]:
        """Everything still buffered, in order, with :data:`LOST` for the gaps (the stream has ended)."""
        if not self._frames:
            return []
        assert self._next is not None
        last = max(self._frames)
        frames = [self._frames.get(seq, LOST) for seq in range(self._next, last + 1)]
        self._frames.clear()
        self._next = last + 1
        return frames

    def pop(self) -> bytes | None:
        if not self._playing:
            if len(self._frames) < self.target:
                return None
            self._playing = True
        assert self._next is not None
        frame = self._frames.pop(self._next, None)
        if frame is not None:
            self._next += 1
            return frame
        if self._frames and max(self._frames) - self._next >= self.target:  # it had its chance to arrive
            self.stats.lost += 1
            self._next += 1
            return LOST
        self.stats.underflows += 1
        self._playing = False  # rebuffer to the target before playing again
        return None
