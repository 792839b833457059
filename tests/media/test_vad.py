"""The endpointer on frames: a click is not speech, speech ends after its trailing silence or at the limit."""

from __future__ import annotations

import numpy as np

from ivrd.media.vad import Endpointer
from tests.audio import noise_frames, speech_over

LOUD = (np.sin(np.arange(160) / 3) * 8000).astype(np.int16)
QUIET = np.zeros(160, dtype=np.int16)


def run(endpointer, frames):
    return [(i, e) for i, f in enumerate(frames) if (e := endpointer.feed(f)) is not None]


def test_speech_starts_after_three_loud_frames_and_ends_after_the_silence():
    frames = [QUIET] * 5 + [LOUD, LOUD, QUIET] + [LOUD] * 20 + [QUIET] * 40
    assert run(Endpointer(end_silence=0.6), frames) == [(10, "start"), (57, "end")]


def test_speech_that_goes_on_ends_at_the_longest_length_once():
    endpointer = Endpointer(max_speech=1.0)
    assert run(endpointer, [QUIET] * 5 + [LOUD] * 100) == [(7, "start"), (54, "max")]
    assert endpointer.feed(QUIET) is None and endpointer.ended


def test_speech_on_a_noisy_line_ends_after_its_silence_not_at_the_longest_length():
    """Noise far above the fixed threshold (about -20 dBFS, as a car or a street): the speech over it
    starts the utterance, and its end ends it, though the noise never stops."""
    line = noise_frames(3000, 50) + speech_over(noise_frames(3000, 40, seed=2), 12000) + noise_frames(3000, 200, seed=3)
    events = run(Endpointer(end_silence=0.7, max_speech=10.0), line)
    assert [e for _, e in events] == ["start", "end"]
    (start, _), (end, _) = events
    assert 50 <= start <= 55 and end == 89 + 35  # the speech's start; 0.7 s (35 frames) after its last frame


def test_noise_that_starts_under_a_caller_is_learnt_and_ends_the_utterance():
    """The line goes from digital silence to loud noise with nobody speaking: it may look like speech at
    first, but once it has lasted the floor's window it is the floor, and the utterance ends."""
    line = [QUIET] * 20 + noise_frames(3000, 500)
    events = run(Endpointer(end_silence=0.7, max_speech=10.0), line)
    assert events[-1][1] == "end" and events[-1][0] <= 20 + 75 + 35 + 1


def test_quiet_speech_on_a_silent_line_is_still_speech():
    """The floor only raises the bar on a noisy line: on a silent one the fixed threshold decides."""
    line = [QUIET] * 20 + speech_over([QUIET] * 30, 1500) + [QUIET] * 50
    events = run(Endpointer(end_silence=0.7), line)
    assert [e for _, e in events] == ["start", "end"] and events[1][0] == 20 + 30 + 34


def test_a_line_loud_from_its_first_frame_is_its_floor_not_a_caller():
    """Nothing quieter heard yet, nothing to stand out from: a noisy line does not barge in on a prompt."""
    assert run(Endpointer(), noise_frames(3000, 200)) == []


def test_talk_in_the_room_behind_the_caller_does_not_hold_their_utterance_open():
    """Other voices 18 dB under the caller's (a call centre, a café) are speech by every other measure:
    the caller's end of speech still ends the utterance."""
    room = [f.astype(np.int16) for f in speech_over([QUIET] * 400, 1500)]
    line = [QUIET] * 10 + speech_over(room[:40], 12000) + room[40:]
    events = run(Endpointer(end_silence=0.7, max_speech=10.0), line)
    assert [e for _, e in events] == ["start", "end"]
    assert 10 + 40 + 30 <= events[1][0] <= 10 + 40 + 35  # 0.7 s after the caller's last syllable
