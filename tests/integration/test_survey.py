"""The post-call survey through the real daemon: the caller talks to a baresip agent, the agent hangs up,
the caller stays on for the queue step's survey flow and presses a score, which the call's record and
`ivrd_csat_responses_total` keep; a caller who hangs up in the survey counts as no answer, not a score."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.audio import speech
from tests.integration.baresip import CONFIG_DIR, agent_phone
from tests.integration.daemon import daemon_running
from tests.integration.peers import require
from tests.integration.rtp_caller import RtpCaller
from tests.integration.scrape import scrape, value

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")]

ACCOUNTS = '  accounts: {"2001": "pw-one"}\n  digest_algorithms: [MD5]\n'
ROUTING = """routing:
  queues:
    billing: { wrap_up: 1, dispositions: [resolved], disposition_keys: {"1": resolved} }
  agents:
    "2001": { skills: { billing: 4 } }
"""
MAIN = """default: true
steps:
  q:
    queue: billing
    survey: survey
"""
SURVEY = (Path(__file__).resolve().parents[2] / "etc" / "flows" / "survey.yaml").read_text()  # the example's


def _talk_then_agent_hangs_up(daemon, ada, code: str = "") -> RtpCaller:
    """A call the agent answers, keys ``code`` in (a wrap-up code), and hangs up."""
    caller = RtpCaller(daemon.port)
    caller.call()
    daemon.wait_for_event("call.flow")
    ada.wait_event("CALL_ESTABLISHED")
    if code:
        ada.command("sndcode", code)
        daemon.wait_for_event("queue.disposition")
    ada.command("hangup")
    ada.wait_event("CALL_CLOSED")
    return caller


def test_the_caller_stays_on_for_the_survey_and_their_score_is_kept(tmp_path):
    """By key, by hanging up (no score), and by voice ("four", PocketSphinx on the example's survey); the
    first call's agent keys a wrap-up code on their phone, its disposition."""
    require("baresip", "espeak-ng", "sox")
    four = speech("four", tmp_path)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(MAIN)
    (flows / "survey.yaml").write_text(SURVEY)
    config = f"flows:\n  dir: {flows}\n" + ROUTING + "log:\n  level: debug\n"  # call.listening is a debug event
    with daemon_running(config, sip_section=ACCOUNTS) as daemon:
        ada = agent_phone(daemon.port, "2001", "pw-one", auto=True, codecs="PCMU")
        try:
            daemon.wait_for_event("sip.registered")
            daemon.api("POST", "/agents/2001/state", {"state": "available"})
            scored = _talk_then_agent_hangs_up(daemon, ada, "*1")  # the agent's phone: "resolved"
            try:
                daemon.wait_for_event("queue.call_end")
                scored.wait_for_packets(len(scored.received) + 50)  # the survey's question plays
                scored.press_rfc4733(4)
                scored.wait_bye()  # "Thank you.", then the flow hangs up
            finally:
                scored.close()
            daemon.wait_for_event("call.end")
            gone = _talk_then_agent_hangs_up(daemon, ada)
            try:
                daemon.wait_for_event("queue.call_end", 2)
                assert gone.bye() == 200  # hangs up in the survey
            finally:
                gone.close()
            daemon.wait_for_event("call.end", 2)
            spoken = _talk_then_agent_hangs_up(daemon, ada)  # this one says its score
            try:
                daemon.wait_for_event("queue.call_end", 3)
                daemon.wait_for_event("call.listening", 1)  # the survey's menu hears speech
                spoken.stream(np.zeros(1600, dtype=np.int16))
                spoken.stream(four)
                for _ in range(8):
                    spoken.stream(np.zeros(1600, dtype=np.int16))
                spoken.wait_bye()
            finally:
                spoken.close()
            daemon.wait_for_event("call.end", 3)
            samples = scrape(daemon)
            records = daemon.records(3)
            kpi = json.loads(subprocess.run([sys.executable, "-m", "ivrd.cli", "calls", "--db",
                                             str(daemon.workdir / "calls.db"), "--kpi", "--json"],
                                            capture_output=True, text=True, check=True).stdout)  # fmt: skip
        finally:
            ada.close()
    assert value(samples, "ivrd_csat_responses_total", queue="billing", score="4") == 2
    assert value(samples, "ivrd_csat_responses_total", queue="billing", score="none") == 1
    assert value(samples, "ivrd_csat_points_total", queue="billing", agent="2001") == 8  # two fours
    assert value(samples, "ivrd_csat_scored_total", queue="billing", agent="2001") == 2
    assert sorted(r["csat"] for r in records) == ["4", "4", "none"]
    assert [(r["csat"], r["disposition"]) for r in records if r["disposition"]] == [("4", "resolved")]
    assert all(r["outcome"] == "agent" and r["agent"] == "2001" for r in records)
    assert kpi["queue billing"]["csat"] == 4.0 and kpi["queue billing"]["surveyed"] == 3
