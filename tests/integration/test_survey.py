"""The post-call survey through the real daemon: the caller talks to a baresip agent, the agent hangs up,
the caller stays on for the queue step's survey flow and presses a score, which the call's record and
`ivrd_csat_responses_total` keep; a caller who hangs up in the survey counts as no answer, not a score."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.baresip import CONFIG_DIR, agent_phone
from tests.integration.daemon import daemon_running
from tests.integration.peers import require
from tests.integration.rtp_caller import RtpCaller
from tests.integration.scrape import scrape, value

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")]

ACCOUNTS = '  accounts: {"2001": "pw-one"}\n  digest_algorithms: [MD5]\n'
ROUTING = 'routing:\n  queues:\n    billing: { wrap_up: 1 }\n  agents:\n    "2001": { skills: { billing: 4 } }\n'
MAIN = """default: true
steps:
  q:
    queue: billing
    survey: survey
"""
SURVEY = """description: After-call survey
steps:
  ask:
    menu: "How did we do? Press 1 to 5."
    choices:
      - { key: 1, goto: score }
      - { key: 2, goto: score }
      - { key: 3, goto: score }
      - { key: 4, goto: score }
      - { key: 5, goto: score }
    timeout: 10
  score:
    set: { csat: "menu" }
  thanks:
    hangup: "Thank you."
"""


def _talk_then_agent_hangs_up(daemon, ada) -> RtpCaller:
    caller = RtpCaller(daemon.port)
    caller.call()
    daemon.wait_for_event("call.flow")
    ada.wait_event("CALL_ESTABLISHED")
    ada.command("hangup")
    ada.wait_event("CALL_CLOSED")
    return caller


def test_the_caller_stays_on_for_the_survey_and_their_score_is_kept(tmp_path):
    require("baresip")
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(MAIN)
    (flows / "survey.yaml").write_text(SURVEY)
    with daemon_running(f"flows:\n  dir: {flows}\n" + ROUTING, sip_section=ACCOUNTS) as daemon:
        ada = agent_phone(daemon.port, "2001", "pw-one", auto=True, codecs="PCMU")
        try:
            daemon.wait_for_event("sip.registered")
            daemon.api("POST", "/agents/2001/state", {"state": "available"})
            scored = _talk_then_agent_hangs_up(daemon, ada)
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
            samples = scrape(daemon)
            records = daemon.records(2)
            kpi = json.loads(subprocess.run([sys.executable, "-m", "ivrd.cli", "calls", "--db",
                                             str(daemon.workdir / "calls.db"), "--kpi", "--json"],
                                            capture_output=True, text=True, check=True).stdout)  # fmt: skip
        finally:
            ada.close()
    assert value(samples, "ivrd_csat_responses_total", queue="billing", score="4") == 1
    assert value(samples, "ivrd_csat_responses_total", queue="billing", score="none") == 1
    assert sorted(r["csat"] for r in records) == ["4", "none"]
    assert all(r["outcome"] == "agent" and r["agent"] == "2001" for r in records)
    assert kpi["queue billing"]["csat"] == 4.0 and kpi["queue billing"]["surveyed"] == 2
