"""The SIP user agent, sans-IO: bytes and ``now`` in; datagrams to send, events and one deadline out.

The transport drives it: :meth:`UserAgent.receive_datagram` and :meth:`UserAgent.handle_timer`, then
:meth:`UserAgent.datagrams_to_send`, :meth:`UserAgent.next_event` until it is None, and one timer at
:meth:`UserAgent.get_timer`. The application answers the events with :meth:`UserAgent.ring`,
:meth:`UserAgent.answer`, :meth:`UserAgent.reject`, :meth:`UserAgent.hangup` and :meth:`UserAgent.refer`,
and places calls with :meth:`UserAgent.call`.

The work is done in rooms of one job each: the transaction layer (:mod:`~ivrd.sip.layer`), the calls
that come in (:mod:`~ivrd.sip.uas`), the calls and requests of ours (:mod:`~ivrd.sip.uac`) and REGISTER
(:mod:`~ivrd.sip.registrar`). This class checks each new request (RFC 3261 §8.2) and hands it to its room.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from .errors import ParseError
from .events import Send, SipEvent
from .flow import SipFlow
from .layer import SipLayer
from .leg import CallLeg, LegState
from .legs import Legs
from .limits import RateLimiter, SourceList
from .message import Request
from .registrar import Registration
from .settings import BODY_TYPES, KNOWN_UNSUPPORTED, UaSettings
from .uac import Uac
from .uas import Gate, Uas

SUPPORTED_SCHEMES = frozenset({"sip", "sips", "tel"})
DEFAULT_SETTINGS = UaSettings()


def _new_token() -> str:
    return secrets.token_hex(8)


class UserAgent:
    """See the module docstring."""

    def __init__(self, settings: UaSettings = DEFAULT_SETTINGS, *, new_token: Callable[[], str] = _new_token) -> None:
        self.settings = settings
        self.layer = SipLayer(settings.timers, settings.max_message_bytes, new_token)
        self._legs = Legs(self.layer)
        limit, trusted = RateLimiter(settings.invite_rate, settings.invite_burst), SourceList(settings.trusted_sources)
        self._uac = Uac(settings, self.layer, self._legs)
        self._uas = Uas(settings, self.layer, self._legs, self._uac, limit=limit, trusted=trusted)
        self.registration = Registration(settings, self.layer, limit, trusted)
        self.registrar = self.registration.bindings
        self.counts = self.layer.counts

    @property
    def active_calls(self) -> int:
        """Incoming calls not over yet."""
        return self._legs.active_calls

    @property
    def draining(self) -> bool:
        """Stopping: new calls are sent elsewhere (503), calls in progress go on."""
        return self._uas.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self._uas.draining = value

    @property
    def gate(self) -> Gate | None:
        """Admission control, asked at every new call (None: every call is taken, up to ``max_calls``)."""
        return self._uas.gate

    @gate.setter
    def gate(self, gate: Gate | None) -> None:
        self._uas.gate = gate

    # ---- the transport's side ---------------------------------------------------------------------

    def receive_datagram(self, data: bytes, flow: SipFlow, now: float) -> None:
        """Process one datagram (or one framed stream message) from ``flow``."""
        request = self.layer.receive_datagram(data, flow, now)
        if request is None:
            return
        try:
            self._dispatch(request, flow, now)
        except ParseError as exc:  # a header only some methods look at (Contact, Require, a body)
            self.layer.respond_stateless(request, flow, exc.status, exc.reason)

    def datagrams_to_send(self) -> list[Send]:
        return self.layer.datagrams_to_send()

    def next_event(self) -> SipEvent | None:
        return self.layer.next_event()

    def get_timer(self) -> float | None:
        return self.layer.get_timer()

    def handle_timer(self, now: float) -> None:
        self.layer.handle_timer(now)

    # ---- the application's side -------------------------------------------------------------------

    def ring(self, leg: CallLeg, now: float) -> None:
        """Send 180 Ringing (with our To tag: an early dialog)."""
        self._uas.ring(leg, now)

    def answer(self, leg: CallLeg, *, media_address: str, media_port: int, now: float) -> None:
        """Send 200 OK with our SDP (an answer to the INVITE's offer, or our offer when it had none)."""
        self._uas.answer(leg, media_address=media_address, media_port=media_port, now=now)

    def reject(self, leg: CallLeg, status: int, now: float, *, reason: str = "rejected") -> None:
        """Answer a call that was not answered yet with a final failure response."""
        self._uas.reject(leg, status, now, reason=reason)

    def call(self, target: str, *, host: str, port: int, flow: SipFlow, caller: str, caller_name: str,
             media_address: str, media_port: int, now: float, extra: tuple[tuple[str, str], ...] = ()) -> CallLeg:
        """Place a call to ``target`` (a SIP URI), sent to ``host``:``port`` over ``flow``, from ``caller``
        (a number, shown as ``caller_name``) with our SDP offer. :class:`~ivrd.sip.events.CallRinging`, then
        :class:`~ivrd.sip.events.CallAnswered` or :class:`~ivrd.sip.events.CallEnded` tell how it goes;
        :meth:`hangup` cancels it."""
        return self._uac.call(target, host=host, port=port, flow=flow, caller=caller, caller_name=caller_name,
                              media_address=media_address, media_port=media_port, now=now, extra=extra)

    def refer(self, leg: CallLeg, target: str, now: float) -> bool:
        """Ask the caller's side to call ``target`` (RFC 3515 blind transfer); False when the call is not
        up. :class:`~ivrd.sip.events.ReferAnswered` and then :class:`~ivrd.sip.events.ReferProgress` tell
        how it goes."""
        if leg.state is LegState.ANSWERED:
            leg.refer_after_ack = target  # no request of ours in the dialog before its ACK
            return True
        if leg.state is not LegState.CONFIRMED:
            return False
        self._uac.send_refer(leg, target, now)
        return True

    def hangup(self, leg: CallLeg, now: float) -> None:
        """End the call from our side: BYE when answered (after the ACK, §15), 480 before; a call we
        placed that is not answered yet is cancelled. Whatever fails on the way, the leg ends here."""
        try:
            if leg.state is LegState.CALLING:
                self._uac.cancel(leg, now)
            elif leg.state is LegState.INCOMING:
                self._uas.reject(leg, 480, now, reason="hangup")
            elif leg.state is LegState.ANSWERED:
                leg.hangup_after_ack = True
            elif leg.state is LegState.CONFIRMED:
                self._uac.send_bye(leg, now)
        except Exception:
            self._legs.end(leg, "error")  # its call ends and its place frees, even if no BYE could go
            raise

    # ---- new requests -----------------------------------------------------------------------------

    def _dispatch(self, request: Request, flow: SipFlow, now: float) -> None:
        method = request.method
        if method == "ACK":
            self._uas.receive_ack(request, flow, now)
            return
        if method == "CANCEL":
            self._uas.receive_cancel(request, flow, now)
            return
        status, reason, extra = self._check_request(request)
        if status:
            self.layer.respond(request, flow, status, now, reason=reason, extra=extra)
        elif request.to.tag is not None:
            self._uas.receive_in_dialog(request, flow, now)
        elif method == "INVITE":
            self._uas.receive_invite(request, flow, now)
        elif method == "REGISTER":
            self.registration.receive(request, flow, now)
        elif method == "OPTIONS":  # a load balancer's probe: a draining node takes no new calls
            gate = self._uas.gate
            status = 503 if self._uas.draining or (gate is not None and gate.limiting) else 200
            self.layer.respond(request, flow, status, now, extra=self.settings.capabilities())
        else:
            self.layer.respond(request, flow, 481, now)

    def _check_request(self, request: Request) -> tuple[int, str | None, tuple[tuple[str, str], ...]]:
        """RFC 3261 §8.2 inspections, in order; status 0 when the request may proceed."""
        method = request.method
        allowed = self.settings.allowed
        if method not in allowed:
            return 405 if method in KNOWN_UNSUPPORTED else 501, None, (("allow", ", ".join(allowed)),)
        if request.max_forwards == 0:
            return 483, None, ()
        if request.request_uri.scheme not in SUPPORTED_SCHEMES:
            return 416, None, ()
        understood = ("path",) if method == "REGISTER" else ()  # RFC 3327: registrations through a proxy
        required = [tag for tag in request.headers.values("require") if tag and tag.lower() not in understood]
        if required:
            return 420, None, (("unsupported", ", ".join(required)),)
        if request.body:
            accepted = BODY_TYPES.get(method, ("application/sdp",))
            if request.content_type not in accepted:
                return 415, None, (("accept", ", ".join(accepted)),)
        if method == "INVITE" and "accept" in request.headers:
            accept = [v.split(";", 1)[0].strip().lower() for v in request.headers.values("accept")]
            if not {"application/sdp", "application/*", "*/*"} & set(accept) and any(accept):
                return 406, None, (("accept", "application/sdp"),)
        return 0, None, ()
