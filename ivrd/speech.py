"""Speech recognition in calls: the engines (one per language, loaded once) and one stream per question.

Audio reaches the recognizer only once the caller speaks (the voice-activity endpointer decides,
with 300 ms of audio from before the start so the first syllable is kept), in 160 ms chunks,
decoded on a thread pool (both engines release the GIL while decoding). Each stream decodes its
chunks in order, one at a time; a stream whose decoder falls behind drops its oldest audio rather
than grow without bound.

The trailing silence that ends an utterance follows VoiceXML's complete and incomplete timeouts:
while the engine's partial result is one of the phrases, and no longer phrase begins with it, the
caller has given a whole answer and ``complete_silence`` ends it; otherwise (or in free speech, or
with an engine that has no partial results) they may still be speaking and ``end_silence`` does.

With phrases, what the flow hears is one of them or a no-match: an engine's result outside them (a
fragment of a phrase, Vosk's ``[unk]``) or less sure than the engine's ``asr.min_confidence`` is
refused (``SpeechStream.refused`` keeps it for the log).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

from asr.base import AsrError, Engine, Recognizer, Result
from asr.sphinx_engine import SphinxEngine
from asr.vosk_engine import VoskEngine

from .config import AsrConfig
from .logs import event
from .media.g711 import Samples
from .media.vad import FRAME_SECONDS, Endpointer

log = logging.getLogger("ivrd.speech")
CHUNK_BYTES = 2560  # 160 ms of 8 kHz 16-bit audio
MAX_PENDING = 64  # chunks (about 10 s) waiting for a busy decoder
_FINISH = b""


class Speech:
    """The engines by language, and the threads they decode on.

    Configured Vosk models load at start (ops asked for them: a broken one stops the start); the
    built-in English engine loads the first time a flow needs it, so a deployment without speech
    costs nothing.
    """

    def __init__(self, config: AsrConfig) -> None:
        self.config = config
        self.engines: dict[str, Engine] = {}
        self.executor: Executor = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="ivrd-asr")
        self._lock = threading.Lock()
        self._builtin_tried = False

    def load(self) -> None:
        """Load every configured model (seconds each); raise :class:`AsrError`."""
        for language, directory in self.config.models.items():
            self.engines[language] = VoskEngine(Path(directory), language, alternatives=self.config.alternatives,
                                                chunk_ms=self.config.acoustic_chunk_ms or None)
            event(log, "asr.model_loaded", engine="vosk", language=language, model=directory)

    def engine_for(self, language: str | None) -> Engine | None:
        wanted = language or self.config.language
        with self._lock:  # flows load on a worker thread; calls ask on the loop
            if wanted == "en" and wanted not in self.engines and not self._builtin_tried:
                self._builtin_tried = True
                try:
                    self.engines["en"] = SphinxEngine("en", processes=self.config.threads)
                except (RuntimeError, OSError, AsrError) as exc:
                    event(log, "asr.unavailable", logging.WARNING, engine="pocketsphinx", error=repr(exc))
                else:
                    event(log, "asr.model_loaded", engine="pocketsphinx", language="en", model="built in",
                          note="no Vosk model for English is configured: using PocketSphinx's US English")  # fmt: skip
            return self.engines.get(wanted)

    def check_phrases(self, language: str | None, phrases: Sequence[str]) -> str | None:
        """What is wrong with listening for ``phrases`` in ``language`` (None: nothing)."""
        wanted = language or self.config.language
        engine = self.engine_for(wanted)
        if engine is None:
            known = ", ".join(sorted(self.engines)) or "none"
            return f"no speech model for language {wanted!r} (asr.models in the configuration; loaded: {known})"
        unknown = engine.unknown_words(phrases)
        if unknown:
            return f"not in the {engine.name} {engine.language} vocabulary: {', '.join(unknown)}"
        return None

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        for engine in self.engines.values():
            engine.close()


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.lower().split())


def _spoken(text: str) -> str:
    """``text`` as a phrase's key: lower case, single spaces."""
    return " ".join(_words(text))


def complete_answers(phrases: Sequence[str]) -> frozenset[tuple[str, ...]]:
    """The phrases (as words) after which nothing more is expected: those no longer phrase begins with."""
    spoken = {_words(p) for p in phrases}
    return frozenset(p for p in spoken if not any(len(q) > len(p) and q[: len(p)] == p for q in spoken))


class SpeechStream:
    """One question's listening: caller audio in (20 ms frames, on the loop), callbacks out.
    ``ended_by`` says what ended the utterance: "complete", "silence" or "max"."""

    def __init__(self, engine: Engine, phrases: Sequence[str], executor: Executor, *, end_silence: float,
                 max_speech: float, on_start: Callable[[], None], on_result: Callable[[Result, float], None],
                 complete_silence: float | None = None, on_partial: Callable[[str], None] = lambda _: None,
                 min_confidence: float = 0.0) -> None:  # fmt: skip
        self._engine = engine
        self.language = engine.language
        self._phrases = tuple(phrases)
        self._grammar = {_spoken(p): p for p in phrases}
        self._min_confidence = min_confidence
        self.refused = ""  # a result refused: outside the phrases, or not sure enough
        self._executor = executor
        self._endpoint = Endpointer(end_silence=end_silence, max_speech=max_speech)
        self._end_silence = end_silence
        self._complete_silence = end_silence if complete_silence is None else min(complete_silence, end_silence)
        self._complete = complete_answers(phrases)
        self._on_partial = on_partial
        self.partial = ""
        self.complete = False  # whether the partial result is a whole answer
        self.ended_by: str | None = None
        self.trailing_silence = 0.0  # what ended it, when silence did
        self._on_start = on_start
        self._on_result = on_result
        self._preroll: deque[bytes] = deque(maxlen=max(1, round(engine.lead_ms / 1000 / FRAME_SECONDS)))
        self._chunk = bytearray()
        self._pending: deque[bytes] = deque()
        self._busy = False
        self._recognizer: Recognizer | None = None
        self._ended_at = 0.0
        self.closed = False
        self.dropped = 0

    def feed(self, samples: Samples) -> None:
        if self.closed or self._endpoint.ended:
            return
        pcm = samples.astype("<i2").tobytes()
        happened = self._endpoint.feed(samples)
        if not self._endpoint.speaking:
            self._preroll.append(pcm)
            return
        if happened == "start":
            self._chunk += b"".join(self._preroll)
            self._preroll.clear()
            self._on_start()
        self._chunk += pcm
        if len(self._chunk) >= CHUNK_BYTES or self._endpoint.ended:
            self._submit(bytes(self._chunk))
            self._chunk.clear()
        if self._endpoint.ended:
            self._ended_at = time.monotonic()
            self.ended_by = "max" if happened == "max" else "complete" if self.complete else "silence"
            self.trailing_silence = self._endpoint.quiet_seconds
            self._submit(_FINISH)

    def close(self) -> None:
        self.closed = True
        self._pending.clear()

    def _submit(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        if len(self._pending) > MAX_PENDING:
            self._pending.popleft()
            self.dropped += 1
        if not self._busy:
            self._next()

    def _next(self) -> None:
        if self.closed or not self._pending:
            self._busy = False
            return
        self._busy = True
        chunk = self._pending.popleft()
        work = asyncio.get_running_loop().run_in_executor(self._executor, self._decode, chunk)
        work.add_done_callback(self._decoded)

    def _decode(self, chunk: bytes) -> Result | str | None:
        """On a decoding thread: the final result, or the partial text after more audio."""
        if self._recognizer is None:
            self._recognizer = self._engine.recognizer(self._phrases)
        if chunk is _FINISH:
            return self._recognizer.finish()
        return self._recognizer.accept(chunk)

    def _within_grammar(self, result: Result) -> Result:
        if not self._grammar or not result.text:
            return result
        phrase = self._grammar.get(_spoken(result.text))
        if phrase is None or result.confidence < self._min_confidence:
            self.refused = result.text
            return Result("", result.confidence)
        alternatives = tuple(a for a in result.alternatives if _spoken(a.text) in self._grammar)
        return Result(phrase, result.confidence, result.words, alternatives)

    def _heard_so_far(self, partial: str) -> None:
        if partial == self.partial or self._endpoint.ended:
            return
        self.partial = partial
        self.complete = _words(partial) in self._complete
        self._endpoint.wait_for(self._complete_silence if self.complete else self._end_silence)
        self._on_partial(partial)

    def _decoded(self, work: asyncio.Future[Result | str | None]) -> None:
        if work.cancelled():
            return
        error = work.exception()
        if error is not None:
            event(log, "asr.error", logging.ERROR, engine=self._engine.name, error=repr(error))
            self.closed = True
            self._on_result(Result("", 0.0), 0.0)
            return
        result = work.result()
        if isinstance(result, Result):
            if not self.closed:
                self.closed = True
                self._on_result(self._within_grammar(result), time.monotonic() - self._ended_at)
            return
        if result is not None and not self.closed:
            self._heard_so_far(result)
        self._next()
