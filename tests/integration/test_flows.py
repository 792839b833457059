"""The example deployment served by the real daemon, navigated by SIPp; reload under load; simulate."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.audio import read_wav, speech
from tests.integration.daemon import daemon_running, free_port
from tests.integration.logfmt import events
from tests.integration.peers import SCENARIOS, held_calls, require, sipp
from tests.integration.rtp_caller import RtpCaller
from tests.integration.scrape import scrape, value

pytestmark = pytest.mark.peers
ROOT = Path(__file__).resolve().parents[2]
ALWAYS_OPEN = 'office:\n  timezone: UTC\n  open:\n    mon-sun: "00:00-24:00"\n'


@pytest.fixture
def webhook():
    """The example web service the balance flow asks, on a free port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "example-webhook"), "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def example_flows(tmp_path: Path, webhook_port: int) -> Path:
    """etc/flows as shipped, with the office always open and the web service on its test port."""
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "etc" / "flows", flows)
    (flows / "calendars.yaml").write_text(ALWAYS_OPEN)
    balance = flows / "balance.yaml"
    balance.write_text(balance.read_text().replace("127.0.0.1:8089", f"127.0.0.1:{webhook_port}"))
    return flows


def serving(flows: Path) -> str:
    """The configuration snippet for the example deployment in ``flows``."""
    return ("routing:\n  queues:\n    general: {}\n"  # flows last: callers add keys to that section
            f'flows:\n  dir: {flows}\n  transfer_targets: ["sip:operator@pbx.example.com"]\n')


def dial(daemon, tmp_path, digit: str):
    return sipp(f"127.0.0.1:{daemon.port}", "-sf", str(SCENARIOS / "navigate.xml"), "-s", "100", "-key", "digit",
                digit, "-i", "127.0.0.1", "-p", str(free_port()), "-m", "1", cwd=tmp_path)  # fmt: skip


def path_of(end: dict[str, str]) -> list[tuple[str, str, str]]:
    return [(e["flow"], e["step"], e["event"]) for e in json.loads(end["path"])]


def test_key_1_hears_the_balance_from_the_web_service_then_the_queue_message(tmp_path, webhook):
    require("sipp", "espeak-ng")
    with daemon_running(serving(example_flows(tmp_path, webhook))) as daemon:
        result = dial(daemon, tmp_path, "1")
        daemon.wait_for_event("call.end")
        samples = scrape(daemon)
    assert (result.code, result.successful) == (0, 1), result.output[-2000:]
    (end,) = events(daemon.final_log, "call.end")
    assert end["flow"] == "main" and len(end["flow_version"]) == 12
    # what the call did, counted: the menu answered, the lookup, the queue left for want of agents
    version = end["flow_version"]
    assert value(samples, "ivrd_flow_calls_total", flow="main", version=version) == 1
    assert value(samples, "ivrd_flow_step_results_total", flow="main", step="main_menu", result="match") == 1
    assert value(samples, "ivrd_lookup_duration_seconds_count", flow="balance") == 1
    assert value(samples, "ivrd_lookup_failures_total", flow="balance") == 0
    assert value(samples, "ivrd_queue_offered_total", queue="general") == 1
    assert value(samples, "ivrd_queue_overflowed_total", queue="general", reason="no_agents") == 1
    assert value(samples, "ivrd_queue_wait_seconds_count", queue="general", outcome="overflowed") == 1
    assert value(samples, "ivrd_queue_answered_total", queue="general") == 0
    steps = path_of(end)
    assert steps == [
        ("main", "welcome", "play"), ("main", "opening_hours", "hours"), ("main", "main_menu", "menu"),
        ("main", "main_menu", "choice"), ("main", "billing", "subflow"), ("balance", "find_account", "lookup"),
        ("balance", "find_account", "lookup_result"), ("balance", "known", "branch"),
        ("balance", "tell_balance", "say"), ("balance", "done", "return"), ("main", "support_queue_billing", "set"),
        ("main", "to_queue", "queue"), ("main", "to_queue", "queue_left"), ("main", "queue_closed", "goodbye"),
        ("main", "queue_closed", "hangup")]  # fmt: skip
    path = json.loads(end["path"])
    assert path[6]["result"] == {"name": "Test caller", "balance": 7}
    assert path[8]["heard"] == ["Hello Test caller. Your balance is 7 dollars."]
    assert json.loads(end["variables"])["department"] == "billing"
    assert not events(daemon.final_log, "call.say_failed")


def test_key_2_goes_to_support_and_a_failed_lookup_never_runs(tmp_path, webhook):
    require("sipp", "espeak-ng")
    with daemon_running(serving(example_flows(tmp_path, webhook))) as daemon:
        result = dial(daemon, tmp_path, "2")
    assert (result.code, result.successful) == (0, 1), result.output[-2000:]
    (end,) = events(daemon.final_log, "call.end")
    steps = [step for _, step, _ in path_of(end)]
    assert steps[3:] == ["main_menu", "support", "to_queue", "to_queue", "queue_closed", "queue_closed"]
    assert not events(daemon.final_log, "flow.lookup")


def test_the_lookup_failing_says_sorry_and_goes_on(tmp_path):
    require("sipp", "espeak-ng")
    with daemon_running(serving(example_flows(tmp_path, free_port()))) as daemon:  # nobody listens
        result = dial(daemon, tmp_path, "1")
        daemon.wait_for_event("call.end")
        samples = scrape(daemon)
    assert (result.code, result.successful) == (0, 1), result.output[-2000:]
    assert value(samples, "ivrd_lookup_failures_total", flow="balance") == 1
    (end,) = events(daemon.final_log, "call.end")
    path = json.loads(end["path"])
    failed = next(e for e in path if e["event"] == "lookup_result")
    assert failed["ok"] is False and "error" in failed
    assert [e["step"] for e in path if e["flow"] == "balance"][-2:] == ["not_found", "done"]
    (lookup,) = events(daemon.final_log, "flow.lookup")
    assert lookup["ok"] == "False"


HOLD = "default: true\ndescription: {label}\nsteps:\n  hold:\n    wait: 3600\n    next: hold\n"


def test_reload_under_200_calls_keeps_every_call_and_new_calls_take_the_new_version(tmp_path):
    require("sipp")
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(HOLD.format(label="first"))
    config = f"flows:\n  dir: {flows}\n  watch_seconds: 0\nlog:\n  level: info\n"
    with daemon_running(config, expected_errors=("flows.problem", "flows.rejected", "config.rejected")) as daemon:
        first = events(daemon.log, "flows.loaded")[0]["version"]
        held = held_calls(daemon.port, 200, rate=100, hold_ms=20000, cwd=tmp_path)
        try:
            daemon.wait_for_event("call.flow", count=200, timeout=60)
            (flows / "main.yaml").write_text(HOLD.format(label="second"))
            os.kill(daemon.proc.pid, signal.SIGHUP)
            daemon.wait_for_event("flows.loaded", count=2)
            second = events(daemon.log, "flows.loaded")[1]["version"]
            (flows / "main.yaml").write_text("default: true\nsteps:\n  hold:\n    wait: forever\n")
            os.kill(daemon.proc.pid, signal.SIGHUP)
            daemon.wait_for_event("flows.rejected")
            during = scrape(daemon)  # the 200 calls are all up
            fresh = sipp(f"127.0.0.1:{daemon.port}", "-sn", "uac", "-i", "127.0.0.1", "-p", str(free_port()),
                         "-m", "3", "-d", "500", cwd=tmp_path)  # fmt: skip
            out, _ = held.communicate(timeout=120)
            daemon.wait_for_event("call.end", count=203)
            after = scrape(daemon)
            records = daemon.records(203)
        finally:
            if held.poll() is None:
                held.kill()
    assert held.returncode == 0, out[-2000:]
    assert (fresh.code, fresh.successful, fresh.failed) == (0, 3, 0), fresh.output[-2000:]
    assert second != first
    (problem,) = events(daemon.final_log, "flows.problem")
    assert problem["where"] == f"{flows / 'main.yaml'}:4:11"
    ends = events(daemon.final_log, "call.end")
    assert len(ends) == 203
    (refused,) = events(daemon.final_log, "config.rejected")  # the whole configuration stays with the old flows
    assert refused["problems"] == "flows"
    versions = [e["flow_version"] for e in ends]
    assert versions.count(first) == 200 and versions.count(second) == 3  # the broken edit never served
    assert all(e["reason"] != "error" for e in ends) and not events(daemon.final_log, "task.failed")
    # every call has its record, with the flow version it ran
    assert {(r["call_id"], r["flow_version"]) for r in records} == {(e["call_id"], e["flow_version"]) for e in ends}
    assert len(records) == 203 and {r["outcome"] for r in records} == {"caller_hung_up"}
    # /metrics while the calls ran, and after: the same story in counters
    assert value(during, "ivrd_calls_active") == 200
    assert value(during, "ivrd_sip_requests_total", direction="in", method="INVITE") == 200
    assert value(during, "ivrd_call_setups_total", result="answered") == 200
    assert value(during, "ivrd_flow_calls_total", flow="main", version=first) == 200
    assert value(during, "ivrd_flow_reloads_total", result="ok") == 1
    assert value(during, "ivrd_flow_reloads_total", result="failed") == 1
    assert value(after, "ivrd_calls_active") == 0
    assert value(after, "ivrd_call_setups_total", result="answered") == 203
    assert value(after, "ivrd_flow_calls_total", flow="main", version=second) == 3
    # at this load a retransmission (a message late by T1) is possible, so at least one each
    for method in ("INVITE", "ACK", "BYE"):
        assert value(after, "ivrd_sip_requests_total", direction="in", method=method) >= 203, method
    assert value(after, "ivrd_sip_responses_total", direction="out", method="BYE", **{"class": "2xx"}) >= 203
    assert value(after, "ivrd_rtp_packets_sent_total") == sum(int(e["rtp_sent"]) for e in ends)


def test_simulate_walks_a_flow_through_stdin_and_stdout(tmp_path):
    require("espeak-ng")
    flows = example_flows(tmp_path, 9)
    fixtures = tmp_path / "fixtures.yaml"
    fixtures.write_text('"http://127.0.0.1:9/accounts": {name: Ada, balance: 42.5}\n')
    command = [sys.executable, "-m", "ivrd.cli", "simulate", "main", "--flows", str(flows), "--fixtures",
               str(fixtures), "--caller", "+15550100"]  # fmt: skip
    proc = subprocess.run(command, input="7\n\nsay billing\n", capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "  play: welcome.wav" in lines
    assert lines.count("  say: Sorry, that is not one of the choices.") == 1  # 7 is not a choice
    assert lines.count("  say: Sorry, I did not hear you.") == 1  # the empty line: silence
    assert "  lookup (fixture): GET http://127.0.0.1:9/accounts?number=%2B15550100" in lines
    assert "  say: Hello Ada. Your balance is 42.5 dollars." in lines
    path = json.loads(next(line for line in lines if line.startswith("path: "))[6:])
    assert [e["event"] for e in path if e["step"] == "main_menu"] == ["menu", "nomatch", "noinput", "choice"]
    variables = json.loads(next(line for line in lines if line.startswith("variables: "))[11:])
    assert variables["account"] == {"name": "Ada", "balance": 42.5}


def test_check_reports_every_problem_and_exits_2(tmp_path):
    flows = example_flows(tmp_path, 9)
    main = flows / "main.yaml"
    main.write_text(main.read_text().replace("goto: billing", "goto: biling").replace("hours: office", "hours: x"))
    proc = subprocess.run([sys.executable, "-m", "ivrd.cli", "check", str(flows)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"{main}:12:12: step opening_hours: no calendar 'x' (known: office)",
        f"{main}:19:56: step main_menu: no step called 'biling' in this flow",
    ]
    assert "Traceback" not in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "ivrd.cli", "check", str(ROOT / "etc" / "ivrd.yaml")],
                        capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert ok.returncode == 0 and "flows balance, main, survey, voicemail" in ok.stdout


def test_after_hours_the_caller_leaves_a_message_that_ends_on_silence(tmp_path):
    require("espeak-ng", "sox")
    flows = example_flows(tmp_path, 9)
    (flows / "calendars.yaml").write_text("office:\n  timezone: UTC\n  open: {}\n")  # always closed
    voicemail = flows / "voicemail.yaml"
    voicemail.write_text(voicemail.read_text().replace("silence_seconds: 5", "silence_seconds: 1.5"))
    message = speech("Please call me back about my invoice", tmp_path)
    quiet = np.zeros(1600, dtype=np.int16)  # 200 ms
    with daemon_running(serving(flows) + f"  voicemail_dir: {tmp_path / 'vm'}\n") as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            while not events(daemon.log, "call.recording_message"):  # the prompts play; the caller waits
                caller.stream(quiet)
            caller.stream(message)
            for _ in range(20):  # then silence, until the daemon has heard enough of it
                caller.stream(quiet)
            caller.wait_bye()
        finally:
            caller.close()
    (left,) = events(daemon.final_log, "call.message")
    assert left["ended_by"] == "silence"
    spoken = len(message) / 8000
    # the speech (espeak-ng's own quiet edges included), then 1.5 s of quiet ends it, long before the 4 s sent
    assert spoken <= float(left["seconds"]) <= spoken + 1.5 + 0.5
    recorded = read_wav(Path(left["file"]))
    assert np.abs(recorded).max() > 3000  # the caller's voice is in it
    (end,) = events(daemon.final_log, "call.end")
    path = json.loads(end["path"])
    assert [e["event"] for e in path if e["flow"] == "voicemail"] == ["say", "record", "recorded", "goodbye",
                                                                       "hangup"]  # fmt: skip
    assert json.loads(end["variables"])["message_file"] == left["file"]


TRANSFER = """\
default: true
steps:
  hello:
    transfer: sip:desk@127.0.0.1:5999
  busy:
    hangup: true
"""


@pytest.mark.parametrize(("status", "outcome"), [("200", "transferred"), ("486", "transfer_failed")])
def test_a_transfer_by_refer_ends_the_call_or_goes_on_when_the_target_is_busy(tmp_path, status, outcome):
    require("sipp")
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(TRANSFER)
    config = f'flows:\n  dir: {flows}\n  transfer_targets: ["sip:desk@127.0.0.1:*"]\n'
    with daemon_running(config) as daemon:
        result = sipp(f"127.0.0.1:{daemon.port}", "-sf", str(SCENARIOS / "refer.xml"), "-s", "100", "-key",
                      "status", status, "-i", "127.0.0.1", "-p", str(free_port()), "-m", "1", cwd=tmp_path)  # fmt: skip
    assert (result.code, result.successful) == (0, 1), result.output[-2000:]
    (end,) = events(daemon.final_log, "call.end")
    path = json.loads(end["path"])
    assert [e["event"] for e in path] == ["transfer", outcome, "hangup"]
    assert path[0]["to"] == "sip:desk@127.0.0.1:5999"
    (result_event,) = events(daemon.final_log, "call.transfer_result")
    assert result_event["status"] == status


def test_a_transfer_target_outside_the_allowed_list_is_refused_at_load(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(TRANSFER)
    config = tmp_path / "ivrd.yaml"
    config.write_text(f'flows:\n  dir: {flows}\n  transfer_targets: ["sip:*@pbx.example.com"]\n')
    proc = subprocess.run([sys.executable, "-m", "ivrd.cli", "check", str(config)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"{flows / 'main.yaml'}:4:15: step hello: sip:desk@127.0.0.1:5999 is not in "
                                   "flows.transfer_targets of the configuration (transfers go only where it allows)")


def test_an_edited_flow_file_is_picked_up_without_a_signal(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(HOLD.format(label="first"))
    with daemon_running(f"flows:\n  dir: {flows}\n  watch_seconds: 0.2\n") as daemon:
        (flows / "main.yaml").write_text(HOLD.format(label="second, edited"))
        daemon.wait_for_event("flows.loaded", count=2)
    first, second = events(daemon.final_log, "flows.loaded")
    assert (second["reason"], second["previous"]) == ("files changed", first["version"])
    assert second["version"] != first["version"]
