"""The daemon's HTTP side: /healthz (the process answers), /readyz (it should be sent calls), /metrics
(Prometheus), the contact-center API: agents (defined, changed and removed at run time; their states:
log in, log out, breaks), queues, a call's context for the agent who takes it, and a WebSocket per agent
that pushes offers as they happen; and the agents' desk (:mod:`.desk`, its own sign-in).

With ``http.token`` set, everything but /healthz, /readyz and the desk (so /metrics too) asks for
``Authorization: Bearer TOKEN``. With ``http.tls_cert`` and ``tls_key``, all of it is served over HTTPS
(browsers give a page the microphone only there, or on localhost)."""

from __future__ import annotations

import hmac
import json
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST

from routing.agents import StateError

from ..center.center import ContactCenter
from ..center.model import Caller
from ..config import AgentConfig, HttpConfig
from ..logs import event
from ..metrics import Metrics
from ..records import CallRecords, WrapUp
from .console import Console
from .desk import MAX_NOTE, Desks
from .desktops import Desktops
from .phone import Phones

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("ivrd.http")


class ClientErrors(logging.Filter):
    """aiohttp logs a client's malformed request (an over-long URL, a broken header) as an error with a
    traceback, like a bug of ours; it is the client's mistake, answered 4xx: one info line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= (error.code or 400) < 500:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
            record.msg, record.args = "http.bad_request", ()
            record.fields = {"status": error.code or 400, "error": (error.message or type(error).__name__)[:200]}
        return True


class HttpServer:
    """The routes above; ``config`` is read at each request (a reload replaces it), ``find_call`` looks a
    live call up by its context id, ``readiness`` says whether to send calls here and why."""

    def __init__(self, config: Callable[[], HttpConfig], center: ContactCenter, *, desktops: Desktops, metrics: Metrics,
                 find_call: Callable[[str], Caller | None], readiness: Callable[[], tuple[bool, dict[str, Any]]],
                 desks: Desks | None = None, phones: Phones | None = None, console: Console | None = None,
                 records: CallRecords | None = None) -> None:  # fmt: skip
        self._config = config
        self._center = center
        self._desktops = desktops
        self._metrics = metrics
        self._find_call = find_call
        self._readiness = readiness
        self._records = records
        app = web.Application(middlewares=[self._authorize], client_max_size=64 << 10)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/agents", self.agents)
        app.router.add_put("/agents/{agent}", self.put_agent)
        app.router.add_delete("/agents/{agent}", self.delete_agent)
        app.router.add_post("/agents/{agent}/state", self.agent_state)
        app.router.add_get("/agents/{agent}/events", self.agent_events)
        app.router.add_get("/queues", self.queues)
        app.router.add_get("/calls/{call}", self.call_context)
        app.router.add_post("/calls/{call}/disposition", self.disposition)
        app.router.add_post("/calls/{call}/recording", self.recording)
        app.router.add_get("/calls/{call}/transcript", self.transcript)
        for pages in (desks, phones, console):
            if pages is not None:
                pages.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        server_log = logging.getLogger("aiohttp.server")
        if not any(isinstance(f, ClientErrors) for f in server_log.filters):
            server_log.addFilter(ClientErrors())

    async def start(self, address: str, port: int) -> None:
        """Listen (over HTTPS when the configuration names a certificate; an unreadable one raises
        OSError or ssl.SSLError, and the daemon does not start)."""
        config = self._config()
        context = None
        if config.tls_cert is not None and config.tls_key is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(config.tls_cert, config.tls_key)
        await self._runner.setup()
        await web.TCPSite(self._runner, address, port, ssl_context=context).start()

    async def close(self) -> None:
        await self._runner.cleanup()

    @web.middleware
    async def _authorize(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = self._config().token
        if token and request.path not in ("/healthz", "/readyz") and not request.path.startswith("/desk"):
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                return web.json_response({"error": "a bearer token is needed"}, status=401,
                                         headers={"WWW-Authenticate": 'Bearer realm="ivrd"'})  # fmt: skip
        return await handler(request)

    async def agents(self, _: web.Request) -> web.Response:
        center = self._center
        return web.json_response([center.agent_view(a) for a in center.router.agents.values()])

    async def put_agent(self, request: web.Request) -> web.Response:
        """Add or change an agent: ``{"name": "Ada", "skills": {"billing": 4}, "contact": "registered",
        "logged_in": false}`` (as in etc/ivrd.yaml; ``logged_in`` counts for a new agent only)."""
        agent_id = request.match_info["agent"]
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "expected a JSON body")
        spec, problem = _agent_spec(body)
        if problem is not None or not AGENT_ID.fullmatch(agent_id):
            return _error(400, problem or "an agent id is 1-64 letters, digits, or . _ -")
        assert spec is not None
        center = self._center
        created = center.put_agent(agent_id, spec)
        return web.json_response(center.agent_view(center.router.agents[agent_id]), status=201 if created else 200)

    async def delete_agent(self, request: web.Request) -> web.Response:
        try:
            self._center.delete_agent(request.match_info["agent"])
        except KeyError:
            return _error(404, "no such agent")
        return web.Response(status=204)

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
            view = self._center.set_state(request.match_info["agent"], state, reason)
        except KeyError:
            return _error(404, "no such agent")
        except StateError as exc:
            return _error(409, str(exc))
        return web.json_response(view)

    async def agent_events(self, request: web.Request) -> web.StreamResponse:
        """A WebSocket on which the agent's desktop gets each offer (with the call's context) as it rings."""
        agent = request.match_info["agent"]
        if agent not in self._center.router.agents:
            return _error(404, "no such agent")
        return await self._desktops.serve(agent, request)

    async def queues(self, _: web.Request) -> web.Response:
        center = self._center
        return web.json_response([center.queue_view(name) for name in center.router.queues])

    async def call_context(self, request: web.Request) -> web.Response:
        wanted = request.match_info["call"]
        call = self._find_call(wanted) or self._center.booked(wanted)  # or they hung up to be called back
        if call is not None:
            return web.json_response(call.context(), dumps=_dumps)
        cluster = self._center.cluster
        context = await cluster.share.context(wanted) if cluster is not None else None  # held by another node
        if context is None:
            return _error(404, "no such call (or it has ended)")
        return web.json_response(context, dumps=_dumps)

    async def transcript(self, request: web.Request) -> web.Response:
        """The call's conversation as text, line by line: side, start, end, text, words with their times."""
        if self._records is None:
            return _error(409, "call records are off (calls.records)")
        lines = await self._records.transcript(request.match_info["call"])
        if not lines:
            return _error(404, "no transcript of that call (not recorded, not transcribed yet, or no such call)")
        return web.json_response({"call": request.match_info["call"], "lines": lines})

    async def recording(self, request: web.Request) -> web.Response:
        """``{"paused": true}``: silence in the call's recording until ``{"paused": false}`` (an agent taking a
        card number, PCI DSS); the paused spans are kept in the call's record."""
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "expected a JSON body")
        paused = body.get("paused") if isinstance(body, dict) else None
        if not isinstance(paused, bool):
            return _error(400, 'expected {"paused": true | false}')
        call = self._find_call(request.match_info["call"])
        if call is None:
            return _error(404, "no such call in progress")
        changed = call.pause_recording(paused)
        return web.json_response({"paused": paused, "changed": changed})

    async def disposition(self, request: web.Request) -> web.Response:
        """``{"disposition": "resolved", "note": "..."}``: what the agent says of a call after it (a phone
        agent's CRM, say), kept in its record as the desk's wrap-up is."""
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "expected a JSON body")
        allowed = {d for queue in self._center.config.queues.values() for d in queue.dispositions}  # as reloaded
        disposition = body.get("disposition") if isinstance(body, dict) else None
        note = body.get("note", "") if isinstance(body, dict) else None
        if disposition not in allowed or not isinstance(note, str) or len(note) > MAX_NOTE:
            return _error(400, f'expected {{"disposition": one of {sorted(allowed)}, "note": "..."}} '
                               f"(a note of at most {MAX_NOTE} characters)")  # fmt: skip
        if self._records is None:
            return _error(409, "call records are off (calls.records)")
        call = request.match_info["call"]
        self._records.annotate(WrapUp(call, disposition, note or None))
        event(log, "call.disposition", call=call, disposition=disposition, source=request.remote)
        return web.json_response({"call": call, "disposition": disposition}, status=202)

    async def metrics(self, _: web.Request) -> web.Response:
        """The Prometheus text format (version 0.0.4)."""
        return web.Response(body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(self, _: web.Request) -> web.Response:
        """200 when listening, flows loaded and not stopping; 503 otherwise (a load balancer stops sending)."""
        ready, body = self._readiness()
        return web.json_response(body, status=200 if ready else 503)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _dumps(value: object) -> str:
    return json.dumps(value, default=str)


AGENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
SKILL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _agent_spec(body: object) -> tuple[AgentConfig | None, str | None]:
    """An agent's definition from a JSON body, or what is wrong with it."""
    expected = 'expected {"name": text, "skills": {skill: 0-5}, "contact": "registered" or a sip: URI, ' \
               '"logged_in": true/false}'
    if not isinstance(body, dict) or set(body) - {"name", "skills", "contact", "logged_in"}:
        return None, expected
    name, skills = body.get("name", ""), body.get("skills", {})
    contact, logged_in = body.get("contact", "registered"), body.get("logged_in", False)
    if (not isinstance(name, str) or len(name) > 200 or not isinstance(contact, str) or len(contact) > 500
            or not isinstance(logged_in, bool) or not isinstance(skills, dict) or len(skills) > 100
            or not all(isinstance(k, str) and SKILL.fullmatch(k) and type(v) is int for k, v in skills.items())):
        return None, expected  # fmt: skip
    spec = AgentConfig(name=name, skills=skills, contact=contact, logged_in=logged_in)
    problem = spec.check()
    return (None, problem) if problem else (spec, None)
