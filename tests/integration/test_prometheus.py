"""A real Prometheus scrapes the daemon while callers queue for an agent (SIPp on both sides), and the
recording rules in etc/prometheus compute the KPIs from what it scraped."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.integration.daemon import daemon_running, free_port, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import require, sipp

pytestmark = pytest.mark.peers
RULES = Path(__file__).resolve().parents[2] / "etc" / "prometheus" / "ivrd-rules.yml"
DASHBOARD = Path(__file__).resolve().parents[2] / "etc" / "grafana" / "ivrd-dashboard.json"
CALLS = 3
STEPS = """  to_sales:
    queue: sales
    next: closed
  closed:
    hangup: "Nobody is there."
"""


def query(port: int, expression: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_until(port: int, expression: str, check, timeout: float = 60.0) -> list[dict]:
    """Query until ``check(result)`` holds (Prometheus scrapes and evaluates every second here)."""
    deadline = time.monotonic() + timeout
    while True:
        result = query(port, expression)
        if check(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression}: {result}")
        time.sleep(0.5)


@pytest.fixture
def prometheus(tmp_path):
    """Start Prometheus on a free port; the test writes the scrape target into the config it returns."""
    require("prometheus", "promtool")
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> int:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{RULES}]\n"
            "scrape_configs:\n"
            f"  - job_name: ivrd\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n")
        log = (tmp_path / "prometheus.log").open("wb")
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        deadline = time.monotonic() + 60
        while True:  # its HTTP side answers once the storage and the rules are loaded
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5):
                    return port
            except OSError:
                if procs[-1].poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "prometheus.log").read_text()[-3000:]) from None
                time.sleep(0.2)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(30)


def test_prometheus_records_service_level_and_speed_of_answer_from_real_calls(tmp_path, prometheus):
    require("sipp")
    agent_port = free_port()
    routing = ("routing:\n  offer_timeout: 5\n  queues:\n    sales: { wrap_up: 0, service_level: 15 }\n"
               f'  agents:\n    "3001": {{ contact: "sip:agent@127.0.0.1:{agent_port}", logged_in: true }}\n')
    with daemon_running(routing + one_flow(tmp_path / "flows", STEPS)) as daemon:
        port = prometheus(daemon.http_port)
        wait_until(port, 'up{job="ivrd"}', lambda r: r and r[0]["value"][1] == "1")
        wait_until(port, "queue:ivrd_queue_offered:increase5m", lambda r: len(r) == 1)  # zero series are in
        # the agent: SIPp answering each call and echoing its audio; the callers: SIPp, one after another
        agent = subprocess.Popen(["sipp", "-sn", "uas", "-nostdin", "-i", "127.0.0.1", "-p", str(agent_port),
                                  "-m", str(CALLS), "-rtp_echo", "-timeout", "120s"], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            callers = sipp(f"127.0.0.1:{daemon.port}", "-sn", "uac", "-i", "127.0.0.1", "-p", str(free_port()),
                           "-m", str(CALLS), "-l", "1", "-d", "1000", cwd=tmp_path)  # fmt: skip
            agent_out, _ = agent.communicate(timeout=60)
        finally:
            if agent.poll() is None:
                agent.kill()
        daemon.wait_for_event("queue.call_end", CALLS)
        answered = wait_until(port, "queue:ivrd_queue_answered:increase5m",
                              lambda r: r and float(r[0]["value"][1]) >= CALLS - 0.5)  # fmt: skip
        service_level = query(port, "queue:ivrd_queue_service_level:ratio5m")
        asa = query(port, "queue:ivrd_queue_asa_seconds:avg5m")
        aht = query(port, "queue:ivrd_queue_aht_seconds:avg5m")
        abandon = query(port, "queue:ivrd_queue_abandon:ratio5m")
        setups = query(port, 'ivrd:call_setups:rate1m{result="answered"}')
        panels = {expr: query(port, expr) for expr in dashboard_queries()}
    assert (callers.code, callers.successful) == (0, CALLS), callers.output[-2000:]
    assert agent.returncode == 0, agent_out[-2000:]
    waits = [float(a["waited"]) for a in events(daemon.final_log, "queue.answered")]
    assert len(waits) == CALLS and all(w < 15 for w in waits)
    assert answered[0]["metric"] == {"__name__": "queue:ivrd_queue_answered:increase5m", "queue": "sales"}
    # every caller was answered within the 15 s target, and nobody abandoned
    assert [(r["metric"]["queue"], float(r["value"][1])) for r in service_level] == [("sales", 1.0)]
    assert float(abandon[0]["value"][1]) == 0.0
    # the increases are extrapolated alike, so their ratios are the exact averages of what happened
    assert abs(float(asa[0]["value"][1]) - sum(waits) / CALLS) < 0.01
    talks = [float(e["talk"]) for e in events(daemon.final_log, "queue.call_end")]
    assert abs(float(aht[0]["value"][1]) - sum(talks) / CALLS) < 0.05
    assert float(setups[0]["value"][1]) > 0
    # every query on the dashboard is valid PromQL over series that exist; only what these calls never
    # did (speech, menus, lookups, timeouts, surveys, dispositions) may come back empty
    quiet = ("speech", "step_results", "lookup", "timed_out", "csat", "fcr")
    empty = [expr for expr, result in panels.items() if not result and not any(q in expr for q in quiet)]
    assert len(panels) >= 25 and not empty, empty


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
