"""What the nodes share besides the router, through Redis: where each agent's phone registered, the
events pushed to agents' desktops (a desktop listens on one node, its calls come from any), and each
queued call's context (``GET /calls/{id}`` on any node), from its joining the queue until its call (or
the callback it booked) is over.

Keys and channels, under the prefix: ``reg:<user>`` (the user's newest binding, expiring with it) and the
channel ``reg`` announcing each change; the channel ``desktop`` carrying pushes; ``call:<id>`` the
context as of its last push. Every node mirrors the bindings (loaded at start and again after Redis
comes back, then kept by the channel), so ringing an agent never waits on Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from ..logs import event

log = logging.getLogger("ivrd.cluster")
CONTEXT_SECONDS = 4 * 3600  # a context outlives any queued call; it is deleted when its call ends


@dataclass(frozen=True, slots=True)
class SharedBinding:
    """Where a phone registered, as another node reaches it: through ``path`` (RFC 3327) when a proxy
    stood between, else straight to ``source`` (transport, host, port)."""

    contact: str
    path: tuple[str, ...]
    source: tuple[str, str, int]
    expires: float  # wall-clock time
    node: str


class Share:
    """See the module docstring. ``deliver`` hands a push from another node to this node's desktops
    (agent, what, the call's context)."""

    def __init__(self, client: redis.Redis, node: str, prefix: str, *,
                 deliver: Callable[[str, str, dict[str, Any]], None], retry: float) -> None:  # fmt: skip
        self._client = client
        self.node = node
        self._prefix = prefix
        self.deliver = deliver
        self._retry = retry
        self.bindings: dict[str, SharedBinding] = {}  # user -> their newest binding
        self._writes: set[asyncio.Task[Any]] = set()

    def binding(self, user: str) -> SharedBinding | None:
        """The user's phone as registered on any node, while the binding lasts."""
        found = self.bindings.get(user)
        return found if found is not None and found.expires > time.time() else None

    # ---- this node's news ------------------------------------------------------------------------

    def registered(self, user: str, binding: SharedBinding | None) -> None:
        """``user``'s newest binding here (None: they unregistered)."""
        self._merge(user, binding)
        key = f"{self._prefix}:reg:{user}"
        text = json.dumps(asdict(binding) if binding is not None else None)

        async def write() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                if binding is None:
                    pipe.delete(key)
                else:
                    pipe.set(key, text, pxat=int(binding.expires * 1000))
                pipe.publish(f"{self._prefix}:reg", json.dumps([user, text]))
                await pipe.execute()

        self._spawn(write())

    def push(self, agent: str, what: str, context: dict[str, Any]) -> None:
        """An event for ``agent``'s desktops, wherever they listen; the call's context kept for any node."""
        message = json.dumps({"node": self.node, "agent": agent, "what": what, "call": context}, default=str)
        key = f"{self._prefix}:call:{context.get('id')}"

        async def write() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.publish(f"{self._prefix}:desktop", message)
                pipe.set(key, json.dumps(context, default=str), ex=CONTEXT_SECONDS)
                await pipe.execute()

        self._spawn(write())

    def remember(self, context: dict[str, Any]) -> None:
        """Keep a queued call's context for any node's ``GET /calls/{id}``."""
        text = json.dumps(context, default=str)

        async def write() -> None:
            await self._client.set(f"{self._prefix}:call:{context.get('id')}", text, ex=CONTEXT_SECONDS)

        self._spawn(write())

    def forget(self, context_id: str) -> None:
        """The call (or the callback it booked) is over."""

        async def forget() -> None:
            await self._client.delete(f"{self._prefix}:call:{context_id}")

        self._spawn(forget())

    async def context(self, context_id: str) -> dict[str, Any] | None:
        """A queued call's context as last pushed by the node holding it; None when unknown or unreachable."""
        try:
            text = await self._client.get(f"{self._prefix}:call:{context_id}")
        except RedisError:
            return None
        return json.loads(text) if text else None

    # ---- the others' news ------------------------------------------------------------------------

    async def run(self) -> None:
        """Mirror the bindings and hear the pushes until cancelled; after Redis was away, load again."""
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(f"{self._prefix}:reg", f"{self._prefix}:desktop")
                await self._load()
                while True:  # not listen(): its read would time out with the client's socket timeout
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=self._retry)
                    if message is not None:
                        self._heard(message["channel"], message["data"])
            except RedisError:
                await asyncio.sleep(self._retry)  # the shared log reports it; this tries again
            finally:
                with contextlib.suppress(RedisError, TimeoutError, OSError):
                    await asyncio.wait_for(pubsub.aclose(), self._retry)

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(self._writes, timeout=self._retry)

    async def _load(self) -> None:
        texts: list[Any] = []
        users = [key.rpartition(":")[2] async for key in self._client.scan_iter(match=f"{self._prefix}:reg:*",
                                                                                 count=500)]  # fmt: skip
        if users:
            texts = await self._client.mget([f"{self._prefix}:reg:{u}" for u in users])
        for user, text in zip(users, texts, strict=True):
            self._merge(user, _binding(text))

    def _heard(self, channel: str, data: str) -> None:
        try:
            if channel.endswith(":reg"):
                user, text = json.loads(data)
                self._merge(user, _binding(text))
            else:
                message = json.loads(data)
                if message["node"] != self.node:
                    self.deliver(message["agent"], message["what"], message["call"])
        except (ValueError, KeyError, TypeError) as exc:  # another version's message: skipped, said
            event(log, "cluster.bad_message", logging.WARNING, channel=channel, error=str(exc))

    def _merge(self, user: str, binding: SharedBinding | None) -> None:
        if binding is None:
            self.bindings.pop(user, None)
        else:
            self.bindings[user] = binding

    def _spawn(self, write: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[Any]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            event(log, "cluster.share_failed", logging.WARNING, node=self.node, error=str(exc) or type(exc).__name__)


def _binding(text: str | None) -> SharedBinding | None:
    data = json.loads(text) if text else None
    if data is None:
        return None
    return SharedBinding(data["contact"], tuple(data["path"]), tuple(data["source"]), data["expires"], data["node"])
