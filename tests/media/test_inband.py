"""In-band DTMF: every digit, through the codec; no digit in speech; digits found under speech."""

from __future__ import annotations

import numpy as np
import pytest

from ivrd.media import g711
from ivrd.media.dtmf import COLUMNS, KEYPAD, ROWS, InbandDetector
from tests.audio import sox_tone, speech, with_tones
from tests.integration.peers import require


def detect(samples: np.ndarray, codec: str = "PCMU") -> list[tuple[str, int]]:
    samples = g711.decode(g711.encode(samples, codec), codec)  # as it arrives in a call
    detector = InbandDetector()
    found = []
    for i in range(0, len(samples) - 159, 160):
        _, done = detector.feed(samples[i : i + 160], (i + 160) / 8000)
        if done:
            found.append((done.digit, done.duration_ms))
    return found


def pair(low: float, high: float, seconds: float, low_db: float = 0.0, high_db: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return (5000 * 10 ** (low_db / 20) * np.sin(2 * np.pi * low * t)
            + 5000 * 10 ** (high_db / 20) * np.sin(2 * np.pi * high * t)).astype(np.int16)  # fmt: skip


def gap(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 8000), dtype=np.int16)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_every_digit_with_its_duration(codec):
    audio = []
    for r, row in enumerate(KEYPAD):
        for c, _ in enumerate(row):
            audio += [pair(ROWS[r], COLUMNS[c], 0.1), gap(0.06)]
    found = detect(np.concatenate(audio), codec)
    assert "".join(d for d, _ in found) == "".join(KEYPAD)
    assert {duration for _, duration in found} == {100}


def test_a_tone_shorter_than_40ms_or_with_too_much_twist_is_not_a_digit():
    assert detect(np.concatenate([pair(697, 1209, 0.02), gap(0.1)])) == []
    # Q.24 twist: the low group may be up to 8 dB above the high group, the high group up to 4 dB.
    assert detect(np.concatenate([pair(697, 1209, 0.1, high_db=-6), gap(0.1)])) == [("1", 100)]
    assert detect(np.concatenate([pair(697, 1209, 0.1, high_db=-12), gap(0.1)])) == []
    assert detect(np.concatenate([pair(697, 1209, 0.1, low_db=-3), gap(0.1)])) == [("1", 100)]
    assert detect(np.concatenate([pair(697, 1209, 0.1, low_db=-6), gap(0.1)])) == []


def test_sox_synthesized_tones(tmp_path):
    require("sox")
    audio = np.concatenate([np.concatenate([sox_tone(d, 0.08, tmp_path), gap(0.1)]) for d in "159#"])
    assert [d for d, _ in detect(audio)] == list("159#")


@pytest.mark.parametrize("voice", ["en-us", "de", "ko"])
def test_no_digit_in_speech(tmp_path, voice):
    require("espeak-ng", "sox")
    text = "One two three four five six seven eight nine zero. Press one for billing, two for support."
    samples = speech(text, tmp_path, voice)
    loud = np.clip(samples.astype(np.int32) * 3, -32768, 32767).astype(np.int16)
    assert detect(samples) == [] and detect(loud) == []


def test_digits_under_speech(tmp_path):
    require("espeak-ng", "sox")
    samples = speech("Hello, I would like to check my balance please, my account number is", tmp_path)
    assert [d for d, _ in detect(with_tones(samples, "4071#", tmp_path))] == list("4071#")
