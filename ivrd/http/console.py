"""The operator's side of the API, what ``ivrd status`` and its friends use: the calls in progress
(``GET /calls``; ``DELETE /calls/{id}`` hangs one up), one document with calls, queues (with today's
service level and abandonment from the call records), agents, the loop's load and admission control's
state, and the transcription backlog
(``GET /status``), a reload (``POST /reload``), and the flows in use as pictures (``GET /flows``,
``GET /flows/{name}.svg``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from flows.loader import Deployment

from ..center.center import ContactCenter
from ..config import Config
from ..flowset import FlowSet, fingerprint
from ..flowtests.cases import TESTS_DIR
from ..pictures import PictureError, flow_dot, render_async
from ..records import CallRecords
from ..transcription import Transcription

PICTURES_KEPT = 64
TODAY_SECONDS = 15.0  # how old today's figures in /status may be


class LiveCall(Protocol):
    id: str
    started: float

    @property
    def call_id(self) -> str: ...

    def summary(self, now: float) -> dict[str, object]: ...

    def dismiss(self) -> None: ...


class Console:
    """Routes for ops; ``calls`` gives the calls in progress, ``reload`` reads the configuration again."""

    def __init__(self, config: Callable[[], Config], center: ContactCenter, flows: FlowSet, *,
                 calls: Callable[[], Iterable[LiveCall]], reload: Callable[[str], Awaitable[bool]],
                 records: CallRecords | None, transcription: Transcription | None,
                 load: Callable[[], dict[str, object]], node: str) -> None:  # fmt: skip
        self._config = config
        self._center = center
        self._flows = flows
        self._calls = calls
        self._reload = reload
        self._records = records
        self._transcription = transcription
        self._load = load
        self._node = node
        self._pictures: dict[tuple[str, object, str], bytes] = {}  # (flows version, tests, flow) -> SVG
        self._day: tuple[float, asyncio.Future[dict[tuple[str, str], Any]]] | None = None  # (read at, figures)
        self._drawing = asyncio.Lock()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/calls", self.calls)
        app.router.add_delete("/calls/{call}", self.hang_up)
        app.router.add_get("/status", self.status)
        app.router.add_post("/reload", self.reload)
        app.router.add_get("/flows", self.flows)
        app.router.add_get("/flows/{flow}.svg", self.picture)

    async def calls(self, _: web.Request) -> web.Response:
        return web.json_response(self._summaries(time.time()))

    async def hang_up(self, request: web.Request) -> web.Response:
        wanted = request.match_info["call"]
        call = next((c for c in self._calls() if wanted in (c.id, c.call_id)), None)
        if call is None:
            return web.json_response({"error": "no such call in progress"}, status=404)
        call.dismiss()
        return web.Response(status=204)

    async def status(self, _: web.Request) -> web.Response:
        """Calls, queues and agents, as ``ivrd status`` shows them."""
        now = time.time()
        center = self._center
        routing = self._config().routing
        today = await self._today(now)
        queues = []
        for name in center.router.queues:
            view = center.queue_view(name)
            figures = today.get(("queue", name))
            queues.append({"name": name, "waiting": view["waiting"], "waiting_here": view["waiting_here"],
                           "oldest_wait": view["oldest_wait"], "agents": center.line.agents_by_state(name),
                           "today": None if figures is None else {
                               "offered": figures.offered, "answered": figures.answered,
                               "abandoned": figures.abandoned, "service_level": figures.service_level,
                               "abandonment": figures.abandonment, "service_level_seconds":
                               routing.queues[name].service_level if name in routing.queues else None}})  # fmt: skip
        agents = [center.agent_view(agent) for agent in center.router.agents.values()]
        deployment = self._flows.current
        return web.json_response({"time": now, "node": self._node, "flows": deployment.version if deployment else None,
                                  "calls": self._summaries(now), "queues": queues, "agents": agents,
                                  "records": self._records is not None, "load": self._load(),
                                  "transcription": self._transcripts()})  # fmt: skip

    async def reload(self, _: web.Request) -> web.Response:
        ok = await self._reload("api")
        deployment = self._flows.current
        body = {"ok": ok, "flows": deployment.version if deployment else None}
        if not ok:
            body["error"] = "the new configuration was refused; the log says why, line by line (config.problem)"
        return web.json_response(body, status=200 if ok else 409)

    async def flows(self, _: web.Request) -> web.Response:
        deployment = self._flows.current
        if deployment is None:
            return web.json_response({"version": None, "flows": []})
        return web.json_response({"version": deployment.version, "flows": [
            {"name": name, "description": flow.spec.description, "steps": len(flow.steps),
             "picture": f"/flows/{name}.svg"} for name, flow in sorted(deployment.flows.items())]})  # fmt: skip

    async def picture(self, request: web.Request) -> web.Response:
        """The flow in use drawn (steps no flow test reaches marked), made once per flows version."""
        deployment = self._flows.current
        name = request.match_info["flow"]
        if deployment is None or name not in deployment.flows:
            return web.json_response({"error": "no such flow in use"}, status=404)
        try:
            svg = await self._draw(deployment, name)
        except PictureError as exc:
            return web.json_response({"error": str(exc)}, status=503)
        return web.Response(body=svg, content_type="image/svg+xml", headers={"Cache-Control": "no-cache"})

    async def _draw(self, deployment: Deployment, name: str) -> bytes:
        loop = asyncio.get_running_loop()
        # the flow tests (for the steps they miss) may change without the flows: drawn again when they do
        tests = await loop.run_in_executor(None, fingerprint, deployment.directory / TESTS_DIR)
        key = (deployment.version, tests, name)
        async with self._drawing:  # one Graphviz at a time; a burst of requests waits for the first
            if key not in self._pictures:
                text = await loop.run_in_executor(None, flow_dot, deployment, name)
                if len(self._pictures) >= PICTURES_KEPT:
                    self._pictures.clear()
                self._pictures[key] = await render_async(text, "svg")
            return self._pictures[key]

    def _transcripts(self) -> dict[str, int] | None:
        """Recorded calls waiting to be transcribed (or being), done and failed since the start."""
        work = self._transcription
        return None if work is None else {"waiting": work.backlog, "done": work.done, "failed": work.failed}

    def _summaries(self, now: float) -> list[dict[str, Any]]:
        return [call.summary(now) for call in sorted(self._calls(), key=lambda c: c.started)]

    async def _today(self, now: float) -> dict[tuple[str, str], Any]:
        """The day's figures from the records, read again at most every TODAY_SECONDS: a busy day's calls
        take the records' thread a third of a second to fold (50,000 calls), and any number of watching
        consoles share one reading."""
        if self._records is None:
            return {}
        if self._day is None or now - self._day[0] >= TODAY_SECONDS:
            midnight = datetime.fromtimestamp(now).astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
            config = self._config()
            reading = asyncio.ensure_future(self._records.kpi(midnight.timestamp(), now, config.routing.queues,
                                                              frozenset(config.kpi.resolved)))  # fmt: skip
            self._day = (now, reading)
        day = self._day
        try:
            return await asyncio.shield(day[1])
        except Exception:
            if self._day is day:
                self._day = None  # the next request tries again
            raise
