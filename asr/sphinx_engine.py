"""The PocketSphinx engine: US English from the wheel itself, so speech works with nothing downloaded.

Its model is for 16 kHz audio: calls are upsampled 2x. An utterance is decoded whole when it
ends (PocketSphinx's live cepstral normalization is poor on the first seconds of a stream, and
whole-utterance grammar decoding takes about 1% of the audio's length). Decoders take half a
second to create, so the engine keeps a pool and each recognizer borrows one to finish.
"""

from __future__ import annotations

import hashlib
import queue
from collections.abc import Sequence

import numpy as np
from pocketsphinx import Decoder
from scipy.signal import resample_poly

from .base import AsrError, Result, Word

FREE = "_default"  # the decoder's own search: the language model (free speech)


class _Pooled:
    """A decoder and the grammars it has been given (by name)."""

    def __init__(self) -> None:
        self.decoder = Decoder(samprate=16000, loglevel="FATAL")
        self.grammars: set[str] = set()


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
        wide = np.clip(np.round(resample_poly(samples, 2, 1)), -32768, 32767).astype("<i2").tobytes()
        return self._engine.decode(wide, self._phrases)


class SphinxEngine:
    name = "pocketsphinx"

    def __init__(self, language: str = "en", *, decoders: int = 2) -> None:
        if language != "en":
            raise AsrError(f"the built-in PocketSphinx model is US English, not {language!r}")
        self.language = language
        self._pool: queue.SimpleQueue[_Pooled] = queue.SimpleQueue()
        first = _Pooled()
        self._dictionary = first.decoder
        self._pool.put(first)
        for _ in range(decoders - 1):
            self._pool.put(_Pooled())

    def recognizer(self, phrases: Sequence[str] = ()) -> SphinxRecognizer:
        return SphinxRecognizer(self, phrases)

    def unknown_words(self, phrases: Sequence[str]) -> list[str]:
        words = {word for phrase in phrases for word in phrase.lower().split()}
        return sorted(w for w in words if self._dictionary.lookup_word(w) is None)

    def decode(self, pcm16k: bytes, phrases: tuple[str, ...]) -> Result:
        pooled = self._pool.get()
        try:
            decoder = pooled.decoder
            if phrases:
                name = "g" + hashlib.sha1("\n".join(phrases).encode()).hexdigest()[:16]
                if name not in pooled.grammars:
                    alternatives = " | ".join(phrases)
                    decoder.add_jsgf_string(name, f"#JSGF V1.0;\ngrammar menu;\npublic <choice> = {alternatives};\n")
                    pooled.grammars.add(name)
                decoder.activate_search(name)
            else:
                decoder.activate_search(FREE)
            decoder.start_utt()
            decoder.process_raw(pcm16k, False, True)
            decoder.end_utt()
            hypothesis = decoder.hyp()
            if hypothesis is None or not hypothesis.hypstr:
                return Result("", 0.0)
            confidence = float(decoder.get_logmath().exp(hypothesis.prob))
            words = tuple(Word(seg.word, confidence, seg.start_frame / 100, seg.end_frame / 100)
                          for seg in decoder.seg() if not seg.word.startswith(("<", "[")))  # fmt: skip
            return Result(hypothesis.hypstr, confidence, words)
        finally:
            self._pool.put(pooled)
