"""The client side of calls: calls we place (INVITE, CANCEL, the ACK of their 2xx) and the requests we
send within any call's dialog (BYE, REFER)."""

from __future__ import annotations

import secrets
from functools import partial
from urllib.parse import quote

from .build import make_cancel
from .dialog import Dialog
from .errors import ParseError, SdpError
from .events import CallAnswered, CallRinging, MessageRejected, ReferAnswered
from .flow import SipFlow
from .layer import SipLayer
from .leg import CallLeg, LegInput, LegState, advance
from .legs import Legs
from .message import Headers, Request, Response
from .sdp import accept_answer, make_offer, parse_sdp
from .settings import UaSettings, contact_header, sent_by
from .transaction import ClientInviteTransaction, ClientNonInviteTransaction, Deliver, Output, TimedOut
from .uri import bare_host


class Uac:
    """See the module docstring."""

    def __init__(self, settings: UaSettings, layer: SipLayer, legs: Legs) -> None:
        self.settings = settings
        self._layer = layer
        self._legs = legs

    def call(self, target: str, *, host: str, port: int, flow: SipFlow, caller: str, caller_name: str,
             media_address: str, media_port: int, now: float, extra: tuple[tuple[str, str], ...] = ()) -> CallLeg:
        """Place a call to ``target`` (a SIP URI), sent to ``host``:``port`` over ``flow``, from ``caller``
        (a number, shown as ``caller_name``) with our SDP offer."""
        token = self._layer.token
        local_tag, branch = token(), "z9hG4bK" + token()
        sdp = make_offer(codecs=self.settings.codecs, address=media_address, port=media_port,
                         session_id=int.from_bytes(secrets.token_bytes(4), "big"), version=1)  # fmt: skip
        user = quote(caller, safe="-_.!~*'()&=+$,;?/") or "anonymous"
        display = caller_name.replace("\\", "\\\\").replace('"', '\\"')
        headers = Headers()
        headers.add("via", f"SIP/2.0/{flow.transport.upper()} {sent_by(flow)};branch={branch};rport")
        headers.add("max-forwards", "70")
        headers.add("from", f'"{display}" <sip:{user}@{sent_by(flow)}>;tag={local_tag}' if display
                    else f"<sip:{user}@{sent_by(flow)}>;tag={local_tag}")  # fmt: skip
        headers.add("to", f"<{target}>")
        headers.add("call-id", f"{token()}{token()}")
        headers.add("cseq", "1 INVITE")
        headers.add("contact", contact_header(flow))
        for name, value in (*self.settings.capabilities()[:2], ("user-agent", self.settings.user_agent), *extra):
            headers.add(name, value)
        headers.add("content-type", "application/sdp")
        invite = Request("INVITE", target, headers, sdp.to_bytes())
        tx = ClientInviteTransaction(invite, reliable=flow.reliable, timers=self.settings.timers)
        leg = CallLeg(invite, flow, tx, local_tag, None, None, LegState.CALLING, local_sdp=sdp,
                      awaiting_answer=sdp, outgoing=True, peer=(host, port))  # fmt: skip
        self._layer.start_client(tx, flow, host, port, now=now, on_output=partial(self._invite_output, leg, flow))
        return leg

    def cancel(self, leg: CallLeg, now: float) -> None:
        """§9.1: CANCEL once a provisional response has come (before, the CANCEL waits for one)."""
        if leg.cancelled and leg.cancel_deadline is not None:
            return
        leg.cancelled = True
        if not leg.provisional:
            return
        cancel = make_cancel(leg.invite)
        tx = ClientNonInviteTransaction(cancel, reliable=leg.flow.reliable, timers=self.settings.timers)
        host, port = leg.peer or (bare_host(leg.flow.remote[0]), leg.flow.remote[1])
        # Its answer tells nothing: the INVITE's own final response tells how the call ended.
        self._layer.start_client(tx, leg.flow, host, port, now=now, on_output=_ignore)
        leg.cancel_deadline = now + 64 * self.settings.timers.t1  # then the INVITE is given up without its 487
        self._layer.track(leg, leg.cancel_deadline, partial(self._cancel_timer, leg))

    def send_bye(self, leg: CallLeg, now: float) -> None:
        advance(leg, LegInput.BYE)
        self._send_in_dialog(leg, "BYE", now)

    def send_refer(self, leg: CallLeg, target: str, now: float) -> None:
        leg.refer_after_ack = None
        self._send_in_dialog(leg, "REFER", now, extra=(("refer-to", f"<{target}>"),))

    def _send_in_dialog(self, leg: CallLeg, method: str, now: float, *,
                        extra: tuple[tuple[str, str], ...] = ()) -> None:  # fmt: skip
        assert leg.dialog is not None
        hop = leg.dialog.next_hop()
        transport = hop.transport if hop.params.get("transport") else leg.flow.transport
        flow = leg.flow if transport == leg.flow.transport else SipFlow(transport, leg.flow.local, leg.flow.remote)
        via = f"SIP/2.0/{flow.transport.upper()} {sent_by(flow)};branch=z9hG4bK{self._layer.token()};rport"
        contact = contact_header(flow) if method == "REFER" else None  # REFER refreshes the target (RFC 3515)
        request = leg.dialog.new_request(method, via, contact=contact,
                                         extra=(("user-agent", self.settings.user_agent), *extra))  # fmt: skip
        tx = ClientNonInviteTransaction(request, reliable=flow.reliable, timers=self.settings.timers)
        on_output = self._bye_output if method == "BYE" else self._refer_output
        self._layer.start_client(tx, flow, *self._hop(leg), now=now, on_output=partial(on_output, leg))

    def _bye_output(self, leg: CallLeg, output: Output, now: float) -> None:
        if isinstance(output, Deliver) and output.response.status >= 200:
            self._legs.end(leg, leg.end_reason)
        elif isinstance(output, TimedOut):
            self._legs.end(leg, "bye-timeout")

    def _refer_output(self, leg: CallLeg, output: Output, now: float) -> None:
        if isinstance(output, TimedOut):
            self._layer.emit(ReferAnswered(leg, 408))
        elif isinstance(output, Deliver) and output.response.status >= 200:
            self._layer.emit(ReferAnswered(leg, output.response.status))

    def _invite_output(self, leg: CallLeg, flow: SipFlow, output: Output, now: float) -> None:
        """What a call we placed hears back: ringing, the answer (ACKed here, §13.2.2.4), or a failure."""
        if isinstance(output, TimedOut):
            leg.final_status = 408
            self._legs.end(leg, "cancel" if leg.cancelled else "timeout")
            return
        if not isinstance(output, Deliver):
            return
        response = output.response
        if response.status < 200:
            if not leg.provisional:
                leg.provisional = True
                if leg.cancelled:
                    self.cancel(leg, now)
            if response.status > 100 and leg.state is LegState.CALLING:
                self._layer.emit(CallRinging(leg))
            return
        if response.status >= 300:
            leg.final_status = response.status
            self._legs.end(leg, "cancel" if leg.cancelled else "failed")
            return
        if leg.dialog is not None:  # a retransmission of the 2xx: its ACK was lost
            if response.to.tag == leg.dialog.remote_tag and leg.ack:
                self._layer.send_ack(leg.ack, *self._hop(leg), flow)
            return
        self._confirm(leg, flow, response, now)

    def _confirm(self, leg: CallLeg, flow: SipFlow, response: Response, now: float) -> None:
        leg.final_status = response.status
        try:
            leg.dialog = Dialog.as_uac(leg.invite, response)
        except ParseError as exc:  # no ACK, no BYE can be routed: the leg is over here
            self._layer.emit(MessageRejected(flow, None, f"unusable 2xx: {exc.reason}"))
            self._legs.end(leg, "bad-answer")
            return
        self._legs.add(leg)
        leg.cancel_deadline = None
        self._layer.untrack(leg)
        via = f"SIP/2.0/{flow.transport.upper()} {sent_by(flow)};branch=z9hG4bK{self._layer.token()};rport"
        ack = leg.dialog.new_request("ACK", via, cseq=leg.invite.cseq.number,
                                     extra=(("user-agent", self.settings.user_agent),))  # fmt: skip
        leg.ack = ack.to_bytes()
        self._layer.send_ack(leg.ack, *self._hop(leg), flow)
        advance(leg, LegInput.ANSWERED)
        try:
            assert leg.awaiting_answer is not None
            leg.audio = accept_answer(leg.awaiting_answer, parse_sdp(response.body))
            leg.awaiting_answer = None
        except (SdpError, ParseError) as exc:
            self._layer.emit(MessageRejected(flow, None, f"bad answer in 2xx: {exc.reason}"))
            leg.end_reason = "bad-answer"
            self.send_bye(leg, now)
            return
        if leg.cancelled:  # answered as we gave up on it (§9.1's race): end it at once
            self.send_bye(leg, now)
            return
        self._layer.emit(CallAnswered(leg))

    def _cancel_timer(self, leg: CallLeg, now: float) -> None:
        if leg.cancel_deadline is not None and now >= leg.cancel_deadline and leg.state is LegState.CALLING:
            leg.final_status = 408
            self._legs.end(leg, "cancel")  # §9.1: no final response 64*T1 after our CANCEL

    def _hop(self, leg: CallLeg) -> tuple[str, int]:
        """Where a request in ``leg``'s dialog goes (the ACK of a 2xx included)."""
        assert leg.dialog is not None
        if leg.peer is not None and not leg.dialog.route_set:  # a phone behind NAT: back where it registered from
            return leg.peer
        hop = leg.dialog.next_hop()
        return hop.params.get("maddr") or bare_host(hop.host), hop.port or 5060


def _ignore(output: Output, now: float) -> None:
    """For a CANCEL's outputs."""
