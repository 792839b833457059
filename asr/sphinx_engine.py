"""The PocketSphinx engine: US English from the wheel itself, so speech works with nothing downloaded.

Its model is for 16 kHz audio: calls are upsampled 2x. An utterance is decoded whole when it
ends (PocketSphinx's live cepstral normalization is poor on the first seconds of a stream, and
whole-utterance grammar decoding takes about 1% of the audio's length). A menu answer's confidence
is its fit against a phone loop decoded on the same audio (about 4% of its length more: the
result comes some 80 ms later, but other speech is told from menu answers). PocketSphinx holds the
GIL while it decodes (two threads decode no faster than one, bench/asr.py), which would stall
the event loop and with it every call's audio: decoding runs in worker processes, each with its
own decoder (created once: half a second), and the calling thread only waits for the answer.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from pocketsphinx import Decoder, get_model_path
from scipy.signal import resample_poly

from .base import AsrError, Result, Word

FREE = "_default"  # the decoder's own search: the language model (free speech)
PHONES = "phones"  # any sequence of English phones: what the audio sounds like, whatever was said

_decoder: Decoder | None = None  # in a worker process: its decoder
_grammars: set[str] = set()  # ... and the grammars given to it so far


def new_decoder() -> Decoder:
    """PocketSphinx's US English decoder, for 16 kHz audio (half a second to make), with the phone loop."""
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    decoder.add_allphone_file(PHONES, os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin"))
    return decoder


def _start_worker() -> None:
    global _decoder
    _decoder = new_decoder()


def _ready() -> bool:
    return _decoder is not None


def _run(decoder: Decoder, search: str, pcm16k: bytes) -> None:
    decoder.activate_search(search)
    decoder.start_utt()
    decoder.process_raw(pcm16k, False, True)
    decoder.end_utt()


# How far a grammar reading may fit the speech worse than the phone loop does, in the decoder's log
# units per frame of speech, and still be a menu answer: at this fit its confidence is one half. From
# bench/asr_accuracy.py (6 English voices, 3 speeds, clean and noisy lines): 95% of right menu answers
# fit at -89 or better, two thirds of other speech worse. FIT_SPREAD: how fast confidence falls away.
FIT_AT_HALF = -89.0
FIT_SPREAD = 10.0


def confidence_of_fit(fit: float) -> float:
    """The confidence (0-1) of a grammar reading whose score is ``fit`` per frame of speech under the
    phone loop's (the log likelihood ratio of the reading against any sound of the language)."""
    z = (fit - FIT_AT_HALF) / FIT_SPREAD
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0  # math.exp overflows past 709


def _decode(pcm16k: bytes, phrases: tuple[str, ...]) -> Result:
    """In a worker process: one whole utterance, against a grammar of ``phrases`` or free."""
    decoder = _decoder
    assert decoder is not None
    if not phrases:
        _run(decoder, FREE, pcm16k)
        hypothesis = decoder.hyp()
        if hypothesis is None or not hypothesis.hypstr:
            return Result("", 0.0)
        # The lattice holds the best reading twice (the same words through two paths of equal score, as
        # nbest() shows), so one path's posterior tops out at one half: the reading's is twice that.
        posterior = min(1.0, 2 * float(hypothesis.prob))
        return Result(hypothesis.hypstr, posterior, tuple(w.with_confidence(posterior) for w in _spans(decoder)))
    name = "g" + hashlib.sha1("\n".join(phrases).encode()).hexdigest()[:16]
    if name not in _grammars:
        decoder.add_jsgf_string(name, f"#JSGF V1.0;\ngrammar menu;\npublic <choice> = {' | '.join(phrases)};\n")
        _grammars.add(name)
    _run(decoder, name, pcm16k)
    hypothesis = decoder.hyp()
    if hypothesis is None or not hypothesis.hypstr:
        return Result("", 0.0)
    # A grammar always yields its nearest phrase, and its posterior only says how sure it is among the
    # phrases: "um" was "no" and "weather" "billing" at 0.5 and more. What tells other speech apart is
    # how much worse the reading fits the audio than the best sequence of phones does.
    logmath = decoder.logmath
    reading = logmath.log(hypothesis.best_score)
    spans = _spans(decoder)
    frames = max(1, sum(w.last - w.first + 1 for w in spans))
    _run(decoder, PHONES, pcm16k)
    # The phone loop's silence is left out: it costs more there than the grammar's, and how much
    # silence the line has around the words is not what is asked.
    sounds = sum(logmath.log(seg.ascore) for seg in decoder.seg() if seg.word != "SIL")
    confidence = confidence_of_fit((reading - sounds) / frames)
    return Result(hypothesis.hypstr, confidence, tuple(w.with_confidence(confidence) for w in spans))


def _spans(decoder: Decoder) -> list[_Span]:
    """The last search's words and their times."""
    # "to(3)": the dictionary's third pronunciation of "to"
    return [_Span(seg.word.partition("(")[0], seg.start_frame, seg.end_frame)
            for seg in decoder.seg() if not seg.word.startswith(("<", "["))]  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Span:
    text: str
    first: int  # frames of 10 ms
    last: int

    def with_confidence(self, confidence: float) -> Word:
        return Word(self.text, confidence, self.first / 100, self.last / 100)


FLOOR_DB = 20.0  # the noise floor under the speech, in dB below its level


def with_floor(samples: np.ndarray) -> np.ndarray:
    """``samples`` over a noise floor ``FLOOR_DB`` under their loud frames' level.

    The model was trained on recordings that always have a noise floor. Exact digital silence and
    near-silence (synthetic prompts, phones that suppress silence, muted tracks) give frames whose
    log energies sit far below anything it saw, and the utterance's cepstral mean with them: clean
    speech was recognized worse than the same speech in noise (64% against 94% of menu phrases on
    bench/asr_accuracy.py). Only what the line lacks of such a floor is added (its quietest frames
    tell), so noisy speech is left as it is. Seeded: the same audio always decodes the same."""
    frames = samples[: samples.size // 80 * 80].reshape(-1, 80)  # 10 ms
    if frames.size == 0:
        return samples
    power = np.mean(frames**2, axis=1)
    level = float(np.mean(power[power >= 0.1 * power.max()]))
    missing = level / 10 ** (FLOOR_DB / 10) - float(np.percentile(power, 10))  # what the line lacks of a floor
    if missing <= 0:
        return samples
    return samples + np.random.default_rng(0).normal(0.0, np.sqrt(missing), samples.size)


class SphinxRecognizer:
    def __init__(self, engine: SphinxEngine, phrases: Sequence[str]) -> None:
        self._engine = engine
        self._phrases = tuple(p.lower() for p in phrases)
        self._audio: list[bytes] = []

    def accept(self, pcm: bytes) -> str | None:
        self._audio.append(pcm)
        return None

    def finish(self) -> Result:
        samples = np.frombuffer(b"".join(self._audio), dtype="<i2").astype(np.float64)
        if samples.size == 0:
            return Result("", 0.0)
        if self._phrases:  # measured on menus; free speech (the language model) decodes as it comes
            samples = with_floor(samples)
        wide = np.clip(np.round(resample_poly(samples, 2, 1)), -32768, 32767).astype("<i2").tobytes()
        return self._engine.decode(wide, self._phrases)


class SphinxEngine:
    name = "pocketsphinx"
    lead_ms = 1000  # white noise at 20, 10 dB SNR: 92, 60% of menu answers; 89, 57% with 300 ms (bench/asr_accuracy.py)

    def __init__(self, language: str = "en", *, processes: int = 2) -> None:
        if language != "en":
            raise AsrError(f"the built-in PocketSphinx model is US English, not {language!r}")
        self.language = language
        self._dictionary = new_decoder()  # for vocabulary checks, here
        # spawn: a fork of a process running threads and an event loop is not safe
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_start_worker)
        for started in [self._pool.submit(_ready) for _ in range(processes)]:  # now, not on a caller's first word
            started.result()

    def recognizer(self, phrases: Sequence[str] = ()) -> SphinxRecognizer:
        return SphinxRecognizer(self, phrases)

    def unknown_words(self, phrases: Sequence[str]) -> list[str]:
        words = {word for phrase in phrases for word in phrase.lower().split()}
        return sorted(w for w in words if self._dictionary.lookup_word(w) is None)

    def decode(self, pcm16k: bytes, phrases: tuple[str, ...]) -> Result:
        """Decode in a worker process; blocks the calling thread (not the GIL) until it is done."""
        return self._pool.submit(_decode, pcm16k, phrases).result()

    def close(self) -> None:
        # Wait for the workers: a pool left to the interpreter's exit hook can write to a pipe it has
        # already closed there and print a traceback (EBADF) on the way out.
        self._pool.shutdown(wait=True, cancel_futures=True)
