"""One node's routing through the shared log: the :class:`~routing.replicated.NodeRouter` the contact
center drives, its entries carried to Redis in order, and what the lease holder publishes brought back.

Redis away: callers already waiting keep their places (their entries are in the log), a caller joining
now leaves the queue at once with ``no_agents``, and what else happens meanwhile (a caller hanging up,
an agent's call ending) waits, in order, until Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

import redis.asyncio as redis
from redis.exceptions import RedisError

from routing.matcher import QueueSpec
from routing.replicated import NodeRouter, Published

from ..logs import event
from .share import Share
from .shared_log import SharedLog

log = logging.getLogger("ivrd.cluster")


class ClusterLink:
    """See the module docstring. ``on_change`` hears that decisions or agents' states came in; ``on_back``
    that Redis answers again (a Redis restarted without persistence has lost the log: the node says again
    what it holds); ``on_round_trip`` hears each write's round-trip time (seconds)."""

    def __init__(self, url: str, node: str, queues: Iterable[QueueSpec], *, lease: float, prefix: str,
                 on_round_trip: Callable[[float], None]) -> None:  # fmt: skip
        specs = list(queues)
        self.node = node
        self.client = redis.from_url(url, decode_responses=True, socket_timeout=lease, socket_connect_timeout=lease,
                                     health_check_interval=lease)  # fmt: skip
        self.router = NodeRouter(node, specs)
        self.router.on_entry = self._wake
        self.log = SharedLog(self.client, node, specs, on_published=self._published, on_reachable=self._reachable,
                             prefix=prefix, lease=lease)  # fmt: skip
        self.share = Share(self.client, node, prefix, deliver=lambda *_: None, retry=lease / 3)
        self.on_change: Callable[[], None] = lambda: None
        self.on_back: Callable[[], None] = lambda: None  # Redis answers again: perhaps without what it held
        self._on_round_trip = on_round_trip
        self._lease = lease
        self._pending = asyncio.Event()
        self._heard = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._measuring: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        return self.router.up

    async def start(self) -> None:
        """Join the cluster: learn every agent's state from the lease holder (within two leases) before
        the node defines its own agents over them. Redis unreachable: the node starts without it."""
        since = "$"
        try:
            async with asyncio.timeout(self._lease):
                since = await self.log.last_published()
                self.router.skew = await self._skew()
        except (RedisError, TimeoutError) as exc:
            self.log.unreachable(exc)
        self._tasks = [asyncio.create_task(self.log.run(since)), asyncio.create_task(self._flush()),
                       asyncio.create_task(self.share.run())]  # fmt: skip
        self.router.hello()
        if self.router.up:
            try:
                await asyncio.wait_for(self._heard.wait(), 2 * self._lease + 1)
            except TimeoutError:
                event(log, "cluster.no_lease_holder", logging.WARNING, node=self.node)
        event(log, "cluster.joined", node=self.node, agents=len(self.router.agents), up=self.router.up)

    async def close(self) -> None:
        """Write what is left (within a lease), then leave."""
        if self.router.outbox and self.router.up:
            with contextlib.suppress(RedisError, TimeoutError):
                async with asyncio.timeout(self._lease):
                    await self.log.append(self.router.outbox)
        await self.share.close()
        tasks = [*self._tasks, *([self._measuring] if self._measuring is not None else [])]
        for task in tasks:
            task.cancel()
        # bounded: a Redis client cancelled mid-read may take long to let go, and the daemon must stop
        await asyncio.wait(tasks, timeout=self._lease)
        with contextlib.suppress(RedisError, TimeoutError, OSError):
            async with asyncio.timeout(self._lease):
                await self.client.aclose()

    async def _skew(self) -> float:
        """Redis's clock minus this loop's, from a TIME taken halfway through its round trip."""
        loop = asyncio.get_running_loop()
        before = loop.time()
        seconds, micros = await self.client.time()
        return seconds + micros / 1e6 - (before + loop.time()) / 2

    def _wake(self) -> None:
        self._pending.set()

    def _published(self, published: Published) -> None:
        self.router.receive(published)
        self._heard.set()
        self.on_change()

    def _reachable(self, up: bool) -> None:
        if up:
            self.router.up = True
            self.router.hello()
            self.on_back()
            self._pending.set()
            if self._measuring is None or self._measuring.done():  # Redis may be another machine now
                self._measuring = asyncio.create_task(self._measure_skew())
        else:
            self.router.went_down()
            self.on_change()

    async def _measure_skew(self) -> None:
        try:
            self.router.skew = await self._skew()
        except RedisError as exc:
            self.log.unreachable(exc)

    async def _flush(self) -> None:
        """Carry the outbox to the log, in order; kept for later while Redis is away."""
        router = self.router
        while True:
            await self._pending.wait()
            self._pending.clear()
            if not router.outbox or not router.up:
                continue
            entries, router.outbox = router.outbox, []
            started = time.perf_counter()
            try:
                await self.log.append(entries)
            except RedisError as exc:
                router.outbox[:0] = entries
                self.log.unreachable(exc)
                continue
            self._on_round_trip(time.perf_counter() - started)
            if router.outbox:
                self._pending.set()
