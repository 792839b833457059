"""OPTIONS latency while the daemon is attacked, next to idle: does an attack of one kind hold up everyone?

A real daemon on loopback, one call held up; for each attack a prober at 127.0.0.40 sends OPTIONS every
20 ms for ``--seconds`` and times the answers (p50, p99, max in ms) while the attacker, on addresses of
its own, does one thing:

- ``idle``: nothing (the baseline);
- ``sdp-names``: INVITEs whose SDP media address is a host name (refused 488, never resolved);
- ``tcp-hog``: 200 TCP connections from one address that send nothing, and 20 that trickle a header;
- ``tcp-drip``: 30 TCP connections from one address, each sending an endless header a byte at a time as
  fast as it can (every byte a segment of its own), reconnecting when closed;
- ``rtp-hijack``: RTP to the held call's media port from a stranger, 1,000 packets a second;
- ``forged-dialog``: BYEs and re-INVITEs in the held call's dialog from a stranger, 100 a second.

Loopback only, bounded in time::

    .venv/bin/python bench/attacks.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from ivrd.media.rtp import build_rtp
from tests.integration.daemon import PROMPT, RunningDaemon, one_flow, start_daemon
from tests.integration.rtp_caller import SILENCE_PCMU, RtpCaller

PROBER, ATTACKER, CALLER = "127.0.0.40", "127.0.0.41", "127.0.0.31"
HOLD = f"  greet:\n    play: {PROMPT}\n  hold:\n    wait: 3600\n    next: hold\n"


def options(port: int, n: int) -> bytes:
    return (f"OPTIONS sip:ivr@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {PROBER}:5999;branch=z9hG4bKp{n}\r\n"
            f"From: <sip:probe@{PROBER}>;tag=p\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: probe-{n}\r\n"
            f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()  # fmt: skip


def probe(port: int, seconds: float) -> list[float]:
    """OPTIONS every 20 ms; each answer's round trip in ms (a lost one counts as 1,000)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((PROBER, 5999))
    sock.settimeout(1.0)
    times: list[float] = []
    end, n = time.monotonic() + seconds, 0
    try:
        while time.monotonic() < end:
            n += 1
            sent = time.monotonic()
            sock.sendto(options(port, n), ("127.0.0.1", port))
            try:
                while f"probe-{n}".encode() not in sock.recv(65535):
                    pass
                times.append((time.monotonic() - sent) * 1000)
            except TimeoutError:
                times.append(1000.0)
            time.sleep(max(0.0, 0.02 - (time.monotonic() - sent)))
    finally:
        sock.close()
    return times


def sdp_names(daemon: RunningDaemon, call: RtpCaller, stop: threading.Event) -> None:
    phone = RtpCaller(daemon.port, host=ATTACKER)
    named = phone.sdp().replace(f"c=IN IP4 {ATTACKER}", "c=IN IP4 media.attacker.invalid")
    try:
        while not stop.is_set():
            phone.cseq += 1
            phone.sip.sendto(phone.request("INVITE", named, "application/sdp", branch=f"n{phone.cseq}"),
                             ("127.0.0.1", daemon.port))  # fmt: skip
            time.sleep(0.05)
    finally:
        phone.close()


def tcp_hog(daemon: RunningDaemon, call: RtpCaller, stop: threading.Event) -> None:
    held = []
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                held.append(socket.create_connection(("127.0.0.1", daemon.port), source_address=(ATTACKER, 0)))
        slow = [socket.create_connection(("127.0.0.1", daemon.port), source_address=("127.0.0.42", 0))
                for _ in range(20)]  # fmt: skip
        held += slow
        while not stop.is_set():
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"O")
            time.sleep(1.0)
    finally:
        for sock in held:
            sock.close()


def tcp_drip(daemon: RunningDaemon, call: RtpCaller, stop: threading.Event) -> None:
    def connect() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", daemon.port), source_address=("127.0.0.43", 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.send(b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nX: ")
        return sock

    conns = [connect() for _ in range(30)]
    try:
        while not stop.is_set():
            for i, sock in enumerate(conns):
                try:
                    sock.send(b"y")
                except OSError:  # closed by the daemon (too large, or too slow): come again
                    sock.close()
                    conns[i] = connect()
    finally:
        for sock in conns:
            sock.close()


def rtp_hijack(daemon: RunningDaemon, call: RtpCaller, stop: threading.Event) -> None:
    assert call.remote_rtp is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ATTACKER, 0))
    seq = 0
    try:
        while not stop.is_set():
            for _ in range(10):
                sock.sendto(build_rtp(0, False, seq, seq * 160, 0xBAD, SILENCE_PCMU), call.remote_rtp)
                seq += 1
            time.sleep(0.01)
    finally:
        sock.close()


def forged_dialog(daemon: RunningDaemon, call: RtpCaller, stop: threading.Event) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ATTACKER, 0))
    via_from, via_to = f"{call.host}:{call.sip_port}", f"{ATTACKER}:{sock.getsockname()[1]}"
    cseq = 1000
    try:
        while not stop.is_set():
            for method, body, kind in (("BYE", "", ""), ("INVITE", call.sdp(host=ATTACKER), "application/sdp")):
                cseq += 1
                text = call.request(method, body, kind, branch=f"f{cseq}").decode()
                text = text.replace(via_from, via_to).replace(f"CSeq: {call.cseq} ", f"CSeq: {cseq} ")
                sock.sendto(text.encode(), ("127.0.0.1", daemon.port))
            time.sleep(0.02)
    finally:
        sock.close()


ATTACKS: dict[str, Callable[[RunningDaemon, RtpCaller, threading.Event], None] | None] = {
    "idle": None, "sdp-names": sdp_names, "tcp-hog": tcp_hog, "tcp-drip": tcp_drip, "rtp-hijack": rtp_hijack,
    "forged-dialog": forged_dialog,
}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    flows = Path(tempfile.mkdtemp(prefix="bench-attacks-"))
    daemon = start_daemon(one_flow(flows, HOLD))
    call = RtpCaller(daemon.port, host=CALLER)
    print(f"{'attack':>14} {'probes':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>8}")
    try:
        call.call()
        call.send_rtp(0, SILENCE_PCMU)
        call.keep_reporting()  # the run outlasts media.timeout_seconds
        for name, attack in ATTACKS.items():
            stop = threading.Event()
            attacker = threading.Thread(target=attack, args=(daemon, call, stop)) if attack else None
            if attacker is not None:
                attacker.start()
                time.sleep(0.5)  # the attack under way before measuring
            times = probe(daemon.port, args.seconds)
            stop.set()
            if attacker is not None:
                attacker.join()
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"{name:>14} {len(times):>7} {statistics.median(times):>7.2f} {p99:>7.2f} {times[-1]:>8.2f}")
        call_alive = call.bye() == 200
    finally:
        call.close()
        daemon.stop()
        shutil.rmtree(flows, ignore_errors=True)
        shutil.rmtree(daemon.workdir, ignore_errors=True)
    print(f"the held call survived every attack: {call_alive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
