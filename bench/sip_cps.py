"""Call setups per second: ramp SIPp `uac` against the daemon and find the highest rate with no failed call.

The daemon runs pinned to CPU 0 and SIPp to CPU 1 (on a 2-core machine), each step is a bounded
run of ``--seconds`` worth of calls held ``--hold`` ms, and the daemon's CPU time per 1,000 calls is
read from /proc. Loopback only. Usage::

    .venv/bin/python bench/sip_cps.py [--start 100] [--step 100] [--max 1500] [--seconds 10] [--hold 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.daemon import free_port, start_daemon
from tests.integration.peers import sipp


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--step", type=int, default=100)
    parser.add_argument("--max", type=int, default=1500)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--hold", type=int, default=1000, help="ms between answer and BYE")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is not installed (scripts/setup --test installs it)", file=sys.stderr)
        return 1
    two_cores = (os.cpu_count() or 1) >= 2
    daemon = start_daemon(f"calls:\n  max_concurrent: 100000\nlog:\n  level: {args.log_level}\n")
    if two_cores:
        os.sched_setaffinity(daemon.proc.pid, {0})
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    best = 0
    per_thousand: list[float] = []
    print(f"{'rate/s':>7} {'calls':>6} {'ok':>6} {'failed':>6} {'daemon cpu s':>12} {'cpu s/1000 calls':>16}")
    try:
        rate = args.start
        while rate <= args.max:
            calls = rate * args.seconds
            before = cpu_seconds(daemon.proc.pid)
            pin = ["taskset", "-c", "1"] if two_cores and shutil.which("taskset") else []
            result = sipp(f"127.0.0.1:{daemon.port}", "-sn", "uac", "-i", "127.0.0.1", "-p", str(free_port()),
                          "-r", str(rate), "-m", str(calls), "-l", str(rate * (args.hold // 1000 + 3)),
                          "-d", str(args.hold), "-max_recv_loops", "10000", cwd=work,
                          timeout=args.seconds * 4 + 60, wrapper=pin)  # fmt: skip
            used = cpu_seconds(daemon.proc.pid) - before
            ok = result.code == 0 and result.failed == 0 and result.successful == calls
            cost = used * 1000 / max(result.successful, 1)
            print(f"{rate:>7} {calls:>6} {result.successful:>6} {result.failed:>6} {used:>12.2f} {cost:>16.2f}")
            if not ok:
                break
            best = rate
            per_thousand.append(cost)
            rate += args.step
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(daemon.workdir, ignore_errors=True)
    per_thousand.sort()
    median = per_thousand[len(per_thousand) // 2] if per_thousand else float("nan")
    print(f"highest rate with 0 failed calls: {best} calls/s (daemon on one core)")
    print(f"daemon CPU per 1000 calls (median over passing steps): {median:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
