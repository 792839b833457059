"""Free speech to text, a whole recording's channel at a time, with word timings: what a conversation
becomes once the call is over.

With a Vosk model the channel is streamed through one recognizer, which finds the utterances itself;
PocketSphinx (English, no model to download) decodes each stretch of speech whole, found by its
energy over the line's quietest level. Engines are loaded once per process and kept: this runs in
the daemon's transcription workers, never on its event loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import vosk
from scipy.signal import resample_poly

from .base import SAMPLE_RATE
from .sphinx_engine import new_decoder, with_floor

FRAME: Final = 160  # 20 ms at 8 kHz
SPEECH_DB: Final = 15.0  # a frame this far over the channel's quiet level is speech
QUIET_PERCENTILE: Final = 10  # the channel's quiet level: its 10th percentile frame
MIN_LEVEL_DB: Final = -50.0  # and never quieter than this (a channel of exact silence holds no speech)
GAP_SECONDS: Final = 0.6  # pauses shorter than this stay inside one utterance
PAD_SECONDS: Final = 0.2  # of the line kept before and after each utterance
CHUNK: Final = 8000  # samples fed to Vosk at a time (1 s)

_engines: dict[tuple[str, str | None], Any] = {}  # (language, model dir) -> a loaded model, in this process


@dataclass(frozen=True, slots=True)
class Segment:
    """One utterance: when (seconds from the start of the recording), what was said, and each word."""

    start: float
    end: float
    text: str
    words: tuple[tuple[str, float, float], ...]  # (word, start, end), seconds from the start


def transcribe(samples: npt.NDArray[np.int16], model_dir: str | None) -> list[Segment]:
    """``samples`` (8 kHz) as text: with the Vosk model in ``model_dir``, or PocketSphinx's English."""
    if model_dir is not None:
        return _vosk(samples, model_dir)
    return [s for start, end in speech_spans(samples) if (s := _sphinx(samples, start, end)) is not None]


def speech_spans(samples: npt.NDArray[np.int16]) -> list[tuple[int, int]]:
    """Where the speech is: (first, last) sample of each stretch louder than the channel's quiet level."""
    count = samples.size // FRAME
    if count == 0:
        return []
    frames = samples[: count * FRAME].astype(np.float64).reshape(count, FRAME)
    level = 10 * np.log10(np.mean(frames**2, axis=1) / 32768.0**2 + 1e-12)
    threshold = max(float(np.percentile(level, QUIET_PERCENTILE)), MIN_LEVEL_DB) + SPEECH_DB
    loud = np.flatnonzero(level > threshold)
    spans: list[tuple[int, int]] = []
    gap, pad = int(GAP_SECONDS * 50), int(PAD_SECONDS * 50)
    for index in loud:
        if spans and index - spans[-1][1] <= gap:
            spans[-1] = (spans[-1][0], int(index))
        else:
            spans.append((int(index), int(index)))
    return [(max(0, a - pad) * FRAME, min(count, b + 1 + pad) * FRAME) for a, b in spans]


def _sphinx(samples: npt.NDArray[np.int16], start: int, end: int) -> Segment | None:
    decoder = _engines.get(("en", None))
    if decoder is None:
        decoder = _engines[("en", None)] = new_decoder()
    piece = resample_poly(with_floor(samples[start:end].astype(np.float64)), 2, 1)
    decoder.activate_search("_default")
    decoder.start_utt()
    decoder.process_raw(np.clip(piece, -32768, 32767).astype("<i2").tobytes(), False, True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    if hypothesis is None or not hypothesis.hypstr.strip():
        return None
    offset = start / SAMPLE_RATE
    words = tuple((seg.word.partition("(")[0], round(offset + seg.start_frame / 100, 2),
                   round(offset + seg.end_frame / 100, 2))
                  for seg in decoder.seg() if not seg.word.startswith(("<", "[")))  # fmt: skip
    return Segment(round(offset, 2), round(end / SAMPLE_RATE, 2), hypothesis.hypstr, words)


def _vosk(samples: npt.NDArray[np.int16], model_dir: str) -> list[Segment]:
    model = _engines.get(("vosk", model_dir))
    if model is None:
        vosk.SetLogLevel(-1)
        model = _engines[("vosk", model_dir)] = vosk.Model(str(Path(model_dir)))
    recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE)
    recognizer.SetWords(True)
    segments: list[Segment] = []
    data = samples.astype("<i2").tobytes()
    for at in range(0, len(data), CHUNK * 2):
        if recognizer.AcceptWaveform(data[at : at + CHUNK * 2]):
            _keep(json.loads(recognizer.Result()), segments)
    _keep(json.loads(recognizer.FinalResult()), segments)
    return segments


def _keep(result: dict[str, Any], segments: list[Segment]) -> None:
    words = tuple((str(w["word"]), round(float(w["start"]), 2), round(float(w["end"]), 2))
                  for w in result.get("result") or ())  # fmt: skip
    text = str(result.get("text", "")).strip()
    if text and words:
        segments.append(Segment(words[0][1], words[-1][2], text, words))
