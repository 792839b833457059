"""A message ends on trailing silence, at the longest length, or when stopped; it says why once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ivrd.media.capture import Capture
from ivrd.media.recorder import Recorder

LOUD = (np.sin(np.arange(160) / 3) * 8000).astype(np.int16)
QUIET = np.zeros(160, dtype=np.int16)


def capture(tmp_path, **limits):
    ends: list[str] = []
    recorder = Recorder(tmp_path / "m.wav", ThreadPoolExecutor(1))
    return Capture(recorder, on_end=ends.append, **limits), ends


def test_silence_after_speech_ends_the_message(tmp_path):
    message, ends = capture(tmp_path, max_seconds=60, silence_seconds=1.0)
    for _ in range(100):
        message.add(LOUD)
    for _ in range(49):
        message.add(QUIET)
    assert ends == [] and message.spoke
    message.add(QUIET)
    assert ends == ["silence"] and message.seconds == 3.0
    message.add(LOUD)  # after the end: nothing more is kept
    assert message.recorder.frames == 150


def test_the_longest_length_and_a_stop_end_it_once(tmp_path):
    message, ends = capture(tmp_path, max_seconds=1, silence_seconds=5)
    for _ in range(60):
        message.add(LOUD)
    message.stop("key")
    assert ends == ["max"] and message.recorder.frames == 50
    quiet, quiet_ends = capture(tmp_path, max_seconds=60, silence_seconds=0.5)
    for _ in range(25):
        quiet.add(QUIET)
    assert quiet_ends == ["silence"] and not quiet.spoke  # nobody spoke: no minute of nothing
