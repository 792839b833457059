"""The agents' desktops listening on WebSockets (the API's per-agent socket, the desk's), and what the
center pushes to them: each offer with the call's context as it rings, then what becomes of it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from ..logs import event
from ..tasks import TaskSet

log = logging.getLogger("ivrd.http")


class Desktops:
    """The agents' desktops listening on their WebSocket, and what the center pushes to them."""

    def __init__(self, tasks: TaskSet) -> None:
        self._listening: dict[str, set[web.WebSocketResponse]] = {}  # agent id -> desktops
        self._tasks = tasks
        self.relay: Callable[[str, str, dict[str, Any]], None] | None = None  # to the other nodes' desktops

    def push(self, agent_id: str, what: str, context: dict[str, Any]) -> None:
        """Tell the agent's desktops, here and (several nodes) on the others."""
        self.deliver(agent_id, what, context)
        if self.relay is not None:
            self.relay(agent_id, what, context)

    def deliver(self, agent_id: str, what: str, context: dict[str, Any]) -> None:
        """Tell the agent's desktops listening on this node."""
        sockets = self._listening.get(agent_id)
        if not sockets:
            return
        message = {"event": what, "agent": agent_id, "at": time.time(), "call": context}
        for ws in list(sockets):
            self._tasks.spawn(self._send(agent_id, ws, message))

    async def _send(self, agent_id: str, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        try:
            await ws.send_json(message, dumps=_dumps)
        except (ConnectionError, RuntimeError) as exc:  # it went away: it gets nothing more
            self._listening.get(agent_id, set()).discard(ws)
            event(log, "desktop.gone", logging.DEBUG, agent=agent_id, error=repr(exc))

    def attach(self, agent_id: str, ws: web.WebSocketResponse) -> None:
        """``ws`` hears the agent's pushes from now on."""
        self._listening.setdefault(agent_id, set()).add(ws)

    def detach(self, agent_id: str, ws: web.WebSocketResponse) -> None:
        self._listening.get(agent_id, set()).discard(ws)

    async def serve(self, agent_id: str, request: web.Request) -> web.WebSocketResponse:
        """Hold one desktop's WebSocket until it leaves."""
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        self.attach(agent_id, ws)
        try:
            async for message in ws:  # nothing is expected from the desktop; this waits for it to leave
                if message.type is WSMsgType.ERROR:
                    break
        finally:
            self.detach(agent_id, ws)
        return ws


def _dumps(value: object) -> str:
    return json.dumps(value, default=str)
