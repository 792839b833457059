"""A call's speech stream on a real engine: start of speech at once, the result after the trailing silence."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from asr.base import Result
from asr.sphinx_engine import SphinxEngine
from ivrd.speech import MAX_PENDING, SpeechStream
from tests.audio import speech
from tests.integration.peers import require

FRAME = 160


async def listen(engine, samples: np.ndarray, phrases=("billing", "sales"), max_speech=10.0, fed=lambda: None):
    happened: list[object] = []
    done = asyncio.Event()

    def heard(result: Result, latency: float) -> None:
        happened.append(result)
        done.set()

    with ThreadPoolExecutor(2) as executor:
        stream = SpeechStream(engine, phrases, executor, end_silence=0.5, max_speech=max_speech,
                              on_start=lambda: happened.append("start"), on_result=heard)  # fmt: skip
        for i in range(0, len(samples) - FRAME + 1, FRAME):
            stream.feed(samples[i : i + FRAME])
            await asyncio.sleep(0)  # the loop turns between frames, as it does between RTP packets
        fed()
        await asyncio.wait_for(done.wait(), 10)
    return happened, stream


def test_a_spoken_phrase_starts_then_ends_in_one_result(tmp_path):
    require("espeak-ng", "sox")
    quiet = np.zeros(8000, dtype=np.int16)
    said = np.concatenate([quiet, speech("billing", tmp_path), quiet])
    happened, stream = asyncio.run(listen(SphinxEngine("en", processes=1), said))
    assert happened[0] == "start" and len(happened) == 2
    assert isinstance(happened[1], Result) and happened[1].text == "billing"
    assert stream.closed and stream.dropped == 0


def test_silence_never_reaches_the_recognizer():
    """No input is the flow's timeout: a caller who says nothing starts no utterance and gets no result."""
    engine = SlowEngine()
    engine.release.set()

    async def main():
        with ThreadPoolExecutor(1) as executor:
            stream = SpeechStream(engine, ("billing",), executor, end_silence=0.5, max_speech=10,
                                  on_start=lambda: pytest.fail("speech started"),
                                  on_result=lambda r, s: pytest.fail(f"a result: {r}"))  # fmt: skip
            for _ in range(250):  # five seconds of line noise below the speech threshold
                stream.feed((np.random.default_rng(1).normal(0, 100, FRAME)).astype(np.int16))
                await asyncio.sleep(0)
        return stream

    stream = asyncio.run(main())
    assert engine.chunks == 0 and not stream.closed


class SlowEngine:
    """An engine whose decoding blocks until released: the stream must not queue without bound."""

    name, language = "slow", "en"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.chunks = 0

    def recognizer(self, phrases=()):
        engine = self

        class Slow:
            def accept(self, pcm):
                engine.release.wait(10)
                engine.chunks += 1

            def finish(self):
                return Result("slow", 1.0)

        return Slow()

    def unknown_words(self, phrases):
        return []


def test_a_decoder_that_falls_behind_drops_the_oldest_audio_not_memory():
    engine = SlowEngine()
    talk = (np.sin(np.arange(8000 * 30) / 3) * 8000).astype(np.int16)  # 30 s of "speech", then a second of quiet
    loud = np.concatenate([talk, np.zeros(8000, dtype=np.int16)])

    # the decoder stays stuck on its first chunk until every frame has been fed
    happened, stream = asyncio.run(listen(engine, loud, phrases=(), max_speech=60, fed=engine.release.set))
    assert happened[-1] == Result("slow", 1.0)
    assert stream.dropped > 0
    assert engine.chunks <= MAX_PENDING + 2  # what waited while the decoder was stuck was bounded
