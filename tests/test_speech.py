"""A call's speech stream on a real engine: start of speech at once, the result after the trailing silence."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.base import Result
from asr.sphinx_engine import SphinxEngine
from asr.vosk_engine import VoskEngine
from ivrd.speech import MAX_PENDING, SpeechStream, complete_answers
from tests.asr.test_engines import ENGLISH_MENU, KOREAN_MENU, KOREAN_MODEL
from tests.audio import speech, syllables
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

    name, language, lead_ms = "slow", "en", 300

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
    quiet = np.zeros(8000, dtype=np.int16)
    loud = np.concatenate([quiet, syllables(50 * 30), quiet])  # 30 s of "speech" between quiet seconds

    # the decoder stays stuck on its first chunk until every frame has been fed
    happened, stream = asyncio.run(listen(engine, loud, phrases=(), max_speech=60, fed=engine.release.set))
    assert happened[-1] == Result("slow", 1.0)
    assert stream.dropped > 0
    assert engine.chunks <= MAX_PENDING + 2  # what waited while the decoder was stuck was bounded


def test_a_whole_answer_is_a_phrase_no_longer_phrase_begins_with():
    answers = complete_answers(["요금 문의", "요금", "Technical support", "technical", "상담원 연결"])
    assert answers == {("요금", "문의"), ("technical", "support"), ("상담원", "연결")}


class ScriptedEngine:
    """Partial results in the order given, one per chunk of audio (the last one repeated)."""

    name, language, lead_ms = "scripted", "ko", 300

    def __init__(self, partials: list[str]) -> None:
        self.partials = partials

    def recognizer(self, phrases=()):
        partials = iter(self.partials)
        last = [""]

        class Scripted:
            def accept(self, pcm):
                last[0] = next(partials, last[0])
                return last[0] or None

            def finish(self):
                return Result(last[0], 0.9)

        return Scripted()

    def unknown_words(self, phrases):
        return []


async def answer(partials: list[str], phrases=("요금 문의", "요금 안내", "상담원 연결"), min_confidence=0.0):
    """Speak until the stream has heard ``partials``' last one, then go quiet until the result."""
    talk = np.concatenate([np.zeros(10 * FRAME, np.int16), syllables(8 * len(partials) + 8)])  # quiet, then talk
    heard = asyncio.Event()
    done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
    with ThreadPoolExecutor(1) as executor:
        stream = SpeechStream(ScriptedEngine(partials), phrases, executor, end_silence=2.0, complete_silence=0.3,
                              max_speech=10, on_start=lambda: None, on_result=lambda r, s: done.set_result(r),
                              on_partial=lambda text: text == partials[-1] and heard.set(),
                              min_confidence=min_confidence)  # fmt: skip
        for i in range(0, len(talk), FRAME):  # a 160 ms chunk per partial (the last one again after them)
            stream.feed(talk[i : i + FRAME])
        await asyncio.wait_for(heard.wait(), 10)
        while not done.done():
            stream.feed(np.zeros(FRAME, dtype=np.int16))
            await asyncio.sleep(0)
        return stream, done.result()


def test_a_whole_answer_ends_after_the_shorter_silence():
    stream, result = asyncio.run(answer(["요금", "요금 문의"]))
    assert result.text == "요금 문의"
    assert stream.ended_by == "complete" and stream.trailing_silence == pytest.approx(0.3)


def test_a_partial_answer_waits_for_the_whole_silence():
    stream, _ = asyncio.run(answer(["상담원"]))  # the caller may be about to say 연결
    assert stream.ended_by == "silence" and stream.trailing_silence == pytest.approx(2.0)
    assert not stream.complete


def test_a_result_outside_the_phrases_is_a_no_match_and_the_log_keeps_what_was_heard():
    stream, result = asyncio.run(answer(["상담원"]))  # a fragment of a phrase
    assert result.text == "" and stream.refused == "상담원"


def test_a_result_less_sure_than_the_engines_floor_is_a_no_match():
    stream, result = asyncio.run(answer(["요금", "요금 문의"], min_confidence=0.95))  # the engine says 0.9
    assert result.text == "" and stream.refused == "요금 문의"
    stream, result = asyncio.run(answer(["요금", "요금 문의"], min_confidence=0.9))
    assert result.text == "요금 문의" and stream.refused == ""


@pytest.fixture(scope="module")
def engines():
    require("espeak-ng", "sox")
    english = SphinxEngine("en", processes=1)
    yield {"en": english, "ko": VoskEngine(KOREAN_MODEL, "ko")}
    english.close()


MENUS = {"en": ENGLISH_MENU, "ko": KOREAN_MENU}
WORDS = {"en": ["billing", "technical", "support", "sales", "yes", "no", "main", "menu", "weather", "pizza",
                "hello", "order", "the", "um"],
         "ko": ["네", "아니요", "상담원", "연결", "요금", "문의", "날씨", "피자", "주문", "감사합니다"]}  # fmt: skip
VOICES = {"en": ["en-us", "en-gb", "en-us+f3", "en-029"], "ko": ["ko", "ko+f3", "ko+m7"]}


@settings(max_examples=30, deadline=None, derandomize=True)
@given(data=st.data(), language=st.sampled_from(["en", "ko"]))
def test_whatever_a_caller_says_the_result_is_one_of_the_phrases_or_a_no_match(engines, data, language):
    """Fragments of phrases, phrases run together, other words: never a result the menu does not offer."""
    words = data.draw(st.lists(st.sampled_from(WORDS[language]), min_size=1, max_size=3))
    voice, speed = data.draw(st.sampled_from(VOICES[language])), data.draw(st.integers(120, 230))
    with tempfile.TemporaryDirectory() as folder:
        said = speech(" ".join(words), Path(folder), voice=voice, speed=speed)
    quiet = np.zeros(4000, dtype=np.int16)
    happened, _ = asyncio.run(listen(engines[language], np.concatenate([quiet, said, quiet, quiet]),
                                     phrases=MENUS[language]))  # fmt: skip
    result = happened[-1]
    assert isinstance(result, Result) and result.text in [*MENUS[language], ""], (words, result)
