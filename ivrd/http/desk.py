"""The agents' desk (/desk): sign-in, the desk's WebSocket, and the browser as an agent's phone.

An agent signs in with their id and ``password`` (``routing.agents`` in etc/ivrd.yaml) and gets a
session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS; nothing secret ever in a URL). The page
then holds one WebSocket (``/desk/socket``) that is the agent's for the session's life: it hears every
offer for the agent with the caller's context (the same pushes the API's agent WebSocket gets), sets
the agent's state, and, for an agent whose contact is ``browser``, rings: accept sends the browser's
SDP offer and gets the answer, then hold, keys, hang-up and the wrap-up's disposition and note.
Every message names the leg it is about; a leg of another agent is refused as unknown.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from routing.agents import StateError

from ..center.center import ContactCenter
from ..center.model import Caller
from ..config import Config
from ..logs import event
from ..media.clock import FrameClock
from ..media.rtp_session import MediaSettings, RtpSession
from ..records import CallRecords, WrapUp
from ..tasks import TaskSet
from ..webrtc.leg import BrowserLeg, LegState
from ..webrtc.peer import BrowserPeer, PeerSettings, WebRtcError
from .desktops import Desktops

log = logging.getLogger("ivrd.desk")

COOKIE = "ivrd_desk"
MAX_MESSAGE = 64 << 10  # bytes: an SDP offer is 2-5 kB
MAX_NOTE = 2000  # characters of a wrap-up note
DIGITS = frozenset("0123456789*#ABCD")
HISTORY_LINES = 20  # of each previous call's conversation, on the desk
PAGES = {"/desk": "desk.html", "/desk/desk.js": "desk.js", "/desk/desk.css": "desk.css", "/desk/phone": "phone.html",
         "/desk/phone.js": "phone.js", "/desk/common.js": "common.js"}  # fmt: skip
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


@dataclass(eq=False)
class Session:
    agent: str
    expires: float


class Desks:
    """See the module docstring. It is the center's :class:`~ivrd.center.model.BrowserDesks` too."""

    def __init__(self, config: Callable[[], Config], center: ContactCenter, desktops: Desktops, *,
                 clock: FrameClock, media: MediaSettings, records: CallRecords | None, tasks: TaskSet,
                 on_closed: Callable[[RtpSession], None], wall: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._config = config
        self._wall = wall
        self._center = center
        self._desktops = desktops
        self._clock = clock
        self._media = media
        self._records = records
        self._tasks = tasks
        self._on_closed = on_closed
        self._sessions: dict[str, Session] = {}  # cookie value -> whose, until when
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}  # agent -> their open desks
        self._legs: dict[str, BrowserLeg] = {}  # leg id -> the leg, while it lasts
        self._calls: dict[str, tuple[str, str]] = {}  # a call's context id -> (agent, queue): its wrap-up's

    def routes(self, app: web.Application) -> None:
        for path in PAGES:
            app.router.add_get(path, self.page)
        app.router.add_post("/desk/signin", self.sign_in)
        app.router.add_post("/desk/signout", self.sign_out)
        app.router.add_get("/desk/socket", self.socket)

    # ---- pages and sign-in -----------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        name = PAGES[request.path]
        body = resources.files("ivrd.http").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=TYPES[name[name.rindex("."):]],
                            headers={"Cache-Control": "no-cache", "X-Frame-Options": "DENY",
                                     "Content-Security-Policy": "default-src 'self'; connect-src 'self'"})  # fmt: skip

    async def sign_in(self, request: web.Request) -> web.Response:
        """``{"agent": id, "password": ...}``: a session cookie, or 401 (the same for an unknown agent)."""
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 'expected {"agent": "...", "password": "..."}')
        agent_id, password = (body.get("agent"), body.get("password")) if isinstance(body, dict) else (None, None)
        if not isinstance(agent_id, str) or not isinstance(password, str):
            return _error(400, 'expected {"agent": "...", "password": "..."}')
        spec = self._config().routing.agents.get(agent_id)
        known = spec.password if spec is not None and spec.password and agent_id in self._center.router.agents else ""
        # the same work and answer whether the agent exists or not: no enumeration
        if not hmac.compare_digest(password.encode(), (known or secrets.token_hex(16)).encode()) or not known:
            event(log, "security.auth_failed", logging.WARNING, what="desk", agent=agent_id[:64],
                  source=request.remote)  # fmt: skip
            return _error(401, "wrong agent or password")
        self._forget_expired()
        token = secrets.token_urlsafe(32)
        http = self._config().http
        self._sessions[token] = Session(agent_id, self._wall() + http.desk_session_hours * 3600)
        event(log, "desk.signed_in", agent=agent_id, source=request.remote)
        response = web.json_response({"agent": agent_id})
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=http.tls, path="/desk",
                            max_age=int(http.desk_session_hours * 3600))  # fmt: skip
        return response

    async def sign_out(self, request: web.Request) -> web.Response:
        session = self._sessions.pop(request.cookies.get(COOKIE, ""), None)
        if session is not None:
            for ws in list(self._sockets.get(session.agent, ())):
                await ws.close(code=4001, message=b"signed out")
        response = web.json_response({})
        response.del_cookie(COOKIE, path="/desk")
        return response

    def session(self, request: web.Request) -> Session | None:
        """The request's signed-in session, if it has one that has not expired."""
        session = self._sessions.get(request.cookies.get(COOKIE, ""))
        if session is None or session.expires < self._wall():
            return None
        return session

    def _forget_expired(self) -> None:
        now = self._wall()
        for token in [t for t, s in self._sessions.items() if s.expires < now]:
            del self._sessions[token]

    # ---- the desk's socket -------------------------------------------------------------------------

    async def socket(self, request: web.Request) -> web.StreamResponse:
        session = self.session(request)
        if session is None:
            return _error(401, "sign in first")
        if origin_refused(request, "desk socket"):
            return _error(403, "the desk's socket is for the desk's own page")
        agent = session.agent
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        self._sockets.setdefault(agent, set()).add(ws)
        self._desktops.attach(agent, ws)
        try:
            await send_json(ws, self._hello(agent))
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    break
                if session.expires < self._wall() or session not in self._sessions.values():
                    await ws.close(code=4001, message=b"session over")
                    break
                await self._handle(agent, ws, message.data)
        finally:
            self._sockets[agent].discard(ws)
            self._desktops.detach(agent, ws)
            if not self._sockets[agent]:  # the agent's last desk closed: ringing stops, a call ends
                for leg in [leg for leg in self._legs.values() if leg.agent == agent]:
                    leg.agent_hung_up() if leg.state is not LegState.RINGING else leg.decline()
        return ws

    def _hello(self, agent: str) -> dict[str, Any]:
        config = self._config()
        queues = {name: list(q.dispositions) for name, q in config.routing.queues.items()}
        wrap_up = {name: q.wrap_up for name, q in config.routing.queues.items()}
        servers = [{"urls": list(s.urls), **({"username": s.username} if s.username else {}),
                    **({"credential": s.credential} if s.credential else {})}
                   for s in config.webrtc.ice_servers]  # fmt: skip
        return {"type": "hello", "agent": self._status(agent)["agent"], "dispositions": queues, "wrap_up": wrap_up,
                "ice_servers": servers,
                "browser": self._center.router.agents[agent].contact == "browser"}  # fmt: skip

    def _status(self, agent: str) -> dict[str, Any]:
        center = self._center
        view = center.agent_view(center.router.agents[agent])
        skills = center.router.agents[agent].skills
        queues = [center.queue_view(name) for name in center.router.queues
                  if center.router.requirement(name).matches(skills)]  # fmt: skip
        return {"type": "status", "agent": view, "queues": queues}

    async def _handle(self, agent: str, ws: web.WebSocketResponse, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await send_json(ws, {"type": "error", "message": f"unknown message {str(kind)[:40]!r}"})
            return
        assert isinstance(message, dict)
        problem = await handler(self, agent, ws, message)
        if problem is not None:
            await send_json(ws, {"type": "error", "about": kind, "message": problem})

    async def _on_status(self, agent: str, ws: web.WebSocketResponse, _: dict[str, Any]) -> str | None:
        await send_json(ws, self._status(agent))
        return None

    async def _on_state(self, agent: str, ws: web.WebSocketResponse, message: dict[str, Any]) -> str | None:
        state, reason = message.get("state"), message.get("reason", "")
        if state not in ("available", "away") or not isinstance(reason, str) or len(reason) > 200:
            return 'expected {"state": "available" | "away", "reason": "..."}'
        try:
            self._center.set_state(agent, state, reason)
        except StateError as exc:
            return str(exc)
        await send_json(ws, self._status(agent))
        return None

    def _leg(self, agent: str, message: dict[str, Any]) -> BrowserLeg | None:
        leg = self._legs.get(str(message.get("leg")))
        return leg if leg is not None and leg.agent == agent else None  # another agent's leg is not there

    async def _on_accept(self, agent: str, ws: web.WebSocketResponse, message: dict[str, Any]) -> str | None:
        leg, sdp = self._leg(agent, message), message.get("sdp")
        if leg is None:
            return "no such call ringing (it may have stopped)"
        if not isinstance(sdp, str):
            return 'expected {"type": "accept", "leg": "...", "sdp": "<the browser\'s offer>"}'
        try:
            answer = await leg.accept(sdp)
        except WebRtcError as exc:
            event(log, "desk.accept_failed", logging.WARNING, agent=agent, leg=leg.id, error=str(exc))
            return str(exc)
        await send_json(ws, {"type": "answer", "leg": leg.id, "sdp": answer})
        return None

    async def _on_decline(self, agent: str, _: web.WebSocketResponse, message: dict[str, Any]) -> str | None:
        leg = self._leg(agent, message)
        if leg is not None:
            leg.decline()
        return None

    async def _on_hangup(self, agent: str, _: web.WebSocketResponse, message: dict[str, Any]) -> str | None:
        leg = self._leg(agent, message)
        if leg is not None:
            leg.agent_hung_up()
        return None

    async def _on_hold(self, agent: str, _: web.WebSocketResponse, message: dict[str, Any]) -> str | None:
        leg, on = self._leg(agent, message), message.get("on")
        if leg is None or leg.state is not LegState.UP or not isinstance(on, bool):
            return 'expected {"type": "hold", "leg": "<a call in progress>", "on": true | false}'
        self._center.hold(leg, on)
        return None

    async def _on_recording(self, agent: str, _: web.WebSocketResponse, message: dict[str, Any]) -> str | None:
        leg, paused = self._leg(agent, message), message.get("paused")
        if leg is None or leg.state is not LegState.UP or not isinstance(paused, bool):
            return 'expected {"type": "recording", "leg": "<a call in progress>", "paused": true | false}'
        if not self._center.pause_recording(leg, paused):
            return "the call is not recorded" if not paused else "the recording is paused already"
        return None

    async def _on_dtmf(self, agent: str, _: web.WebSocketResponse, message: dict[str, Any]) -> str | None:
        leg, digit = self._leg(agent, message), message.get("digit")
        media = leg.media if leg is not None else None
        if media is None or not isinstance(digit, str) or digit not in DIGITS or len(digit) != 1:
            return 'expected {"type": "dtmf", "leg": "<a call in progress>", "digit": "0"-"9", "*", "#", "A"-"D"}'
        if media.bridged_to is None or not media.bridged_to.send_digit(digit, 160):
            return "the caller's phone takes no keys (no telephone-event)"
        return None

    async def _on_wrap_up(self, agent: str, _: web.WebSocketResponse, message: dict[str, Any]) -> str | None:
        call, disposition, note = message.get("call"), message.get("disposition"), message.get("note", "")
        whose = self._calls.get(call) if isinstance(call, str) else None
        if whose is None or whose[0] != agent:
            return "no such call of yours"
        queues = self._config().routing.queues
        allowed = queues[whose[1]].dispositions if whose[1] in queues else ()
        if (disposition is not None and disposition not in allowed) or not isinstance(note, str) \
                or len(note) > MAX_NOTE:  # fmt: skip
            return f"expected a disposition of {list(allowed)} and a note of at most {MAX_NOTE} characters"
        assert isinstance(call, str)
        del self._calls[call]
        event(log, "desk.wrap_up", agent=agent, call=call, disposition=disposition, note=len(note))
        if self._records is not None:
            self._records.annotate(WrapUp(call, disposition, note or None))
        return None

    _handlers: ClassVar[dict[str, Callable[..., Awaitable[str | None]]]] = {
        "status": _on_status, "state": _on_state, "accept": _on_accept, "decline": _on_decline, "hangup": _on_hangup,
        "hold": _on_hold, "dtmf": _on_dtmf, "wrap_up": _on_wrap_up, "recording": _on_recording}  # fmt: skip

    # ---- the center's BrowserDesks -----------------------------------------------------------------

    def figures(self) -> tuple[int, int, int]:
        """Agents with a desk open, legs ringing, legs up (for the metrics)."""
        states = [leg.state for leg in self._legs.values()]
        return (sum(1 for sockets in self._sockets.values() if sockets), states.count(LegState.RINGING),
                states.count(LegState.UP))  # fmt: skip

    def is_open(self, agent: str) -> bool:
        return bool(self._sockets.get(agent))

    def ring(self, agent_id: str, caller: Caller) -> BrowserLeg | None:
        if not self._sockets.get(agent_id):
            return None
        leg = BrowserLeg(agent_id, make_peer=self._peer, tell=lambda message: self._tell(agent_id, message),
                         tasks=self._tasks)  # fmt: skip
        self._legs[leg.id] = leg
        context = caller.context()
        self._calls[str(context["id"])] = (agent_id, str(context.get("queue")))
        timeout = self._config().routing.offer_timeout
        self._tell(agent_id, {"type": "ring", "leg": leg.id, "call": context, "timeout": timeout})
        if self._records is not None and caller.number:
            self._tasks.spawn(self._history(agent_id, leg, caller.number, str(context["id"])))
        event(log, "desk.ring", agent=agent_id, leg=leg.id, call_id=caller.call_id)
        return leg

    def closed(self, leg: BrowserLeg) -> None:
        self._legs.pop(leg.id, None)
        if leg.peer is not None and leg.peer.session is not None:
            self._on_closed(leg.peer.session)

    def _peer(self, on_up: Callable[[], None], on_gone: Callable[[str], None]) -> BrowserPeer:
        return BrowserPeer(PeerSettings.of(self._config().webrtc), self._media, self._clock, law="PCMU", on_up=on_up,
                           on_gone=on_gone)  # fmt: skip

    async def _history(self, agent: str, leg: BrowserLeg, number: str, call: str) -> None:
        assert self._records is not None
        calls = [c for c in await self._records.history(number, 6) if c["id"] != call][:5]
        keep = ("id", "started", "ended", "outcome", "queue", "agent", "disposition", "note", "transcript")
        previous = [{k: c.get(k) for k in keep} for c in calls]
        for entry in previous:  # what was said on them, when transcribed (the first lines)
            lines = await self._records.transcript(str(entry["id"]))
            entry["conversation"] = [{k: line[k] for k in ("side", "start", "text")} for line in lines[:HISTORY_LINES]]
        self._tell(agent, {"type": "history", "leg": leg.id, "calls": previous})

    def _tell(self, agent: str, message: dict[str, Any]) -> None:
        for ws in list(self._sockets.get(agent, ())):
            self._tasks.spawn(send_json(ws, message))

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` with the desks' other tasks (a fault in it is counted, never lost)."""
        self._tasks.spawn(work)


async def send_json(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    """To a page; one that went away gets nothing (its socket's handler cleans up)."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_str(json.dumps(message, default=str))


def origin_refused(request: web.Request, what: str) -> bool:
    """A WebSocket opened by another site's page (the browser sends our cookie along): refused, logged."""
    origin = request.headers.get("Origin")
    if origin is None or origin.split("://", 1)[-1] == request.host:
        return False
    event(log, "security.refused", logging.WARNING, what=what, origin=origin[:200], source=request.remote)
    return True


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
