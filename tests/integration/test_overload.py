"""Offered more calls than it can serve, the daemon serves each call it takes fully (its key heard, at
once) and refuses the rest with 503, counted; then it takes calls again."""

from __future__ import annotations

import pytest

from tests.integration.daemon import daemon_running, free_port, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import SCENARIOS, require, sipp
from tests.integration.rtp_caller import RtpCaller
from tests.integration.scrape import scrape, value

pytestmark = pytest.mark.peers
STEPS = """  menu:
    menu: "Press one."
    timeout: 8
    choices:
      - { key: 1, goto: heard }
  heard:
    hangup: true
"""
# Bounds a loaded test machine passes for sure: the point is what happens past them, not where they are.
ADMISSION = "calls:\n  admission: { busy: 0.15, busy_seconds: 0, calm_seconds: 1 }\n"
CALLS = 400


def test_past_its_bounds_every_call_taken_hears_its_key_and_every_other_gets_503(tmp_path):
    require("sipp")
    (tmp_path / "pcap").symlink_to("/usr/share/sip-tester")
    with daemon_running(one_flow(tmp_path / "flows", STEPS) + ADMISSION) as daemon:
        result = sipp(f"127.0.0.1:{daemon.port}", "-sf", str(SCENARIOS / "key_or_refused.xml"), "-i", "127.0.0.1",
                      "-mi", "127.0.0.1", "-p", str(free_port()), "-m", str(CALLS), "-r", "80", "-l", "400",
                      cwd=tmp_path, timeout=180)  # fmt: skip
        daemon.wait_for_event("call.end", len(events(daemon.log, "call.incoming")))
        records = daemon.records(len(events(daemon.log, "call.incoming")))
        daemon.wait_for_event("admission.open", timeout=30)  # calm again: the limit is lifted
        samples = scrape(daemon)
        after = RtpCaller(daemon.port)
        try:
            after.call()  # and a call is taken
            assert after.bye() == 200
        finally:
            after.close()
    assert (result.code, result.successful, result.failed) == (0, CALLS, 0), result.output[-2500:]
    refused = value(samples, "ivrd_calls_refused_total", reason="overload")
    answered = len(records)
    assert refused > 0 and answered > 0 and refused + answered == CALLS
    assert all(r["digits"] == "1" and r["outcome"] == "completed" for r in records), [
        (r["digits"], r["outcome"]) for r in records if r["digits"] != "1" or r["outcome"] != "completed"][:10]
    limited = events(daemon.final_log, "admission.limited")
    assert limited and "busy" in limited[0]["why"]
    assert value(samples, "ivrd_admission_limited_total") == len(limited)
    assert value(samples, "ivrd_admission_limiting") == 0
