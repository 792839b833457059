"""The contact center's front door: callers join and leave queues, press keys while they wait; agents
are defined, changed and logged in and out; queues and agents change on reload while callers keep their
place. The rooms behind it carry out what the router decides: :mod:`~ivrd.center.offers` rings agents,
:mod:`~ivrd.center.callbacks` calls callers back, :mod:`~ivrd.center.announcements` tells callers
where they stand."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.expressions import ExpressionError
from flows.interpreter import JoinQueue, Notice, QueueLeft
from routing.agents import Agent
from routing.backend import memory_backend
from routing.matcher import Left, QueueSpec

from ..config import AgentConfig, HttpConfig, RoutingConfig
from ..logs import event
from ..media.player import Clip, PromptError, load_wav
from ..media.rtp_session import RtpSession
from ..metrics import Metrics
from ..records import CallRecords, WrapUp
from ..yaml_loader import ConfigError, Problem
from .announcements import Announcer
from .callbacks import Callbacks
from .dialer import Dialer
from .line import Line
from .model import BrowserDesks, Caller, Clock, Desktops, Waiting
from .offers import AgentCall, Offers

if TYPE_CHECKING:
    from ..cluster.link import ClusterLink
    from ..webrtc.leg import BrowserLeg

log = logging.getLogger("ivrd.queue")


class ContactCenter:
    """See the module docstring."""

    def __init__(self, routing: RoutingConfig, http: HttpConfig, *, clock: Clock, dialer: Dialer, metrics: Metrics,
                 desktops: Desktops, records: CallRecords | None, hold_music: dict[str, Clip],
                 cluster: ClusterLink | None = None) -> None:  # fmt: skip
        self.config = routing
        self.desks: BrowserDesks | None = None
        self._http = http
        self.cluster = cluster
        backend = memory_backend(queue_specs(routing)) if cluster is None else cluster.router
        self.line = line = Line(backend, clock, routing)
        self.router = line.router
        self.hold_music = hold_music
        self._metrics = metrics
        self.dialer = dialer
        self.announcer = Announcer(line)
        self.callbacks = Callbacks(line, dialer, metrics=metrics, desktops=desktops, records=records,
                                   stop_waiting=self._stop_waiting, cluster=cluster)
        self.offers = Offers(line, dialer, metrics=metrics, desktops=desktops, callbacks=self.callbacks,
                             context_url=self.context_url, stop_waiting=self._stop_waiting)
        line.on_offer = self.offers.offer
        self._records = records
        self.offers.on_disposition = self._disposed
        line.on_left = self._left
        self.api_agents: dict[str, AgentConfig | None] = {}  # changed through the API (None: removed)
        self._defined: set[str] = set()  # the agents this node's configuration and API define
        if cluster is None:
            self._apply_agents(self._agent_specs(routing), line.now())
        else:
            cluster.on_change, cluster.on_back = self._changed, self._say_again

    def _changed(self) -> None:
        """The shared router spoke: callbacks handed over between nodes first, then the decisions."""
        assert self.cluster is not None
        adopted, disowned = self.cluster.router.take_handovers()
        for card in adopted:
            self.callbacks.adopt(card)
        for caller_id in disowned:
            self.callbacks.disown(caller_id)
        self.line.decide()

    def _say_again(self) -> None:
        """Redis is back, perhaps restarted without what it held: define this node's agents, its waiting
        callers and its callbacks' cards again (the lease holder ignores what it still knows; a caller whose
        offer rings is left to its answer)."""
        assert self.cluster is not None
        router, now = self.cluster.router, self.line.now()
        for agent_id, spec in self._agent_specs(self.config).items():
            router.define(Agent(agent_id, dict(spec.skills), name=spec.name or agent_id, contact=spec.contact),
                          logged_in=spec.logged_in)  # fmt: skip
        for place in self.line.waiting.values():
            if place.offer is None:
                router.join(place.caller.id, place.queue, now, priority=place.priority, skills=place.skills,
                            joined=place.joined)  # fmt: skip
        self.callbacks.say_again()

    async def start(self) -> None:
        """Several nodes: join them (learning the agents' states) before defining this node's agents."""
        if self.cluster is not None:
            await self.cluster.start()
            self._apply_agents(self._agent_specs(self.config), self.line.now())
            self.line.decide()

    def reconfigure(self, routing: RoutingConfig, hold_music: dict[str, Clip], http: HttpConfig) -> None:
        """Take new queues and agents (and their :func:`load_hold_music`) while serving: callers keep
        their place, agents their state (a new agent starts logged in if ``logged_in`` says so).
        Raises :class:`~routing.matcher.ReconfigureError`, changing nothing, when a queue with callers
        in it would go (``router.check_reconfigure`` tells beforehand)."""
        now = self.line.now()
        self.router.reconfigure(queue_specs(routing), now)
        self._apply_agents(self._agent_specs(routing), now)
        self.config, self.hold_music, self._http = routing, hold_music, http
        self.line.reconfigured(routing)
        self._metrics.queues_changed(routing)
        self.line.decide()

    def close(self) -> None:
        self.callbacks.close()

    # ---- agents (the HTTP API) ---------------------------------------------------------------------

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
        """Make the router's agents these: new ones added, those this node defined before and no longer
        does removed (another node's are theirs), the rest changed in place."""
        for agent_id in (self._defined - specs.keys()) & self.router.agents.keys():
            self.router.remove_agent(agent_id)
        self._defined = set(specs)
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
        self._apply_agents(self._agent_specs(self.config), self.line.now())
        event(log, "agent.defined", agent=agent_id, created=created, skills=",".join(sorted(spec.skills)) or None)
        self.line.decide()
        return created

    def delete_agent(self, agent_id: str) -> None:
        """Take an agent out at run time (one on a call goes when it ends); KeyError if there is none."""
        if agent_id not in self.router.agents:
            raise KeyError(agent_id)
        self.api_agents[agent_id] = None
        self._apply_agents(self._agent_specs(self.config), self.line.now())
        if agent_id in self.router.agents:  # defined by another node
            self.router.remove_agent(agent_id)
        event(log, "agent.removed", agent=agent_id)
        self.line.decide()

    def set_state(self, agent_id: str, state: str, reason: str = "") -> dict[str, Any]:
        """Log an agent in (``available``) or out / on a break (``away`` with a reason). Raises KeyError
        for an unknown agent and :class:`~routing.agents.StateError` when the state does not allow it."""
        agent = self.router.agents[agent_id]
        now = self.line.now()
        if state == "available":
            self.router.agent_available(agent_id, now)
        else:
            self.router.agent_away(agent_id, now, reason or "away")
        event(log, "agent.state", agent=agent_id, state=agent.state.value, reason=agent.reason or None)
        self.line.decide()
        return self.agent_view(agent)

    def agent_view(self, agent: Agent) -> dict[str, Any]:
        now = self.line.now()
        return {"id": agent.id, "name": agent.name, "state": agent.state.value, "reason": agent.reason,
                "skills": agent.skills, "calls": agent.calls, "misses_in_a_row": agent.misses_in_a_row,
                "seconds_in_state": round(now - agent.since, 1), "time_in_state": agent.time_in_state(now),
                "reachable": self._reachable(agent)}  # fmt: skip

    def _disposed(self, offer: AgentCall, disposition: str) -> None:
        """An agent keyed a wrap-up code on their phone: the call's disposition."""
        event(log, "queue.disposition", call_id=offer.caller.call_id, agent=offer.agent, disposition=disposition)
        if self._records is not None:
            self._records.annotate(WrapUp(offer.caller.id, disposition, None))

    def use_desks(self, desks: BrowserDesks) -> None:
        """Agents whose contact is ``browser`` are rung on ``desks`` from now on."""
        self.desks = self.offers.desks = desks

    def _reachable(self, agent: Agent) -> bool:
        if agent.contact == "browser":
            return self.desks is not None and self.desks.is_open(agent.id)
        return self.dialer.reach(agent) is not None

    def _talking_on(self, leg: BrowserLeg) -> AgentCall | None:
        return next((o for o in self.offers.connected.values() if o.placed is leg), None)

    def pause_recording(self, leg: BrowserLeg, paused: bool) -> bool:
        """The agent on ``leg`` pauses the recording of their call (a card number coming), or resumes it."""
        offer = self._talking_on(leg)
        return offer is not None and offer.caller.pause_recording(paused)

    def hold(self, leg: BrowserLeg, on: bool) -> None:
        """The agent on ``leg`` puts their caller on hold (the queue's music) or takes them back."""
        offer = self._talking_on(leg)
        agent_media = leg.media
        if offer is None or agent_media is None or (offer.held_since is not None) == on:
            return
        offer.on_hold(on, self.line.now())
        if on:
            agent_media.unbridge()
            offer.caller.hold(self.hold_music.get(offer.queue))
        else:
            offer.caller.hold(None)
            offer.caller.bridge(agent_media)
        event(log, "queue.hold", call_id=offer.caller.call_id, agent=offer.agent, on=on)

    def queue_view(self, name: str) -> dict[str, Any]:
        return self.line.view(name)

    # ---- callers ------------------------------------------------------------------------------------

    def join(self, caller: Caller, action: JoinQueue) -> None:
        """The caller's flow hands them to ``action.queue``; what happens comes back through ``caller``."""
        line = self.line
        if action.queue not in self.router.queues:  # flows are checked against the queues at load
            caller.queue_event(QueueLeft("no such queue"))
            return
        now = line.now()
        place = Waiting(caller, action.queue, action.priority, now, skills=action.skills,
                        callback_from=action.callback_number)  # fmt: skip
        line.waiting[caller.id] = place
        self._metrics.queue_offered.labels(action.queue).inc()
        event(log, "queue.join", call_id=caller.call_id, queue=action.queue, priority=action.priority,
              skills=action.skills)  # fmt: skip
        try:
            self.router.join(caller.id, action.queue, now, priority=action.priority, skills=action.skills)
        except ExpressionError as exc:
            caller.notice(Notice(f"queue {action.queue}: skills {action.skills!r}: {exc}; the queue's own used"))
            place.skills = None
            self.router.join(caller.id, action.queue, now, priority=action.priority)
        if caller.id in line.waiting:  # not refused at once
            caller.hold(self.hold_music.get(action.queue))
            self.announcer.start(place)
            if self.cluster is not None:
                self.cluster.share.remember(caller.context())
        line.decide()

    def caller_gone(self, caller: Caller) -> None:
        """The caller's call ended: out of the line, their agent's phone stops ringing, or the agent's call ends."""
        line = self.line
        place = line.waiting.get(caller.id)
        if place is not None and place.callback is None:  # one who booked a callback keeps their place
            del line.waiting[caller.id]
            self._stop_waiting(place)
            self.router.leave(caller.id, line.now())
            waited = line.now() - place.joined
            event(log, "queue.abandoned", call_id=caller.call_id, queue=place.queue, waited=round(waited, 1))
            self._metrics.queue_abandoned.labels(place.queue).inc()
            self._metrics.queue_wait.labels(place.queue, "abandoned").observe(waited)
            if place.offer is not None:
                place.offer.end()
            line.decide()
        self.offers.caller_gone(caller)

    def key(self, caller: Caller, key: str) -> bool:
        """A key the caller pressed while waiting: True when the queue took it (a callback booked, or
        refused for their number); the flow then goes on at its ``callback`` exit."""
        place = self.line.waiting.get(caller.id)
        if place is None or place.offer is not None or place.callback is not None:
            return False
        wanted = self.config.queues[place.queue].callback_key
        if wanted is None or wanted.key != key:
            return False
        self.callbacks.book(place)
        return True

    def handled_so_far(self, caller: Caller) -> tuple[float | None, float | None, float | None]:
        """Talk, hold and wrap-up of the caller's agent call that is ending now (the caller hung up)."""
        return self.offers.handled_so_far(caller)

    def booked(self, caller_id: str) -> Caller | None:
        """A caller who hung up to be called back, while the callback is not over."""
        place = self.callbacks.booked.get(caller_id)
        return place.caller if place is not None else None

    def sessions(self) -> Iterator[RtpSession]:
        """The media of the calls the center placed that are up."""
        return self.offers.sessions()

    def context_url(self, caller: Caller) -> str:
        base = self.config.context_url
        if base is None:
            http = self._http
            host = http.address if http.address not in ("0.0.0.0", "::") else "127.0.0.1"
            base = f"http://{host if ':' not in host else f'[{host}]'}:{http.port}"
        return f"{base.rstrip('/')}/calls/{caller.id}"

    def _stop_waiting(self, place: Waiting) -> None:
        self.announcer.stop(place)
        place.caller.hold(None)

    def _left(self, decision: Left) -> None:
        place = self.line.waiting.pop(decision.caller, None)
        if place is None:
            return
        if place.callback is not None:
            self.callbacks.gone(place, f"left the queue: {decision.reason}")
            return
        self._stop_waiting(place)
        waited = self.line.now() - place.joined
        event(log, "queue.left", call_id=place.caller.call_id, queue=decision.queue, reason=decision.reason,
              waited=round(waited, 1))  # fmt: skip
        self._metrics.queue_overflowed.labels(decision.queue, decision.reason).inc()
        self._metrics.queue_wait.labels(decision.queue, "overflowed").observe(waited)
        place.caller.queue_event(QueueLeft(decision.reason))


def queue_specs(routing: RoutingConfig) -> list[QueueSpec]:
    """The router's queues of ``routing``."""
    spec_fields = [f.name for f in fields(QueueSpec) if f.name != "name"]
    return [QueueSpec(name, **{f: getattr(q, f) for f in spec_fields}) for name, q in routing.queues.items()]


def load_hold_music(routing: RoutingConfig) -> dict[str, Clip]:
    """The queues' hold music, decoded (file I/O: off the loop when serving); :class:`ConfigError` if unreadable."""
    music = {}
    for name, queue in routing.queues.items():
        if queue.hold_music:
            try:
                music[name] = load_wav(Path(queue.hold_music))
            except PromptError as exc:
                raise ConfigError([Problem(queue.hold_music, 1, 1, f"queue {name}'s hold_music: {exc}")]) from None
    return music
