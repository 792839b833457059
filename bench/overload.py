"""Offered load from half to three times capacity: what the daemon answers, refuses and hears.

For each offered rate a fresh daemon (admission control on its default bounds, pinned to CPU 0) takes
``--seconds`` of SIPp calls (pinned to CPU 1) that either get 503 or are served:

- ``ivr``: the caller presses 1 (RFC 4733 from SIPp's pcap) half a second after the answer, over a
  prompt; the flow hangs up at once when it hears the key (a key not heard: a failed call);
- ``signalling``: no flow, the call is held 1 s and hung up by the caller.

Prints per step: answered, refused (503), SIPp's failed calls, keys heard among answered calls, setup
p99 (INVITE to 200, answered calls), how late audio frames left (p99 bucket bound) and the frames never
sent, the daemon's CPU. Usage::

    .venv/bin/python bench/overload.py --scenario ivr --capacity 80 [--factors 0.5,1,1.5,2,3] [--seconds 10]
    .venv/bin/python bench/overload.py --scenario signalling --capacity 900
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivrd.records import Query, connect, find
from tests.integration.daemon import PROMPT, free_port, one_flow, start_daemon
from tests.integration.logfmt import events
from tests.integration.peers import SCENARIOS, sipp
from tests.integration.scrape import Samples, scrape, value

IVR = f"""  menu:
    menu: {PROMPT}
    timeout: 8
    choices:
      - {{ key: 1, goto: heard }}
  heard:
    hangup: true
"""
LATENESS = ("0.0005", "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "+Inf")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lateness_p99(before: Samples, after: Samples) -> str:
    """The bucket bound under which 99% of the frames sent in between left (ms)."""
    counts = [value(after, "ivrd_rtp_send_lateness_seconds_bucket", le=le)
              - value(before, "ivrd_rtp_send_lateness_seconds_bucket", le=le) for le in LATENESS]  # fmt: skip
    if not counts[-1]:
        return "-"
    bound = next(le for le, count in zip(LATENESS, counts, strict=True) if count >= 0.99 * counts[-1])
    return ">50" if bound == "+Inf" else f"{float(bound) * 1000:g}"


def setup_p99(work: Path) -> float:
    """SIPp's INVITE-to-200 times of the answered calls (its -trace_rtt file), p99 in ms."""
    times = sorted(float(line.split(";")[1]) for f in work.glob("*_rtt.csv")
                   for line in f.read_text().splitlines()[1:] if line.count(";") >= 2)  # fmt: skip
    return times[min(len(times) - 1, int(len(times) * 0.99))] if times else math.nan


def step(scenario: str, rate: int, seconds: int) -> str:
    work = Path(tempfile.mkdtemp(prefix="overload-"))
    (work / "pcap").symlink_to("/usr/share/sip-tester")
    flows = one_flow(work / "flows", IVR) if scenario == "ivr" else ""
    daemon = start_daemon(flows + "calls:\n  max_concurrent: 100000\n")
    two_cores = (os.cpu_count() or 1) >= 2
    if two_cores:
        os.sched_setaffinity(daemon.proc.pid, {0})
    try:
        before, cpu = scrape(daemon), cpu_seconds(daemon.proc.pid)
        calls = rate * seconds
        xml = "key_or_refused.xml" if scenario == "ivr" else "call_or_refused.xml"
        result = sipp(f"127.0.0.1:{daemon.port}", "-sf", str(SCENARIOS / xml), "-i", "127.0.0.1", "-mi", "127.0.0.1",
                      "-p", str(free_port()), "-r", str(rate), "-m", str(calls), "-l", str(rate * 15),
                      "-trace_rtt", "-rtt_freq", "1", "-max_recv_loops", "10000", cwd=work, timeout=seconds * 6 + 60,
                      wrapper=["taskset", "-c", "1"] if two_cores and shutil.which("taskset") else [])  # fmt: skip
        daemon.wait_for_event("call.end", len(events(daemon.log, "call.incoming")), timeout=60)
        after, used = scrape(daemon), cpu_seconds(daemon.proc.pid) - cpu
        records = list(find(connect(daemon.workdir / "calls.db", readonly=True), Query(limit=1_000_000)))
    finally:
        daemon.stop()
        shutil.rmtree(daemon.workdir, ignore_errors=True)
    refused = value(after, "ivrd_calls_refused_total", reason="overload")
    heard = sum(1 for r in records if r["digits"] == "1")
    keys = f"{100 * heard / len(records):.2f}%" if scenario == "ivr" and records else "-"
    skipped = value(after, "ivrd_rtp_packets_skipped_total") - value(before, "ivrd_rtp_packets_skipped_total")
    row = (f"{rate:>7} {len(records):>8} {refused:>7.0f} {result.failed:>6} {keys:>8} {setup_p99(work):>9.1f} "
           f"{lateness_p99(before, after):>10} {skipped:>7.0f} {100 * used / seconds:>6.0f}")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("ivr", "signalling"), default="ivr")
    parser.add_argument("--capacity", type=int, default=80, help="calls/s the daemon serves cleanly")
    parser.add_argument("--factors", default="0.5,1,1.5,2,3")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is not installed (scripts/setup --test installs it)", file=sys.stderr)
        return 1
    print(f"{'rate/s':>7} {'answered':>8} {'refused':>7} {'failed':>6} {'keys':>8} {'setup p99':>9} "
          f"{'late p99 ms':>10} {'skipped':>7} {'cpu %':>6}")
    for factor in (float(f) for f in args.factors.split(",")):
        print(step(args.scenario, round(args.capacity * factor), args.seconds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
