"""Callbacks: a caller may press the queue's ``callback_key`` to be called back instead, and hang up
keeping their place. When an agent is reserved for them, the agent's phone rings first; once the agent
answers, ivrd calls the caller through ``routing.callback.gateway`` (only numbers that
``routing.callback.numbers`` allows) and bridges the two. A caller who does not answer is tried again
after ``retry_after`` seconds, still in their place, up to ``attempts`` times.

With several nodes, a booked callback's card (who to call, their place, what the agent should know)
is kept in the shared log, so that when its node dies another adopts it (:meth:`Callbacks.adopt`):
the caller is called back all the same, by a node that never held their call."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from flows.interpreter import AgentConnected, Notice, QueueLeft
from routing.replicated import Entry

from ..logs import event
from ..media.player import Clip
from ..media.rtp_session import RtpSession
from ..metrics import Metrics
from ..records import CallRecord, CallRecords, as_json
from ..sip.events import CallAnswered, CallEnded, DtmfInfo, MediaChanged, SipEvent
from ..webrtc.leg import BrowserLeg
from .dialer import Dialer, PlacedLeg
from .line import Line
from .model import Desktops, Timer, Waiting

if TYPE_CHECKING:
    from ..cluster.link import ClusterLink
    from .offers import AgentCall, Handled

log = logging.getLogger("ivrd.queue")


@dataclass(eq=False)
class DialBack:
    """The call to a caller who asked to be called back, placed once their agent answered."""

    place: Waiting
    offer: AgentCall
    placed: PlacedLeg
    started: float  # Unix time
    timer: Timer | None = None
    answered_at: float | None = None
    summary: dict[str, object] = field(default_factory=dict)  # its media figures, once over
    end_reason: str = ""
    over: bool = False


class Callbacks:
    """See the module docstring. ``booked``: callbacks asked for and not over, by caller id."""

    def __init__(self, line: Line, dialer: Dialer, *, metrics: Metrics, desktops: Desktops, records: CallRecords | None,
                 stop_waiting: Callable[[Waiting], None], cluster: ClusterLink | None = None) -> None:  # fmt: skip
        self._line = line
        self._cluster = cluster
        self._stop_waiting = stop_waiting
        self._dialer = dialer
        self._metrics = metrics
        self._desktops = desktops
        self._records = records
        self.booked: dict[str, Waiting] = {}
        self._retries: dict[str, Timer] = {}  # caller id -> the retry waiting to be made

    def book(self, place: Waiting) -> None:
        """The caller pressed the callback key while waiting: booked, or refused for their number (which
        they hear, and they stay in line)."""
        line = self._line
        number = place.callback_from or place.caller.number
        if not line.config.callback.allows(number):
            event(log, "queue.callback_refused", logging.WARNING, call_id=place.caller.call_id, queue=place.queue,
                  number=number)  # fmt: skip
            place.caller.announce("Sorry, we cannot call you back at this number. Please stay on the line.")
            return
        self._stop_waiting(place)
        place.callback = number
        self.booked[place.caller.id] = place
        waited = line.now() - place.joined
        event(log, "queue.callback_booked", call_id=place.caller.call_id, queue=place.queue, number=number,
              waited=round(waited, 1))  # fmt: skip
        self._metrics.queue_callbacks.labels(place.queue, "requested").inc()
        self._metrics.queue_overflowed.labels(place.queue, "callback").inc()
        self._metrics.queue_wait.labels(place.queue, "overflowed").observe(waited)
        place.caller.queue_event(QueueLeft("callback", number))
        self._keep(place)  # the context now says so

    def dial_back(self, offer: AgentCall) -> None:
        """The agent who answered a callback offer is ready: call the caller through the gateway."""
        place = offer.callback
        assert place is not None and place.callback is not None
        gateway = self._line.config.callback.gateway
        route = self._dialer.route(gateway.replace("{number}", place.callback)) if gateway else None
        placed = self._dialer.place(route, caller=place.caller.dialed, caller_name="") if route else None
        if placed is None:
            event(log, "queue.callback_unroutable", logging.WARNING, call_id=place.caller.call_id,
                  gateway=gateway, reason="no listener for the gateway" if route is None else "no media port")
            offer.end()
            return
        place.attempts += 1
        self._keep(place)
        dial = offer.dial_back = DialBack(place, offer, placed, time.time())
        placed.on_event = partial(self._on_event, dial)
        dial.timer = self._line.clock.call_later(self._line.config.callback.ring_timeout, self._dialer.hang_up, placed)
        event(log, "queue.callback_dialing", call_id=place.caller.call_id, agent=offer.agent,
              number=place.callback, attempt=place.attempts, callback_call_id=placed.call_id)  # fmt: skip
        if not isinstance(offer.placed, BrowserLeg):  # a desk shows it instead
            self._dialer.say(offer.placed, f"Calling back {' '.join(place.callback.lstrip('+'))}.")

    def agent_call_over(self, offer: AgentCall, handled: Handled) -> None:
        """The agent's call for a callback is over; the callback is done once the call to the caller is too."""
        offer.handled = handled
        dial = offer.dial_back
        if dial is not None and not dial.over:
            self._dialer.hang_up(dial.placed)  # its end finishes the callback
        else:
            self._done(offer)

    def gone(self, place: Waiting, failure: str) -> None:
        """A callback given up."""
        self._over(place)
        self._cancel_retry(place.caller.id)
        event(log, "queue.callback_failed", logging.WARNING, call_id=place.caller.call_id, queue=place.queue,
              number=place.callback, attempts=place.attempts, reason=failure)  # fmt: skip
        self._metrics.queue_callbacks.labels(place.queue, "failed").inc()

    # ---- the call to the caller ---------------------------------------------------------------------

    def _on_event(self, dial: DialBack, happened: SipEvent) -> None:
        if isinstance(happened, CallAnswered):
            if dial.timer is not None:
                dial.timer.cancel()
            dial.answered_at = self._line.now()
            self._connect(dial)
        elif isinstance(happened, MediaChanged) and dial.placed.media is not None:
            dial.placed.media.update(happened.audio)
        elif isinstance(happened, DtmfInfo) and dial.placed.media is not None \
                and dial.placed.media.bridged_to is not None:  # fmt: skip
            dial.placed.media.bridged_to.send_digit(happened.digit, happened.duration_ms)
        elif isinstance(happened, CallEnded):
            self._ended(dial, happened)

    def _connect(self, dial: DialBack) -> None:
        offer = dial.offer
        media = self._dialer.open_media(dial.placed)
        if offer.media is None or offer.placed.ended:
            return  # the agent hung up meanwhile: the end of their leg ends this one
        self._dialer.bridge(media, offer.media)
        place = dial.place
        waited = (dial.answered_at or self._line.now()) - place.joined
        event(log, "queue.callback_connected", call_id=place.caller.call_id, agent=offer.agent,
              queue=offer.queue, number=place.callback, attempt=place.attempts, waited=round(waited, 1),
              callback_call_id=dial.placed.call_id, caller_codec=media.player.codec,
              agent_codec=offer.media.player.codec)  # fmt: skip
        self._metrics.queue_callbacks.labels(offer.queue, "connected").inc()
        self._desktops.push(offer.agent, "connected", place.caller.context())

    def _ended(self, dial: DialBack, ended: CallEnded) -> None:
        dial.over = True
        if dial.timer is not None:
            dial.timer.cancel()
        dial.summary = dial.placed.media.summary() if dial.placed.media is not None else {}
        self._dialer.close(dial.placed)
        status = dial.placed.final_status if dial.answered_at is None else None  # busy, declined, …
        dial.end_reason = f"{ended.reason} {status}" if status else ended.reason
        if dial.answered_at is None:
            event(log, "queue.callback_no_answer", call_id=dial.place.caller.call_id, number=dial.place.callback,
                  attempt=dial.place.attempts, reason=ended.reason, status=dial.placed.final_status)  # fmt: skip
            self._metrics.queue_callbacks.labels(dial.offer.queue, "no_answer").inc()
        if dial.offer.handled is not None:
            self._done(dial.offer)
        else:
            dial.offer.end()  # the agent's call ends with the caller's

    def _done(self, offer: AgentCall) -> None:
        """Both legs of a call back are over: its record, then done, or another try later."""
        place, dial = offer.callback, offer.dial_back
        assert place is not None
        connected = dial is not None and dial.answered_at is not None
        if self._records is not None:
            self._records.add(_record(place, offer, dial, offer.handled if connected else None))
        if connected:
            self._over(place)
        elif place.attempts < self._line.config.callback.attempts and dial is not None:
            retry = self._line.config.callback.retry_after
            event(log, "queue.callback_retry", call_id=place.caller.call_id, number=place.callback,
                  attempts=place.attempts, after=retry)  # fmt: skip
            self._retries[place.caller.id] = self._line.clock.call_later(retry, self._retry, place)
        else:
            self.gone(place, "not answered" if dial is not None else "could not be placed")

    def _retry(self, place: Waiting) -> None:
        """Back in line for another try, in the place the caller had."""
        line = self._line
        self._retries.pop(place.caller.id, None)
        if self.booked.get(place.caller.id) is not place:
            return
        if place.queue not in line.router.queues:
            self.gone(place, "its queue is gone")
            return
        place.offer = None
        line.waiting[place.caller.id] = place
        line.router.join(place.caller.id, place.queue, line.now(), priority=place.priority, skills=place.skills,
                         joined=place.joined)  # fmt: skip
        line.decide()

    # ---- several nodes -------------------------------------------------------------------------------

    def adopt(self, card: Entry) -> None:
        """A dead node's callback, now this node's: back in line at its place (the shared router put it
        there), or given up if its queue is gone."""
        caller = Remembered(**card["caller"], remembered=card["context"])
        place = Waiting(caller, card["queue"], card["priority"], card["joined"], skills=card["skills"],
                        callback=card["number"], attempts=card["attempts"])  # fmt: skip
        self.booked[caller.id] = place
        event(log, "queue.callback_adopted", call_id=caller.call_id, queue=place.queue, number=place.callback,
              attempts=place.attempts)  # fmt: skip
        if place.queue not in self._line.router.queues:
            self.gone(place, "its queue is gone")
            return
        self._line.waiting[caller.id] = place
        if self._cluster is not None:
            self._cluster.share.remember(caller.context())

    def disown(self, caller_id: str) -> None:
        """This node was buried with a callback (cut off from Redis, not dead) and another adopted it:
        no more tries from here (one in progress finishes)."""
        place = self.booked.pop(caller_id, None)
        if place is None:
            return
        self._cancel_retry(caller_id)
        if self._line.waiting.get(caller_id) is place and place.offer is None:
            del self._line.waiting[caller_id]
        event(log, "queue.callback_handed_over", logging.WARNING, call_id=place.caller.call_id, queue=place.queue,
              number=place.callback)  # fmt: skip

    def say_again(self) -> None:
        """The shared log was lost (Redis restarted empty): keep every callback's card again."""
        for place in self.booked.values():
            self._keep(place)

    def _keep(self, place: Waiting) -> None:
        """The callback's card, where another node can adopt it (several nodes)."""
        if self._cluster is None:
            return
        caller = place.caller
        context = json.loads(as_json(caller.context()))
        self._cluster.router.callback(caller.id, {
            "queue": place.queue, "priority": place.priority, "skills": place.skills, "joined": place.joined,
            "number": place.callback, "attempts": place.attempts, "context": context,
            "caller": {"id": caller.id, "call_id": caller.call_id, "number": caller.number, "name": caller.name,
                       "dialed": caller.dialed}})  # fmt: skip
        self._cluster.share.remember(context)

    def _cancel_retry(self, caller_id: str) -> None:
        retry = self._retries.pop(caller_id, None)
        if retry is not None:
            retry.cancel()

    def _over(self, place: Waiting) -> None:
        if self.booked.pop(place.caller.id, None) is not None and self._cluster is not None:
            self._cluster.router.callback_over(place.caller.id)
            self._cluster.share.forget(place.caller.id)

    def close(self) -> None:
        """Stop: retries waiting are not made."""
        for timer in self._retries.values():
            timer.cancel()
        self._retries.clear()


@dataclass(frozen=True, eq=False)
class Remembered:
    """A caller who hung up to be called back, as the node that booked them kept them (its card): who
    they are and what the agent should know; nothing to play to, the call is over."""

    id: str
    call_id: str
    number: str
    name: str
    dialed: str
    remembered: dict[str, object]  # their context

    def context(self) -> dict[str, object]:
        return dict(self.remembered)

    def notice(self, notice: Notice) -> None:
        event(log, "flow.notice", logging.WARNING, call_id=self.call_id, message=notice.message)

    def queue_event(self, happened: QueueLeft | AgentConnected) -> None:
        pass

    def hold(self, music: Clip | None) -> None:
        pass

    def announce(self, text: str) -> None:
        pass

    def bridge(self, media: RtpSession) -> RtpSession | None:
        return None

    def pause_recording(self, paused: bool) -> bool:
        return False

    def agent_gone(self, talk: float, hold: float, wrap_up: float) -> None:
        pass


def _record(place: Waiting, offer: AgentCall, dial: DialBack | None, handled: Handled | None) -> CallRecord:
    """The record of one call back: to the caller's number, for the call they made (``variables``)."""
    talk, hold, wrap_up = handled if handled is not None else (None, None, None)
    answered = dial.answered_at if dial is not None else None
    caller = place.caller
    return CallRecord(
        id=secrets.token_urlsafe(9), call_id=dial.placed.call_id if dial else offer.placed.call_id,
        started=dial.started if dial else time.time(), ended=time.time(), caller=place.callback or "",
        caller_name=caller.name, dialed=caller.dialed,
        outcome="agent" if answered is not None else "no_answer",
        end_reason=dial.end_reason if dial else "no route to the gateway",
        variables=as_json({"callback_for": caller.id, "attempt": place.attempts}), queue=place.queue,
        wait=answered - place.joined if answered is not None else None, agent=offer.agent, talk=talk,
        hold=hold, wrap_up=wrap_up, rtp=as_json(dial.summary if dial else {}))  # fmt: skip
