"""Routing decisions: how fast the matcher picks an agent at 1k and 10k agents and waiting callers.

    .venv/bin/python bench/routing.py

Agents have 3-6 of 20 skills at levels 1-5; ten queues each ask for one skill at some level
(five of them "and" a language). All agents start busy with callers waiting everywhere; then,
over and over, a random agent finishes wrap-up (the router offers them the best waiting caller,
who answers) and a new caller joins a random queue (offered at once if an agent is free). Each
of those two events is one timed decision.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing.agents import Agent, AgentState
from routing.matcher import Offer, QueueSpec, Router

SKILLS = [f"skill{i}" for i in range(17)] + ["english", "spanish", "german"]


def build(agents: int, callers: int, rng: random.Random) -> Router:
    queues = [QueueSpec(f"q{i}", skills=f"skill{i} >= {1 + i % 3}" + (" and spanish" if i % 2 else ""),
                        strategy="most_skilled" if i % 4 == 0 else "longest_idle", wrap_up=0.0,
                        max_waiting=callers, join_empty=True) for i in range(10)]  # fmt: skip
    router = Router(queues)
    for n in range(agents):
        skills = {s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.randint(3, 6))}
        skills.update({f"skill{n % 10}": 5, rng.choice(["english", "spanish"]): 3})  # everyone serves a queue
        agent = Agent(f"a{n}", skills, state=AgentState.BUSY)
        router.add_agent(agent, 0.0)
    for n in range(callers):
        router.join(f"c{n}", f"q{rng.randrange(10)}", 0.0)
    router.take_decisions()
    return router


def run(agents: int, callers: int, events: int, rng: random.Random) -> tuple[float, float, float]:
    router = build(agents, callers, rng)
    now = 1.0
    timings = []
    busy = [a for a in router.agents.values() if a.state is AgentState.BUSY]
    next_caller = callers
    start = time.perf_counter()
    for _ in range(events):
        now += 0.01
        agent = busy.pop(rng.randrange(len(busy))) if busy else None
        if agent is not None:
            router.call_ended(agent.id, now)  # no wrap-up in these queues: due at once
            t0 = time.perf_counter()
            router.on_timer(now)
            timings.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        router.join(f"c{next_caller}", f"q{rng.randrange(10)}", now)
        timings.append(time.perf_counter() - t0)
        next_caller += 1
        for decision in router.take_decisions():
            if isinstance(decision, Offer):
                router.answered(decision.caller, now)
                busy.append(router.agents[decision.agent])
    elapsed = time.perf_counter() - start
    ms = np.array(timings) * 1000
    return len(timings) / elapsed, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main() -> int:
    print(f"{'agents':>7} {'waiting':>8} {'decisions/s':>12} {'p50 ms':>8} {'p99 ms':>8}")
    for agents, callers in ((1000, 1000), (10000, 10000)):
        rate, p50, p99 = run(agents, callers, 20000, random.Random(7))
        print(f"{agents:>7} {callers:>8} {rate:>12,.0f} {p50:>8.3f} {p99:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
