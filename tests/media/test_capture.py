"""A message ends on trailing silence, at the longest length, or when stopped; it says why once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ivrd.media.capture import Capture
from ivrd.media.recorder import Recorder
from tests.audio import noise_frames, speech_over

LOUD = (np.sin(np.arange(160) / 3) * 8000).astype(np.int16)
QUIET = np.zeros(160, dtype=np.int16)


def capture(tmp_path, **limits):
    ends: list[str] = []
    recorder = Recorder(tmp_path / "m.wav", ThreadPoolExecutor(1))
    return Capture(recorder, on_end=ends.append, **limits), ends


def test_silence_after_speech_ends_the_message(tmp_path):
    message, ends = capture(tmp_path, max_seconds=60, silence_seconds=1.0)
    for frame in [QUIET] + [LOUD] * 60 + [QUIET] * 49:
        message.add(frame)
    assert ends == [] and message.spoke
    message.add(QUIET)
    assert ends == ["silence"] and message.recorder.frames == 111
    message.add(LOUD)  # after the end: nothing more is kept
    assert message.recorder.frames == 111


def test_a_message_left_from_a_noisy_line_ends_when_the_caller_stops(tmp_path):
    """The noise (about -20 dBFS, a car) goes on after the caller has finished: it is the line, not them."""
    message, ends = capture(tmp_path, max_seconds=60, silence_seconds=1.0)
    for frame in noise_frames(3000, 25) + speech_over(noise_frames(3000, 100, seed=2), 12000):
        message.add(frame)
    assert ends == [] and message.spoke
    for frame in noise_frames(3000, 50, seed=3):
        message.add(frame)
    assert ends == ["silence"] and 125 < message.recorder.frames <= 175  # the last syllable may fade early


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
