"""The daemon's HTTP side, as a load balancer and a supervisor see it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.integration.daemon import daemon_running, free_port, one_flow, start_daemon
from tests.integration.logfmt import events
from tests.integration.peers import held_calls, require, sipp
from tests.integration.polling import until
from tests.integration.rtp_caller import RtpCaller
from tests.integration.scrape import value, wait_for


def test_health_and_readiness_over_http():
    with daemon_running() as daemon:
        base = f"http://127.0.0.1:{daemon.http_port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as alive:
            assert (alive.status, json.load(alive)) == (200, {"alive": True})
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as ready:
            body = json.load(ready)
    assert ready.status == 200 and body["ready"] is True and body["listeners"] == 4
    assert body["flows_builtin"] is True and len(body["flows"]) == 12 and body["stopping"] is False
    (loaded,) = events(daemon.final_log, "flows.loaded")
    assert body["flows"] == loaded["version"]


def test_a_stopping_daemon_is_not_ready_while_its_calls_end():
    with daemon_running("calls:\n  drain_seconds: 1\n") as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            daemon.proc.send_signal(signal.SIGTERM)
            daemon.wait_for_event("stopping")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{daemon.http_port}/readyz", timeout=10)
            body = json.load(refused.value)
            caller.wait_bye()  # the drain time is up: the daemon ends the call it still had, then exits
            assert daemon.proc.wait(20) == 0
        finally:
            caller.close()
    assert refused.value.code == 503
    assert (body["ready"], body["stopping"], body["calls"]) == (False, True, 1)


def test_draining_sends_new_calls_away_and_lets_calls_in_progress_finish():
    with daemon_running("calls:\n  drain_seconds: 30\n") as daemon:
        talking, late = RtpCaller(daemon.port), RtpCaller(daemon.port)
        try:
            talking.call()
            daemon.proc.send_signal(signal.SIGTERM)
            daemon.wait_for_event("stopping")
            refused = late.invite()
            assert (refused.status, refused.headers.get("retry-after")) == (503, "60")
            assert talking.bye() == 200  # the call in progress ends its own way, and the daemon exits
            assert daemon.proc.wait(20) == 0
        finally:
            talking.close()
            late.close()
    assert not events(daemon.final_log, "drain.timeout")
    (end,) = events(daemon.final_log, "call.end")
    assert end["reason"] == "bye"


def test_a_drain_under_100_calls_lets_every_call_finish_and_keeps_every_record(tmp_path):
    require("sipp")
    daemon = start_daemon("calls:\n  drain_seconds: 60\n")
    held = held_calls(daemon.port, 100, rate=50, hold_ms=4000, cwd=tmp_path)
    try:
        daemon.wait_for_event("call.flow", count=100, timeout=60)
        daemon.proc.send_signal(signal.SIGTERM)
        out, _ = held.communicate(timeout=120)
        code = daemon.proc.wait(60)
        records = daemon.records()  # read after the process is gone: committed, not just queued
        log = daemon.log
    finally:
        if held.poll() is None:
            held.kill()
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        shutil.rmtree(daemon.workdir, ignore_errors=True)
    assert held.returncode == 0, out[-2000:]
    assert code == 0 and not events(log, "drain.timeout")
    ends = events(log, "call.end")
    assert len(ends) == 100 and all(e["reason"] == "bye" for e in ends)
    assert sorted(r["call_id"] for r in records) == sorted(e["call_id"] for e in ends)


def _status(url: str, *, method: str = "GET", body: bytes | None = None, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, method=method, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_the_agents_api_answers_bad_requests_clearly_and_asks_for_its_token():
    routing = ('routing:\n  queues:\n    sales: {}\n'
               '  agents:\n    "7": {skills: {sales: 3}, contact: "sip:7@127.0.0.1:5999"}\n')
    with daemon_running(routing, http_section='  token: "t0ken"\n') as daemon:
        base = f"http://127.0.0.1:{daemon.http_port}"
        assert _status(f"{base}/agents")[0] == 401
        assert _status(f"{base}/agents", token="wrong")[0] == 401
        assert _status(f"{base}/healthz")[0] == 200  # health stays open to the supervisor
        state = f"{base}/agents/7/state"
        assert _status(state, method="POST", body=b"{", token="t0ken") == (400, {"error": "expected a JSON body"})
        assert _status(state, method="POST", body=b'{"state": "asleep"}', token="t0ken")[0] == 400
        assert _status(f"{base}/agents/8/state", method="POST", body=b'{"state": "away"}', token="t0ken")[0] == 404
        code, agent = _status(state, method="POST", body=b'{"state": "available"}', token="t0ken")
        assert code == 200 and agent["state"] == "available" and agent["reachable"] is True
        code, agent = _status(state, method="POST", body=b'{"state": "away", "reason": "lunch"}', token="t0ken")
        assert (code, agent["state"], agent["reason"]) == (200, "away", "lunch")
        code, queues = _status(f"{base}/queues", token="t0ken")
        assert code == 200 and queues == [{"name": "sales", "waiting": 0, "oldest_wait": 0, "staffed": 0,
                                           "handle_seconds": 180.0, "waiting_here": 0}]  # fmt: skip
        assert _status(f"{base}/calls/nope", token="t0ken")[0] == 404
    states = [(e["agent"], e["state"]) for e in events(daemon.final_log, "agent.state")]
    assert states == [("7", "available"), ("7", "away")]


def test_an_agent_defined_through_the_api_takes_calls_outlives_a_reload_and_can_be_removed(tmp_path):
    require("sipp")
    agent_port = free_port()
    config = one_flow(tmp_path / "flows", "  q:\n    queue: sales\n") + "routing:\n  queues:\n    sales: {wrap_up: 0}\n"
    with daemon_running(config) as daemon:
        base = f"http://127.0.0.1:{daemon.http_port}"
        put = f"{base}/agents/9"
        for bad in (b'{"skills": {"sales": 7}}', b'{"skills": {"sales": "3"}}', b'{"skils": {}}',
                    b'{"skills": {"a b": 1}}', b'{"contact": "tel:123"}', b"[]"):  # fmt: skip
            code, answer = _status(put, method="PUT", body=bad)
            assert code == 400 and "expected" in answer["error"], bad
        assert _status(f"{base}/agents/a%20b", method="PUT", body=b"{}")[0] == 400
        body = json.dumps({"name": "Nine", "skills": {"sales": 3}, "contact": f"sip:agent@127.0.0.1:{agent_port}",
                           "logged_in": True}).encode()  # fmt: skip
        code, agent = _status(put, method="PUT", body=body)
        assert (code, agent["id"], agent["name"], agent["state"], agent["skills"]) == (201, "9", "Nine", "available",
                                                                                    {"sales": 3})  # fmt: skip
        os.kill(daemon.proc.pid, signal.SIGHUP)  # etc/ has no agent 9: the API's stays
        daemon.wait_for_event("config.loaded")
        assert [a["id"] for a in daemon.api("GET", "/agents")] == ["9"]
        code, agent = _status(put, method="PUT", body=body.replace(b'"sales": 3', b'"sales": 4'))
        assert (code, agent["skills"], agent["state"]) == (200, {"sales": 4}, "available")  # changed in place
        # a caller reaches the agent (SIPp answering and echoing)
        phone = subprocess.Popen(["sipp", "-sn", "uas", "-nostdin", "-i", "127.0.0.1", "-p", str(agent_port),
                                  "-m", "1", "-rtp_echo", "-timeout", "60s"], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            caller = sipp(f"127.0.0.1:{daemon.port}", "-sn", "uac", "-i", "127.0.0.1", "-p", str(free_port()),
                          "-m", "1", "-d", "1500", cwd=tmp_path)  # fmt: skip
            phone_out, _ = phone.communicate(timeout=60)
        finally:
            if phone.poll() is None:
                phone.kill()
        assert (caller.code, caller.successful) == (0, 1), caller.output[-2000:]
        assert phone.returncode == 0, phone_out[-2000:]
        daemon.wait_for_event("queue.call_end")
        assert _status(put, method="DELETE")[0] == 204
        assert daemon.api("GET", "/agents") == []
        assert _status(put, method="DELETE")[0] == 404
    (answered,) = events(daemon.final_log, "queue.answered")
    assert answered["agent"] == "9"
    assert [e["agent"] for e in events(daemon.final_log, "agent.removed")] == ["9"]


def test_a_disposition_given_through_the_api_counts_for_first_call_resolution_until_the_caller_calls_again():
    config = ("routing:\n  queues:\n    billing: {dispositions: [resolved, 'call back']}\n"
              "kpi:\n  repeat_window: 1\n")  # fmt: skip
    with daemon_running(config) as daemon:
        first = RtpCaller(daemon.port, user="+4930111")
        try:
            first.call()
            assert first.bye() == 200
        finally:
            first.close()
        (record,) = daemon.records(1)
        with pytest.raises(urllib.error.HTTPError) as refused:  # not one of the queues' dispositions
            daemon.api("POST", f"/calls/{record['id']}/disposition", {"disposition": "whatever"})
        assert refused.value.code == 400
        answer = daemon.api("POST", f"/calls/{record['id']}/disposition", {"disposition": "resolved", "note": "ok"})
        assert answer == {"call": record["id"], "disposition": "resolved"}
        daemon.wait_for_event("call.disposition")
        (noted,) = until(lambda: [r for r in daemon.records(1) if r["id"] == record["id"] and r["disposition"]],
                         "the disposition in the record")  # fmt: skip
        assert (noted["disposition"], noted["note"]) == ("resolved", "ok")
        again = RtpCaller(daemon.port, user="+4930111")  # the same caller, within the day
        try:
            again.call()
            assert again.bye() == 200
        finally:
            again.close()
        samples = wait_for(daemon, "ivrd_fcr_repeats_total", 1, queue="", agent="")
        assert value(samples, "ivrd_fcr_dispositions_total", queue="", agent="", resolved="yes") == 1
        repeated = [r for r in daemon.records(2) if r["id"] == record["id"]]
        assert repeated[0]["repeated"] not in (None, record["id"])

