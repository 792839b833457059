"""The daemon's HTTP side: /healthz (the process answers) and /readyz (it should be sent calls)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .server import Daemon


class HttpServer:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self, address: str, port: int) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, address, port).start()

    async def close(self) -> None:
        await self._runner.cleanup()

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
