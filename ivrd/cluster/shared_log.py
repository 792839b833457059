"""The shared router's log in Redis (see :mod:`routing.replicated` for what is folded, and why).

Keys, under a prefix (``ivrd`` by default):

- ``log``: a stream of the nodes' entries; an entry's time is its stream id's (Redis's clock, one for
  every node), so folding the log again gives the same state;
- ``lease``: the node folding the log, with an expiry it renews; another takes it when it lapses;
- ``out``: a stream of what each fold produced (decisions by node, agents changed, queue sizes), which
  every node reads;
- ``published``: the id of the last entry whose outputs are in ``out`` (a new lease holder folds the
  entries up to it again without publishing them twice);
- ``snapshot``: the folded state as of an entry id; the log before it is trimmed;
- ``node:<id>``: each node's heartbeat. A node whose heartbeat lapses is gone: the lease holder logs
  ``node_gone`` for it (its callers leave, its agents are free after wrap-up, it adopts the callbacks).

Every write of the lease holder's (outputs, snapshot) is fenced by a script that first checks it still
holds the lease, so a node that paused past its lease cannot publish over its successor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from routing.matcher import QueueSpec
from routing.replicated import Entry, Published, Replica, published_from_json, published_to_json

from ..logs import event

log = logging.getLogger("ivrd.cluster")

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""
_PUBLISH = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('xadd', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'p', ARGV[2])
redis.call('set', KEYS[3], ARGV[3])
return 1
"""
_SNAPSHOT = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[2])
redis.call('xtrim', KEYS[3], 'MINID', ARGV[3])
return 1
"""


def entry_time(entry_id: str) -> float:
    """The time a stream id was given, in seconds (Redis's clock)."""
    return int(entry_id.partition("-")[0]) / 1000


class SharedLog:
    """One node's link to the shared router. ``on_published`` hears every fold's outputs (all nodes'
    decisions: the node keeps its own); ``on_reachable`` hears when Redis stops or starts answering."""

    def __init__(self, client: redis.Redis, node: str, queues: Iterable[QueueSpec], *,
                 on_published: Callable[[Published], None], on_reachable: Callable[[bool], None] = lambda _: None,
                 prefix: str = "ivrd", lease: float = 3.0, snapshot_every: int = 1000) -> None:  # fmt: skip
        self.client = client
        self.node = node
        self.lease = lease
        self.holding = False
        self.up = True  # Redis answered the last command
        self.takeovers = 0
        self._queues = list(queues)
        self._on_published = on_published
        self._on_reachable = on_reachable
        self._snapshot_every = snapshot_every
        self.block_ms = max(10, int(lease * 500))  # a blocking read returns within the client's socket timeout
        self._replica: Replica | None = None  # while holding the lease
        self._burying: dict[str, float] = {}  # node -> when its node_gone was logged (folded within a lease)
        self._key = {k: f"{prefix}:{k}" for k in ("log", "lease", "out", "published", "snapshot")}
        self._node_key = f"{prefix}:node:"
        self._renew = client.register_script(_RENEW)
        self._publish = client.register_script(_PUBLISH)
        self._snapshot = client.register_script(_SNAPSHOT)

    async def append(self, entries: list[Entry]) -> None:
        """Log ``entries``, in order."""
        async with self.client.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.xadd(self._key["log"], {"e": json.dumps(entry, separators=(",", ":"))})
            await pipe.execute()

    async def last_published(self) -> str:
        """Where the outputs stand now: :meth:`run` from here hears everything published after this call."""
        newest = await self.client.xrevrange(self._key["out"], count=1)
        return str(newest[0][0]) if newest else "0-0"

    @property
    def stale(self) -> int:
        """Entries the folded state no longer allowed (a race lost), while this node holds the lease."""
        return self._replica.stale if self._replica is not None else 0

    async def run(self, since: str = "$") -> None:
        """Beat, follow the outputs after ``since``, and fold the log while holding the lease; until cancelled."""
        tasks = [asyncio.create_task(self._follow(since)), asyncio.create_task(self._lead())]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ---- every node ------------------------------------------------------------------------------

    async def _follow(self, since: str) -> None:
        last = since
        while True:
            try:
                answer = await self.client.xread({self._key["out"]: last}, block=self.block_ms, count=100)
            except RedisError as exc:
                await self._unreachable(exc)
                continue
            for message_id, fields in _messages(answer):
                last = message_id
                self._on_published(published_from_json(json.loads(fields["p"])))

    def unreachable(self, exc: Exception) -> None:
        """Redis did not answer (here or where the node writes its entries): said once; the heartbeat
        says when it answers again."""
        if self.up:
            self.up = False
            event(log, "cluster.unreachable", logging.WARNING, node=self.node, error=str(exc) or type(exc).__name__)
            self._on_reachable(False)

    async def _unreachable(self, exc: RedisError) -> None:
        self.unreachable(exc)
        await asyncio.sleep(self.lease / 3)

    # ---- the lease holder ------------------------------------------------------------------------

    async def _lead(self) -> None:
        ms = int(self.lease * 1000)
        folding: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    await self.client.set(self._node_key + self.node, "1", px=ms)
                    held = bool(await self._renew(keys=[self._key["lease"]], args=[self.node, ms]))
                    if held and self.holding:
                        await self._bury()
                except RedisError as exc:
                    await self._unreachable(exc)
                    continue
                if not self.up:
                    self.up = True
                    event(log, "cluster.reachable", node=self.node)
                    self._on_reachable(True)
                if held and (folding is None or folding.done()):
                    if not self.holding:
                        self.takeovers += 1
                        event(log, "cluster.lease_taken", node=self.node)
                    self.holding = True
                    folding = asyncio.create_task(self._fold())  # again after an error: replayed from the log
                    folding.add_done_callback(_fold_ended)
                elif not held and self.holding:
                    self.holding = False
                    event(log, "cluster.lease_lost", logging.WARNING, node=self.node)
                    if folding is not None:
                        folding.cancel()
                await asyncio.sleep(self.lease / 3)
        finally:
            self.holding = False
            if folding is not None:
                folding.cancel()
                await asyncio.gather(folding, return_exceptions=True)

    async def _bury(self) -> None:
        """Log ``node_gone`` for each node the folded state knows whose heartbeat lapsed."""
        replica = self._replica
        if replica is None:
            return
        now = time.monotonic()
        self._burying = {n: t for n, t in self._burying.items() if now - t < self.lease}
        holding = {*replica.node_of.values(), *replica.busy_on.values(), *(c["node"] for c in replica.cards.values())}
        nodes = sorted(holding - replica.gone - self._burying.keys() - {self.node})
        if not nodes:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for node in nodes:
                pipe.exists(self._node_key + node)
            beating = await pipe.execute()
        for node, beats in zip(nodes, beating, strict=True):
            if not beats:
                self._burying[node] = now
                event(log, "cluster.node_gone", logging.WARNING, node=node)
                await self.append([{"op": "node_gone", "node": node, "heir": self.node}])

    async def _fold(self) -> None:
        client, key = self.client, self._key
        snapshot = await client.get(key["snapshot"])
        if snapshot is None:
            replica, last = Replica(self._queues), "0-0"
        else:
            saved = json.loads(snapshot)
            replica, last = Replica.restore(saved["state"]), saved["last"]
        self._replica = replica
        published = str((await client.get(key["published"])) or "0-0")
        folded = 0
        places_due, places_stale = 0.0, True  # the callers' places go out at most once per second
        while self.holding:
            deadline = replica.next_deadline()
            block = self.block_ms
            wait = block if deadline is None else max(1, min(block, int((deadline - time.time()) * 1000)))
            messages = _messages(await client.xread({key["log"]: last}, block=wait, count=1000))
            if not messages and deadline is not None and deadline <= time.time():
                await client.xadd(key["log"], {"e": '{"op":"tick"}'})
                continue
            for message_id, fields in messages:
                replica.apply(json.loads(fields["e"]), entry_time(message_id))
                last = message_id
            if messages and not _newer(last, published):
                replica.take()  # replayed: the holder before published these outputs
                continue
            places_stale = places_stale or bool(messages)
            places = places_stale and time.monotonic() >= places_due
            if not (messages or places):
                continue
            text = json.dumps(published_to_json(replica.take(positions=places)), separators=(",", ":"))
            if not await self._publish(keys=[key["lease"], key["out"], key["published"]],
                                       args=[self.node, text, last, 10_000]):  # fmt: skip
                return  # the lease went to another node meanwhile
            if places:
                places_due, places_stale = time.monotonic() + 1.0, False
            folded += len(messages)
            if folded >= self._snapshot_every:
                folded = 0
                state = json.dumps({"state": replica.export(), "last": last}, separators=(",", ":"))
                await self._snapshot(keys=[key["lease"], key["snapshot"], key["log"]], args=[self.node, state, last])


def _fold_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        event(log, "cluster.fold_stopped", logging.WARNING, error=str(exc) or type(exc).__name__)


def _messages(answer: Any) -> list[tuple[str, dict[str, str]]]:
    """The messages of an XREAD answer on one stream (none when it timed out)."""
    return [(str(i), dict(f)) for i, f in answer[0][1]] if answer else []


def _newer(entry_id: str, than: str) -> bool:
    def parts(i: str) -> tuple[int, int]:
        ms, _, seq = i.partition("-")
        return int(ms), int(seq or 0)

    return parts(entry_id) > parts(than)
