"""The shared router through a real Redis next to the in-memory one: join -> offer latency (one caller at a
time, p50/p99 in ms) and routing decisions/s (joins sent in bursts), with 2,000 agents logged in; then call
setups/s through Kamailio (etc/cluster/kamailio.cfg) to one daemon node and to two sharing Redis.

Routing: two nodes on one loop: ``a`` holds the lease and folds the log, ``b`` has the callers (so every
offer crosses from one node to the other through Redis, as in a cluster). Setups: SIPp ``uac`` calls held
1 s through Kamailio, the rate raised by ``--step`` until a call fails; the highest clean rate. Everything
on loopback, with a redis-server of its own::

    .venv/bin/python bench/cluster.py [--joins 2000] [--start 100] [--step 100] [--max 1500] [--seconds 5]
                                      [--no-admission]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.agents import Agent, AgentState
from routing.matcher import Offer, QueueSpec, Router
from tests.cluster.kamailio import kamailio
from tests.cluster.redis_server import redis_server
from tests.cluster.test_shared_log import Node, until
from tests.integration.daemon import free_port, start_daemon
from tests.integration.peers import sipp

QUEUES = [QueueSpec("q", join_empty=True, max_waiting=1_000_000)]
AGENTS = 2000


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def memory(joins: int) -> tuple[list[float], float]:
    router = Router(QUEUES)
    for n in range(AGENTS):
        router.add_agent(Agent(f"x{n}", {}, state=AgentState.AVAILABLE), 0.0)
    latencies = []
    for n in range(joins):
        started = time.perf_counter()
        router.join(f"c{n}", "q", 1.0)
        assert isinstance(router.take_decisions()[0], Offer)
        latencies.append((time.perf_counter() - started) * 1000)
        router.leave(f"c{n}", 1.0)
        router.take_decisions()
    started = time.perf_counter()
    for n in range(joins):
        router.join(f"d{n}", "q", 2.0)
    offers = len(router.take_decisions())
    return latencies, offers / (time.perf_counter() - started)


async def shared(url: str, joins: int) -> tuple[list[float], float, int]:
    a = Node(url, "a", QUEUES)
    await until(lambda: a.log.holding)
    b = Node(url, "b", QUEUES)
    try:
        for n in range(AGENTS):
            a.router.add_agent(Agent(f"x{n}", {}, state=AgentState.AVAILABLE), 0.0)
        await a.flush()
        await until(lambda: len(b.router.agents) == AGENTS, timeout=30)
        latencies = []
        for n in range(joins):
            started = time.perf_counter()
            b.router.join(f"c{n}", "q", 0.0)
            await b.flush()
            await asyncio.wait_for(b.offers.get(), 5)
            latencies.append((time.perf_counter() - started) * 1000)
            b.router.leave(f"c{n}", 0.0)  # the agent is free again once folded
            await b.flush()
        started = time.perf_counter()
        for n in range(joins):
            b.router.join(f"d{n}", "q", 0.0)
        await b.flush()
        got = 0
        with contextlib.suppress(TimeoutError):
            while got < joins:
                await asyncio.wait_for(b.offers.get(), 5)
                got += 1
        elapsed = time.perf_counter() - started - (5 if got < joins else 0)
        return latencies, got / elapsed, joins - got
    finally:
        await a.stop()
        await b.stop()


def setups(nodes: int, args: argparse.Namespace) -> int:
    """The highest rate of calls through Kamailio to ``nodes`` nodes with none failed."""
    with tempfile.TemporaryDirectory() as workdir, redis_server(Path(workdir)) as server:
        admission = "" if args.admission else "  admission: { enabled: false }\n"
        daemons = [start_daemon(f"calls:\n  max_concurrent: 100000\n{admission}routing:\n  backend: {server.url}\n"
                                f"  cluster: {{ node: n{i} }}\n") for i in range(nodes)]  # fmt: skip
        best = 0
        try:
            with kamailio([d.port for d in daemons]) as edge:
                rate = args.start
                while rate <= args.max:
                    calls = rate * args.seconds
                    result = sipp(f"127.0.0.1:{edge}", "-sn", "uac", "-i", "127.0.0.1", "-p", str(free_port()),
                                  "-r", str(rate), "-m", str(calls), "-l", str(rate * 4), "-d", "1000",
                                  "-max_recv_loops", "10000", cwd=Path(workdir), timeout=args.seconds * 4 + 60)
                    ok = result.code == 0 and result.failed == 0 and result.successful == calls
                    print(f"{nodes:>6} {rate:>7} {calls:>6} {result.successful:>6} {result.failed:>6}")
                    if not ok:
                        break
                    best, rate = rate, rate + args.step
        finally:
            for daemon in daemons:
                daemon.stop()
                shutil.rmtree(daemon.workdir, ignore_errors=True)
        return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=2000)
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--step", type=int, default=100)
    parser.add_argument("--max", type=int, default=1500)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--admission", action=argparse.BooleanOptionalAction, default=True,
                        help="admission control on the nodes (off: what they take before refusing any)")
    args = parser.parse_args()
    print(f"{'backend':>8} {'p50 ms':>8} {'p99 ms':>8} {'decisions/s':>12} {'offers lost':>12}")
    latencies, rate = memory(args.joins)
    row = "{:>8} {:>8.3f} {:>8.3f} {:>12.0f} {:>12}"
    print(row.format("memory", statistics.median(latencies), percentile(latencies, 0.99), rate, 0))
    with tempfile.TemporaryDirectory() as workdir, redis_server(Path(workdir)) as server:
        latencies, rate, lost = asyncio.run(shared(server.url, args.joins))
    print(row.format("redis", statistics.median(latencies), percentile(latencies, 0.99), rate, lost))
    if shutil.which("kamailio") is None or shutil.which("sipp") is None:
        print("kamailio or sipp is not installed (scripts/setup --test installs them): no call setups")
        return 0
    print(f"{'nodes':>6} {'rate/s':>7} {'calls':>6} {'ok':>6} {'failed':>6}")
    best = {nodes: setups(nodes, args) for nodes in (1, 2)}
    for nodes, rate in best.items():
        print(f"call setups through Kamailio to {nodes} node{'s' if nodes > 1 else ''}: {rate}/s with none failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
