"""The browser phone (/phone): staff call any of the flows from a browser tab, with a keypad, and watch the
call's path through the flow unfold beside it.

The browser's audio reaches ivrd over WebRTC (a :class:`~ivrd.webrtc.peer.BrowserPeer`), and ivrd calls
itself over SIP on its own listener for the chosen number, bridging the two: the flow runs on a call like
any phone's (the same SIP, RTP, keys as RFC 4733 events, speech, queues), so what the page shows is what
a caller gets. Signed in as on the desk (the same session cookie); one call per page at a time.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import WSMsgType, web

from ..call import Call
from ..center.dialer import Dialer, PlacedLeg
from ..config import Config
from ..flowset import FlowSet
from ..logs import event
from ..media.clock import FrameClock
from ..media.rtp_session import MediaSettings
from ..sip.events import CallAnswered, CallEnded, SipEvent
from ..sip.uri import format_host
from ..webrtc.peer import BrowserPeer, PeerSettings, WebRtcError
from .desk import DIGITS, MAX_MESSAGE, Desks, origin_refused, send_json

log = logging.getLogger("ivrd.phone")
NUMBER = re.compile(r"\+?[0-9A-Za-z*#._-]{1,32}")


@dataclass(eq=False)
class PhoneCall:
    """One page's call: the browser's leg and ivrd's own SIP call to the flow."""

    number: str
    peer: BrowserPeer
    placed: PlacedLeg | None = None
    over: bool = False


class Phones:
    """See the module docstring. ``listeners`` are the daemon's SIP listeners as bound; ``find_call``
    finds the daemon's call by its SIP Call-ID."""

    def __init__(self, config: Callable[[], Config], desks: Desks, dialer: Dialer, flows: FlowSet, *,
                 listeners: list[tuple[str, str, int]], clock: FrameClock, media: MediaSettings,
                 find_call: Callable[[str], Call | None]) -> None:  # fmt: skip
        self._config = config
        self._desks = desks
        self._dialer = dialer
        self._flows = flows
        self._listeners = listeners
        self._clock = clock
        self._media = media
        self._find_call = find_call

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/phone", _to_the_page)
        app.router.add_get("/desk/phone/socket", self.socket)

    def numbers(self) -> list[dict[str, str]]:
        """The numbers the flows answer (prefixes left out), with each flow's name and description."""
        deployment = self._flows.current
        if deployment is None:
            return []
        return [{"number": n.text, "flow": name, "description": flow.spec.description}
                for name, flow in deployment.flows.items() for n in flow.spec.answers
                if not n.text.endswith("*")]  # fmt: skip

    async def socket(self, request: web.Request) -> web.StreamResponse:
        session = self._desks.session(request)
        if session is None:
            return web.json_response({"error": "sign in first"}, status=401)
        if origin_refused(request, "phone socket"):
            return web.json_response({"error": "the phone's socket is for the phone's own page"}, status=403)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        call: PhoneCall | None = None
        await ws.send_json({"type": "hello", "agent": session.agent, "numbers": self.numbers()})
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    break
                try:
                    body = message.json()
                except ValueError:
                    body = None
                kind = body.get("type") if isinstance(body, dict) else None
                if kind == "call" and isinstance(body, dict):
                    if call is not None and not call.over:
                        await send_json(ws, {"type": "error", "message": "hang up first"})
                        continue
                    call = await self._call(ws, session.agent, body)
                elif kind == "dtmf" and isinstance(body, dict) and call is not None:
                    self._key(ws, call, body.get("digit"))
                elif kind == "path" and call is not None:
                    await self._path(ws, call)
                elif kind == "hangup" and call is not None:
                    await self._end(ws, call, "hung up")
                else:
                    await send_json(ws, {"type": "error", "message": f"unexpected {str(kind)[:40]!r}"})
        finally:
            if call is not None:
                await self._end(ws, call, "page closed")
        return ws

    async def _call(self, ws: web.WebSocketResponse, agent: str, body: dict[str, Any]) -> PhoneCall | None:
        number, sdp = body.get("number"), body.get("sdp")
        if not isinstance(number, str) or not NUMBER.fullmatch(number) or not isinstance(sdp, str):
            await send_json(ws, {"type": "error", "message": 'expected {"type": "call", "number", "sdp"}'})
            return None
        peer = BrowserPeer(PeerSettings.of(self._config().webrtc), self._media, self._clock, law="PCMU")
        call = PhoneCall(number, peer)
        call.peer.on_up = partial(self._dial, ws, agent, call)
        call.peer.on_gone = lambda reason: self._spawn_end(ws, call, reason)
        try:
            answer = await call.peer.answer(sdp)
        except WebRtcError as exc:
            call.over = True
            await call.peer.close()
            await send_json(ws, {"type": "error", "message": str(exc)})
            return None
        await send_json(ws, {"type": "answer", "sdp": answer})
        return call

    def _dial(self, ws: web.WebSocketResponse, agent: str, call: PhoneCall) -> None:
        """The browser's audio is up: ivrd calls its own flow for the number."""
        transport, host, port = next((entry for entry in self._listeners if entry[0] == "udp"), self._listeners[0])
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        route = self._dialer.route(f"sip:{call.number}@{format_host(host)}:{port};transport={transport}")
        placed = self._dialer.place(route, caller=f"phone-{agent}", caller_name=f"{agent} (browser phone)") \
            if route is not None else None  # fmt: skip
        if placed is None:
            self._spawn_end(ws, call, "no way to call the flow (no listener or no media port)")
            return
        call.placed = placed
        placed.on_event = partial(self._on_event, ws, call)
        event(log, "phone.call", agent=agent, number=call.number, call_id=placed.call_id)

    def _on_event(self, ws: web.WebSocketResponse, call: PhoneCall, happened: SipEvent) -> None:
        placed = call.placed
        assert placed is not None
        if isinstance(happened, CallAnswered):
            media = self._dialer.open_media(placed)
            if call.peer.session is not None:
                Dialer.bridge(media, call.peer.session)
            self._desks.spawn(send_json(ws, {"type": "connected", "call_id": placed.call_id}))
        elif isinstance(happened, CallEnded):
            self._dialer.close(placed)
            status = placed.final_status
            self._spawn_end(ws, call, f"{happened.reason} {status}" if status else happened.reason)

    def _key(self, ws: web.WebSocketResponse, call: PhoneCall, digit: object) -> None:
        media = call.placed.media if call.placed is not None else None
        if media is None or not isinstance(digit, str) or len(digit) != 1 or digit not in DIGITS:
            self._desks.spawn(send_json(ws, {"type": "error", "message": "no call up, or not a key"}))
        elif not media.send_digit(digit, 160):
            self._desks.spawn(send_json(ws, {"type": "error", "message": "the flow's call takes no keys"}))

    async def _path(self, ws: web.WebSocketResponse, call: PhoneCall) -> None:
        found = self._find_call(call.placed.call_id) if call.placed is not None else None
        if found is not None:
            await send_json(ws, {"type": "path", "call": found.context()})

    def _spawn_end(self, ws: web.WebSocketResponse, call: PhoneCall, reason: str) -> None:
        self._desks.spawn(self._end(ws, call, reason))

    async def _end(self, ws: web.WebSocketResponse, call: PhoneCall, reason: str) -> None:
        if call.over:
            return
        call.over = True
        if call.placed is not None and not call.placed.ended:
            self._dialer.hang_up(call.placed)
        await call.peer.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await send_json(ws, {"type": "ended", "reason": reason})


async def _to_the_page(_: web.Request) -> web.StreamResponse:
    """/phone, as the README says; the page lives under /desk, where the session cookie goes."""
    raise web.HTTPFound("/desk/phone")
