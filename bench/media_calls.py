"""Concurrent calls with audio both ways: the daemon's CPU and how punctually its RTP arrives.

For each N, a load generator (a separate process on the other core) sets up N calls over SIP,
sends each a 20 ms G.711 frame every 20 ms (in 20 groups a millisecond apart, as independent
phones would, rather than all at once), and records every RTP packet the daemon sends
(a prompt, then silence). Lateness is measured at the receiver: for each call, a packet's
``arrival - timestamp / 8000``, less the smallest such value of that call, so a perfectly paced
stream scores 0 whatever the path's fixed delay. Prints, per N: daemon CPU %, lateness
p50/p99/max in ms, packets lost (sequence gaps), the frames the daemon skipped (held up a whole
20 ms or more, it sends the next frame on time rather than a burst: those never arrive, so the
lateness cannot show them), the generator's own CPU % (when it nears 100 the figures are the
generator's, not the daemon's), the calls replaced while measuring, and, from the daemon's
metrics, its young garbage collections in that time that held it up over 2 ms, and its full
collections with their mean pause.
Loopback only, bounded in time::

    .venv/bin/python bench/media_calls.py [--calls 50,100,200,400] [--seconds 6] [--inband] [--realtime 20]
                                          [--churn 5]

``--churn R`` hangs up R calls a second and sets up as many new ones while measuring: the count
holds, the calls turn over as in a contact center's day, and the daemon's heap with them.

``--realtime P`` runs the daemon as ``systemd/ivrd.service`` does, its event loop at real-time
priority P (``chrt --reset-on-fork --rr P``), and the generator at P too: on a shared machine,
a process at normal priority is at times held off its core for milliseconds by others, and a
generator held up sends a burst no set of independent phones would. Needs CAP_SYS_NICE (root).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivrd.media.rtp import build_rtp, parse_rtp
from ivrd.sip.message import Response, parse_message
from tests.integration.daemon import PROMPT, RunningDaemon, one_flow, start_daemon
from tests.integration.scrape import scrape, value

# Every call hears the prompt over and over: a paced, never idle sender.
LOOPING_PROMPT = f"  loop:\n    play: {PROMPT}\n    barge_in: false\n    next: loop\n"
PHASES = 20  # groups of calls sending at different instants of each 20 ms
POLL = 0.002  # seconds between reads of an empty socket (a sliver of its 16 MB buffer fills meanwhile)
SO_TIMESTAMP, SO_TIMESTAMPNS = 29, 35  # Linux socket options (the socket module does not name them)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stall_counts(daemon: RunningDaemon) -> tuple[float, float, float, float]:
    """From the daemon's metrics, so far: the frames it skipped (held up a whole frame or more: the
    receiver's lateness cannot show those, they were never sent), its young garbage collections
    (generations 0 and 1) that took over 2 ms, and its full collections (how many, their seconds)."""
    samples = scrape(daemon)
    young = sum(value(samples, "ivrd_gc_pause_seconds_count", generation=g)
                - value(samples, "ivrd_gc_pause_seconds_bucket", generation=g, le="0.002") for g in "01")
    return (value(samples, "ivrd_rtp_packets_skipped_total"), young,
            value(samples, "ivrd_gc_pause_seconds_count", generation="2"),
            value(samples, "ivrd_gc_pause_seconds_sum", generation="2"))  # fmt: skip


# ---- the load generator (runs in its own process) -------------------------------------------------


class Receiver:
    """Reads every call's RTP from one socket in a thread, with the kernel's arrival timestamps
    (SO_TIMESTAMPNS), so the generator's own scheduling does not show up as lateness; keeps, per
    SSRC, arrival offsets and sequence numbers.

    The thread polls the socket rather than waiting on it. A thread waiting on a socket is woken
    by every datagram, and on loopback the sender pays for that wake-up: tens of thousands a
    second would add to the daemon's CPU a cost that a network card does not charge it. Nobody
    waits on a polled socket, and the kernel's timestamps keep the lateness exact however late
    the datagrams are read."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)  # no drops of our own making
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.offsets: dict[int, list[float]] = {}
        self.sequences: dict[int, list[int]] = {}
        self._first_ts: dict[int, int] = {}
        self.recording = False
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(2048, socket.CMSG_SPACE(16))
            except BlockingIOError:
                time.sleep(POLL)
                continue
            if not self.recording:
                continue
            arrival = _kernel_time(ancillary)
            packet = parse_rtp(data)
            first = self._first_ts.setdefault(packet.ssrc, packet.timestamp)
            elapsed = ((packet.timestamp - first) % 2**32) / 8000  # the RTP clock since this stream began
            self.offsets.setdefault(packet.ssrc, []).append(arrival - elapsed)
            self.sequences.setdefault(packet.ssrc, []).append(packet.sequence)

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


def _kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float:
    """The arrival time the kernel stamped on a datagram (SO_TIMESTAMPNS, or SO_TIMESTAMP in microseconds)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind in (SO_TIMESTAMPNS, SO_TIMESTAMP):
            whole, part = struct.unpack("qq", data[:16])
            return whole + part / (1e9 if kind == SO_TIMESTAMPNS else 1e6)
    raise RuntimeError("no kernel timestamp on a received datagram")


class SipClient(asyncio.DatagramProtocol):
    """Hands each final response to whoever waits for its Call-ID."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[Response]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        if isinstance(message, Response) and message.status >= 200:
            future = self.waiting.pop(message.call_id, None)
            if future is not None and not future.done():
                future.set_result(message)


async def generate(daemon_port: int, calls: int, seconds: float, inband: bool, churn: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    receiver = Receiver()
    rtp_port = receiver.sock.getsockname()[1]
    rtp = receiver.sock  # one socket both ways, as a phone does: the daemon latches onto where audio comes from
    sip, client = await loop.create_datagram_endpoint(SipClient, local_addr=("127.0.0.1", 0))
    sip_port = sip.get_extra_info("sockname")[1]
    daemon = ("127.0.0.1", daemon_port)
    targets: list[tuple[str, int]] = []
    dialogs: list[tuple[int, str]] = []  # (call number, the daemon's To tag)
    sdp = (f"v=0\r\no=g 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {rtp_port} RTP/AVP 0" + ("\r\n" if inband else " 101\r\na=rtpmap:101 telephone-event/8000\r\n"))

    def request(method: str, i: int, cseq: int, to_tag: str = "", body: str = "") -> bytes:
        tag = f";tag={to_tag}" if to_tag else ""
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        return (f"{method} sip:ivr@127.0.0.1:{daemon_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{sip_port};branch=z9hG4bK{method}{i}x{cseq}\r\n"
                f"From: <sip:gen@127.0.0.1>;tag=g{i}\r\nTo: <sip:ivr@127.0.0.1>{tag}\r\nCall-ID: bench-{i}\r\n"
                f"CSeq: {cseq} {method}\r\nContact: <sip:gen@127.0.0.1:{sip_port}>\r\nMax-Forwards: 70\r\n"
                f"{ctype}Content-Length: {len(body)}\r\n\r\n{body}").encode()  # fmt: skip

    async def exchange(data: bytes, call_id: str) -> Response:
        future = client.waiting[call_id] = loop.create_future()
        sip.sendto(data, daemon)
        return await asyncio.wait_for(future, 10)

    async def dial(number: int) -> tuple[tuple[str, int], tuple[int, str]]:
        """Set call ``number`` up: where to send its audio, and its dialog."""
        ok = await exchange(request("INVITE", number, 1, body=sdp), f"bench-{number}")
        assert ok.status == 200, ok
        media_port = int(next(x for x in ok.body.decode().splitlines() if x.startswith("m=audio")).split()[1])
        sip.sendto(request("ACK", number, 1, ok.to.tag or ""), daemon)
        return ("127.0.0.1", media_port), (number, ok.to.tag or "")

    async def hang_up(dialog: tuple[int, str]) -> None:
        await exchange(request("BYE", dialog[0], 2, dialog[1]), f"bench-{dialog[0]}")

    for number in range(calls):  # one after another (the bench is about media, not setup rate)
        target, dialog = await dial(number)
        targets.append(target)
        dialogs.append(dialog)

    replaced = 0

    async def replace_calls() -> None:
        """Hang up the oldest call and set a new one up in its place, ``churn`` times a second: the
        number of calls holds, the set of calls turns over, as in a contact center's day."""
        nonlocal replaced
        while True:
            await asyncio.sleep(1 / churn)
            slot = replaced % calls
            await hang_up(dialogs[slot])
            targets[slot], dialogs[slot] = await dial(calls + replaced)
            replaced += 1

    payload = b"\xff" * 160
    start = loop.time()
    timers: dict[int, asyncio.TimerHandle] = {}  # each phase's next send, cancelled before the BYEs

    # Phones keep their own clocks, so their packets come spread over the 20 ms, not all at once:
    # the calls are sent in PHASES groups, each a millisecond after the one before.
    def send_phase(phase: int, tick: int) -> None:
        for i in range(phase, len(targets), PHASES):
            rtp.sendto(build_rtp(0, False, tick & 0xFFFF, tick * 160, i + 1, payload), targets[i])
        timers[phase] = loop.call_at(start + (tick + 1) * 0.02 + phase * 0.02 / PHASES, send_phase, phase, tick + 1)

    for phase in range(PHASES):
        timers[phase] = loop.call_at(start + phase * 0.02 / PHASES, send_phase, phase, 0)
    await asyncio.sleep(2.0)  # warm-up: every call's prompt has started and the latches are set
    # A collection here would walk the millions of arrivals recorded and hold the sender up for tens
    # of milliseconds: a burst no set of phones sends. The window is bounded, and so is the garbage.
    gc.disable()
    receiver.recording = True
    print("recording", flush=True)
    cpu_before, wall_before = time.process_time(), time.monotonic()
    replacing = asyncio.ensure_future(replace_calls()) if churn else None
    await asyncio.sleep(seconds)
    receiver.recording = False
    gc.enable()
    if replacing is not None:
        replacing.cancel()
        await asyncio.gather(replacing, return_exceptions=True)
    generator_cpu = (time.process_time() - cpu_before) / (time.monotonic() - wall_before) * 100
    for timer in timers.values():
        timer.cancel()
    for dialog in dialogs:
        await hang_up(dialog)
    receiver.close()
    sip.close()

    lateness = np.concatenate([np.asarray(v) - min(v) for v in receiver.offsets.values()]) * 1000
    lost = sum(max(0, (s[-1] - s[0]) % 65536 + 1 - len(s)) for s in receiver.sequences.values())
    return {"streams": len(receiver.offsets), "packets": int(lateness.size), "lost": int(lost),
            "gen_cpu": generator_cpu, "replaced": replaced,
            "p50": float(np.percentile(lateness, 50)), "p99": float(np.percentile(lateness, 99)),
            "max": float(lateness.max())}  # fmt: skip


# ---- the driver -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="50,100,200,300,400,600")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--inband", action="store_true",
                        help="offer no telephone-event, so the daemon listens for DTMF tones in every call's audio")
    parser.add_argument("--churn", type=float, default=0.0, metavar="PER_SECOND",
                        help="while measuring, replace this many calls a second (hang up the oldest, set up a new one)")
    parser.add_argument("--realtime", type=int, metavar="PRIORITY",
                        help="run the daemon's event loop and the generator at this real-time priority (1-99)")
    parser.add_argument("--generator", nargs=2, type=int, metavar=("PORT", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generator:
        result = uvloop.run(generate(args.generator[0], args.generator[1], args.seconds, args.inband, args.churn))
        print(json.dumps(result))
        return 0
    two_cores = (os.cpu_count() or 1) >= 2
    rr = ("--rr", str(args.realtime)) if args.realtime else ()
    realtime_daemon = ("chrt", "--reset-on-fork", *rr) if rr else ()  # as systemd/ivrd.service runs it
    realtime_generator = ("chrt", *rr) if rr else ()
    print(f"{'calls':>6} {'daemon cpu %':>12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'packets':>8} {'lost':>6} "
          f"{'skipped':>7} {'generator cpu %':>15} {'replaced':>8} {'young GCs >2 ms':>15} "
          f"{'full GCs':>8} {'GC ms':>6}")  # fmt: skip
    for calls in [int(n) for n in args.calls.split(",")]:
        flows = one_flow(Path(tempfile.mkdtemp(prefix="ivrd-bench-flows-")), LOOPING_PROMPT)
        config = f"{flows}calls:\n  max_concurrent: 100000\nlog:\n  level: warning\n"
        daemon = start_daemon(config, rtp_ports=(20000, 20000 + 4 * calls + 100), wrapper=realtime_daemon)
        try:
            if two_cores:
                os.sched_setaffinity(daemon.proc.pid, {0})
            pin = ["taskset", "-c", "1"] if two_cores and shutil.which("taskset") else []
            command = [*pin, *realtime_generator, sys.executable, __file__, "--seconds", str(args.seconds),
                       "--generator", str(daemon.port), str(calls), "--churn", str(args.churn),
                       *(["--inband"] if args.inband else [])]  # fmt: skip
            generator = subprocess.Popen(command, stdout=subprocess.PIPE)
            assert generator.stdout is not None
            if generator.stdout.readline().strip() != b"recording":  # the generator's window opens
                raise SystemExit(f"the generator failed at {calls} calls")
            before, t0, stalls = cpu_seconds(daemon.proc.pid), time.monotonic(), stall_counts(daemon)
            time.sleep(args.seconds * 0.9)  # a measuring window inside the generator's
            cpu = (cpu_seconds(daemon.proc.pid) - before) / (time.monotonic() - t0) * 100
            skipped, young, count, pauses = np.subtract(stall_counts(daemon), stalls)
            out, _ = generator.communicate(timeout=120)
            r = json.loads(out)
            print(f"{calls:>6} {cpu:>12.1f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['max']:>8.2f} {r['packets']:>8} "
                  f"{r['lost']:>6} {skipped:>7.0f} {r['gen_cpu']:>15.1f} {r['replaced']:>8} {young:>15.0f} "
                  f"{count:>8.0f} {pauses / count * 1000 if count else 0:>6.1f}", flush=True)  # fmt: skip
        finally:
            daemon.stop()
            shutil.rmtree(daemon.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
