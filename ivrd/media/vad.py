"""Voice activity from frame energy, sans-IO: when a caller starts and stops talking.

A frame is speech when it is louder than :data:`SPEECH_RMS` (about -36 dBFS: above comfort noise, below
any voice) and than the line's noise floor by :data:`MARGIN_DB`. The floor is the quietest frame of the
last :data:`FLOOR_SECONDS`: speech always has a pause or a weak consonant that long, a line's hiss or
an engine's hum does not, so the floor follows the noise wherever it starts or moves, and a caller on
a noisy line still has an end of speech. Once the caller speaks, what is more than
:data:`UNDER_VOICE_DB` under their voice is not them either: the talk of a room behind them, which no
floor can tell from speech, ends their utterance as silence would.

Speech starts after ``start_frames`` speech frames in a row (a click is not a caller) and ends after
``end_silence`` seconds without one, or at ``max_speech``. The silence wanted can change while the
caller speaks (:meth:`Endpointer.wait_for`): shorter once what they said is a complete answer.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Literal

import numpy as np

from .g711 import Samples

FRAME_SECONDS = 0.02
SPEECH_RMS = 500.0
MARGIN_DB = 6.0
FLOOR_SECONDS = 1.5
UNDER_VOICE_DB = 12.0  # what is this far under the caller's voice is someone else, not the caller
VOICE_FRAMES = 5  # the caller's voice: the level this many of their loudest frames reach (a click is not it)
_SPEECH_DB = 20 * math.log10(SPEECH_RMS)


def level_db(samples: Samples) -> float:
    """A frame's power in dB (0 for digital silence; 90.3 for a full-scale square wave)."""
    return 10 * math.log10(float(np.mean(samples.astype(np.float64) ** 2)) + 1.0)


class SpeechFrames:
    """Tells speech frames from the line's noise, frame by frame (see the module docstring)."""

    def __init__(self) -> None:
        self._levels: deque[float] = deque(maxlen=round(FLOOR_SECONDS / FRAME_SECONDS))
        self.level = 0.0  # the last frame's, in dB

    def feed(self, samples: Samples) -> bool:
        """Whether this 20 ms frame is speech."""
        level = self.level = level_db(samples)
        self._levels.append(level)
        return level >= _SPEECH_DB and level >= min(self._levels) + MARGIN_DB


class Endpointer:
    def __init__(self, *, end_silence: float = 0.7, max_speech: float = 15.0, start_frames: int = 3) -> None:
        self._start_frames = start_frames
        self._end_frames = max(1, round(end_silence / FRAME_SECONDS))
        self._max_frames = round(max_speech / FRAME_SECONDS)
        self._loud = 0
        self._quiet = 0  # frames of quiet since the caller last spoke
        self._spoken = 0
        self._speech = SpeechFrames()
        self._loudest: list[float] = []  # a min-heap of the utterance's VOICE_FRAMES loudest frames
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
        loud = self._speech.feed(samples)
        if loud:
            level = self._speech.level
            if len(self._loudest) < VOICE_FRAMES:
                heapq.heappush(self._loudest, level)
            elif level > self._loudest[0]:
                heapq.heapreplace(self._loudest, level)
            loud = level >= self._loudest[0] - UNDER_VOICE_DB  # voices behind the caller's are not the caller
        if not self.speaking:
            if not loud:
                self._loudest.clear()  # a start that came to nothing: its level is no one's voice
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
