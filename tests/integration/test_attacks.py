"""Attacks from a hostile network against a real daemon, over loopback: each host a loopback address of its
own (the caller 127.0.0.31, a stranger 127.0.0.32)."""

from __future__ import annotations

import socket
import time

import pytest

from ivrd.media.rtp import build_rtp
from ivrd.sip.message import Response, parse_message
from tests.integration.daemon import PROMPT, daemon_running, one_flow
from tests.integration.logfmt import events
from tests.integration.rtp_caller import SILENCE_PCMU, RtpCaller
from tests.integration.scrape import scrape, value

pytestmark = pytest.mark.peers
HOLD = f"  greet:\n    play: {PROMPT}\n  hold:\n    wait: 3600\n    next: hold\n"
CALLER, STRANGER = "127.0.0.31", "127.0.0.32"


def udp(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(0.5)
    return sock


def drain(sock: socket.socket, seconds: float) -> int:
    """How many datagrams reach ``sock`` in ``seconds``."""
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.recv(2048)
            count += 1
        except TimeoutError:
            pass
    return count


def forged(caller: RtpCaller, stranger: socket.socket, method: str, body: str = "", content_type: str = "") -> bytes:
    """One of the caller's requests, as the stranger would send it: the caller's dialog, the stranger's Via."""
    caller.cseq += 1
    text = caller.request(method, body, content_type).decode()
    host, port = stranger.getsockname()
    return text.replace(f"Via: SIP/2.0/UDP {caller.host}:{caller.sip_port}", f"Via: SIP/2.0/UDP {host}:{port}").encode()


def final_status(sock: socket.socket) -> int:
    sock.settimeout(10)
    while True:
        message = parse_message(sock.recv(65535))
        if isinstance(message, Response) and message.status >= 200:
            return message.status


def test_a_stranger_who_sends_to_a_new_calls_media_port_first_never_takes_its_audio(tmp_path):
    with daemon_running(one_flow(tmp_path / "flows", HOLD)) as daemon:
        caller = RtpCaller(daemon.port, host=CALLER)
        stranger = udp(STRANGER)
        try:
            caller.call()
            assert caller.remote_rtp is not None
            for seq in range(40):  # in sequence, before the caller says a word
                stranger.sendto(build_rtp(0, False, seq, seq * 160, 0xBAD, SILENCE_PCMU), caller.remote_rtp)
            for _ in range(10):
                caller.send_rtp(0, SILENCE_PCMU)
            caller.wait_for_packets(50)
            assert drain(stranger, 1.0) == 0  # not one of the call's packets reached the stranger
            assert caller.bye() == 200
        finally:
            caller.close()
            stranger.close()
    (end,) = events(daemon.final_log, "call.end")
    assert int(end["rtp_foreign"]) == 40 and int(end["rtp_received"]) == 10


def test_requests_in_a_call_from_anyone_but_its_peer_are_refused_and_change_nothing(tmp_path):
    with daemon_running(one_flow(tmp_path / "flows", HOLD)) as daemon:
        caller = RtpCaller(daemon.port, host=CALLER)
        stranger, stranger_media = udp(STRANGER), udp(STRANGER)
        try:
            caller.call()
            caller.send_rtp(0, SILENCE_PCMU)
            caller.wait_for_packets(5)
            hijack = caller.sdp(host=STRANGER, port=stranger_media.getsockname()[1])
            stranger.sendto(forged(caller, stranger, "INVITE", hijack, "application/sdp"), ("127.0.0.1", daemon.port))
            assert final_status(stranger) == 403
            stranger.sendto(forged(caller, stranger, "BYE"), ("127.0.0.1", daemon.port))
            assert final_status(stranger) == 403
            assert drain(stranger_media, 1.0) == 0  # the call's audio did not move to the stranger
            before = len(caller.received)
            caller.wait_for_packets(before + 25)  # and still reaches the caller: the call is up
            assert caller.bye() == 200
        finally:
            caller.close()
            stranger.close()
            stranger_media.close()
    refused = events(daemon.final_log, "security.refused")
    assert [(r["method"], r["remote"]) for r in refused] == [("INVITE", STRANGER), ("BYE", STRANGER)]
    (end,) = events(daemon.final_log, "call.end")
    assert end["reason"] == "bye"


def test_an_invite_whose_route_could_not_be_used_later_is_refused_when_it_comes(tmp_path):
    with daemon_running(one_flow(tmp_path / "flows", HOLD)) as daemon:
        caller = RtpCaller(daemon.port, host=CALLER)
        try:
            refused = caller.invite(extra=f"Record-Route: <sip:proxy@{CALLER}:5060; lr>\r\n")
            metrics = scrape(daemon)
        finally:
            caller.close()
    assert refused.status == 400 and "Record-Route" in refused.reason
    assert value(metrics, "ivrd_calls_active") == 0
    assert not events(daemon.final_log, "call.incoming")


def test_an_offer_whose_media_address_is_a_host_name_is_refused_never_resolved(tmp_path):
    with daemon_running(one_flow(tmp_path / "flows", HOLD)) as daemon:
        caller = RtpCaller(daemon.port, host=CALLER)
        try:
            named = caller.sdp().replace(f"c=IN IP4 {CALLER}", "c=IN IP4 media.attacker.invalid")
            refused = caller.invite(sdp=named)
        finally:
            caller.close()
    assert refused.status == 488 and "host name" in refused.reason
    assert not events(daemon.final_log, "call.incoming")


def test_tcp_connections_from_one_address_cannot_crowd_out_the_others_nor_linger_half_sent(tmp_path):
    limits = "  max_tcp_connections: 50\n  max_tcp_connections_per_source: 5\n  tcp_message_timeout: 2\n"
    with daemon_running(sip_section=limits) as daemon:
        hogs = []
        for _ in range(8):  # one address opens more than its share and sends nothing
            hog = socket.create_connection(("127.0.0.1", daemon.port), source_address=(STRANGER, 0))
            hogs.append(hog)
        slow = socket.create_connection(("127.0.0.1", daemon.port), source_address=(CALLER, 0))
        slow.sendall(b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP ")  # then nothing more
        other = socket.create_connection(("127.0.0.1", daemon.port), source_address=("127.0.0.33", 0))
        other.settimeout(10)
        other.sendall(OPTIONS.replace(b"HOST", b"127.0.0.33"))
        answer = parse_message(other.recv(65535))
        slow.settimeout(10)
        closed_slow = slow.recv(10) == b""  # cut off once its message is not whole in time
        refused = sum(1 for hog in hogs if _closed(hog))
        metrics = scrape(daemon)
        for sock in (*hogs, slow, other):
            sock.close()
    assert isinstance(answer, Response) and answer.status == 200  # another address is served
    assert closed_slow and refused == 3
    assert value(metrics, "ivrd_sip_tcp_dropped_total", reason="source_limit") == 3
    assert value(metrics, "ivrd_sip_tcp_dropped_total", reason="slow") == 1
    lines = events(daemon.final_log, "sip.tcp_refused")
    assert len(lines) == 3 and {line["remote"] for line in lines} == {STRANGER}


OPTIONS = (b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP HOST:5060;branch=z9hG4bKopt\r\n"
           b"From: <sip:probe@HOST>;tag=p\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: probe-tcp\r\n"
           b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")  # fmt: skip


def _closed(sock: socket.socket) -> bool:
    """Whether the daemon closed ``sock`` (at once, as it refuses it)."""
    sock.settimeout(5)
    try:
        return sock.recv(10) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def test_an_over_long_url_is_the_clients_error_logged_at_info_without_a_traceback(tmp_path):
    with daemon_running() as daemon:  # leaving it, the log must hold no error line
        with socket.create_connection(("127.0.0.1", daemon.http_port), timeout=10) as http:
            http.sendall(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: ivrd\r\n\r\n")
            status = http.recv(100).split(b" ", 2)[1]
        daemon.wait_for_event("http.bad_request")
    assert status.startswith(b"4")
    (line,) = events(daemon.final_log, "http.bad_request")
    assert line["level"] == "info" and "exception" not in line
