"""The shared router's log in a real Redis: nodes append, the lease holder folds and publishes, another
node takes the lease over when the holder dies, and the dead node's callers and agents are let go."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from ivrd.cluster.shared_log import SharedLog
from routing.agents import Agent, AgentState
from routing.matcher import Offer, QueueSpec
from routing.replicated import NodeRouter, Published
from tests.cluster.redis_server import redis_server

pytestmark = pytest.mark.peers
QUEUES = [QueueSpec("help", join_empty=True, wrap_up=0.5)]
LEASE = 0.6


class Node:
    def __init__(self, url: str, name: str, queues: list[QueueSpec] = QUEUES) -> None:
        self.router = NodeRouter(name, queues)
        self.offers: asyncio.Queue[Offer] = asyncio.Queue()
        self.client = aioredis.from_url(url, decode_responses=True)
        self.log = SharedLog(self.client, name, queues, on_published=self._heard, lease=LEASE)
        self.task = asyncio.create_task(self.log.run())

    def _heard(self, published: Published) -> None:
        self.router.receive(published)
        for decision in self.router.take_decisions():
            if isinstance(decision, Offer):
                self.offers.put_nowait(decision)

    async def flush(self) -> None:
        entries, self.router.outbox = self.router.outbox, []
        await self.log.append(entries)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.client.aclose()


async def until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def lease_holder_and_follower(url: str) -> tuple[Node, Node]:
    """Node a, holding the lease, with agent x logged in; node b beside it."""
    a = Node(url, "a")
    await until(lambda: a.log.holding)
    b = Node(url, "b")
    a.router.add_agent(Agent("x", {}, state=AgentState.AVAILABLE), 0.0)
    await a.flush()
    return a, b


def test_a_caller_on_one_node_is_offered_an_agent_defined_on_another(tmp_path):
    async def scenario(url: str) -> None:
        a, b = await lease_holder_and_follower(url)
        try:
            await until(lambda: "x" in b.router.agents)
            b.router.join("c1", "help", 0.0)
            await b.flush()
            offer = await asyncio.wait_for(b.offers.get(), 10)
            assert offer == Offer("c1", "x", "help")
            assert a.offers.empty()
            await until(lambda: a.router.agents["x"].state is AgentState.OFFERED)
        finally:
            await a.stop()
            await b.stop()

    with redis_server(tmp_path) as server:
        asyncio.run(scenario(server.url))


def test_when_the_lease_holder_dies_another_node_takes_over_and_lets_its_calls_go(tmp_path):
    async def scenario(url: str) -> None:
        a, b = await lease_holder_and_follower(url)
        try:
            a.router.join("on-a", "help", 0.0)
            await a.flush()
            assert (await asyncio.wait_for(a.offers.get(), 10)).caller == "on-a"
            a.router.answered("on-a", 0.0)
            await a.flush()
            b.router.join("on-b", "help", 0.0)
            await b.flush()
            await until(lambda: b.router.waiting("help") == 1 and b.router.agents["x"].state is AgentState.BUSY)
            await until(lambda: b.router.position("on-b") == 1)  # published now and then: it comes
            await a.stop()  # a dies holding the lease, with the agent on a call through it
            await until(lambda: b.log.holding, timeout=5 * LEASE)
            offer = await asyncio.wait_for(b.offers.get(), 10 * LEASE)  # x freed after wrap-up, on-b next
            assert offer == Offer("on-b", "x", "help")
        finally:
            await b.stop()

    with redis_server(tmp_path) as server:
        asyncio.run(scenario(server.url))
