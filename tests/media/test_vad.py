"""The endpointer on frames: a click is not speech, speech ends after its trailing silence or at the limit."""

from __future__ import annotations

import numpy as np

from ivrd.media.vad import Endpointer

LOUD = (np.sin(np.arange(160) / 3) * 8000).astype(np.int16)
QUIET = np.zeros(160, dtype=np.int16)


def run(endpointer, frames):
    return [(i, e) for i, f in enumerate(frames) if (e := endpointer.feed(f)) is not None]


def test_speech_starts_after_three_loud_frames_and_ends_after_the_silence():
    frames = [QUIET] * 5 + [LOUD, LOUD, QUIET] + [LOUD] * 20 + [QUIET] * 40
    assert run(Endpointer(end_silence=0.6), frames) == [(10, "start"), (57, "end")]


def test_speech_that_goes_on_ends_at_the_longest_length_once():
    endpointer = Endpointer(max_speech=1.0)
    assert run(endpointer, [LOUD] * 100) == [(2, "start"), (49, "max")]
    assert endpointer.feed(QUIET) is None and endpointer.ended
