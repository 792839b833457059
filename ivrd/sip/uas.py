"""The server side of calls: INVITEs that come in (rung, answered, rejected by the application), their
CANCEL and ACK, re-INVITEs, and the requests within a call's dialog (BYE, INFO, OPTIONS, NOTIFY)."""

from __future__ import annotations

import secrets
from functools import partial
from typing import Protocol

from .build import make_response
from .dialog import AnswerRetransmitter, Dialog, dialog_id_of_request, record_route, remote_target
from .dtmf import parse_info
from .errors import SdpError
from .events import CallConfirmed, DtmfInfo, IncomingCall, MediaChanged, MessageRejected, ReferProgress, Refused
from .flow import SipFlow
from .layer import SipLayer
from .leg import CallLeg, LegInput, LegState, advance
from .legs import Legs
from .limits import RateLimiter, SourceList
from .message import Request
from .sdp import SessionDescription, accept_answer, answer_offer, make_offer, parse_sdp
from .settings import UaSettings, contact_header
from .transaction import ServerInviteTransaction
from .uac import Uac
from .uri import bare_host


class Gate(Protocol):
    """Admission control (:class:`ivrd.admission.Admission`)."""

    retry_after: int

    @property
    def limiting(self) -> bool:
        """Some new calls are refused now."""

    def admit(self, now: float) -> bool: ...


class Uas:
    """See the module docstring. ``draining``, or a ``gate`` that does not admit a call: new calls are sent
    elsewhere (503), calls in progress go on."""

    def __init__(self, settings: UaSettings, layer: SipLayer, legs: Legs, uac: Uac, *, limit: RateLimiter,
                 trusted: SourceList) -> None:  # fmt: skip
        self.settings = settings
        self._layer = layer
        self._legs = legs
        self._uac = uac  # our BYE or REFER within an incoming call's dialog
        self._limit = limit
        self._trusted = trusted
        self._incoming: dict[int, CallLeg] = {}  # INVITE server transaction -> its call, until its final response
        self.draining = False
        self.gate: Gate | None = None  # admission control: whether to take each new call

    # ---- the application's answers ------------------------------------------------------------------

    def ring(self, leg: CallLeg, now: float) -> None:
        """Send 180 Ringing (with our To tag: an early dialog)."""
        tx = leg.transaction
        if leg.state is LegState.INCOMING and isinstance(tx, ServerInviteTransaction):
            self._layer.send_response(tx, make_response(leg.invite, 180, to_tag=leg.local_tag), leg.flow, now)

    def answer(self, leg: CallLeg, *, media_address: str, media_port: int, now: float) -> None:
        """Send 200 OK with our SDP (an answer to the INVITE's offer, or our offer when it had none)."""
        tx = leg.transaction
        if leg.state is not LegState.INCOMING or not isinstance(tx, ServerInviteTransaction):
            return
        sdp = self._local_sdp(leg, leg.offer, media_address, media_port)
        self._incoming.pop(id(tx), None)
        leg.dialog = Dialog.as_uas(leg.invite, leg.local_tag)
        self._legs.add(leg)
        advance(leg, LegInput.ANSWER)
        self._send_2xx(leg, tx, leg.invite, sdp, now)

    def reject(self, leg: CallLeg, status: int, now: float, *, reason: str = "rejected") -> None:
        """Answer a call that was not answered yet with a final failure response."""
        tx = leg.transaction
        if leg.state is not LegState.INCOMING or not isinstance(tx, ServerInviteTransaction):
            return
        self._incoming.pop(id(tx), None)
        self._layer.send_response(tx, make_response(leg.invite, status, to_tag=leg.local_tag), leg.flow, now)
        self._legs.end(leg, reason)

    # ---- requests ---------------------------------------------------------------------------------

    def _turn_away(self, request: Request, flow: SipFlow, now: float, why: str, *, reason: str,
                   retry_after: int) -> None:  # fmt: skip
        """A new call refused (503): counted by ``why``. Refused for overload, it is not reported one by one:
        a line per refused call would cost the loop what refusing spares it (admission control logs when
        it starts and stops limiting)."""
        self._layer.counts.refused[why] += 1
        self._layer.respond(request, flow, 503, now, reason=reason, extra=(("retry-after", str(retry_after)),),
                            report=why != "overload")  # fmt: skip

    def receive_invite(self, request: Request, flow: SipFlow, now: float) -> None:
        layer = self._layer
        source = flow.remote[0]
        if source not in self._trusted and not self._limit.allow(source, now):
            # One address flooding must not starve the others: it alone is told to come back later.
            self._turn_away(request, flow, now, "rate_limit", reason="Rate Limited", retry_after=1)
            return
        if self.draining:
            self._turn_away(request, flow, now, "draining", reason="Shutting Down", retry_after=60)
            return
        if self.gate is not None and not self.gate.admit(now):
            self._turn_away(request, flow, now, "overload", reason="Overloaded", retry_after=self.gate.retry_after)
            return
        if self._legs.active_calls >= self.settings.max_calls:
            self._turn_away(request, flow, now, "max_calls", reason="Too Many Calls", retry_after=5)
            return
        record_route(request), remote_target(request)  # what our BYE would need: bad, a 400 now (ParseError)
        offer = parse_sdp(request.body) if request.body else None
        audio = None
        if offer is not None:
            try:
                _, audio = answer_offer(offer, codecs=self.settings.codecs, address="0.0.0.0", port=9,
                                        session_id=0, version=0)  # fmt: skip
            except SdpError as exc:
                layer.respond(request, flow, exc.status, now, reason=exc.reason)
                return
        tx = layer.open_server(request, flow)
        assert isinstance(tx, ServerInviteTransaction)
        leg = CallLeg(request, flow, tx, layer.token(), offer, audio)
        self._incoming[id(tx)] = leg
        layer.accept_invite(tx, flow, now)
        self._legs.active_calls += 1
        layer.emit(IncomingCall(leg))

    def receive_cancel(self, request: Request, flow: SipFlow, now: float) -> None:
        invite_tx = self._layer.server_transaction(request, "INVITE")
        if not isinstance(invite_tx, ServerInviteTransaction):
            self._layer.respond(request, flow, 481, now)
            return
        leg = self._incoming.get(id(invite_tx))  # only a call not answered yet is still there
        if leg is not None and not self._from_peer(leg, flow):
            self._refuse(request, flow, leg, now)
            return
        self._layer.respond(request, flow, 200, now)
        if leg is not None:
            del self._incoming[id(invite_tx)]
            self._layer.send_response(invite_tx, make_response(leg.invite, 487, to_tag=leg.local_tag), leg.flow, now)
            self._legs.end(leg, "cancel")

    def receive_ack(self, request: Request, flow: SipFlow, now: float) -> None:
        """The ACK of a 2xx of ours (a failure's ACK is its transaction's, in the layer)."""
        leg = self._legs.get(dialog_id_of_request(request))
        if leg is None or leg.retransmitter is None or not self._from_peer(leg, flow):
            return  # a stray, retransmitted or forged ACK: nothing to answer (§17.2.3)
        leg.retransmitter = None
        self._layer.untrack(leg)
        if leg.awaiting_answer is not None:
            offer, leg.awaiting_answer = leg.awaiting_answer, None
            try:
                leg.audio = accept_answer(offer, parse_sdp(request.body))
            except SdpError as exc:
                self._layer.emit(MessageRejected(leg.flow, None, f"bad answer in ACK: {exc.reason}"))
                self._uac.send_bye(leg, now)
                return
            if leg.state is LegState.CONFIRMED:
                self._layer.emit(MediaChanged(leg, leg.audio))
        if leg.state is LegState.ANSWERED:
            advance(leg, LegInput.ACK)
            self._layer.emit(CallConfirmed(leg))
            if leg.hangup_after_ack:
                self._uac.send_bye(leg, now)
            elif leg.refer_after_ack is not None:
                self._uac.send_refer(leg, leg.refer_after_ack, now)

    def receive_in_dialog(self, request: Request, flow: SipFlow, now: float) -> None:
        layer = self._layer
        leg = self._legs.get(dialog_id_of_request(request))
        if leg is None or leg.dialog is None or leg.state is LegState.ENDED:
            layer.respond(request, flow, 481, now)
            return
        if not self._from_peer(leg, flow):
            self._refuse(request, flow, leg, now)
            return
        if not leg.dialog.accept_remote_cseq(request):
            layer.respond(request, flow, 500, now, reason="CSeq Out Of Order")
            return
        method = request.method
        if method == "BYE":
            layer.respond(request, flow, 200, now)
            if leg.state is not LegState.ENDING:
                self._legs.end(leg, "bye")
        elif method == "INFO":
            digit, duration = parse_info(request)
            layer.respond(request, flow, 200, now)
            if digit is not None:
                layer.emit(DtmfInfo(leg, digit, duration))
        elif method == "OPTIONS":
            layer.respond(request, flow, 200, now, extra=self.settings.capabilities())
        elif method == "INVITE":
            self._receive_reinvite(leg, request, flow, now)
        elif method == "NOTIFY":
            self._receive_notify(leg, request, flow, now)

    def _receive_notify(self, leg: CallLeg, request: Request, flow: SipFlow, now: float) -> None:
        """NOTIFYs of the implicit subscription a REFER of ours created (RFC 3515 §2.4.4)."""
        package = (request.headers.get("event") or "").split(";", 1)[0].strip().lower()
        if package != "refer":
            self._layer.respond(request, flow, 489, now)
            return
        self._layer.respond(request, flow, 200, now)
        status = _sipfrag_status(request.body)
        if status is not None and status >= 200:
            self._layer.emit(ReferProgress(leg, status))

    def _receive_reinvite(self, leg: CallLeg, request: Request, flow: SipFlow, now: float) -> None:
        if leg.retransmitter is not None or leg.state is not LegState.CONFIRMED:
            self._layer.respond(request, flow, 500, now, extra=(("retry-after", "1"),))  # §14.2
            return
        assert leg.dialog is not None and leg.local_sdp is not None
        remote_target(request)  # a new target our requests could not go to: a 400 now (ParseError)
        offer = parse_sdp(request.body) if request.body else None
        media = leg.local_sdp.media[0]
        try:
            sdp = self._local_sdp(leg, offer, leg.local_sdp.origin[3], media.port)
        except SdpError as exc:
            self._layer.respond(request, flow, exc.status, now, reason=exc.reason)
            return
        leg.dialog.target_refresh(request)
        tx = self._layer.open_server(request, flow)
        assert isinstance(tx, ServerInviteTransaction)
        self._send_2xx(leg, tx, request, sdp, now)
        if offer is not None and leg.audio is not None:
            self._layer.emit(MediaChanged(leg, leg.audio))

    def _from_peer(self, leg: CallLeg, flow: SipFlow) -> bool:
        """Whether a request in ``leg``'s call came from its peer: the address its INVITE came from (or
        went to), the first hop of its route set (a proxy), or a trusted source. Behind NAT that is the
        phone's public address; behind a proxy, the proxy."""
        source = flow.remote[0]
        if source == leg.flow.remote[0] or source in self._trusted or (leg.peer is not None and source == leg.peer[0]):
            return True
        if leg.dialog is not None and leg.dialog.route_set:
            hop = leg.dialog.route_set[0].uri
            return source == bare_host(hop.params.get("maddr") or hop.host)
        return False

    def _refuse(self, request: Request, flow: SipFlow, leg: CallLeg, now: float) -> None:
        self._layer.respond(request, flow, 403, now, reason="Not From The Call's Peer")
        self._layer.emit(Refused(flow, request.method, leg.call_id, f"the call's peer is {leg.flow.remote[0]}"))

    # ---- our 2xx ----------------------------------------------------------------------------------

    def _local_sdp(self, leg: CallLeg, offer: SessionDescription | None, address: str, port: int) -> SessionDescription:
        """Our SDP for a 2xx: the answer to ``offer``, or an offer when the INVITE carried none."""
        leg.sdp_version += 1
        session_id = leg.local_sdp.origin[1] if leg.local_sdp else int.from_bytes(secrets.token_bytes(4), "big")
        if offer is None:
            sdp = make_offer(codecs=self.settings.codecs, address=address, port=port, session_id=session_id,
                             version=leg.sdp_version)  # fmt: skip
            leg.awaiting_answer = sdp
        else:
            sdp, leg.audio = answer_offer(offer, codecs=self.settings.codecs, address=address, port=port,
                                          session_id=session_id, version=leg.sdp_version)
        leg.local_sdp = sdp
        return sdp

    def _send_2xx(self, leg: CallLeg, tx: ServerInviteTransaction, request: Request,
                  sdp: SessionDescription, now: float) -> None:  # fmt: skip
        extra = (("contact", contact_header(leg.flow)), ("content-type", "application/sdp"),
                 *self.settings.capabilities())  # fmt: skip
        response = make_response(request, 200, to_tag=leg.local_tag, extra=extra, body=sdp.to_bytes())
        self._layer.send_response(tx, response, leg.flow, now)
        leg.answer_route = self._layer.route_of(tx)
        leg.retransmitter = AnswerRetransmitter(response, now, reliable=leg.flow.reliable, timers=self.settings.timers)
        self._layer.track(leg, leg.retransmitter.deadline, partial(self._retransmit_2xx, leg))

    def _retransmit_2xx(self, leg: CallLeg, now: float) -> None:
        """§13.3.1.4: the 2xx again until its ACK comes; no ACK at all ends the dialog with a BYE."""
        if leg.retransmitter is None:
            return
        action = leg.retransmitter.on_timer(now)
        if action == "retransmit" and leg.answer_route is not None:
            self._layer.send(leg.retransmitter.response, *leg.answer_route)
        elif action == "give_up":
            leg.retransmitter = None
            if leg.state is LegState.ANSWERED:
                leg.end_reason = "ack-timeout"
                self._uac.send_bye(leg, now)
            return
        self._layer.track(leg, leg.retransmitter.deadline, partial(self._retransmit_2xx, leg))


def _sipfrag_status(body: bytes) -> int | None:
    """The status code of a message/sipfrag body's status line (``SIP/2.0 200 OK``)."""
    first = body.split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if len(first) >= 2 and first[0].upper() == "SIP/2.0" and first[1].isdigit() and len(first[1]) == 3:
        return int(first[1])
    return None
