"""Voice activity from frame energy, sans-IO: when a caller starts and stops talking.

A frame is speech when its RMS is above :data:`SPEECH_RMS` (about -36 dBFS: above line noise and
comfort noise, below any voice). Speech starts after ``start_frames`` loud frames in a row (a
click is not a caller) and ends after ``end_silence`` seconds of quiet, or at ``max_speech``.
The silence wanted can change while the caller speaks (:meth:`Endpointer.wait_for`): shorter once
what they said is a complete answer.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .g711 import Samples

FRAME_SECONDS = 0.02
SPEECH_RMS = 500.0


def is_speech(samples: Samples) -> bool:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) >= SPEECH_RMS


class Endpointer:
    def __init__(self, *, end_silence: float = 0.7, max_speech: float = 15.0, start_frames: int = 3) -> None:
        self._start_frames = start_frames
        self._end_frames = max(1, round(end_silence / FRAME_SECONDS))
        self._max_frames = round(max_speech / FRAME_SECONDS)
        self._loud = 0
        self._quiet = 0  # frames of quiet since the caller last spoke
        self._spoken = 0
        self.speaking = False
        self.ended = False

    @property
    def quiet_seconds(self) -> float:
        """The trailing silence heard so far."""
        return self._quiet * FRAME_SECONDS

    def wait_for(self, end_silence: float) -> None:
        """End the utterance after ``end_silence`` seconds of quiet instead; the quiet already heard
        counts, so a shorter wait already served ends it at the next frame."""
        self._end_frames = max(1, round(end_silence / FRAME_SECONDS))

    def feed(self, samples: Samples) -> Literal["start", "end", "max"] | None:
        """One 20 ms frame; "start" when speech begins, "end" or "max" when the utterance is over."""
        if self.ended:
            return None
        loud = is_speech(samples)
        if not self.speaking:
            self._loud = self._loud + 1 if loud else 0
            if self._loud >= self._start_frames:
                self.speaking = True
                self._spoken = self._loud
                return "start"
            return None
        self._spoken += 1
        self._quiet = 0 if loud else self._quiet + 1
        if self._quiet >= self._end_frames:
            self.ended = True
            return "end"
        if self._spoken >= self._max_frames:
            self.ended = True
            return "max"
        return None
