"""The systemd side: the unit file passes systemd-analyze, the daemon speaks sd_notify (READY=1,
watchdog pings from its event loop, STOPPING=1) to a real NOTIFY_SOCKET listener, and real-time
scheduling (as the unit sets it) stays with the event loop's thread."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.daemon import daemon_running
from tests.integration.logfmt import events
from tests.integration.peers import require
from tests.integration.scrape import wait_for

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "ivrd.service"


def test_the_unit_file_verifies(tmp_path):
    require("systemd-analyze")
    # verify insists that ExecStart exists: point it at this environment's ivrd, change nothing else
    ivrd = shutil.which("ivrd", path=str(Path(sys.executable).parent)) or shutil.which("ivrd")
    assert ivrd is not None, "the ivrd console script is not installed"
    text = UNIT.read_text()
    assert "ExecStart=/opt/ivrd/.venv/bin/ivrd run" in text
    unit = tmp_path / "ivrd.service"
    unit.write_text(text.replace("/opt/ivrd/.venv/bin/ivrd", ivrd))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, ""), result.stderr
    for line in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "User=ivrd",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "CapabilityBoundingSet=\n",
                 "CPUSchedulingPolicy=rr", "CPUSchedulingPriority=20", "CPUSchedulingResetOnFork=yes"):
        assert line in text, line


def _messages(daemon, until: bytes, limit: int = 200) -> list[bytes]:
    """What the daemon sends to NOTIFY_SOCKET, up to and including the first message holding ``until``."""
    assert daemon.notify is not None
    daemon.notify.settimeout(10)
    seen: list[bytes] = []
    while len(seen) < limit:
        message = daemon.notify.recv(4096)
        seen.append(message)
        if until in message.split(b"\n"):
            return seen
    raise AssertionError(f"no {until!r} in {seen[:20]}")


def test_watchdog_pings_come_from_the_running_loop_and_stopping_is_announced():
    with daemon_running(env={"WATCHDOG_USEC": "400000"}, keep_notify=True) as daemon:  # pings every 0.2 s
        pings = [m for _ in range(3) for m in _messages(daemon, b"WATCHDOG=1")]
        assert sum(m == b"WATCHDOG=1" for m in pings) == 3
        daemon.proc.send_signal(signal.SIGTERM)
        assert b"STOPPING=1" in _messages(daemon, b"STOPPING=1")[-1]


def test_no_pings_for_a_watchdog_meant_for_another_process():
    with daemon_running(env={"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}, keep_notify=True) as daemon:
        wait_for(daemon, "ivrd_event_loop_lag_seconds_count", 3)  # the heartbeat has run three times
        daemon.proc.send_signal(signal.SIGTERM)
        seen = _messages(daemon, b"STOPPING=1")
    assert b"WATCHDOG=1" not in seen


def _realtime_allowed() -> None:
    require("chrt")
    if subprocess.run(["chrt", "-r", "1", "true"], capture_output=True, check=False).returncode:
        pytest.skip("this machine does not let the tests set a real-time priority (CAP_SYS_NICE)")


def test_real_time_priority_stays_with_the_event_loop_thread():
    _realtime_allowed()
    with daemon_running(wrapper=("chrt", "--reset-on-fork", "--rr", "20")) as daemon:  # as the unit starts it
        (ready,) = events(daemon.log, "ready")
        assert ready["scheduling"] == "rr/20"
        threads = [int(tid) for tid in os.listdir(f"/proc/{daemon.proc.pid}/task")]
        assert os.sched_getscheduler(daemon.proc.pid) == os.SCHED_RR | os.SCHED_RESET_ON_FORK
        others = {tid: os.sched_getscheduler(tid) for tid in threads if tid != daemon.proc.pid}
        assert others, "the daemon started no thread: nothing shown"  # it loads flows and records on threads
        assert set(others.values()) == {os.SCHED_OTHER}, others
        assert not events(daemon.log, "scheduling.inherited")


def test_a_real_time_priority_that_would_pass_to_every_thread_is_warned_of():
    _realtime_allowed()
    with daemon_running(wrapper=("chrt", "--rr", "20")) as daemon:
        (warning,) = events(daemon.log, "scheduling.inherited")
        assert warning["scheduling"] == "rr/20" and "CPUSchedulingResetOnFork=yes" in warning["message"]


def test_at_normal_priority_the_ready_line_says_so():
    with daemon_running() as daemon:
        (ready,) = events(daemon.log, "ready")
        assert ready["scheduling"] == "normal"
        assert not events(daemon.log, "scheduling.inherited")
