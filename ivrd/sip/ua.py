"""The user-agent core, sans-IO: bytes and ``now`` in; datagrams to send, call events and one deadline out.

It validates requests and answers what it can itself (OPTIONS, errors, CANCEL, BYE, INFO,
re-INVITE), runs the transactions and dialogs, and reports call events to the application,
which answers through :meth:`UserAgent.ring`, :meth:`UserAgent.answer`, :meth:`UserAgent.reject`
and :meth:`UserAgent.hangup`. The driver calls :meth:`UserAgent.receive` and
:meth:`UserAgent.on_timer`, then drains :meth:`UserAgent.take_sends` and
:meth:`UserAgent.take_events`, and re-arms one timer at :meth:`UserAgent.next_deadline`.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from .auth import DigestAuth, parse_digest
from .build import make_cancel, make_response
from .counts import SipCounts
from .dialog import AnswerRetransmitter, Dialog, DialogId, dialog_id_of_request
from .errors import ParseError, SdpError
from .flow import Flow
from .limits import RateLimiter, SourceList
from .message import Headers, Message, Request, Response, has_control_chars, parse_message
from .registrar import MIN_EXPIRES, Registrar, TooBrief
from .sdp import AudioSession, SessionDescription, accept_answer, answer_offer, make_offer, parse_sdp
from .transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Deliver,
    Output,
    ServerInviteTransaction,
    ServerKey,
    ServerNonInviteTransaction,
    ServerTransaction,
    TimedOut,
    Timers,
    Transaction,
    Transmit,
    client_key,
    server_key,
)
from .uri import Uri, bare_host, format_host, parse_uri, split_outside_quotes

ALLOWED = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY")
# Methods of other SIP extensions: known, so 405 (with Allow) rather than 501.
KNOWN_UNSUPPORTED = frozenset({"REGISTER", "SUBSCRIBE", "REFER", "MESSAGE", "UPDATE", "PRACK", "PUBLISH"})
SUPPORTED_SCHEMES = frozenset({"sip", "sips", "tel"})
DTMF_TYPES = ("application/dtmf-relay", "application/dtmf")
_DTMF_SIGNALS = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` to ``host``:``port``; on a stream flow whose connection is open, over that connection."""

    data: bytes
    host: str
    port: int
    flow: Flow


class LegState(enum.Enum):
    INCOMING = "incoming"  # INVITE received, no final response yet
    CALLING = "calling"  # our INVITE is out, no final response yet
    ANSWERED = "answered"  # 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"
    ENDING = "ending"  # our BYE is out
    ENDED = "ended"


@dataclass(slots=True, eq=False)
class CallLeg:
    """One call's signalling state: an incoming call, or one we place (``outgoing``)."""

    invite: Request
    flow: Flow
    transaction: ServerInviteTransaction | ClientInviteTransaction
    local_tag: str
    offer: SessionDescription | None
    audio: AudioSession | None  # what offer/answer agreed (a preview until answered)
    state: LegState = LegState.INCOMING
    dialog: Dialog | None = None
    local_sdp: SessionDescription | None = None
    awaiting_answer: SessionDescription | None = None  # our offer in a 2xx, answered in the ACK
    retransmitter: AnswerRetransmitter | None = None
    hangup_after_ack: bool = False
    refer_after_ack: str | None = None  # a transfer asked for before the ACK came (§13.3.1.4)
    sdp_version: int = 0
    end_reason: str = "hangup"  # reported when our BYE completes
    answer_route: tuple[str, int, Flow] | None = None  # where a 2xx being retransmitted goes
    outgoing: bool = False
    peer: tuple[str, int] | None = None  # outgoing: where in-dialog requests go when no route set says otherwise
    final_status: int | None = None  # outgoing: the final response our INVITE got
    provisional: bool = False  # outgoing: a provisional response came (a CANCEL may be sent)
    cancelled: bool = False  # outgoing: we gave up on it
    cancel_deadline: float | None = None  # outgoing: no final response after our CANCEL by then: ended (§9.1)
    ack: bytes = b""  # outgoing: the ACK of the 2xx, sent again for each retransmission of it

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def caller(self) -> str:
        return str(self.invite.from_.uri)

    @property
    def callee(self) -> str:
        return self.invite.uri

    @property
    def caller_number(self) -> str:
        """The user part of the From URI (the number of a tel: URI), unescaped; "" when there is none."""
        return _number(self.invite.from_.uri)

    @property
    def caller_name(self) -> str:
        """The From display name, its quotes and escapes taken off."""
        display = (self.invite.from_.display or "").strip()
        if len(display) >= 2 and display[0] == display[-1] == '"':
            display = re.sub(r"\\(.)", r"\1", display[1:-1])
        return display

    @property
    def dialed_number(self) -> str:
        """The user part of the Request-URI (the number dialed); "" when there is none."""
        try:
            return _number(parse_uri(self.invite.uri))
        except ParseError:
            return ""


def _number(uri: Uri) -> str:
    if uri.scheme == "tel":
        return unquote((uri.opaque or "").split(";", 1)[0])
    return unquote(uri.user or "")


@dataclass(frozen=True, slots=True)
class IncomingCall:
    leg: CallLeg


@dataclass(frozen=True, slots=True)
class CallConfirmed:
    leg: CallLeg


@dataclass(frozen=True, slots=True)
class CallRinging:
    """A call we placed is ringing (a provisional response above 100)."""

    leg: CallLeg


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """A call we placed was answered and acknowledged; ``leg.audio`` is what the two sides agreed."""

    leg: CallLeg


@dataclass(frozen=True, slots=True)
class MediaChanged:
    """A re-INVITE changed the media (hold, resume, new address)."""

    leg: CallLeg
    audio: AudioSession


@dataclass(frozen=True, slots=True)
class DtmfInfo:
    leg: CallLeg
    digit: str
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class CallEnded:
    leg: CallLeg
    # "bye", "cancel", "hangup", "rejected", "ack-timeout", "bye-timeout"; for a call we placed that was
    # not answered, "failed" (its status in leg.final_status), "timeout" or "cancel"
    reason: str


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """A message that could not be processed; for logs and counters."""

    flow: Flow
    status: int | None  # the status answered, or None when dropped
    reason: str


@dataclass(frozen=True, slots=True)
class ReferAnswered:
    """The final response to our REFER (202: the transferee tries the target; else it will not)."""

    leg: CallLeg
    status: int


@dataclass(frozen=True, slots=True)
class ReferProgress:
    """How the transferee's call to the target ended (a final status from a NOTIFY's message/sipfrag)."""

    leg: CallLeg
    status: int


@dataclass(frozen=True, slots=True)
class Registered:
    """An account's bindings after a REGISTER it proved (none: it unregistered)."""

    user: str
    contacts: tuple[str, ...]
    flow: Flow


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """A request whose credentials did not prove an account (one log line each, for fail2ban)."""

    flow: Flow
    user: str
    reason: str


Event = (IncomingCall | CallConfirmed | CallRinging | CallAnswered | MediaChanged | DtmfInfo | CallEnded
         | MessageRejected | ReferAnswered | ReferProgress | Registered | AuthFailed)  # fmt: skip


@dataclass(frozen=True, slots=True)
class UaSettings:
    user_agent: str = "ivrd"
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    max_calls: int = 1000
    max_message_bytes: int = 65535
    timers: Timers = field(default_factory=Timers)
    invite_rate: float = 0.0  # new calls a second from one source address (0: no limit)
    invite_burst: float = 1.0
    trusted_sources: tuple[str, ...] = ()  # addresses or networks the rate limit does not apply to
    realm: str = "ivrd"
    accounts: dict[str, str] = field(default_factory=dict)  # user -> password; none: REGISTER is refused (405)
    digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5")  # offered in this order


@dataclass(slots=True)
class _BranchRequest:
    transaction: ClientNonInviteTransaction | ClientInviteTransaction
    method: str
    leg: CallLeg
    flow: Flow
    host: str
    port: int


_CLIENT = (ClientNonInviteTransaction, ClientInviteTransaction)


def _new_token() -> str:
    return secrets.token_hex(8)


@dataclass(slots=True)
class _Timed:
    """A heap entry: the deadline it was pushed with is compared on pop to skip stale entries."""

    deadline: float
    seq: int
    target: Transaction | CallLeg = field(compare=False)

    def __lt__(self, other: _Timed) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


class UserAgent:
    """See the module docstring."""

    def __init__(self, settings: UaSettings = UaSettings(), *, new_token: Callable[[], str] = _new_token) -> None:
        self.settings = settings
        self._token = new_token
        self._server: dict[ServerKey, ServerTransaction] = {}
        self._client: dict[tuple[str, str], _BranchRequest] = {}
        self._legs: dict[DialogId, CallLeg] = {}
        self._heap: list[_Timed] = []
        self._pushed: dict[int, float] = {}
        self._seq = itertools.count()
        self._sends: list[Send] = []
        self._events: list[Event] = []
        self._routes: dict[int, tuple[str, int, Flow]] = {}  # server transaction -> where its responses go
        self._incoming: dict[int, CallLeg] = {}  # INVITE server transaction -> its call
        self.active_calls = 0
        self._invite_limit = RateLimiter(settings.invite_rate, settings.invite_burst)
        self._trusted = SourceList(settings.trusted_sources)
        self.registrar = Registrar()
        self.counts = SipCounts()
        self.draining = False  # stopping: new calls are sent elsewhere (503), calls in progress go on
        self._auth = DigestAuth(settings.realm, secrets.token_bytes(32), algorithms=settings.digest_algorithms)
        self._allowed = ALLOWED + (("REGISTER",) if settings.accounts else ())

    # ---- driver interface -------------------------------------------------------------------------

    def take_sends(self) -> list[Send]:
        sends, self._sends = self._sends, []
        return sends

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        while self._heap:
            top = self._heap[0]
            if self._pushed.get(id(top.target)) == top.deadline:
                return top.deadline
            heapq.heappop(self._heap)
        return None

    def on_timer(self, now: float) -> None:
        while self._heap and self._heap[0].deadline <= now:
            entry = heapq.heappop(self._heap)
            target = entry.target
            if self._pushed.get(id(target)) != entry.deadline:
                continue
            del self._pushed[id(target)]
            if isinstance(target, CallLeg):
                self._leg_timer(target, now)
            else:
                self._transaction_timer(target, now)

    def receive(self, data: bytes, flow: Flow, now: float) -> None:
        """Process one datagram (or one framed stream message) from ``flow``."""
        try:
            message = parse_message(data, stream=flow.reliable, max_bytes=self.settings.max_message_bytes)
            message.validate()
        except ParseError as exc:
            self.counts.unparsable += 1
            self._reject_unparsable(data, flow, exc)
            return
        if isinstance(message, Response):
            self.counts.response("in", message.cseq.method, message.status)
            self._receive_response(message, now)
            return
        self.counts.request("in", message.method)
        self._stamp_via(message, flow)
        try:
            self._receive_request(message, flow, now)
        except ParseError as exc:  # a header only some methods look at (Contact, Require, a body)
            self._respond_stateless(message, flow, exc.status, exc.reason)

    # ---- application interface --------------------------------------------------------------------

    def ring(self, leg: CallLeg, now: float) -> None:
        """Send 180 Ringing (with our To tag: an early dialog)."""
        tx = leg.transaction
        if leg.state is LegState.INCOMING and isinstance(tx, ServerInviteTransaction):
            self._send_on(tx, make_response(leg.invite, 180, to_tag=leg.local_tag), leg.flow, now)

    def answer(self, leg: CallLeg, *, media_address: str, media_port: int, now: float) -> None:
        """Send 200 OK with our SDP (an answer to the INVITE's offer, or our offer when it had none)."""
        tx = leg.transaction
        if leg.state is not LegState.INCOMING or not isinstance(tx, ServerInviteTransaction):
            return
        sdp = self._local_sdp(leg, leg.offer, media_address, media_port)
        leg.dialog = Dialog.as_uas(leg.invite, leg.local_tag)
        self._legs[leg.dialog.id] = leg
        leg.state = LegState.ANSWERED
        self._send_2xx(leg, tx, leg.invite, sdp, now)

    def reject(self, leg: CallLeg, status: int, now: float, *, reason: str = "rejected") -> None:
        """Answer a call that was not answered yet with a final failure response."""
        tx = leg.transaction
        if leg.state is not LegState.INCOMING or not isinstance(tx, ServerInviteTransaction):
            return
        self._send_on(tx, make_response(leg.invite, status, to_tag=leg.local_tag), leg.flow, now)
        self._end(leg, reason)

    def refer(self, leg: CallLeg, target: str, now: float) -> bool:
        """Ask the caller's side to call ``target`` (RFC 3515 blind transfer); False when the call is not
        up. :class:`ReferAnswered` and then :class:`ReferProgress` events tell how it goes."""
        if leg.state is LegState.ANSWERED:
            leg.refer_after_ack = target  # no request of ours in the dialog before its ACK
            return True
        if leg.state is not LegState.CONFIRMED:
            return False
        self._send_refer(leg, target, now)
        return True

    def _cancel(self, leg: CallLeg, now: float) -> None:
        """§9.1: CANCEL once a provisional response has come (before, the CANCEL waits for one)."""
        if leg.cancelled and leg.cancel_deadline is not None:
            return
        leg.cancelled = True
        if not leg.provisional:
            return
        cancel = make_cancel(leg.invite)
        tx = ClientNonInviteTransaction(cancel, reliable=leg.flow.reliable, timers=self.settings.timers)
        host, port = leg.peer or (bare_host(leg.flow.remote[0]), leg.flow.remote[1])
        self._client[client_key(cancel)] = _BranchRequest(tx, "CANCEL", leg, leg.flow, host, port)
        self._run(tx, tx.start(now), leg.flow, now, host=host, port=port)
        leg.cancel_deadline = now + 64 * self.settings.timers.t1  # then the INVITE is given up without its 487
        self._track(leg)

    def _send_refer(self, leg: CallLeg, target: str, now: float) -> None:
        leg.refer_after_ack = None
        self._send_in_dialog(leg, "REFER", now, extra=(("refer-to", f"<{target}>"),))

    def call(self, target: str, *, host: str, port: int, flow: Flow, caller: str, caller_name: str,
             media_address: str, media_port: int, now: float, extra: tuple[tuple[str, str], ...] = ()) -> CallLeg:
        """Place a call to ``target`` (a SIP URI), sent to ``host``:``port`` over ``flow``, from ``caller``
        (a number, shown as ``caller_name``) with our SDP offer. :class:`CallRinging`, then
        :class:`CallAnswered` or :class:`CallEnded` tell how it goes; :meth:`hangup` cancels it."""
        local_tag, branch = self._token(), "z9hG4bK" + self._token()
        sdp = make_offer(codecs=self.settings.codecs, address=media_address, port=media_port,
                         session_id=int.from_bytes(secrets.token_bytes(4), "big"), version=1)  # fmt: skip
        user = quote(caller, safe="-_.!~*'()&=+$,;?/") or "anonymous"
        display = caller_name.replace("\\", "\\\\").replace('"', '\\"')
        headers = Headers()
        headers.add("via", f"SIP/2.0/{flow.transport.upper()} {self._sent_by(flow)};branch={branch};rport")
        headers.add("max-forwards", "70")
        headers.add("from", f'"{display}" <sip:{user}@{self._sent_by(flow)}>;tag={local_tag}' if display
                    else f"<sip:{user}@{self._sent_by(flow)}>;tag={local_tag}")  # fmt: skip
        headers.add("to", f"<{target}>")
        headers.add("call-id", f"{self._token()}{self._token()}")
        headers.add("cseq", "1 INVITE")
        headers.add("contact", self._contact(flow))
        for name, value in (*self._capabilities()[:2], ("user-agent", self.settings.user_agent), *extra):
            headers.add(name, value)
        headers.add("content-type", "application/sdp")
        invite = Request("INVITE", target, headers, sdp.to_bytes())
        tx = ClientInviteTransaction(invite, reliable=flow.reliable, timers=self.settings.timers)
        leg = CallLeg(invite, flow, tx, local_tag, None, None, LegState.CALLING, local_sdp=sdp,
                      awaiting_answer=sdp, outgoing=True, peer=(host, port))  # fmt: skip
        self._client[(branch, "INVITE")] = _BranchRequest(tx, "INVITE", leg, flow, host, port)
        self._run(tx, tx.start(now), flow, now, host=host, port=port)
        return leg

    def hangup(self, leg: CallLeg, now: float) -> None:
        """End the call from our side: BYE when answered (after the ACK, §15), 480 before; a call we
        placed that is not answered yet is cancelled."""
        if leg.state is LegState.CALLING:
            self._cancel(leg, now)
        elif leg.state is LegState.INCOMING:
            self.reject(leg, 480, now, reason="hangup")
        elif leg.state is LegState.ANSWERED:
            leg.hangup_after_ack = True
        elif leg.state is LegState.CONFIRMED:
            self._send_bye(leg, now)

    # ---- requests ---------------------------------------------------------------------------------

    def _receive_request(self, request: Request, flow: Flow, now: float) -> None:
        method = request.method
        if method == "ACK":
            self._receive_ack(request, now)
            return
        existing = self._server.get(server_key(request))
        if existing is not None:
            self._run(existing, existing.on_request(request, now), flow, now)
            return
        if method == "CANCEL":
            self._receive_cancel(request, flow, now)
            return
        status, reason, extra = self._check_request(request)
        if status:
            self._respond(request, flow, status, now, reason=reason, extra=extra)
            return
        if request.to.tag is not None:
            self._receive_in_dialog(request, flow, now)
        elif method == "INVITE":
            self._receive_invite(request, flow, now)
        elif method == "REGISTER":
            self._receive_register(request, flow, now)
        elif method == "OPTIONS":
            self._respond(request, flow, 200, now, extra=self._capabilities())
        else:
            self._respond(request, flow, 481, now)

    def _check_request(self, request: Request) -> tuple[int, str | None, tuple[tuple[str, str], ...]]:
        """RFC 3261 §8.2 inspections, in order; status 0 when the request may proceed."""
        method = request.method
        if method not in self._allowed:
            if method in KNOWN_UNSUPPORTED:
                return 405, None, (("allow", ", ".join(self._allowed)),)
            return 501, None, (("allow", ", ".join(self._allowed)),)
        if request.max_forwards == 0:
            return 483, None, ()
        if request.request_uri.scheme not in SUPPORTED_SCHEMES:
            return 416, None, ()
        required = [tag for tag in request.headers.values("require") if tag]
        if required:
            return 420, None, (("unsupported", ", ".join(required)),)
        if request.body:
            ctype = request.content_type
            accepted = DTMF_TYPES if method == "INFO" else ("message/sipfrag",) if method == "NOTIFY" else (
                "application/sdp",)  # fmt: skip
            if ctype not in accepted:
                return 415, None, (("accept", ", ".join(accepted)),)
        if method == "INVITE" and "accept" in request.headers:
            accept = [v.split(";", 1)[0].strip().lower() for v in request.headers.values("accept")]
            if not {"application/sdp", "application/*", "*/*"} & set(accept) and any(accept):
                return 406, None, (("accept", "application/sdp"),)
        return 0, None, ()

    def _receive_invite(self, request: Request, flow: Flow, now: float) -> None:
        source = flow.remote[0]
        if source not in self._trusted and not self._invite_limit.allow(source, now):
            # One address flooding must not starve the others: it alone is told to come back later.
            self._respond(request, flow, 503, now, reason="Rate Limited", extra=(("retry-after", "1"),))
            return
        if self.draining:
            self._respond(request, flow, 503, now, reason="Shutting Down", extra=(("retry-after", "60"),))
            return
        if self.active_calls >= self.settings.max_calls:
            self._respond(request, flow, 503, now, reason="Too Many Calls", extra=(("retry-after", "5"),))
            return
        offer = parse_sdp(request.body) if request.body else None
        audio = None
        if offer is not None:
            try:
                _, audio = answer_offer(offer, codecs=self.settings.codecs, address="0.0.0.0", port=9,
                                        session_id=0, version=0)  # fmt: skip
            except SdpError as exc:
                self._respond(request, flow, exc.status, now, reason=exc.reason)
                return
        tx = ServerInviteTransaction(request, reliable=flow.reliable, timers=self.settings.timers)
        self._server[server_key(request)] = tx
        leg = CallLeg(request, flow, tx, self._token(), offer, audio)
        self._incoming[id(tx)] = leg
        self._send_on(tx, make_response(request, 100), flow, now)
        self.active_calls += 1
        self._events.append(IncomingCall(leg))

    def _receive_register(self, request: Request, flow: Flow, now: float) -> None:
        source = flow.remote[0]
        if source not in self._trusted and not self._invite_limit.allow(source, now):
            self._respond(request, flow, 503, now, extra=(("retry-after", "1"),))
            return
        credentials = request.headers.get("authorization")
        if credentials is None:
            self._challenge(request, flow, now)
            return
        result = self._auth.verify("REGISTER", credentials, now, self.settings.accounts.get)
        claimed = (parse_digest(credentials) or {}).get("username", "")
        if result.user is None:
            if not result.stale:
                self._events.append(AuthFailed(flow, claimed, result.reason))
            self._challenge(request, flow, now, stale=result.stale)
            return
        if request.to.uri.user != result.user:  # an account registers its own address, no one else's
            self._events.append(AuthFailed(flow, result.user, f"registering {request.to.uri.user!r}"))
            self._respond(request, flow, 403, now)
            return
        try:
            bindings = self.registrar.register(result.user, request, now, flow)
        except TooBrief:
            self._respond(request, flow, 423, now, extra=(("min-expires", str(MIN_EXPIRES)),))
            return
        except ParseError as exc:
            self._respond(request, flow, exc.status, now, reason=exc.reason)
            return
        contacts = tuple(f"<{b.contact}>;expires={max(0, int(b.expires_at - now))}" for b in bindings)
        self._respond(request, flow, 200, now, extra=tuple(("contact", c) for c in contacts))
        self._events.append(Registered(result.user, tuple(b.contact for b in bindings), flow))

    def _challenge(self, request: Request, flow: Flow, now: float, *, stale: bool = False) -> None:
        """401 with a challenge per algorithm (unknown user and wrong password look the same)."""
        challenges = self._auth.challenges(now, stale=stale)
        self._respond(request, flow, 401, now, extra=tuple(("www-authenticate", c) for c in challenges))

    def _receive_cancel(self, request: Request, flow: Flow, now: float) -> None:
        invite_tx = self._server.get(server_key(request, "INVITE"))
        if not isinstance(invite_tx, ServerInviteTransaction):
            self._respond(request, flow, 481, now)
            return
        self._respond(request, flow, 200, now)
        leg = self._leg_of(invite_tx)
        if leg is not None and leg.state is LegState.INCOMING:
            self._send_on(invite_tx, make_response(leg.invite, 487, to_tag=leg.local_tag), leg.flow, now)
            self._end(leg, "cancel")

    def _leg_of(self, tx: ServerInviteTransaction) -> CallLeg | None:
        return self._incoming.get(id(tx))

    def _receive_ack(self, request: Request, now: float) -> None:
        tx = self._server.get(server_key(request))
        if isinstance(tx, ServerInviteTransaction) and tx.last_response is not None \
                and tx.last_response.status >= 300:  # fmt: skip
            self._run(tx, tx.on_request(request, now), None, now)
            return
        leg = self._legs.get(dialog_id_of_request(request))
        if leg is None or leg.retransmitter is None:
            return  # a stray or retransmitted ACK: nothing to answer (§17.2.3)
        leg.retransmitter = None
        self._untrack(leg)
        if leg.awaiting_answer is not None:
            offer, leg.awaiting_answer = leg.awaiting_answer, None
            try:
                leg.audio = accept_answer(offer, parse_sdp(request.body))
            except SdpError as exc:
                self._events.append(MessageRejected(leg.flow, None, f"bad answer in ACK: {exc.reason}"))
                self._send_bye(leg, now)
                return
            if leg.state is LegState.CONFIRMED:
                self._events.append(MediaChanged(leg, leg.audio))
        if leg.state is LegState.ANSWERED:
            leg.state = LegState.CONFIRMED
            self._events.append(CallConfirmed(leg))
            if leg.hangup_after_ack:
                self._send_bye(leg, now)
            elif leg.refer_after_ack is not None:
                self._send_refer(leg, leg.refer_after_ack, now)

    def _receive_in_dialog(self, request: Request, flow: Flow, now: float) -> None:
        leg = self._legs.get(dialog_id_of_request(request))
        if leg is None or leg.dialog is None or leg.state is LegState.ENDED:
            self._respond(request, flow, 481, now)
            return
        if not leg.dialog.accept_remote_cseq(request):
            self._respond(request, flow, 500, now, reason="CSeq Out Of Order")
            return
        method = request.method
        if method == "BYE":
            self._respond(request, flow, 200, now)
            if leg.state is not LegState.ENDING:
                self._end(leg, "bye")
        elif method == "INFO":
            self._receive_info(leg, request, flow, now)
        elif method == "OPTIONS":
            self._respond(request, flow, 200, now, extra=self._capabilities())
        elif method == "INVITE":
            self._receive_reinvite(leg, request, flow, now)
        elif method == "NOTIFY":
            self._receive_notify(leg, request, flow, now)

    def _receive_notify(self, leg: CallLeg, request: Request, flow: Flow, now: float) -> None:
        """NOTIFYs of the implicit subscription a REFER of ours created (RFC 3515 §2.4.4)."""
        package = (request.headers.get("event") or "").split(";", 1)[0].strip().lower()
        if package != "refer":
            self._respond(request, flow, 489, now)
            return
        self._respond(request, flow, 200, now)
        status = _sipfrag_status(request.body)
        if status is not None and status >= 200:
            self._events.append(ReferProgress(leg, status))

    def _receive_info(self, leg: CallLeg, request: Request, flow: Flow, now: float) -> None:
        digit, duration = _parse_dtmf(request)
        self._respond(request, flow, 200, now)
        if digit is not None:
            self._events.append(DtmfInfo(leg, digit, duration))

    def _receive_reinvite(self, leg: CallLeg, request: Request, flow: Flow, now: float) -> None:
        if leg.retransmitter is not None or leg.state is not LegState.CONFIRMED:
            self._respond(request, flow, 500, now, extra=(("retry-after", "1"),))  # §14.2
            return
        assert leg.dialog is not None and leg.local_sdp is not None
        offer = parse_sdp(request.body) if request.body else None
        media = leg.local_sdp.media[0]
        try:
            sdp = self._local_sdp(leg, offer, leg.local_sdp.origin[3], media.port)
        except SdpError as exc:
            self._respond(request, flow, exc.status, now, reason=exc.reason)
            return
        leg.dialog.target_refresh(request)
        tx = ServerInviteTransaction(request, reliable=flow.reliable, timers=self.settings.timers)
        self._server[server_key(request)] = tx
        self._send_2xx(leg, tx, request, sdp, now)
        if offer is not None and leg.audio is not None:
            self._events.append(MediaChanged(leg, leg.audio))

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
        extra = (("contact", self._contact(leg.flow)), ("content-type", "application/sdp"), *self._capabilities())
        response = make_response(request, 200, to_tag=leg.local_tag, extra=extra, body=sdp.to_bytes())
        self._send_on(tx, response, leg.flow, now)
        leg.answer_route = self._routes[id(tx)]
        leg.retransmitter = AnswerRetransmitter(response, now, reliable=leg.flow.reliable, timers=self.settings.timers)
        self._track(leg)

    # ---- our requests (BYE, REFER) -----------------------------------------------------------------

    def _send_bye(self, leg: CallLeg, now: float) -> None:
        leg.state = LegState.ENDING
        self._send_in_dialog(leg, "BYE", now)

    def _send_in_dialog(self, leg: CallLeg, method: str, now: float, *,
                        extra: tuple[tuple[str, str], ...] = ()) -> None:  # fmt: skip
        assert leg.dialog is not None
        hop = leg.dialog.next_hop()
        transport = hop.transport if hop.params.get("transport") else leg.flow.transport
        flow = leg.flow if transport == leg.flow.transport else Flow(transport, leg.flow.local, leg.flow.remote)
        branch = "z9hG4bK" + self._token()
        via = f"SIP/2.0/{flow.transport.upper()} {self._sent_by(flow)};branch={branch};rport"
        contact = self._contact(flow) if method == "REFER" else None  # REFER refreshes the target (RFC 3515)
        request = leg.dialog.new_request(method, via, contact=contact,
                                         extra=(("user-agent", self.settings.user_agent), *extra))  # fmt: skip
        tx = ClientNonInviteTransaction(request, reliable=flow.reliable, timers=self.settings.timers)
        host, port = self._hop(leg)
        self._client[(branch, method)] = _BranchRequest(tx, method, leg, flow, host, port)
        self._run(tx, tx.start(now), flow, now, host=host, port=port)

    def _receive_response(self, response: Response, now: float) -> None:
        entry = self._client.get(client_key(response))
        if entry is None:
            return  # no transaction of ours: a stray or a late retransmission (§18.1.2)
        self._run(entry.transaction, entry.transaction.on_response(response, now), entry.flow, now,
                  host=entry.host, port=entry.port)  # fmt: skip

    def _client_output(self, entry: _BranchRequest, output: Output, now: float) -> None:
        final = isinstance(output, Deliver) and output.response.status >= 200
        if entry.method == "INVITE":
            self._invite_output(entry, output, now)
        elif entry.method == "REFER":
            if final or isinstance(output, TimedOut):
                status = output.response.status if isinstance(output, Deliver) else 408
                self._events.append(ReferAnswered(entry.leg, status))
        elif entry.method != "BYE":
            return  # a CANCEL's answer: the INVITE's own final response tells how it ended
        elif final:
            self._end(entry.leg, entry.leg.end_reason)
        elif isinstance(output, TimedOut):
            self._end(entry.leg, "bye-timeout")

    def _invite_output(self, entry: _BranchRequest, output: Output, now: float) -> None:
        """What a call we placed hears back: ringing, the answer (ACKed here, §13.2.2.4), or a failure."""
        leg = entry.leg
        if isinstance(output, TimedOut):
            leg.final_status = 408
            self._end(leg, "cancel" if leg.cancelled else "timeout")
            return
        if not isinstance(output, Deliver):
            return
        response = output.response
        if response.status < 200:
            if not leg.provisional:
                leg.provisional = True
                if leg.cancelled:
                    self._cancel(leg, now)
            if response.status > 100 and leg.state is LegState.CALLING:
                self._events.append(CallRinging(leg))
            return
        if response.status >= 300:
            leg.final_status = response.status
            self._end(leg, "cancel" if leg.cancelled else "failed")
            return
        if leg.dialog is not None:  # a retransmission of the 2xx: its ACK was lost
            if response.to.tag == leg.dialog.remote_tag and leg.ack:
                self._send_ack(leg, entry.flow)
            return
        leg.final_status = response.status
        leg.dialog = Dialog.as_uac(leg.invite, response)
        self._legs[leg.dialog.id] = leg
        leg.cancel_deadline = None
        self._untrack(leg)
        via = f"SIP/2.0/{entry.flow.transport.upper()} {self._sent_by(entry.flow)};branch=z9hG4bK{self._token()};rport"
        ack = leg.dialog.new_request("ACK", via, cseq=leg.invite.cseq.number,
                                     extra=(("user-agent", self.settings.user_agent),))  # fmt: skip
        leg.ack = ack.to_bytes()
        self._send_ack(leg, entry.flow)
        leg.state = LegState.CONFIRMED
        try:
            assert leg.awaiting_answer is not None
            leg.audio = accept_answer(leg.awaiting_answer, parse_sdp(response.body))
            leg.awaiting_answer = None
        except (SdpError, ParseError) as exc:
            self._events.append(MessageRejected(entry.flow, None, f"bad answer in 2xx: {exc.reason}"))
            leg.end_reason = "bad-answer"
            self._send_bye(leg, now)
            return
        if leg.cancelled:  # answered as we gave up on it (§9.1's race): end it at once
            self._send_bye(leg, now)
            return
        self._events.append(CallAnswered(leg))

    def _hop(self, leg: CallLeg) -> tuple[str, int]:
        """Where a request in ``leg``'s dialog goes (the ACK of a 2xx included)."""
        assert leg.dialog is not None
        if leg.peer is not None and not leg.dialog.route_set:  # a phone behind NAT: back where it registered from
            return leg.peer
        hop = leg.dialog.next_hop()
        return hop.params.get("maddr") or bare_host(hop.host), hop.port or 5060

    # ---- timers ---------------------------------------------------------------------------------

    def _track(self, target: Transaction | CallLeg) -> None:
        deadline = target.deadline if isinstance(target, Transaction) else (
            target.retransmitter.deadline if target.retransmitter else target.cancel_deadline)  # fmt: skip
        if deadline is None:
            self._pushed.pop(id(target), None)
            return
        if self._pushed.get(id(target)) != deadline:
            self._pushed[id(target)] = deadline
            heapq.heappush(self._heap, _Timed(deadline, next(self._seq), target))

    def _untrack(self, target: Transaction | CallLeg) -> None:
        self._pushed.pop(id(target), None)

    def _transaction_timer(self, tx: Transaction, now: float) -> None:
        entry = self._client.get(client_key(tx.request)) if isinstance(tx, _CLIENT) else None
        if entry is not None:
            self._run(tx, tx.on_timer(now), entry.flow, now, host=entry.host, port=entry.port)
        else:
            self._run(tx, tx.on_timer(now), None, now)

    def _leg_timer(self, leg: CallLeg, now: float) -> None:
        if leg.retransmitter is None:
            if leg.cancel_deadline is not None and now >= leg.cancel_deadline and leg.state is LegState.CALLING:
                leg.final_status = 408
                self._end(leg, "cancel")  # §9.1: no final response 64*T1 after our CANCEL
            return
        action = leg.retransmitter.on_timer(now)
        if action == "retransmit" and leg.answer_route is not None:
            self._send(leg.retransmitter.response, *leg.answer_route)
            self._track(leg)
        elif action == "give_up":
            leg.retransmitter = None
            if leg.state is LegState.ANSWERED:  # §13.3.1.4: no ACK, so end the dialog with a BYE
                leg.end_reason = "ack-timeout"
                self._send_bye(leg, now)
        else:
            self._track(leg)

    # ---- plumbing -------------------------------------------------------------------------------

    def _run(self, tx: Transaction, outputs: list[Output], flow: Flow | None, now: float, *,
             host: str | None = None, port: int | None = None) -> None:  # fmt: skip
        """Carry out a transaction's outputs, then track its deadline or forget it when it has ended."""
        entry = self._client.get(client_key(tx.request)) if isinstance(tx, _CLIENT) else None
        for output in outputs:
            if isinstance(output, Transmit):
                message = output.message
                if isinstance(message, Response):
                    route = self._routes.get(id(tx))
                    if route is not None:
                        self._send(message, *route)
                elif flow is not None and host is not None and port is not None:
                    self._send(message, host, port, flow)
                continue
            if isinstance(output, TimedOut):
                self.counts.timeout(tx.request.method)
            if entry is not None:
                self._client_output(entry, output, now)
            elif isinstance(output, TimedOut) and isinstance(tx, ServerInviteTransaction):
                leg = self._leg_of(tx)
                if leg is not None:
                    self._end(leg, "ack-timeout")
        if tx.terminated:
            self._untrack(tx)
            if entry is not None:
                del self._client[client_key(tx.request)]
            else:
                self._server.pop(server_key(tx.request), None)
                self._routes.pop(id(tx), None)
                self._incoming.pop(id(tx), None)
        else:
            self._track(tx)

    def _send(self, message: Request | Response, host: str, port: int, flow: Flow) -> None:
        if isinstance(message, Response):
            self.counts.response("out", message.cseq.method, message.status)
        else:
            self.counts.request("out", message.method)
        self._sends.append(Send(message.to_bytes(), host, port, flow))

    def _send_ack(self, leg: CallLeg, flow: Flow) -> None:
        self.counts.request("out", "ACK")
        self._sends.append(Send(leg.ack, *self._hop(leg), flow))

    def _send_on(self, tx: ServerTransaction, response: Response, flow: Flow, now: float) -> None:
        if id(tx) not in self._routes:
            self._routes[id(tx)] = self._response_route(tx.request, flow)
        self._run(tx, tx.send_response(response, now), flow, now)

    def _respond(self, request: Request, flow: Flow, status: int, now: float, *, reason: str | None = None,
                 extra: tuple[tuple[str, str], ...] = ()) -> None:  # fmt: skip
        """Answer a request through a new server transaction (which absorbs its retransmissions)."""
        tx: ServerTransaction
        if request.method == "INVITE":
            tx = ServerInviteTransaction(request, reliable=flow.reliable, timers=self.settings.timers)
        else:
            tx = ServerNonInviteTransaction(request, reliable=flow.reliable, timers=self.settings.timers)
        self._server[server_key(request)] = tx
        to_tag = self._token() if status > 100 else None
        self._send_on(tx, make_response(request, status, reason, to_tag=to_tag, extra=extra), flow, now)
        if status >= 300:
            self._events.append(MessageRejected(flow, status, reason or request.method))

    def _respond_stateless(self, request: Request, flow: Flow, status: int, reason: str) -> None:
        response = make_response(request, status, reason, to_tag=self._token())
        self._send(response, *self._response_route(request, flow))
        self._events.append(MessageRejected(flow, status, reason))

    def _reject_unparsable(self, data: bytes, flow: Flow, exc: ParseError) -> None:
        """Answer a broken request with its status when enough of it can be read to route a response."""
        headers = _salvage_headers(data)
        if headers is None:
            self._events.append(MessageRejected(flow, None, exc.reason))
            return
        request = Request("INVALID", "sip:invalid", headers)
        try:
            Message.validate(request)  # the headers a response echoes must be sound themselves
            self._stamp_via(request, flow)
        except ParseError:
            self._events.append(MessageRejected(flow, None, exc.reason))
            return
        self._respond_stateless(request, flow, exc.status, exc.reason)

    def _stamp_via(self, request: Request, flow: Flow) -> None:
        """Add received= and fill rport= in the top Via (RFC 3261 §18.2.1, RFC 3581 §4)."""
        via = request.top_via
        params = dict(via.params)
        source_host, source_port = flow.remote
        if bare_host(via.host) != source_host or "rport" in params:
            params["received"] = format_host(source_host) if ":" in source_host and via.host.startswith("[") \
                else source_host  # fmt: skip
        if "rport" in params:
            params["rport"] = str(source_port)
        if params == via.params:
            return
        stamped = type(via)(via.transport, via.host, via.port, params)
        first_line = request.headers.get("via") or ""
        values = split_outside_quotes(first_line, ",")
        values[0] = str(stamped)
        request.headers.set_first("via", ",".join(values))
        request._cache.pop("via", None)

    def _response_route(self, request: Request, flow: Flow) -> tuple[str, int, Flow]:
        """Where responses to ``request`` go: back over its connection, or per its (stamped) top Via
        (RFC 3261 §18.2.2, RFC 3581)."""
        if flow.reliable and flow.connection is not None:
            return flow.remote[0], flow.remote[1], flow
        via = request.top_via
        host = via.params.get("maddr") or via.params.get("received") or via.host
        rport = via.params.get("rport")
        return bare_host(host), int(rport) if rport else (via.port or 5060), flow

    def _end(self, leg: CallLeg, reason: str) -> None:
        if leg.state is LegState.ENDED:
            return
        leg.state = LegState.ENDED
        leg.retransmitter = None
        self._untrack(leg)
        if leg.dialog is not None:
            self._legs.pop(leg.dialog.id, None)
        if not leg.outgoing:  # max_calls bounds the calls that come in; ours are bounded by them
            self.active_calls -= 1
        self._events.append(CallEnded(leg, reason))

    def _sent_by(self, flow: Flow) -> str:
        host, port = flow.local
        return f"{format_host(host)}:{port}"

    def _contact(self, flow: Flow) -> str:
        transport = ";transport=tcp" if flow.transport == "tcp" else ""
        return f"<sip:ivrd@{self._sent_by(flow)}{transport}>"

    def _capabilities(self) -> tuple[tuple[str, str], ...]:
        return (("allow", ", ".join(self._allowed)), ("accept", "application/sdp, " + ", ".join(DTMF_TYPES)),
                ("server", self.settings.user_agent))  # fmt: skip


def _sipfrag_status(body: bytes) -> int | None:
    """The status code of a message/sipfrag body's status line (``SIP/2.0 200 OK``)."""
    first = body.split(b"\n", 1)[0].decode("utf-8", "replace").split()
    if len(first) >= 2 and first[0].upper() == "SIP/2.0" and first[1].isdigit() and len(first[1]) == 3:
        return int(first[1])
    return None


def _parse_dtmf(request: Request) -> tuple[str | None, int | None]:
    """The digit (and duration in ms) of an INFO body in application/dtmf-relay or application/dtmf."""
    text = request.body.decode("utf-8", "replace").strip()
    if not text:
        return None, None
    if request.content_type == "application/dtmf":
        signal, duration = text, None
    else:
        fields: dict[str, str] = {}
        for line in text.splitlines():
            name, _, value = line.partition("=")
            fields[name.strip().lower()] = value.strip()
        signal = fields.get("signal", "")
        duration_text = fields.get("duration", "")
        duration = int(duration_text) if duration_text.isdigit() and len(duration_text) < 7 else None
    signal = _DTMF_SIGNALS.get(signal, signal).upper()
    if len(signal) != 1 or signal not in "0123456789*#ABCD":
        raise ParseError(f"bad DTMF signal {signal[:10]!r}")
    return signal, duration


def _salvage_headers(data: bytes) -> Headers | None:
    """The Via, From, To, Call-ID and CSeq lines of an unparsable request, read leniently; None for a
    response or when they are not all there (then no response can be built)."""
    text = data[:8192].decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].startswith("SIP/") or " " not in lines[0]:
        return None
    wanted = {"via": "via", "v": "via", "from": "from", "f": "from", "to": "to", "t": "to",
              "call-id": "call-id", "i": "call-id", "cseq": "cseq"}  # fmt: skip
    headers = Headers()
    found: set[str] = set()
    for line in lines[1:]:
        if not line:
            break
        name, colon, value = line.partition(":")
        key = wanted.get(name.strip().lower())
        if colon and key and (key == "via" or key not in found) and not has_control_chars(value):
            headers.add(key, value.strip())
            found.add(key)
    return headers if found == {"via", "from", "to", "call-id", "cseq"} else None
