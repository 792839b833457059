"""The calls the center places, to agents' phones and back to callers: routed, given media, spoken to,
hung up; their SIP events handed to whoever placed them.

This is the seam between the center's decisions and the network: a unit test puts a fake in its place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from routing.agents import Agent

from ..cluster.share import SharedBinding
from ..logs import event
from ..media.dtmf import Digit
from ..media.ports import BoundPorts
from ..media.rtp_session import RtpSession
from ..media.service import MediaService
from ..media.session import MediaSession
from ..media.tts import Speaker, TtsError
from ..sip.errors import ParseError
from ..sip.events import SipEvent
from ..sip.flow import SipFlow
from ..sip.leg import CallLeg, LegState
from ..sip.registrar import Registrar
from ..sip.uri import bare_host, format_host, parse_name_addr, parse_uri
from ..tasks import TaskSet
from ..transport import SipTransport

log = logging.getLogger("ivrd.queue")


class Route(NamedTuple):
    """How to send a call: the Request-URI, the host and port it goes to, the flow it goes over, and
    the proxies it passes (Route headers: a phone registered through a proxy, RFC 3327)."""

    uri: str
    host: str
    port: int
    flow: SipFlow
    through: tuple[str, ...] = ()


@dataclass(eq=False)
class PlacedLeg:
    """A call the center placed: its SIP leg, its ports, and its media once answered."""

    leg: CallLeg
    ports: BoundPorts
    on_event: Callable[[SipEvent], None] = lambda _: None  # set by whoever placed it, before the loop turns
    media: MediaSession | None = None

    @property
    def call_id(self) -> str:
        return self.leg.call_id

    @property
    def ended(self) -> bool:
        return self.leg.state is LegState.ENDED

    @property
    def confirmed(self) -> bool:
        return self.leg.state is LegState.CONFIRMED

    @property
    def final_status(self) -> int | None:
        return self.leg.final_status


class Dialer:
    """See the module docstring. ``listeners``: (transport, address, port) as bound."""

    def __init__(self, sip: SipTransport, media: MediaService, *, registrar: Registrar,
                 listeners: list[tuple[str, str, int]], speaker: Speaker, tasks: TaskSet,
                 shared: Callable[[str], SharedBinding | None] = lambda _: None) -> None:  # fmt: skip
        self._sip = sip
        self._shared = shared
        self._media = media
        self._registrar = registrar
        self._listeners = listeners
        self._speaker = speaker
        self._tasks = tasks
        self._placed: dict[int, PlacedLeg] = {}  # id(leg) -> the call it is

    # ---- routes -----------------------------------------------------------------------------------

    def reach(self, agent: Agent) -> Route | None:
        """Where the agent's phone is: registered here, or (several nodes) on another node; None when
        it is not registered."""
        if agent.contact != "registered":
            return self.route(agent.contact)
        bindings = self._registrar.contacts(agent.id, self._sip.loop.time())
        if bindings and bindings[0].path:
            return self._through(bindings[0].contact, bindings[0].path)
        if bindings and bindings[0].flow is not None:
            flow = bindings[0].flow
            return Route(bindings[0].contact, flow.remote[0], flow.remote[1], flow)  # where it registered (NAT)
        shared = self._shared(agent.id)
        if shared is None:
            return None
        if shared.path:
            return self._through(shared.contact, shared.path)
        transport, host, port = shared.source
        found = self.route(f"sip:{format_host(host)}:{port};transport={transport}")  # where it registered (NAT)
        return found._replace(uri=shared.contact) if found is not None else None

    def _through(self, contact: str, path: tuple[str, ...]) -> Route | None:
        """To ``contact`` by way of the proxies its REGISTER came through (their Path): sent to the first."""
        try:
            first = parse_name_addr(path[0]).uri
        except ParseError:
            return None
        found = self.route(str(first))
        return found._replace(uri=contact, through=path) if found is not None else None

    def route(self, target: str) -> Route | None:
        """How to send a call to a SIP URI; None when no listener fits."""
        try:
            uri = parse_uri(target)
        except ParseError:
            return None
        transport = (uri.params.get("transport") or "udp").lower()
        listen = next((entry for entry in self._listeners if entry[0] == transport), None)
        if listen is None:
            return None
        host, port = bare_host(uri.host), uri.port or 5060
        local = (self._sip.local_address(listen[1], host), listen[2])
        return Route(str(uri), host, port, SipFlow(transport, local, (host, port)))

    # ---- legs -------------------------------------------------------------------------------------

    def place(self, route: Route, *, caller: str, caller_name: str,
              extra: tuple[tuple[str, str], ...] = ()) -> PlacedLeg | None:  # fmt: skip
        """Call ``route`` from ``caller``; None when no media port is free. Its events go to the
        leg's ``on_event``, which the caller sets at once (they come on a later turn of the loop)."""
        bound = self._media.bind(route.flow.local[0])
        if bound is None:
            return None
        address, ports = bound
        routes = tuple(("route", hop) for hop in route.through)
        leg = self._sip.call(route.uri, host=route.host, port=route.port, flow=route.flow, caller=caller,
                             caller_name=caller_name, media_address=address, media_port=ports.port,
                             extra=routes + extra)  # fmt: skip
        placed = PlacedLeg(leg, ports)
        self._placed[id(leg)] = placed
        return placed

    def hang_up(self, placed: PlacedLeg) -> None:
        """Stop it ringing, or end it."""
        if not placed.ended:
            self._sip.hangup(placed.leg)

    def open_media(self, placed: PlacedLeg, on_digit: Callable[[Digit], None] | None = None) -> MediaSession:
        """The answered leg's media, started; ``on_digit``: told each key pressed on the leg (RFC 4733)."""
        assert placed.leg.audio is not None
        placed.media = self._media.open(placed.leg.audio, placed.ports, signalling_host=placed.leg.flow.remote[0],
                                        on_digit=on_digit)  # fmt: skip
        placed.media.start()
        return placed.media

    def close(self, placed: PlacedLeg) -> None:
        """The leg ended: its media closed and its ports freed."""
        self._placed.pop(id(placed.leg), None)
        self._media.close(placed.media, placed.ports)

    def say(self, placed: PlacedLeg, text: str) -> None:
        """Speak ``text`` to the leg while it is up and not bridged (a failed synthesis: silence)."""

        async def say() -> None:
            try:
                prompt = await self._speaker.say(text, None)
            except TtsError as exc:
                event(log, "queue.say_failed", logging.WARNING, call_id=placed.call_id, error=str(exc))
                return
            if placed.media is not None and placed.media.bridged_to is None and placed.confirmed:
                placed.media.player.play(prompt)

        self._tasks.spawn(say())

    @staticmethod
    def bridge(one: RtpSession, other: RtpSession) -> None:
        """Each of two legs the center placed hears the other."""
        other.player.stop()
        one.bridge(other)

    # ---- events -----------------------------------------------------------------------------------

    def owns(self, leg: CallLeg) -> bool:
        return id(leg) in self._placed

    def on_event(self, happened: SipEvent) -> None:
        """An event of a leg placed here, to whoever placed it."""
        placed = self._placed.get(id(getattr(happened, "leg", None)))
        if placed is not None:
            placed.on_event(happened)
