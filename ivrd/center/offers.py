"""Offers to agents: the agent's phone rings for a caller, with the caller's number and a ``Call-Info``
link to their context (or, for an agent whose phone is their browser, their desk rings with that
context), for ``offer_timeout`` at most. An answer bridges the two calls' audio; no answer, busy, a
pass or an error is a miss, and the caller is first in line again. Either side hanging up ends the
other; the agent's handle time (talk, hold, wrap-up) is counted when their call ends."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from flows.interpreter import AgentConnected
from routing.matcher import Offer

from ..logs import event
from ..media.dtmf import Digit
from ..media.rtp_session import RtpSession
from ..metrics import Metrics
from ..sip.events import CallAnswered, CallEnded, CallRinging, DtmfInfo, MediaChanged, SipEvent
from ..webrtc.leg import BrowserLeg
from .dialer import Dialer, PlacedLeg
from .line import Line
from .model import BrowserDesks, Caller, Desktops, Timer, Waiting

if TYPE_CHECKING:
    from .callbacks import Callbacks, DialBack

log = logging.getLogger("ivrd.queue")
Handled = tuple[float, float, float]  # talk, hold, wrap-up


@dataclass(eq=False)
class AgentCall:
    """One offer to an agent: the call to their phone, and the caller it is for."""

    agent: str
    caller: Caller
    queue: str
    placed: PlacedLeg | BrowserLeg
    offered_at: float
    answered_at: float | None = None
    timer: Timer | None = None
    callback: Waiting | None = None  # a callback's place in line, once the agent answered
    handled: Handled | None = None  # a callback's talk, hold, wrap-up once the agent's call ended
    dial_back: DialBack | None = None  # a callback: the call to the caller, once the agent answered
    held_before: float = 0.0  # seconds the agent held the caller, holds over (their phone's re-INVITE: sendonly)
    held_since: float | None = None
    end: Callable[[], None] = lambda: None  # stop the agent's leg ringing, or end their call
    last_key: str | None = None  # the agent's last key in the call (wrap-up codes: * then a key)

    @property
    def media(self) -> RtpSession | None:
        return self.placed.media

    def on_hold(self, held: bool, now: float) -> None:
        if held and self.held_since is None:
            self.held_since = now
        elif not held and self.held_since is not None:
            self.held_before += now - self.held_since
            self.held_since = None

    def hold_seconds(self, now: float) -> float:
        return self.held_before + (now - self.held_since if self.held_since is not None else 0.0)


class Offers:
    """See the module docstring. ``stop_waiting`` ends a caller's hold music and announcements."""

    def __init__(self, line: Line, dialer: Dialer, *, metrics: Metrics, desktops: Desktops, callbacks: Callbacks,
                 context_url: Callable[[Caller], str], stop_waiting: Callable[[Waiting], None]) -> None:  # fmt: skip
        self._line = line
        self._dialer = dialer
        self.desks: BrowserDesks | None = None  # where agents whose contact is "browser" are rung
        self.on_disposition: Callable[[AgentCall, str], None] = lambda offer, disposition: None
        self._metrics = metrics
        self._desktops = desktops
        self._callbacks = callbacks
        self._context_url = context_url
        self._stop_waiting = stop_waiting
        self.connected: dict[str, AgentCall] = {}  # caller id -> the agent they talk to
        self._live: set[AgentCall] = set()

    def sessions(self) -> Iterator[RtpSession]:
        """The media of the agents' calls that are up."""
        return (offer.media for offer in self._live if offer.media is not None)

    def push(self, agent: str, what: str, caller: Caller) -> None:
        self._desktops.push(agent, what, caller.context())

    def offer(self, decision: Offer) -> None:
        line = self._line
        place = line.waiting[decision.caller]
        agent = line.router.agents[decision.agent]
        now = line.now()
        caller = place.caller
        placed: PlacedLeg | BrowserLeg | None = None
        if agent.contact == "browser":
            placed = self.desks.ring(agent.id, caller) if self.desks is not None else None
            problem = "no desk open"
        else:
            route = self._dialer.reach(agent)
            problem = "no registered phone" if route is None else "no media port"
            if route is not None:
                placed = self._dialer.place(
                    route, caller=place.callback or caller.number, caller_name=caller.name,
                    extra=(("call-info", f"<{self._context_url(caller)}>;purpose=info"),
                           ("subject", f"{'callback, ' if place.callback else ''}queue {decision.queue}")))  # fmt: skip
        if placed is None:
            event(log, "queue.offer_failed", logging.WARNING, agent=agent.id, call_id=caller.call_id, reason=problem)
            self._metrics.agent_offers.labels(decision.queue, "failed").inc()
            line.router.offer_failed(decision.caller, now)
            return
        offer = place.offer = AgentCall(agent.id, caller, decision.queue, placed, now)
        offer.end = partial(self.hang_up, offer)
        if isinstance(placed, BrowserLeg):
            placed.on_answered = partial(self._answered, offer)
            placed.on_ended = partial(self._ended, offer)
        else:
            placed.on_event = partial(self._on_event, offer)
        offer.timer = line.clock.call_later(line.config.offer_timeout, self.hang_up, offer)
        self._live.add(offer)
        event(log, "queue.offer", call_id=caller.call_id, agent=agent.id, queue=decision.queue,
              agent_call_id=placed.call_id, context=caller.id)  # fmt: skip
        self.push(agent.id, "offer", caller)

    def caller_gone(self, caller: Caller) -> None:
        """The caller hung up while talking to their agent: the agent's call ends too."""
        connected = self.connected.get(caller.id)
        if connected is not None:
            self.hang_up(connected)

    def hang_up(self, offer: AgentCall) -> None:
        """Stop the agent's leg ringing, or end their call."""
        if isinstance(offer.placed, BrowserLeg):
            offer.placed.hang_up()
        else:
            self._dialer.hang_up(offer.placed)

    def handled_so_far(self, caller: Caller) -> tuple[float | None, float | None, float | None]:
        """Talk, hold and wrap-up of the caller's agent call that is ending now (the caller hung up)."""
        offer = self.connected.get(caller.id)
        if offer is None or offer.answered_at is None:
            return None, None, None
        return self._handled(offer, self._line.now())

    # ---- the agent's leg ----------------------------------------------------------------------------

    def _on_event(self, offer: AgentCall, happened: SipEvent) -> None:
        if isinstance(happened, CallRinging):
            event(log, "queue.ringing", agent=offer.agent, call_id=offer.caller.call_id)
        elif isinstance(happened, CallAnswered):
            self._answered(offer)
        elif isinstance(happened, MediaChanged) and offer.media is not None:
            offer.media.update(happened.audio)
            offer.on_hold(happened.audio.direction in ("sendonly", "inactive"), self._line.now())
        elif isinstance(happened, DtmfInfo) and offer.media is not None and offer.media.bridged_to is not None:
            offer.media.bridged_to.send_digit(happened.digit, happened.duration_ms)  # the agent's key, to the caller
            self._agent_key(offer, Digit(happened.digit, happened.duration_ms, "info", self._line.now()))
        elif isinstance(happened, CallEnded):
            self._ended(offer, happened.reason)

    def _agent_key(self, offer: AgentCall, digit: Digit) -> None:
        """A key the agent pressed in the call: ``*`` then a key of the queue's ``disposition_keys`` is
        their disposition of the call (a desk phone's wrap-up code)."""
        keys = self._line.config.queues[offer.queue].disposition_keys if offer.queue in self._line.config.queues \
            else {}  # fmt: skip
        previous, offer.last_key = offer.last_key, digit.digit
        if previous == "*" and digit.digit in keys:
            self.on_disposition(offer, keys[digit.digit])

    def _answered(self, offer: AgentCall) -> None:
        line = self._line
        if offer.timer is not None:
            offer.timer.cancel()
        place = line.waiting.get(offer.caller.id)
        if place is None or place.offer is not offer:  # the caller left as the agent picked up
            self.hang_up(offer)
            return
        now = line.now()
        del line.waiting[offer.caller.id]
        line.router.answered(offer.caller.id, now)
        offer.answered_at = now
        self._metrics.agent_offers.labels(offer.queue, "answered").inc()
        self.push(offer.agent, "answered", offer.caller)
        media = offer.placed.media if isinstance(offer.placed, BrowserLeg) \
            else self._dialer.open_media(offer.placed, on_digit=partial(self._agent_key, offer))  # fmt: skip
        assert media is not None
        if place.callback is not None:  # the agent is ready: now the caller's phone rings
            offer.callback = place
            event(log, "queue.callback_agent", call_id=offer.caller.call_id, agent=offer.agent,
                  queue=offer.queue, agent_call_id=offer.placed.call_id)  # fmt: skip
            self._callbacks.dial_back(offer)
            return
        self._stop_waiting(place)
        self.connected[offer.caller.id] = offer
        waited = now - place.joined
        event(log, "queue.answered", call_id=offer.caller.call_id, agent=offer.agent, queue=offer.queue,
              waited=round(waited, 2), agent_call_id=offer.placed.call_id)  # fmt: skip
        self._metrics.queue_answered.labels(offer.queue).inc()
        self._metrics.queue_wait.labels(offer.queue, "answered").observe(waited)
        offer.caller.queue_event(AgentConnected(offer.agent, waited))
        caller_media = offer.caller.bridge(media)
        if caller_media is not None:
            event(log, "queue.bridged", call_id=offer.caller.call_id, agent=offer.agent,
                  caller_codec=caller_media.player.codec, agent_codec=media.player.codec)  # fmt: skip

    def _ended(self, offer: AgentCall, reason: str) -> None:
        line = self._line
        self._live.discard(offer)
        if offer.timer is not None:
            offer.timer.cancel()
        media = offer.media.summary() if offer.media else {}
        if isinstance(offer.placed, BrowserLeg):
            if self.desks is not None:
                self.desks.closed(offer.placed)
        else:
            self._dialer.close(offer.placed)
        now = line.now()
        place = line.waiting.get(offer.caller.id)
        if offer.answered_at is None:
            if place is not None and place.offer is offer:  # still waiting for this agent: a miss
                place.offer = None
                event(log, "queue.missed", agent=offer.agent, call_id=offer.caller.call_id,
                      reason=reason, status=offer.placed.final_status)  # fmt: skip
                self._metrics.agent_offers.labels(offer.queue, "missed").inc()
                line.router.offer_failed(offer.caller.id, now)
                self.push(offer.agent, "missed", offer.caller)
                line.decide()
            return
        self.connected.pop(offer.caller.id, None)
        talk, hold, wrap_up = self._handled(offer, now)
        line.handle_time[offer.queue].add(talk + hold + wrap_up)
        for phase, seconds in (("talk", talk), ("hold", hold), ("wrap_up", wrap_up)):
            self._metrics.handle_seconds.labels(offer.queue, phase).observe(seconds)
        line.router.call_ended(offer.agent, now)
        event(log, "queue.call_end", call_id=offer.caller.call_id, agent=offer.agent, queue=offer.queue,
              talk=round(talk, 2), hold=round(hold, 2), agent_call_id=offer.placed.call_id, by=reason,
              **media)  # fmt: skip
        self.push(offer.agent, "ended", offer.caller)
        if offer.callback is not None:
            self._callbacks.agent_call_over(offer, (talk, hold, wrap_up))
        else:
            offer.caller.agent_gone(talk, hold, wrap_up)
        line.decide()

    def _handled(self, offer: AgentCall, now: float) -> Handled:
        """Talk (answered until ``now``, less hold), hold, and the queue's wrap-up."""
        assert offer.answered_at is not None
        hold = offer.hold_seconds(now)
        return now - offer.answered_at - hold, hold, self._line.config.queues[offer.queue].wrap_up
