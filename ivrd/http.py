"""The daemon's HTTP side: /healthz (the process answers), /readyz (it should be sent calls), /metrics
(Prometheus), and the contact-center API: agents' states (log in, log out, breaks), queues, a call's
context for the agent who takes it, and a WebSocket per agent that pushes offers as they happen.

With ``http.token`` set, everything but /healthz and /readyz (so /metrics too) asks for
``Authorization: Bearer TOKEN``."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST

from routing.agents import StateError

if TYPE_CHECKING:
    from .server import Daemon

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpServer:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        app = web.Application(middlewares=[self._authorize], client_max_size=64 << 10)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/agents", self.agents)
        app.router.add_post("/agents/{agent}/state", self.agent_state)
        app.router.add_get("/agents/{agent}/events", self.agent_events)
        app.router.add_get("/queues", self.queues)
        app.router.add_get("/calls/{call}", self.call_context)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self, address: str, port: int) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, address, port).start()

    async def close(self) -> None:
        await self._runner.cleanup()

    @web.middleware
    async def _authorize(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = self.daemon.config.http.token
        if token and request.path not in ("/healthz", "/readyz"):
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                return web.json_response({"error": "a bearer token is needed"}, status=401,
                                         headers={"WWW-Authenticate": 'Bearer realm="ivrd"'})  # fmt: skip
        return await handler(request)

    async def agents(self, _: web.Request) -> web.Response:
        center = self.daemon.contact_center
        return web.json_response([center.agent_view(a) for a in center.router.agents.values()])

    async def agent_state(self, request: web.Request) -> web.Response:
        """``{"state": "available"}`` logs in; ``{"state": "away", "reason": "lunch"}`` logs out or takes a break."""
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "expected a JSON body")
        state = body.get("state") if isinstance(body, dict) else None
        reason = body.get("reason", "") if isinstance(body, dict) else ""
        if state not in ("available", "away") or not isinstance(reason, str) or len(reason) > 200:
            return _error(400, 'expected {"state": "available" | "away", "reason": "..."}')
        try:
            view = self.daemon.contact_center.set_state(request.match_info["agent"], state, reason)
        except KeyError:
            return _error(404, "no such agent")
        except StateError as exc:
            return _error(409, str(exc))
        return web.json_response(view)

    async def agent_events(self, request: web.Request) -> web.StreamResponse:
        """A WebSocket on which the agent's desktop gets each offer (with the call's context) as it rings."""
        center = self.daemon.contact_center
        agent = request.match_info["agent"]
        if agent not in center.router.agents:
            return _error(404, "no such agent")
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        center.subscribers.setdefault(agent, set()).add(ws)
        try:
            async for message in ws:  # nothing is expected from the desktop; this waits for it to leave
                if message.type is WSMsgType.ERROR:
                    break
        finally:
            center.subscribers[agent].discard(ws)
        return ws

    async def queues(self, _: web.Request) -> web.Response:
        center = self.daemon.contact_center
        return web.json_response([center.queue_view(name) for name in center.router.queues])

    async def call_context(self, request: web.Request) -> web.Response:
        call = next((c for c in self.daemon.calls.values() if c.id == request.match_info["call"]), None)
        if call is None:
            return _error(404, "no such call (or it has ended)")
        return web.json_response(call.context(), dumps=_dumps)

    async def metrics(self, _: web.Request) -> web.Response:
        """The Prometheus text format (version 0.0.4)."""
        return web.Response(body=self.daemon.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(self, _: web.Request) -> web.Response:
        """200 when listening, flows loaded and not stopping; 503 otherwise (a load balancer stops sending)."""
        daemon = self.daemon
        flows = daemon.flows.current
        speech = {language: engine.name + (" (built in)" if engine.name == "pocketsphinx" else "")
                  for language, engine in daemon.speech.engines.items()}  # fmt: skip
        ready = daemon.accepting and bool(daemon.bound_ports) and flows is not None
        body = {"ready": ready, "listeners": len(daemon.bound_ports), "calls": len(daemon.calls),
                "flows": flows.version if flows else None, "flows_builtin": daemon.flows.builtin,
                "speech": speech, "stopping": not daemon.accepting}  # fmt: skip
        return web.json_response(body, status=200 if ready else 503)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _dumps(value: object) -> str:
    return json.dumps(value, default=str)
