"""The Vosk (Kaldi) engine: streaming decoding, grammars as phrase lists, word confidences."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import vosk

from .base import SAMPLE_RATE, AsrError, Result, Word

vosk.SetLogLevel(-1)  # its own logging goes to stderr, one line per utterance


class VoskRecognizer:
    def __init__(self, recognizer: vosk.KaldiRecognizer) -> None:
        self._recognizer = recognizer

    def accept(self, pcm: bytes) -> str | None:
        if self._recognizer.AcceptWaveform(pcm):
            return None  # Vosk found an end of its own; the final result comes with finish()
        partial: str = json.loads(self._recognizer.PartialResult()).get("partial", "")
        return partial or None

    def finish(self) -> Result:
        return _result(json.loads(self._recognizer.FinalResult()))


def _result(raw: dict[str, Any]) -> Result:
    words = tuple(Word(str(w["word"]), float(w["conf"]), float(w["start"]), float(w["end"]))
                  for w in raw.get("result") or ())  # fmt: skip
    confidence = min((w.confidence for w in words), default=0.0)  # a phrase is as sure as its least sure word
    return Result(str(raw.get("text", "")), confidence, words)


class VoskEngine:
    name = "vosk"

    def __init__(self, model_dir: Path, language: str) -> None:
        if not (model_dir / "am").is_dir() and not (model_dir / "final.mdl").exists():
            raise AsrError(f"{model_dir}: not a Vosk model directory (no am/ inside)")
        try:
            self._model = vosk.Model(str(model_dir))
        except Exception as exc:  # the library raises a bare Exception when the model does not load
            raise AsrError(f"{model_dir}: the Vosk model does not load ({exc})") from None
        self.language = language
        self.model_dir = model_dir

    def recognizer(self, phrases: Sequence[str] = ()) -> VoskRecognizer:
        if phrases:
            grammar = json.dumps([p.lower() for p in phrases], ensure_ascii=False)
            kaldi = vosk.KaldiRecognizer(self._model, SAMPLE_RATE, grammar)
        else:
            kaldi = vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
        kaldi.SetWords(True)
        return VoskRecognizer(kaldi)

    def close(self) -> None:
        """Nothing to release: the model goes with the process."""

    def unknown_words(self, phrases: Sequence[str]) -> list[str]:
        words = {word for phrase in phrases for word in phrase.lower().split()}
        return sorted(w for w in words if self._model.vosk_model_find_word(w) < 0)
