"""SIGHUP reloads the whole configuration while callers wait and agents are logged in: a broken edit
is refused with its file and line and the old configuration serves on; a valid one adds an agent who
takes the waiting caller at once, and nobody is dropped or logged out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request

import pytest

from tests.integration.daemon import daemon_running, free_port, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import require
from tests.integration.rtp_caller import RtpCaller
from tests.integration.scrape import scrape, value

pytestmark = pytest.mark.peers
STEPS = """  to_sales:
    queue: sales
    next: closed
  closed:
    hangup: "Nobody is there."
"""
ROUTING = """routing:
  offer_timeout: 10
  queues:
    sales: { skills: "sales >= 1", join_empty: true, wrap_up: 0 }
  agents:
    "3001": { skills: { support: 3 }, contact: "sip:3001@127.0.0.1:9" }
"""


def api(daemon, method: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{daemon.http_port}{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_a_reload_adds_an_agent_for_the_waiting_caller_and_a_broken_one_changes_nothing(tmp_path):
    require("sipp")
    agent_port = free_port()
    with daemon_running(ROUTING + one_flow(tmp_path / "flows", STEPS),
                        expected_errors=("config.problem", "config.rejected")) as daemon:
        config = daemon.workdir / "ivrd.yaml"
        original = config.read_text()
        caller = RtpCaller(daemon.port)
        agent = None
        try:
            assert api(daemon, "POST", "/agents/3001/state", {"state": "available"})["state"] == "available"
            caller.call()
            daemon.wait_for_event("queue.join")  # 3001 cannot take sales: the caller waits

            # a misspelt key: refused with where it is, the old configuration serves on
            config.write_text(original.replace("offer_timeout: 10", "offer_timeot: 10"))
            os.kill(daemon.proc.pid, signal.SIGHUP)
            daemon.wait_for_event("config.rejected")
            (problem,) = events(daemon.log, "config.problem")
            line = original.splitlines().index("  offer_timeout: 10") + 1
            assert problem["where"].startswith(f"{config}:{line}:") and "offer_timeot" in problem["problem"]

            # taking away the queue the caller waits in: refused too
            config.write_text(original.replace("    sales: {", "    other: {"))
            os.kill(daemon.proc.pid, signal.SIGHUP)
            daemon.wait_for_event("config.rejected", 2)
            assert "sales still has callers" in events(daemon.log, "config.problem")[-1]["problem"]
            assert api(daemon, "GET", "/queues") == [{**api(daemon, "GET", "/queues")[0], "name": "sales",
                                                      "waiting": 1}]  # fmt: skip

            # a new agent who sells, logged in from the start: the waiting caller goes to them
            agent = subprocess.Popen(["sipp", "-sn", "uas", "-nostdin", "-i", "127.0.0.1", "-p", str(agent_port),
                                      "-m", "1", "-rtp_echo", "-timeout", "60s"], cwd=tmp_path,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
            seller = (f'    "3002": {{ skills: {{ sales: 2 }}, contact: "sip:3002@127.0.0.1:{agent_port}", '
                      "logged_in: true }\n")
            config.write_text(original.replace('contact: "sip:3001@127.0.0.1:9" }\n',
                                               'contact: "sip:3001@127.0.0.1:9" }\n' + seller))
            os.kill(daemon.proc.pid, signal.SIGHUP)
            daemon.wait_for_event("config.loaded")
            daemon.wait_for_event("queue.bridged")
            agents = {a["id"]: a for a in api(daemon, "GET", "/agents")}
            assert agents["3001"]["state"] == "available"  # still logged in
            assert agents["3002"]["state"] == "busy"
            assert caller.bye() == 200  # the caller was never dropped
            samples = scrape(daemon)
            assert value(samples, "ivrd_config_reloads_total", result="failed") == 2
            assert value(samples, "ivrd_config_reloads_total", result="ok") == 1
            out, _ = agent.communicate(timeout=60)
            assert agent.returncode == 0, out[-2000:]
        finally:
            caller.close()
            if agent is not None and agent.poll() is None:
                agent.kill()
    (answered,) = events(daemon.final_log, "queue.answered")
    assert answered["agent"] == "3002" and float(answered["waited"]) > 0
    assert len(events(daemon.final_log, "config.rejected")) == 2
