"""The shared router through a real Redis next to the in-memory one: join -> offer latency (one caller at a
time, p50/p99 in ms) and routing decisions/s (joins sent in bursts), with 2,000 agents logged in.

Two nodes on one loop: ``a`` holds the lease and folds the log, ``b`` has the callers (so every offer
crosses from one node to the other through Redis, as in a cluster). A redis-server of its own on loopback::

    .venv/bin/python bench/cluster.py [--joins 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.agents import Agent, AgentState
from routing.matcher import Offer, QueueSpec, Router
from tests.cluster.redis_server import redis_server
from tests.cluster.test_shared_log import Node, until

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'backend':>8} {'p50 ms':>8} {'p99 ms':>8} {'decisions/s':>12} {'offers lost':>12}")
    latencies, rate = memory(args.joins)
    row = "{:>8} {:>8.3f} {:>8.3f} {:>12.0f} {:>12}"
    print(row.format("memory", statistics.median(latencies), percentile(latencies, 0.99), rate, 0))
    with tempfile.TemporaryDirectory() as workdir, redis_server(Path(workdir)) as server:
        latencies, rate, lost = asyncio.run(shared(server.url, args.joins))
    print(row.format("redis", statistics.median(latencies), percentile(latencies, 0.99), rate, lost))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
