"""Agent queues on the event loop: the router's decisions become calls to agents' phones, bridged to callers.

The :class:`~routing.matcher.Router` decides who takes whom; this module carries it out. An offer
is an outgoing INVITE to the agent's phone (registered, or a static contact) carrying the caller's
number and a ``Call-Info`` link to the call's context; the phone rings for ``offer_timeout`` at most.
An answer bridges the two media sessions; no answer, busy or an error is a miss and the caller is
first in line again. While a caller waits they hear the queue's hold music, and their place in line
and expected wait every ``announce_every`` seconds. Either side hanging up ends the other.

A caller may ask to be called back instead (the queue's ``callback_key``): they hang up and keep
their place. When an agent is reserved for them, the agent's phone rings first; once the agent
answers, ivrd calls the caller through ``routing.callback.gateway`` and bridges the two. A caller
who does not answer is tried again after ``retry_after`` seconds, still in their place in line.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from flows.expressions import ExpressionError
from flows.interpreter import AgentConnected, JoinQueue, Notice, QueueLeft
from routing.agents import Agent, State
from routing.backend import memory_backend
from routing.estimate import HandleTime, expected_wait
from routing.matcher import Left, Offer, QueueSpec

from .logs import event
from .media.player import Prompt, PromptError, load_wav
from .media.ports import BoundPorts, bind_pair
from .media.session import MediaSession
from .records import CallRecord, as_json
from .sip.errors import ParseError
from .sip.flow import Flow
from .sip.ua import CallAnswered, CallEnded, CallLeg, CallRinging, DtmfInfo, Event, LegState, MediaChanged
from .sip.uri import bare_host, parse_uri
from .tasks import TaskSet
from .yaml_loader import ConfigError, Problem

if TYPE_CHECKING:
    from .call import Call
    from .config import AgentConfig, RoutingConfig
    from .metrics import Metrics
    from .server import Daemon

log = logging.getLogger("ivrd.queue")


@dataclass(eq=False)
class AgentCall:
    """One offer to an agent: the leg to their phone, its media, and the caller it is for."""

    agent: str
    caller: Call
    queue: str
    leg: CallLeg
    ports: BoundPorts
    offered_at: float
    media: MediaSession | None = None
    answered_at: float | None = None
    timer: asyncio.TimerHandle | None = None
    callback: Waiting | None = None  # a callback's place in line, once the agent answered
    handled: tuple[float, float, float] | None = None  # a callback's talk, hold, wrap-up once the agent's call ended
    dial_back: DialBack | None = None  # a callback: the call to the caller, once the agent answered
    hold: float = 0.0  # seconds the agent has held the caller (their phone's re-INVITE: sendonly, inactive)
    held_since: float | None = None

    def on_hold(self, held: bool, now: float) -> None:
        if held and self.held_since is None:
            self.held_since = now
        elif not held and self.held_since is not None:
            self.hold += now - self.held_since
            self.held_since = None

    def hold_seconds(self, now: float) -> float:
        return self.hold + (now - self.held_since if self.held_since is not None else 0.0)


@dataclass(eq=False)
class Waiting:
    call: Call
    queue: str
    priority: int
    joined: float
    announcer: asyncio.TimerHandle | None = None
    offer: AgentCall | None = None
    callback: str | None = None  # the number to call back, once the caller asked for it
    skills: str | None = None  # the caller's own skills expression, if the flow gave one
    callback_from: str | None = None  # the number a flow gave for callbacks (None: the caller's own)
    attempts: int = 0  # calls back placed so far


@dataclass(eq=False)
class DialBack:
    """The call to a caller who asked to be called back, placed once their agent answered."""

    place: Waiting
    offer: AgentCall
    leg: CallLeg
    ports: BoundPorts
    started: float  # Unix time
    timer: asyncio.TimerHandle | None = None
    media: MediaSession | None = None
    answered_at: float | None = None
    summary: dict[str, object] = field(default_factory=dict)  # its media figures, once over
    end_reason: str = ""


class ContactCenter:
    """See the module docstring. The daemon hands it the SIP events of the legs it placed."""

    def __init__(self, daemon: Daemon, metrics: Metrics) -> None:
        self.daemon = daemon
        self.metrics = metrics
        self.config = daemon.config.routing
        self.router = memory_backend(_specs(self.config))
        self.hold_music = load_hold_music(self.config)
        self.handle_time = {name: HandleTime() for name in self.config.queues}
        self.waiting: dict[str, Waiting] = {}  # caller id -> their place
        self.legs: dict[int, AgentCall] = {}  # id(leg) -> the offer it carries
        self.dial_backs: dict[int, DialBack] = {}  # id(leg) -> the call back it is
        self.callbacks: dict[str, Waiting] = {}  # caller id -> a callback booked and not yet over
        self.connected: dict[str, AgentCall] = {}  # caller id -> the agent they talk to
        self.subscribers: dict[str, set[web.WebSocketResponse]] = {}  # agent id -> desktops listening
        self._timer: asyncio.TimerHandle | None = None
        self._tasks = TaskSet()  # media opening, desktop pushes, words to agents
        self.api_agents: dict[str, AgentConfig | None] = {}  # changed through the API (None: removed)
        self._apply_agents(self._agent_specs(self.config), self._now())

    def reconfigure(self, routing: RoutingConfig, hold_music: dict[str, Prompt]) -> None:
        """Take new queues and agents (and their :func:`load_hold_music`) while serving: callers keep
        their place, agents their state (a new agent starts logged in if ``logged_in`` says so).
        Raises :class:`~routing.matcher.ReconfigureError`, changing nothing, when a queue with callers
        in it would go (``router.check_reconfigure`` tells beforehand)."""
        now = self._now()
        self.router.reconfigure(_specs(routing), now)
        self._apply_agents(self._agent_specs(routing), now)
        self.config, self.hold_music = routing, hold_music
        for name in routing.queues:
            self.handle_time.setdefault(name, HandleTime())
        self.metrics.queues_changed(routing)
        self._decide()

    def _agent_specs(self, routing: RoutingConfig) -> dict[str, AgentConfig]:
        """The agents of ``routing``, with the changes made through the API over them."""
        specs = dict(routing.agents)
        for agent_id, spec in self.api_agents.items():
            if spec is None:
                specs.pop(agent_id, None)
            else:
                specs[agent_id] = spec
        return specs

    def _apply_agents(self, specs: dict[str, AgentConfig], now: float) -> None:
        """Make the router's agents these: new ones added, gone ones removed, the rest changed in place."""
        for agent_id in set(self.router.agents) - specs.keys():
            self.router.remove_agent(agent_id)
        for agent_id, spec in specs.items():
            agent = self.router.agents.get(agent_id)
            if agent is None:
                self.router.add_agent(Agent(agent_id, dict(spec.skills), name=spec.name or agent_id,
                                            contact=spec.contact, since=now), now)  # fmt: skip
                if spec.logged_in:
                    self.router.agent_available(agent_id, now)
                continue
            agent.name, agent.contact = spec.name or agent_id, spec.contact
            if agent.skills != spec.skills:
                self.router.update_agent(agent_id, dict(spec.skills), now)

    def put_agent(self, agent_id: str, spec: AgentConfig) -> bool:
        """Add or change an agent at run time (the admin API); True when it is new. The change holds
        over reloads of etc/ until ivrd restarts (write it into etc/ to keep it)."""
        created = agent_id not in self.router.agents
        self.api_agents[agent_id] = spec
        self._apply_agents(self._agent_specs(self.config), self._now())
        event(log, "agent.defined", agent=agent_id, created=created, skills=",".join(sorted(spec.skills)) or None)
        self._decide()
        return created

    def delete_agent(self, agent_id: str) -> None:
        """Take an agent out at run time (one on a call goes when it ends); KeyError if there is none."""
        if agent_id not in self.router.agents:
            raise KeyError(agent_id)
        self.api_agents[agent_id] = None
        self._apply_agents(self._agent_specs(self.config), self._now())
        event(log, "agent.removed", agent=agent_id)
        self._decide()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # ---- agents (the HTTP API) ---------------------------------------------------------------------

    def set_state(self, agent_id: str, state: str, reason: str = "") -> dict[str, Any]:
        """Log an agent in (``available``) or out / on a break (``away`` with a reason). Raises KeyError
        for an unknown agent and :class:`~routing.agents.StateError` when the state does not allow it."""
        agent = self.router.agents[agent_id]
        now = self._now()
        if state == "available":
            self.router.agent_available(agent_id, now)
        else:
            self.router.agent_away(agent_id, now, reason or "away")
        event(log, "agent.state", agent=agent_id, state=agent.state.value, reason=agent.reason or None)
        self._decide()
        return self.agent_view(agent)

    def agent_view(self, agent: Agent) -> dict[str, Any]:
        now = self._now()
        return {"id": agent.id, "name": agent.name, "state": agent.state.value, "reason": agent.reason,
                "skills": agent.skills, "calls": agent.calls, "misses_in_a_row": agent.misses_in_a_row,
                "seconds_in_state": round(now - agent.since, 1), "time_in_state": agent.time_in_state(now),
                "reachable": self._reach(agent) is not None}  # fmt: skip

    def queue_view(self, name: str) -> dict[str, Any]:
        now = self._now()
        waits = [now - w.joined for w in self.waiting.values() if w.queue == name]
        return {"name": name, "waiting": self.router.waiting(name), "oldest_wait": round(max(waits, default=0), 1),
                "staffed": self._staffed(name), "handle_seconds": round(self.handle_time[name].seconds, 1)}

    def _staffed(self, queue: str) -> int:
        requirement = self.router.requirement(queue)
        return sum(1 for a in self.router.agents.values() if a.state is not State.AWAY
                   and requirement.matches(a.skills))  # fmt: skip

    # ---- callers ------------------------------------------------------------------------------------

    def join(self, call: Call, action: JoinQueue) -> None:
        if action.queue not in self.router.queues:  # flows are checked against the queues at load
            call.queue_event(QueueLeft("no such queue"))
            return
        now = self._now()
        place = Waiting(call, action.queue, action.priority, now, skills=action.skills,
                        callback_from=action.callback_number)  # fmt: skip
        self.waiting[call.id] = place
        self.metrics.queue_offered.labels(action.queue).inc()
        event(log, "queue.join", call_id=call.leg.call_id, queue=action.queue, priority=action.priority,
              skills=action.skills)  # fmt: skip
        try:
            self.router.join(call.id, action.queue, now, priority=action.priority, skills=action.skills)
        except ExpressionError as exc:
            call.flow_notice(Notice(f"queue {action.queue}: skills {action.skills!r}: {exc}; the queue's own used"))
            place.skills = None
            self.router.join(call.id, action.queue, now, priority=action.priority)
        if call.id in self.waiting:  # not refused at once
            call.hold(self.hold_music.get(action.queue))
            every = self.config.queues[action.queue].announce_every
            if every:
                place.announcer = asyncio.get_running_loop().call_later(every, self._announce, place)
        self._decide()

    def caller_gone(self, call: Call) -> None:
        """The caller's call ended: out of the line, their agent's phone stops ringing, or the agent's call ends."""
        place = self.waiting.get(call.id)
        if place is not None and place.callback is None:  # one who booked a callback keeps their place
            del self.waiting[call.id]
            self._stop_waiting(place)
            self.router.leave(call.id, self._now())
            waited = self._now() - place.joined
            event(log, "queue.abandoned", call_id=call.leg.call_id, queue=place.queue, waited=round(waited, 1))
            self.metrics.queue_abandoned.labels(place.queue).inc()
            self.metrics.queue_wait.labels(place.queue, "abandoned").observe(waited)
            if place.offer is not None:
                self._hang_up(place.offer.leg)
            self._decide()
        connected = self.connected.get(call.id)
        if connected is not None:
            self._hang_up(connected.leg)

    def key(self, call: Call, key: str) -> bool:
        """A key the caller pressed while waiting: True when it booked a callback (the flow goes on at
        its ``callback`` exit and usually says goodbye; the caller keeps their place in line)."""
        place = self.waiting.get(call.id)
        if place is None or place.offer is not None or place.callback is not None:
            return False
        wanted = self.config.queues[place.queue].callback_key
        if wanted is None or wanted.key != key:
            return False
        number = place.callback_from or call.leg.caller_number
        if not self.config.callback.allows(number):
            event(log, "queue.callback_refused", logging.WARNING, call_id=call.leg.call_id, queue=place.queue,
                  number=number)  # fmt: skip
            call.announce("Sorry, we cannot call you back at this number. Please stay on the line.")
            return True
        self._stop_waiting(place)
        place.callback = number
        self.callbacks[call.id] = place
        waited = self._now() - place.joined
        event(log, "queue.callback_booked", call_id=call.leg.call_id, queue=place.queue, number=number,
              waited=round(waited, 1))  # fmt: skip
        self.metrics.queue_callbacks.labels(place.queue, "requested").inc()
        self.metrics.queue_overflowed.labels(place.queue, "callback").inc()
        self.metrics.queue_wait.labels(place.queue, "overflowed").observe(waited)
        call.callback = number
        call.queue_event(QueueLeft("callback", number))
        return True

    def _stop_waiting(self, place: Waiting) -> None:
        if place.announcer is not None:
            place.announcer.cancel()
            place.announcer = None
        place.call.hold(None)

    def _announce(self, place: Waiting) -> None:
        if self.waiting.get(place.call.id) is not place or place.offer is not None or place.callback is not None:
            return
        ahead = [w for w in self.waiting.values() if w.queue == place.queue
                 and (-w.priority, w.joined) < (-place.priority, place.joined)]  # fmt: skip
        position = len(ahead) + 1
        wait = expected_wait(position, self.handle_time[place.queue].seconds, self._staffed(place.queue))
        minutes = "more than an hour" if math.isinf(wait) or wait > 3600 else (
            "less than a minute" if wait < 60 else f"about {round(wait / 60)} minutes")  # fmt: skip
        key = self.config.queues[place.queue].callback_key
        offer = f" To be called back without losing your place, press {key.key}." if key else ""
        event(log, "queue.announce", call_id=place.call.leg.call_id, queue=place.queue, position=position,
              expected_wait=None if math.isinf(wait) else round(wait))  # fmt: skip
        place.call.announce(f"You are number {position} in line. The expected wait is {minutes}.{offer}")
        every = self.config.queues[place.queue].announce_every
        place.announcer = asyncio.get_running_loop().call_later(every, self._announce, place)

    # ---- the router's decisions -------------------------------------------------------------------

    def _decide(self) -> None:
        while decisions := self.router.take_decisions():
            for decision in decisions:
                if isinstance(decision, Offer):
                    self._offer(decision)
                elif isinstance(decision, Left):
                    self._left(decision)
        deadline = self.router.next_deadline()
        if self._timer is not None and self._timer.when() == deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer) if deadline is not None else None

    def _on_timer(self) -> None:
        self._timer = None
        self.router.on_timer(self._now())
        self._decide()

    def _left(self, decision: Left) -> None:
        place = self.waiting.pop(decision.caller, None)
        if place is None:
            return
        if place.callback is not None:
            self._callback_over(place, f"left the queue: {decision.reason}")
            return
        self._stop_waiting(place)
        waited = self._now() - place.joined
        event(log, "queue.left", call_id=place.call.leg.call_id, queue=decision.queue, reason=decision.reason,
              waited=round(waited, 1))  # fmt: skip
        self.metrics.queue_overflowed.labels(decision.queue, decision.reason).inc()
        self.metrics.queue_wait.labels(decision.queue, "overflowed").observe(waited)
        place.call.queue_event(QueueLeft(decision.reason))

    def _offer(self, decision: Offer) -> None:
        place = self.waiting[decision.caller]
        agent = self.router.agents[decision.agent]
        daemon = self.daemon
        now = self._now()
        reach = self._reach(agent)
        address, ports = self._media_ports(reach) if reach else ("", None)
        if reach is None or ports is None:
            event(log, "queue.offer_failed", logging.WARNING, agent=agent.id, call_id=place.call.leg.call_id,
                  reason="no registered phone" if reach is None else "no media port")  # fmt: skip
            self.metrics.agent_offers.labels(decision.queue, "failed").inc()
            self.router.offer_failed(decision.caller, now)
            return
        uri, host, port, flow = reach
        caller = place.call.leg
        leg = daemon.sip.ua.call(
            uri, host=host, port=port, flow=flow, caller=place.callback or caller.caller_number,
            caller_name=caller.caller_name, media_address=address, media_port=ports.port, now=now,
            extra=(("call-info", f"<{self.context_url(place.call)}>;purpose=info"),
                   ("subject", f"{'callback, ' if place.callback else ''}queue {decision.queue}")))  # fmt: skip
        daemon.sip.flush()
        offer = AgentCall(agent.id, place.call, decision.queue, leg, ports, now)
        offer.timer = asyncio.get_running_loop().call_later(self.config.offer_timeout, self._hang_up, leg)
        self.legs[id(leg)] = place.offer = offer
        event(log, "queue.offer", call_id=caller.call_id, agent=agent.id, queue=decision.queue,
              agent_call_id=leg.call_id, context=place.call.id)  # fmt: skip
        self._push(agent.id, "offer", place.call)

    def context_url(self, call: Call) -> str:
        base = self.config.context_url
        if base is None:
            http = self.daemon.config.http
            host = http.address if http.address not in ("0.0.0.0", "::") else "127.0.0.1"
            base = f"http://{host if ':' not in host else f'[{host}]'}:{http.port}"
        return f"{base.rstrip('/')}/calls/{call.id}"

    def _reach(self, agent: Agent) -> tuple[str, str, int, Flow] | None:
        """Where the agent's phone is: (Request-URI, host, port, flow); None when it is not registered."""
        sip = self.daemon.sip
        if agent.contact == "registered":
            bindings = sip.ua.registrar.contacts(agent.id, self._now())
            if not bindings or bindings[0].flow is None:
                return None
            binding = bindings[0]
            flow = binding.flow
            assert flow is not None
            return binding.contact, flow.remote[0], flow.remote[1], flow  # back where it registered from (NAT)
        return self._route(agent.contact)

    def _route(self, target: str) -> tuple[str, str, int, Flow] | None:
        """How to send a call to a SIP URI: (Request-URI, host, port, flow); None when no listener fits."""
        sip = self.daemon.sip
        try:
            uri = parse_uri(target)
        except ParseError:
            return None
        transport = (uri.params.get("transport") or "udp").lower()
        listen = next((entry for entry in self.daemon.listeners if entry[0] == transport), None)
        if listen is None:
            return None
        host, port = bare_host(uri.host), uri.port or 5060
        local = (sip.local_address(listen[1], host), listen[2])
        return str(uri), host, port, Flow(transport, local, (host, port))

    def _media_ports(self, route: tuple[str, str, int, Flow]) -> tuple[str, BoundPorts | None]:
        """The media address of a call placed over ``route``, and a port pair bound on it (None: none free)."""
        address = self.daemon.config.media.address or route[3].local[0]
        return address, bind_pair(self.daemon.ports, address)

    def _hang_up(self, leg: CallLeg) -> None:
        """Stop a call we placed ringing (an offer timed out, the caller left), or end it."""
        if leg.state is not LegState.ENDED:
            self.daemon.sip.ua.hangup(leg, self._now())
            self.daemon.sip.flush()

    # ---- the agents' legs ---------------------------------------------------------------------------

    def owns(self, leg: CallLeg) -> bool:
        """Whether ``leg`` is one of the calls placed here (to agents, or back to callers)."""
        return id(leg) in self.legs or id(leg) in self.dial_backs

    def on_leg_event(self, ev: Event) -> None:
        dial = self.dial_backs.get(id(getattr(ev, "leg", None)))
        if dial is not None:
            self._on_dial_back_event(dial, ev)
            return
        offer = self.legs.get(id(getattr(ev, "leg", None)))
        if offer is None:
            return
        if isinstance(ev, CallRinging):
            event(log, "queue.ringing", agent=offer.agent, call_id=offer.caller.leg.call_id)
        elif isinstance(ev, CallAnswered):
            self._answered(offer)
        elif isinstance(ev, MediaChanged) and offer.media is not None:
            offer.media.update(ev.audio)
            offer.on_hold(ev.audio.direction in ("sendonly", "inactive"), self._now())
        elif isinstance(ev, DtmfInfo) and offer.media is not None and offer.media.bridged_to is not None:
            offer.media.bridged_to.send_digit(ev.digit, ev.duration_ms)  # the agent's key, to the caller
        elif isinstance(ev, CallEnded):
            self._leg_ended(offer, ev)

    def _answered(self, offer: AgentCall) -> None:
        if offer.timer is not None:
            offer.timer.cancel()
        place = self.waiting.get(offer.caller.id)
        if place is None or place.offer is not offer:  # the caller left as the agent picked up
            self._hang_up(offer.leg)
            return
        now = self._now()
        del self.waiting[offer.caller.id]
        self.router.answered(offer.caller.id, now)
        offer.answered_at = now
        self.metrics.agent_offers.labels(offer.queue, "answered").inc()
        self._push(offer.agent, "answered", offer.caller)
        if place.callback is not None:  # the agent is ready: now the caller's phone rings
            offer.callback = place
            event(log, "queue.callback_agent", call_id=offer.caller.leg.call_id, agent=offer.agent,
                  queue=offer.queue, agent_call_id=offer.leg.call_id)  # fmt: skip
            offer.media = self._open_media(offer.leg, offer.ports, lambda: self._dial_back(offer))
            return
        self._stop_waiting(place)
        self.connected[offer.caller.id] = offer
        waited = now - place.joined
        event(log, "queue.answered", call_id=offer.caller.leg.call_id, agent=offer.agent, queue=offer.queue,
              waited=round(waited, 2), agent_call_id=offer.leg.call_id)  # fmt: skip
        self.metrics.queue_answered.labels(offer.queue).inc()
        self.metrics.queue_wait.labels(offer.queue, "answered").observe(waited)
        offer.media = self._open_media(offer.leg, offer.ports, lambda: self._bridge(offer))
        offer.caller.queue_event(AgentConnected(offer.agent, waited))

    def _open_media(self, leg: CallLeg, ports: BoundPorts, then: Callable[[], None]) -> MediaSession:
        """The media session of an answered leg we placed; ``then`` runs once its sockets are open."""
        assert leg.audio is not None
        media = MediaSession(leg.audio, self.daemon.media_settings, self.daemon.frame_clock, self.daemon.media_sockets,
                             on_digit=lambda _: None, on_digit_start=lambda _: None)  # fmt: skip
        rtcp = None if leg.audio.rtcp_mux else ports.rtcp
        if rtcp is None:
            ports.rtcp.close()
        self._spawn(media.open(ports.rtp, rtcp)).add_done_callback(lambda _: then())
        return media

    def _bridge(self, offer: AgentCall) -> None:
        media, caller_media = offer.media, offer.caller.media
        if media is None or offer.leg.state is LegState.ENDED:
            return
        media.start()
        if caller_media is not None and offer.caller.id in self.connected:
            caller_media.player.stop()
            caller_media.bridge(media)
            event(log, "queue.bridged", call_id=offer.caller.leg.call_id, agent=offer.agent,
                  caller_codec=caller_media.player.codec, agent_codec=media.player.codec)  # fmt: skip

    # ---- callbacks ------------------------------------------------------------------------------------

    def _dial_back(self, offer: AgentCall) -> None:
        """The agent who answered a callback offer is ready: call the caller through the gateway."""
        place = offer.callback
        if offer.media is None or place is None or place.callback is None or offer.leg.state is LegState.ENDED:
            return  # the agent hung up meanwhile: the end of their leg tries again later
        offer.media.start()
        gateway = self.config.callback.gateway
        route = self._route(gateway.replace("{number}", place.callback)) if gateway else None
        address, ports = self._media_ports(route) if route else ("", None)
        if route is None or ports is None:
            event(log, "queue.callback_unroutable", logging.WARNING, call_id=place.call.leg.call_id,
                  gateway=gateway, reason="no listener for the gateway" if route is None else "no media port")
            self._hang_up(offer.leg)
            return
        uri, host, port, flow = route
        place.attempts += 1
        leg = self.daemon.sip.ua.call(uri, host=host, port=port, flow=flow, caller=place.call.leg.dialed_number,
                                      caller_name="", media_address=address, media_port=ports.port,
                                      now=self._now())  # fmt: skip
        self.daemon.sip.flush()
        dial = offer.dial_back = DialBack(place, offer, leg, ports, time.time())
        dial.timer = asyncio.get_running_loop().call_later(self.config.callback.ring_timeout, self._hang_up, leg)
        self.dial_backs[id(leg)] = dial
        event(log, "queue.callback_dialing", call_id=place.call.leg.call_id, agent=offer.agent,
              number=place.callback, attempt=place.attempts, callback_call_id=leg.call_id)  # fmt: skip
        self._tell_agent(offer, f"Calling back {' '.join(place.callback.lstrip('+'))}.")

    def _tell_agent(self, offer: AgentCall, text: str) -> None:
        async def say() -> None:
            prompt = await self.daemon.speaker.say(text, None)
            if offer.media is not None and offer.media.bridged_to is None and offer.leg.state is LegState.CONFIRMED:
                offer.media.player.play(prompt)

        self._spawn(say())  # a failed synthesis: the agent hears silence until the caller answers

    def _on_dial_back_event(self, dial: DialBack, ev: Event) -> None:
        if isinstance(ev, CallAnswered):
            if dial.timer is not None:
                dial.timer.cancel()
            dial.answered_at = self._now()
            dial.media = self._open_media(dial.leg, dial.ports, lambda: self._connect_dial_back(dial))
        elif isinstance(ev, MediaChanged) and dial.media is not None:
            dial.media.update(ev.audio)
        elif isinstance(ev, DtmfInfo) and dial.media is not None and dial.media.bridged_to is not None:
            dial.media.bridged_to.send_digit(ev.digit, ev.duration_ms)
        elif isinstance(ev, CallEnded):
            self._dial_back_ended(dial, ev)

    def _connect_dial_back(self, dial: DialBack) -> None:
        offer, media = dial.offer, dial.media
        if media is None or dial.leg.state is LegState.ENDED or offer.media is None:
            return
        media.start()
        offer.media.player.stop()
        media.bridge(offer.media)
        place = dial.place
        waited = (dial.answered_at or self._now()) - place.joined
        event(log, "queue.callback_connected", call_id=place.call.leg.call_id, agent=offer.agent,
              queue=offer.queue, number=place.callback, attempt=place.attempts, waited=round(waited, 1),
              callback_call_id=dial.leg.call_id, caller_codec=media.player.codec,
              agent_codec=offer.media.player.codec)  # fmt: skip
        self.metrics.queue_callbacks.labels(offer.queue, "connected").inc()
        self._push(offer.agent, "connected", place.call)

    def _dial_back_ended(self, dial: DialBack, ended: CallEnded) -> None:
        del self.dial_backs[id(dial.leg)]
        if dial.timer is not None:
            dial.timer.cancel()
        dial.summary = dial.media.summary() if dial.media is not None else {}
        self._close_media(dial.media, dial.ports)
        status = dial.leg.final_status if dial.answered_at is None else None  # busy, declined, …
        dial.end_reason = f"{ended.reason} {status}" if status else ended.reason
        if dial.answered_at is None:
            event(log, "queue.callback_no_answer", call_id=dial.place.call.leg.call_id, number=dial.place.callback,
                  attempt=dial.place.attempts, reason=ended.reason, status=dial.leg.final_status)  # fmt: skip
            self.metrics.queue_callbacks.labels(dial.offer.queue, "no_answer").inc()
        if dial.offer.handled is not None:
            self._callback_done(dial.offer)
        else:
            self._hang_up(dial.offer.leg)  # the agent's call ends with the caller's

    def _callback_handled(self, offer: AgentCall, handled: tuple[float, float, float]) -> None:
        """The agent's call for a callback is over; the callback is done once the call to the caller is too."""
        offer.handled = handled
        dial = offer.dial_back
        if dial is not None and id(dial.leg) in self.dial_backs:
            self._hang_up(dial.leg)  # its end finishes the callback
        else:
            self._callback_done(offer)

    def _callback_done(self, offer: AgentCall) -> None:
        """Both legs of a call back are over: its record, then done, or another try later."""
        place, dial = offer.callback, offer.dial_back
        assert place is not None
        connected = dial is not None and dial.answered_at is not None
        if self.daemon.records is not None:
            self.daemon.records.add(self._callback_record(place, offer, dial, offer.handled if connected else None))
        if connected:
            self.callbacks.pop(place.call.id, None)
        elif place.attempts < self.config.callback.attempts and dial is not None:
            retry = self.config.callback.retry_after
            event(log, "queue.callback_retry", call_id=place.call.leg.call_id, number=place.callback,
                  attempts=place.attempts, after=retry)  # fmt: skip
            asyncio.get_running_loop().call_later(retry, self._retry, place)
        else:
            self._callback_over(place, "not answered" if dial is not None else "could not be placed")

    def _retry(self, place: Waiting) -> None:
        """Back in line for another try, in the place the caller had."""
        if self.callbacks.get(place.call.id) is not place:
            return
        if place.queue not in self.router.queues:
            self._callback_over(place, "its queue is gone")
            return
        place.offer = None
        self.waiting[place.call.id] = place
        self.router.join(place.call.id, place.queue, self._now(), priority=place.priority, skills=place.skills,
                         joined=place.joined)  # fmt: skip
        self._decide()

    def _callback_over(self, place: Waiting, failure: str) -> None:
        """A callback given up."""
        self.callbacks.pop(place.call.id, None)
        event(log, "queue.callback_failed", logging.WARNING, call_id=place.call.leg.call_id, queue=place.queue,
              number=place.callback, attempts=place.attempts, reason=failure)  # fmt: skip
        self.metrics.queue_callbacks.labels(place.queue, "failed").inc()

    def _callback_record(self, place: Waiting, offer: AgentCall, dial: DialBack | None,
                         handled: tuple[float, float, float] | None) -> CallRecord:  # fmt: skip
        """The record of one call back: to the caller's number, for the call they made (``variables``)."""
        talk, hold, wrap_up = handled if handled is not None else (None, None, None)
        answered = dial.answered_at if dial is not None else None
        source = place.call.leg
        return CallRecord(
            id=secrets.token_urlsafe(9), call_id=dial.leg.call_id if dial else offer.leg.call_id,
            started=dial.started if dial else time.time(), ended=time.time(), caller=place.callback or "",
            caller_name=source.caller_name, dialed=source.dialed_number,
            outcome="agent" if answered is not None else "no_answer",
            end_reason=dial.end_reason if dial else "no route to the gateway",
            variables=as_json({"callback_for": place.call.id, "attempt": place.attempts}), queue=place.queue,
            wait=answered - place.joined if answered is not None else None, agent=offer.agent, talk=talk,
            hold=hold, wrap_up=wrap_up, rtp=as_json(dial.summary if dial else {}))  # fmt: skip

    def _leg_ended(self, offer: AgentCall, ended: CallEnded) -> None:
        del self.legs[id(offer.leg)]
        if offer.timer is not None:
            offer.timer.cancel()
        media = offer.media.summary() if offer.media else {}
        self._close_media(offer.media, offer.ports)
        now = self._now()
        place = self.waiting.get(offer.caller.id)
        if offer.answered_at is None:
            if place is not None and place.offer is offer:  # still waiting for this agent: a miss
                place.offer = None
                event(log, "queue.missed", agent=offer.agent, call_id=offer.caller.leg.call_id,
                      reason=ended.reason, status=offer.leg.final_status)  # fmt: skip
                self.metrics.agent_offers.labels(offer.queue, "missed").inc()
                self.router.offer_failed(offer.caller.id, now)
                self._push(offer.agent, "missed", offer.caller)
                self._decide()
            return
        self.connected.pop(offer.caller.id, None)
        talk, hold, wrap_up = self._handled(offer, now)
        self.handle_time[offer.queue].add(talk + hold + wrap_up)
        for phase, seconds in (("talk", talk), ("hold", hold), ("wrap_up", wrap_up)):
            self.metrics.handle_seconds.labels(offer.queue, phase).observe(seconds)
        self.router.call_ended(offer.agent, now)
        event(log, "queue.call_end", call_id=offer.caller.leg.call_id, agent=offer.agent, queue=offer.queue,
              talk=round(talk, 2), hold=round(hold, 2), agent_call_id=offer.leg.call_id, by=ended.reason,
              **media)  # fmt: skip
        self._push(offer.agent, "ended", offer.caller)
        if offer.callback is not None:
            self._callback_handled(offer, (talk, hold, wrap_up))
        else:
            offer.caller.agent_gone(talk, hold, wrap_up)
        self._decide()

    def _close_media(self, media: MediaSession | None, ports: BoundPorts) -> None:
        if media is not None:
            media.unbridge()
            media.close()
            self.daemon.metrics.session_closed(media)
        else:
            ports.rtp.close()
            ports.rtcp.close()
        self.daemon.ports.release(ports.port)

    def handled_so_far(self, call: Call) -> tuple[float | None, float | None, float | None]:
        """Talk, hold and wrap-up of the caller's agent call that is ending now (the caller hung up)."""
        offer = self.connected.get(call.id)
        if offer is None or offer.answered_at is None:
            return None, None, None
        return self._handled(offer, self._now())

    def _handled(self, offer: AgentCall, now: float) -> tuple[float, float, float]:
        """Talk (answered until ``now``, less hold), hold, and the queue's wrap-up."""
        assert offer.answered_at is not None
        hold = offer.hold_seconds(now)
        return now - offer.answered_at - hold, hold, self.config.queues[offer.queue].wrap_up

    # ---- desktops -----------------------------------------------------------------------------------

    def _push(self, agent_id: str, what: str, call: Call) -> None:
        sockets = self.subscribers.get(agent_id)
        if not sockets:
            return
        message = {"event": what, "agent": agent_id, "at": time.time(), "call": call.context()}
        for ws in list(sockets):
            self._spawn(ws.send_json(message))  # a desktop that went away: it gets nothing more

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` on the loop until it ends; its failure is taken and dropped: nothing here can act on it."""
        task = self._tasks.spawn(work)
        task.add_done_callback(_take_failure)
        return task


def _take_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _specs(routing: RoutingConfig) -> list[QueueSpec]:
    spec_fields = [f.name for f in fields(QueueSpec) if f.name != "name"]
    return [QueueSpec(name, **{f: getattr(q, f) for f in spec_fields}) for name, q in routing.queues.items()]


def load_hold_music(routing: RoutingConfig) -> dict[str, Prompt]:
    """The queues' hold music, decoded (file I/O: off the loop when serving); :class:`ConfigError` if unreadable."""
    music = {}
    for name, queue in routing.queues.items():
        if queue.hold_music:
            try:
                music[name] = load_wav(Path(queue.hold_music))
            except PromptError as exc:
                raise ConfigError([Problem(queue.hold_music, 1, 1, f"queue {name}'s hold_music: {exc}")]) from None
    return music
