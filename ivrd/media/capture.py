"""Recording a message (voicemail): the caller's audio until they stop talking, a key, or the longest length."""

from __future__ import annotations

from collections.abc import Callable

from .g711 import Samples
from .recorder import Recorder
from .vad import FRAME_SECONDS, SpeechFrames


class Capture:
    """Feeds a :class:`Recorder` frame by frame and decides when the message is over.

    It ends after ``silence_seconds`` of quiet (counted from the start too, so a caller who says
    nothing is not recorded for the longest length) or at ``max_seconds``; ``on_end`` gets the
    reason once: ``silence``, ``max`` or whatever :meth:`stop` is given.
    """

    def __init__(self, recorder: Recorder, *, max_seconds: float, silence_seconds: float,
                 on_end: Callable[[str], None]) -> None:  # fmt: skip
        self.recorder = recorder
        self._max_frames = round(max_seconds / FRAME_SECONDS)
        self._quiet_limit = round(silence_seconds / FRAME_SECONDS)
        self._quiet = 0
        self._speech = SpeechFrames()
        self._on_end: Callable[[str], None] | None = on_end
        self.spoke = False

    @property
    def seconds(self) -> float:
        return self.recorder.frames * FRAME_SECONDS

    def add(self, samples: Samples) -> None:
        if self._on_end is None:
            return
        self.recorder.add(samples)
        loud = self._speech.feed(samples)
        self.spoke = self.spoke or loud
        self._quiet = 0 if loud else self._quiet + 1
        if self.recorder.frames >= self._max_frames:
            self.stop("max")
        elif self._quiet >= self._quiet_limit:
            self.stop("silence")

    def stop(self, reason: str) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(reason)
