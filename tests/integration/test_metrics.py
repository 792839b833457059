"""/metrics scraped while SIPp calls with audio run, checked against what the calls did."""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request

import pytest

from tests.integration.daemon import daemon_running, free_port
from tests.integration.logfmt import events
from tests.integration.peers import require, sipp
from tests.integration.scrape import scrape, value, wait_for

pytestmark = pytest.mark.peers
CALLS = 5


def test_counters_follow_sipp_calls_with_audio_while_they_run_and_after(tmp_path):
    require("sipp")
    (tmp_path / "pcap").symlink_to("/usr/share/sip-tester")
    with daemon_running() as daemon:
        outcome = {}
        caller = threading.Thread(target=lambda: outcome.update(result=sipp(
            f"127.0.0.1:{daemon.port}", "-sn", "uac_pcap", "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p",
            str(free_port()), "-m", str(CALLS), "-l", str(CALLS), "-r", "10", cwd=tmp_path)))  # fmt: skip
        caller.start()
        try:
            during = wait_for(daemon, "ivrd_calls_active", CALLS)  # all up: each call lasts about 9 s
            during = wait_for(daemon, "ivrd_rtp_packets_received_total", 50 * CALLS)  # a second of audio each
        finally:
            caller.join(120)
        daemon.wait_for_event("call.end", count=CALLS)
        after = scrape(daemon)
    result = outcome["result"]
    assert (result.code, result.successful, result.failed) == (0, CALLS, 0), result.output[-2000:]
    assert value(during, "ivrd_calls_active") == CALLS
    assert value(during, "ivrd_call_setups_total", result="answered") == CALLS
    assert value(during, "ivrd_rtp_packets_sent_total") > 0
    ends = events(daemon.final_log, "call.end")
    assert value(after, "ivrd_calls_active") == 0
    assert value(after, "ivrd_call_setups_total", result="answered") == CALLS
    for method in ("INVITE", "ACK", "BYE"):
        assert value(after, "ivrd_sip_requests_total", direction="in", method=method) == CALLS, method
    # answered at once: no 180, and a 100 only for a call the loop took over 200 ms to answer
    assert value(after, "ivrd_sip_responses_total", direction="out", method="INVITE", **{"class": "1xx"}) <= CALLS
    assert value(after, "ivrd_sip_responses_total", direction="out", method="INVITE", **{"class": "2xx"}) == CALLS
    assert value(after, "ivrd_sip_responses_total", direction="out", method="BYE", **{"class": "2xx"}) == CALLS
    assert value(after, "ivrd_sip_transactions_timed_out_total", method="INVITE") == 0
    assert value(after, "ivrd_sip_backlog") == 0 and value(after, "ivrd_sip_backlog_dropped_total") == 0
    received = sum(int(e["rtp_received"]) for e in ends)
    assert received >= CALLS * 236  # g711a.pcap's packets, and the RFC 4733 digit's
    assert value(after, "ivrd_rtp_packets_received_total") == received
    assert value(after, "ivrd_rtp_packets_sent_total") == sum(int(e["rtp_sent"]) for e in ends)
    assert value(after, "ivrd_rtp_packets_foreign_total") == 0
    assert value(after, "ivrd_rtp_jitter_seconds_count") == CALLS
    ticks = value(after, "ivrd_rtp_send_lateness_seconds_count")
    assert ticks >= value(after, "ivrd_rtp_packets_sent_total")  # a frame, or silence, every tick
    assert value(after, "ivrd_rtp_send_lateness_seconds_bucket", le="+Inf") == ticks


def test_metrics_ask_for_the_token_when_one_is_set():
    with daemon_running(http_section="  token: s3cret\n") as daemon:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{daemon.http_port}/metrics", timeout=10)
        samples = scrape(daemon, token="s3cret")
    assert refused.value.code == 401
    assert value(samples, "ivrd_calls_active") == 0
    assert ("ivrd_agents", frozenset({("state", "available")})) in samples


def test_the_process_and_its_garbage_collector_pauses_are_measured():
    with daemon_running() as daemon:
        samples = scrape(daemon)
        descriptors = len(os.listdir(f"/proc/{daemon.proc.pid}/fd"))
    # the full collection the daemon runs before it freezes its start-up heap, timed
    assert value(samples, "ivrd_gc_pause_seconds_count", generation="2") >= 1
    assert value(samples, "ivrd_gc_pause_seconds_sum", generation="2") > 0
    assert value(samples, "python_gc_collections_total", generation="2") >= 1
    assert value(samples, "process_resident_memory_bytes") > 10e6
    assert 0.5 * descriptors < value(samples, "process_open_fds") <= value(samples, "process_max_fds")


def test_an_idle_daemon_collects_its_young_objects_at_its_own_pace():
    """Nothing allocates, so CPython's count would start no collection: the daemon's pace does, the
    middle generation's included (``ivrd/heap.py``)."""
    with daemon_running() as daemon:
        before = scrape(daemon)
        after = wait_for(daemon, "ivrd_gc_pause_seconds_count",
                         value(before, "ivrd_gc_pause_seconds_count", generation="1") + 3, generation="1")
    assert value(after, "ivrd_gc_pause_seconds_count", generation="0") > value(
        before, "ivrd_gc_pause_seconds_count", generation="0")
    assert value(after, "ivrd_gc_pause_seconds_count", generation="2") == value(
        before, "ivrd_gc_pause_seconds_count", generation="2")  # full collections are not paced
