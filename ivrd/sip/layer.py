"""The SIP transaction layer, sans-IO (RFC 3261 §17-18): bytes and ``now`` in; datagrams, events and one
deadline out.

It parses and validates what comes in, answers what cannot be parsed, stamps the top Via, matches
messages to their transactions (retransmissions are absorbed there), keeps every deadline on one
heap, and hands the transaction user (:mod:`~ivrd.sip.uas`, :mod:`~ivrd.sip.uac`, the registrar) only
what it must decide: a new request, or what a client transaction heard. Nothing here knows calls.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .build import make_response
from .counts import SipCounts
from .errors import ParseError
from .events import MessageRejected, Send, SipEvent
from .flow import SipFlow
from .message import COMPACT_FORMS, Headers, Request, Response, has_control_chars, parse_message
from .transaction import (
    ClientTransaction,
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
from .uri import bare_host, format_host

# The headers a response echoes, by every name they may come under: all a broken request needs to be answered.
_ECHOED = frozenset({"via", "from", "to", "call-id", "cseq"})


@dataclass(slots=True)
class _ClientEntry:
    """A request of ours in flight: where it goes, and who hears what comes back."""

    transaction: ClientTransaction
    flow: SipFlow
    host: str
    port: int
    on_output: Callable[[Output, float], None]


# A heap entry: (deadline, sequence, key, fire). The deadline it was pushed with is compared on pop to
# skip stale entries; the sequence, unique, keeps entries with one deadline in order (and the rest of the
# tuple from ever being compared).
_Timed = tuple[float, int, object, Callable[[float], None]]


class SipLayer:
    """See the module docstring."""

    def __init__(self, timers: Timers, max_message_bytes: int, new_token: Callable[[], str]) -> None:
        self.timers = timers
        self.max_message_bytes = max_message_bytes
        self.token = new_token
        self.counts = SipCounts()
        self._server: dict[ServerKey, ServerTransaction] = {}
        self._client: dict[tuple[str, str], _ClientEntry] = {}
        self._routes: dict[int, tuple[str, int, SipFlow]] = {}  # server transaction -> where its responses go
        self._heap: list[_Timed] = []
        self._pushed: dict[int, float] = {}
        self._seq = itertools.count()
        self._sends: list[Send] = []
        self._events: deque[SipEvent] = deque()

    # ---- what goes out ----------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[Send]:
        sends, self._sends = self._sends, []
        return sends

    def next_event(self) -> SipEvent | None:
        return self._events.popleft() if self._events else None

    def emit(self, happened: SipEvent) -> None:
        self._events.append(happened)

    # ---- timers -----------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        while self._heap:
            deadline, _, key, _ = self._heap[0]
            if self._pushed.get(id(key)) == deadline:
                return deadline
            heapq.heappop(self._heap)
        return None

    def handle_timer(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            deadline, _, key, fire = heapq.heappop(self._heap)
            if self._pushed.get(id(key)) != deadline:
                continue
            del self._pushed[id(key)]
            fire(now)

    def track(self, key: object, deadline: float | None, fire: Callable[[float], None]) -> None:
        """Call ``fire(now)`` at ``deadline`` (None: never); one deadline per ``key``, the last one set."""
        if deadline is None:
            self._pushed.pop(id(key), None)
            return
        if self._pushed.get(id(key)) != deadline:
            self._pushed[id(key)] = deadline
            heapq.heappush(self._heap, (deadline, next(self._seq), key, fire))

    def untrack(self, key: object) -> None:
        self._pushed.pop(id(key), None)

    # ---- what comes in ----------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, flow: SipFlow, now: float) -> Request | None:
        """Process one datagram (or one framed stream message); the request the transaction user must
        act on, or None when it was handled here (a response, a retransmission, garbage)."""
        try:
            message = parse_message(data, stream=flow.reliable, max_bytes=self.max_message_bytes)
            message.validate()
        except ParseError as exc:
            self.counts.unparsable += 1
            self._reject_unparsable(data, flow, exc)
            return None
        if isinstance(message, Response):
            self.counts.response("in", message.cseq.method, message.status)
            entry = self._client.get(client_key(message))
            if entry is not None:  # else a stray or a late retransmission (§18.1.2)
                tx = entry.transaction
                self._run(tx, tx.on_response(message, now), now)
            return None
        self.counts.request("in", message.method)
        self._stamp_via(message, flow)
        existing = self._server.get(server_key(message))
        if existing is None:
            return message
        if message.method == "ACK" and (existing.last_response is None or existing.last_response.status < 300):
            return message  # the ACK of a 2xx is end to end (§13.2.2.4): the dialog's, not the transaction's
        self._run(existing, existing.on_request(message, now), now)
        return None

    # ---- server transactions ----------------------------------------------------------------------

    def server_transaction(self, request: Request, method: str | None = None) -> ServerTransaction | None:
        """The server transaction ``request`` belongs to (``method``: the one it would have, as a CANCEL's
        INVITE)."""
        return self._server.get(server_key(request, method) if method else server_key(request))

    def open_server(self, request: Request, flow: SipFlow) -> ServerInviteTransaction | ServerNonInviteTransaction:
        """A server transaction for ``request``, absorbing its retransmissions from now on."""
        tx: ServerInviteTransaction | ServerNonInviteTransaction
        if request.method == "INVITE":
            tx = ServerInviteTransaction(request, reliable=flow.reliable, timers=self.timers)
        else:
            tx = ServerNonInviteTransaction(request, reliable=flow.reliable, timers=self.timers)
        self._server[server_key(request)] = tx
        return tx

    def accept_invite(self, tx: ServerInviteTransaction, flow: SipFlow, now: float) -> None:
        """``tx``'s INVITE is the transaction user's now: its 100 (Trying) follows unless the TU responds
        first (see :class:`ServerInviteTransaction`)."""
        self._routes[id(tx)] = self.response_route(tx.request, flow)
        self._run(tx, tx.start(now), now)

    def send_response(self, tx: ServerTransaction, response: Response, flow: SipFlow, now: float) -> None:
        if id(tx) not in self._routes:
            self._routes[id(tx)] = self.response_route(tx.request, flow)
        self._run(tx, tx.send_response(response, now), now)

    def route_of(self, tx: ServerTransaction) -> tuple[str, int, SipFlow]:
        """Where ``tx``'s responses go (set by its first response)."""
        return self._routes[id(tx)]

    def respond(self, request: Request, flow: SipFlow, status: int, now: float, *, reason: str | None = None,
                extra: tuple[tuple[str, str], ...] = (), report: bool = True) -> None:  # fmt: skip
        """Answer a request through a new server transaction (which absorbs its retransmissions); a
        failure is reported as :class:`MessageRejected` unless ``report`` is False (counted elsewhere)."""
        tx = self.open_server(request, flow)
        to_tag = self.token() if status > 100 else None
        self.send_response(tx, make_response(request, status, reason, to_tag=to_tag, extra=extra), flow, now)
        if status >= 300 and report:
            self.emit(MessageRejected(flow, status, reason or request.method))

    def respond_stateless(self, request: Request, flow: SipFlow, status: int, reason: str) -> None:
        response = make_response(request, status, reason, to_tag=self.token())
        self.send(response, *self.response_route(request, flow))
        self.emit(MessageRejected(flow, status, reason))

    def response_route(self, request: Request, flow: SipFlow) -> tuple[str, int, SipFlow]:
        """Where responses to ``request`` go: back over its connection, or per its (stamped) top Via
        (RFC 3261 §18.2.2, RFC 3581)."""
        if flow.reliable and flow.connection is not None:
            return flow.remote[0], flow.remote[1], flow
        via = request.top_via
        host = via.params.get("maddr") or via.params.get("received") or via.host
        rport = via.params.get("rport")
        return bare_host(host), int(rport) if rport else (via.port or 5060), flow

    # ---- client transactions ----------------------------------------------------------------------

    def start_client(self, tx: ClientTransaction, flow: SipFlow, host: str, port: int, *, now: float,
                     on_output: Callable[[Output, float], None]) -> None:  # fmt: skip
        """Send a request of ours through ``tx`` to ``host``:``port``; ``on_output(output, now)`` hears each
        response it delivers and its timeout."""
        self._client[client_key(tx.request)] = _ClientEntry(tx, flow, host, port, on_output)
        self._run(tx, tx.start(now), now)

    # ---- sending ----------------------------------------------------------------------------------

    def send(self, message: Request | Response, host: str, port: int, flow: SipFlow) -> None:
        if isinstance(message, Response):
            self.counts.response("out", message.cseq.method, message.status)
        else:
            self.counts.request("out", message.method)
        self._sends.append(Send(message.to_bytes(), host, port, flow))

    def send_ack(self, ack: bytes, host: str, port: int, flow: SipFlow) -> None:
        """An ACK of a 2xx (its own transaction, §17.1.1.3): sent again for each retransmission of the 2xx."""
        self.counts.request("out", "ACK")
        self._sends.append(Send(ack, host, port, flow))

    # ---- plumbing ---------------------------------------------------------------------------------

    def _run(self, tx: Transaction, outputs: list[Output], now: float) -> None:
        """Carry out a transaction's outputs, then track its deadline or forget it when it has ended."""
        entry = self._client.get(client_key(tx.request)) if isinstance(tx, ClientTransaction) else None
        for output in outputs:
            if isinstance(output, Transmit):
                message = output.message
                if isinstance(message, Response):
                    route = self._routes.get(id(tx))
                    if route is not None:
                        self.send(message, *route)
                elif entry is not None:
                    self.send(message, entry.host, entry.port, entry.flow)
                continue
            if isinstance(output, TimedOut):
                self.counts.timeout(tx.request.method)
            if entry is not None:  # a server transaction's timeout (H) follows a failure: its call has ended
                entry.on_output(output, now)
        if tx.terminated:
            self.untrack(tx)
            if entry is not None:
                del self._client[client_key(tx.request)]
            else:
                self._server.pop(server_key(tx.request), None)
                self._routes.pop(id(tx), None)
        else:
            self.track(tx, tx.deadline, partial(self._transaction_timer, tx))

    def _transaction_timer(self, tx: Transaction, now: float) -> None:
        self._run(tx, tx.on_timer(now), now)

    def _reject_unparsable(self, data: bytes, flow: SipFlow, exc: ParseError) -> None:
        """Answer a broken request with its status when enough of it can be read to route a response: a
        sound top Via (where it goes) and CSeq (what the client matches it by). From, To and Call-ID are
        echoed as they came, byte for byte, however broken (RFC 3261 §8.2.6.2)."""
        headers = _salvage_headers(data)
        if headers is None:
            self.emit(MessageRejected(flow, None, exc.reason))
            return
        request = Request("INVALID", "sip:invalid", headers)
        try:
            request.cseq  # noqa: B018 - parsing is the check
            self._stamp_via(request, flow)
        except ParseError:
            self.emit(MessageRejected(flow, None, exc.reason))
            return
        self.respond_stateless(request, flow, exc.status, exc.reason)

    @staticmethod
    def _stamp_via(request: Request, flow: SipFlow) -> None:
        """Add received= and fill rport= in the top Via (RFC 3261 §18.2.1, RFC 3581 §4)."""
        via = request.top_via
        params = dict(via.params)
        source_host, source_port = flow.remote
        if bare_host(via.host) != source_host or "rport" in params:
            params["received"] = format_host(source_host) if ":" in source_host and via.host.startswith("[") \
                else source_host  # fmt: skip
        if "rport" in params:
            params["rport"] = str(source_port)
        if params != via.params:
            request.replace_top_via(type(via)(via.transport, via.host, via.port, params))


def _salvage_headers(data: bytes) -> Headers | None:
    """The Via, From, To, Call-ID and CSeq lines of an unparsable request, read leniently (octets that
    are not UTF-8 kept as surrogates, so that they go back as they came); None for a response or when
    they are not all there (then no response can be built)."""
    text = data[:8192].decode("utf-8", "surrogateescape")
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].startswith("SIP/") or " " not in lines[0]:
        return None
    headers = Headers()
    found: set[str] = set()
    for line in lines[1:]:
        if not line:
            break
        name, colon, value = line.partition(":")
        key = name.strip().lower()
        key = COMPACT_FORMS.get(key, key)
        if colon and key in _ECHOED and (key == "via" or key not in found) and not has_control_chars(value):
            headers.add(key, value.strip())
            found.add(key)
    return headers if found == _ECHOED else None
