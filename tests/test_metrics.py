"""The parts of the metrics that count on the hot paths, and the bucket and watchdog arithmetic."""

from __future__ import annotations

import os

from ivrd.config import QueueConfig, RoutingConfig
from ivrd.media.pacer import Lateness
from ivrd.media.rtp_session import PacketCounts
from ivrd.metrics import _RTP_COUNTERS, WAIT_BUCKETS, wait_buckets
from ivrd.sdnotify import watchdog_interval
from ivrd.sip.counts import SipCounts
from ivrd.sip.flow import SipFlow
from ivrd.sip.message import parse_message
from ivrd.sip.ua import UserAgent
from tests.sip.helpers import OFFER, request

FLOW = SipFlow("udp", ("10.0.0.1", 5060), ("10.0.0.2", 5062))


def test_lateness_buckets_are_inclusive_upper_bounds_and_add_up():
    lateness = Lateness((0.001, 0.002))
    for seconds in (0.0, 0.001, 0.0015, 0.002, 0.5):
        lateness.observe(seconds)
    assert lateness.counts == [2, 2, 1]  # le 0.001, le 0.002, above
    lateness.observe(0.003)
    assert lateness.counts == [2, 2, 2] and abs(lateness.sum - 0.5075) < 1e-9


def test_every_packet_count_of_a_media_session_is_exported_with_its_meaning():
    assert list(_RTP_COUNTERS) == list(PacketCounts._fields)
    assert all(_RTP_COUNTERS.values())


def test_a_peer_cannot_grow_the_method_label_set():
    counts = SipCounts()
    counts.request("in", "INVITE")
    counts.request("in", "XYZZY")
    counts.request("in", "FROB")
    counts.response("out", "BLAH", 404)
    assert counts.requests == {("in", "INVITE"): 1, ("in", "other"): 2}
    assert counts.responses == {("out", "other", "4xx"): 1}


def test_the_user_agent_counts_what_it_receives_and_sends():
    ua = UserAgent()
    ua.receive_datagram(request(body=OFFER).to_bytes(), FLOW, 0.0)
    ua.receive_datagram(b"garbage\r\n\r\n", FLOW, 0.0)
    ua.handle_timer(1.0)  # nobody answered the INVITE: its 100 (Trying) goes
    sent = [parse_message(s.data) for s in ua.datagrams_to_send()]
    assert ua.counts.requests[("in", "INVITE")] == 1 and ua.counts.unparsable == 1
    assert sum(ua.counts.responses.values()) == len(sent) >= 1  # 100 Trying for the INVITE


def test_wait_buckets_hold_every_queue_target_exactly():
    routing = RoutingConfig(queues={"a": QueueConfig(service_level=17.0, short_abandon=3.5),
                                    "b": QueueConfig(service_level=20.0)})  # fmt: skip
    bounds = wait_buckets(routing)
    assert {17.0, 3.5, 20.0, 5.0} <= set(bounds) and set(WAIT_BUCKETS) <= set(bounds)
    assert list(bounds) == sorted(set(bounds))


def test_the_watchdog_interval_is_half_of_what_systemd_asks(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    monkeypatch.delenv("WATCHDOG_PID")
    assert watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval() is None
