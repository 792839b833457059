"""The operator's console against a real daemon: SIPp callers waiting in a queue, baresip agents; ``ivrd
status`` (text and JSON) shows what /metrics says, ``ivrd hangup`` ends a call (its record says so),
``ivrd agent`` and ``ivrd reload`` change the daemon, and the flows in use are served as pictures."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.graph import UNCOVERED_COLOUR
from tests.integration.baresip import CONFIG_DIR, agent_phone
from tests.integration.daemon import daemon_running, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import held_calls, require
from tests.integration.polling import until
from tests.integration.scrape import scrape, value
from tests.test_flowgraph import drawn

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")]

TOKEN = "console-secret"
ACCOUNTS = '  accounts: {"2001": "pw-one", "2002": "pw-two"}\n  digest_algorithms: [MD5]\n'
ROUTING = """routing:
  queues:
    billing: { skills: "billing >= 1", wrap_up: 1 }
  agents:
    "2001": { name: Ada, skills: { billing: 4 } }
    "2002": { name: Grace, skills: { billing: 2 } }
calls:
  record: true
"""
STEPS = """  welcome:
    say: "Hello."
  billing:
    queue: billing
    next: nobody
  nobody:
    hangup: "Nobody is there."
"""


def ivrd(config: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivrd.cli", *args, "-c", str(config)], capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip


def test_status_shows_the_calls_queues_and_agents_that_metrics_count_and_the_commands_act(tmp_path):
    require("baresip", "sipp", "espeak-ng", "dot")
    config_text = one_flow(tmp_path / "flows", STEPS) + ROUTING
    with daemon_running(config_text, sip_section=ACCOUNTS, http_section=f"  token: {TOKEN}\n") as daemon:
        config = daemon.workdir / "ivrd.yaml"
        ada = agent_phone(daemon.port, "2001", "pw-one", auto=True, codecs="PCMU")
        grace = agent_phone(daemon.port, "2002", "pw-two", auto=False, codecs="PCMU")
        callers = None
        try:
            daemon.wait_for_event("sip.registered", 2)
            assert ivrd(config, "agent", "2001", "available").stdout.strip() == "2001: available"
            callers = held_calls(daemon.port, 3, rate=10, hold_ms=25000, cwd=tmp_path)
            daemon.wait_for_event("queue.bridged")
            until(lambda: value(scrape(daemon, TOKEN), "ivrd_queue_callers_waiting", queue="billing") == 2,
                  what="two callers waiting")  # fmt: skip

            asked = time.time()
            done = ivrd(config, "status", "--json")
            assert done.returncode == 0, done.stderr
            status = json.loads(done.stdout)
            samples = scrape(daemon, TOKEN)
            elapsed = time.time() - asked
            calls = status["calls"]
            assert len(calls) == value(samples, "ivrd_calls_active") == 3
            assert sorted(c["state"] for c in calls) == ["agent", "queue", "queue"]
            assert {c["queue"] for c in calls} == {"billing"} and {c["flow"] for c in calls} == {"main"}
            assert [c["agent"] for c in calls if c["state"] == "agent"] == ["2001"]
            (queue,) = status["queues"]
            assert queue["waiting"] == value(samples, "ivrd_queue_callers_waiting", queue="billing") == 2
            assert abs(queue["oldest_wait"] - value(samples, "ivrd_queue_oldest_wait_seconds", queue="billing")) \
                <= elapsed + 0.2  # fmt: skip
            assert queue["agents"] == {"available": 0, "offered": 0, "busy": 1, "wrap_up": 0, "away": 1}
            for state in ("available", "offered", "busy", "wrap_up", "away"):
                assert sum(a["state"] == state for a in status["agents"]) == value(samples, "ivrd_agents", state=state)
            assert status["load"]["limiting"] is False and 0 <= status["load"]["busy"] <= 1
            agents = {a["id"]: a for a in status["agents"]}
            assert agents["2001"]["state"] == "busy" and agents["2002"]["state"] == "away"

            text = ivrd(config, "status").stdout
            lines = text.splitlines()
            assert all(len(line) <= 80 for line in lines), text
            assert sum(" main.billing " in line and " queue " in line for line in lines) == 2, text
            assert sum(" main.billing " in line and " agent " in line and "2001" in line for line in lines) == 1
            (billing,) = [line for line in lines if line.startswith("billing ")]
            assert billing.split()[1:2] == ["2"] and billing.split()[3:7] == ["0", "1", "0", "1"], billing
            assert any(line.startswith("2001") and "Ada" in line and "busy" in line for line in lines)
            assert any(line.startswith("loop busy ") and line.endswith("taking every call") for line in lines)

            # without the token: refused, and said so
            refused = subprocess.run([sys.executable, "-m", "ivrd.cli", "status", "--url",
                                      f"http://127.0.0.1:{daemon.http_port}"], capture_output=True, text=True,
                                     timeout=30, check=False)  # fmt: skip
            assert refused.returncode == 1 and "401 a bearer token is needed" in refused.stderr

            # --watch: the screen again and again until Ctrl-C, which ends it cleanly
            watching = subprocess.Popen([sys.executable, "-m", "ivrd.cli", "status", "--watch", "0.5", "-c",
                                         str(config)], stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert watching.stdout is not None
            frames = 0
            for line in watching.stdout:
                frames += line.startswith("\x1b[H\x1b[2Jivrd ")
                if frames == 2:
                    break
            watching.send_signal(signal.SIGINT)
            assert watching.wait(10) == 0

            # hang up a waiting caller: the call ends with a BYE, counted, recorded as the operator's doing
            waiting = next(c for c in calls if c["state"] == "queue")
            hung = ivrd(config, "hangup", waiting["id"])
            assert hung.returncode == 0, hung.stderr
            until(lambda: value(scrape(daemon, TOKEN), "ivrd_calls_active") == 2, what="the call ended")
            assert ivrd(config, "hangup", waiting["id"]).stderr.strip() == \
                f"ivrd: DELETE /calls/{waiting['id']}: 404 no such call in progress"  # fmt: skip
            daemon.wait_for_event("call.end")
            (ended,) = events(daemon.log, "call.end")
            assert ended["reason"] == "operator" and ended["call_id"] == waiting["call_id"]

            # an agent logged in from the terminal takes the other waiting caller
            assert ivrd(config, "agent", "2002", "available").returncode == 0
            grace.wait_event("CALL_INCOMING")
            assert ivrd(config, "reload").stdout.startswith("reloaded: flows ")

            # the flow in use, drawn
            request = subprocess.run(["curl", "-sf", "-H", f"Authorization: Bearer {TOKEN}",
                                      f"http://127.0.0.1:{daemon.http_port}/flows/main.svg"], capture_output=True,
                                     timeout=30, check=True)  # fmt: skip
            nodes, _, _ = drawn(request.stdout)
            assert {"welcome", "billing", "nobody"} <= set(nodes) and UNCOVERED_COLOUR not in nodes.values()
            # a flow test written beside the flows: the picture marks the step it does not reach
            (tmp_path / "flows" / "tests").mkdir()
            (tmp_path / "flows" / "tests" / "main.yaml").write_text(
                "tests:\n  queued:\n    expect: { end: { queue: billing } }\n")
            request = subprocess.run(["curl", "-sf", "-H", f"Authorization: Bearer {TOKEN}",
                                      f"http://127.0.0.1:{daemon.http_port}/flows/main.svg"], capture_output=True,
                                     timeout=30, check=True)  # fmt: skip
            nodes, _, _ = drawn(request.stdout)
            assert [step for step, fill in nodes.items() if fill == UNCOVERED_COLOUR] == ["nobody"]
        finally:
            if callers is not None:
                _hang_up_all(config)
                try:
                    callers.wait(10)
                except subprocess.TimeoutExpired:
                    callers.kill()
                    callers.wait()
            ada.close()
            grace.close()


def _hang_up_all(config: Path) -> None:
    """The calls still up ended from the daemon's side, so SIPp sees its BYEs and leaves (a SIPp killed with
    calls up leaves the daemon retransmitting BYEs into the void while it stops)."""
    status = ivrd(config, "status", "--json")
    if status.returncode == 0:
        for call in json.loads(status.stdout)["calls"]:
            ivrd(config, "hangup", call["id"])
