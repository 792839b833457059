"""The four RFC 3261 §17 transaction state machines (with the RFC 6026 Accepted state), sans-IO.

A transaction never reads a clock: every input carries ``now`` and the transaction exposes its
next :attr:`Transaction.deadline`; the owner calls :meth:`Transaction.on_timer` when it passes.
Each machine is a table from ``(state, input)`` to a handler; an input the table does not list
for the current state is absorbed, which is exactly what §17 asks for retransmissions and strays.
Outputs are :class:`Transmit` (send this message), :class:`Deliver` (hand this response to the
transaction user) and :class:`TimedOut`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .build import make_ack_for_failure, make_response
from .message import Request, Response


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Timers:
    """T1 (RTT estimate), T2 (max non-INVITE retransmit interval), T4 (max network lifetime), seconds."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


TRYING_AFTER = 0.2  # seconds an INVITE's 100 (Trying) waits for the transaction user's own response (§17.2.1)


@dataclass(frozen=True, slots=True)
class Transmit:
    message: Request | Response


@dataclass(frozen=True, slots=True)
class Deliver:
    response: Response


@dataclass(frozen=True, slots=True)
class TimedOut:
    timer: str


Output = Transmit | Deliver | TimedOut
ServerKey = tuple[str | int | None, ...]


def server_key(request: Request, method: str | None = None) -> ServerKey:
    """The §17.2.3 key matching a request to a server transaction (ACK matches its INVITE).

    With an RFC 3261 branch: branch, sent-by and method, and the Call-ID too: a retransmission
    always repeats it, and with it a peer that reuses branches across calls cannot get another
    call's answer. Without a branch cookie (RFC 2543 peers): Request-URI, From tag, Call-ID,
    CSeq number and the whole top Via. ``method`` overrides the request's own, which is how a
    CANCEL finds the INVITE it cancels.
    """
    via = request.top_via
    method = method or ("INVITE" if request.method == "ACK" else request.method)
    if via.rfc3261_branch:
        return (via.branch, via.sent_by.lower(), method, request.call_id)
    return ("rfc2543", request.uri, request.from_.tag, request.call_id, request.cseq.number, str(via), method)


def client_key(message: Request | Response) -> tuple[str, str]:
    """The §17.1.3 key matching a response to a client transaction: top Via branch and CSeq method."""
    return (message.top_via.branch or "", message.cseq.method)


def _status_class(response: Response) -> str:
    if response.status < 200:
        return "1xx"
    return "2xx" if response.status < 300 else "final"


# ``Any`` for the transaction: each table holds the handlers of its own subclass.
Handler = Callable[[Any, float, Request | Response | None], list[Output]]


Table = dict[tuple[State, str], Handler]


class Transaction:
    """State, timers (name -> absolute deadline) and the table of one transaction kind."""

    def __init__(self, request: Request, *, reliable: bool, timers: Timers, state: State) -> None:
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.state = state
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}

    @property
    def deadline(self) -> float | None:
        return min(self._deadlines.values()) if self._deadlines else None

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def _table(self) -> Table:
        """This kind's table (module-level, after its class: a compiled class body cannot hold its methods)."""
        raise NotImplementedError

    def _dispatch(self, event: str, now: float, message: Request | Response | None = None) -> list[Output]:
        handler = self._table().get((self.state, event))
        return handler(self, now, message) if handler is not None else []

    def on_timer(self, now: float) -> list[Output]:
        """Fire every timer whose deadline is at or before ``now``, earliest first."""
        out: list[Output] = []
        while self._deadlines:
            name, at = min(self._deadlines.items(), key=lambda item: item[1])
            if at > now:
                break
            del self._deadlines[name]
            out.extend(self._dispatch(f"timer_{name}", now))
        return out

    def _start(self, name: str, now: float, interval: float) -> None:
        self._intervals[name] = interval
        self._deadlines[name] = now + interval

    def _stop(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _wait(self, name: str, now: float, unreliable_interval: float) -> None:
        """Start a wait timer (D, I, J, K): zero on a reliable transport."""
        self._start(name, now, 0.0 if self.reliable else unreliable_interval)

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self._deadlines.clear()

    def _end(self, now: float, _: Request | Response | None) -> list[Output]:
        self._terminate()
        return []


class _ServerBase(Transaction):
    """What both server transactions share: the last response, repeated to retransmitted requests."""

    def __init__(self, request: Request, *, reliable: bool, timers: Timers, state: State) -> None:
        super().__init__(request, reliable=reliable, timers=timers, state=state)
        self.last_response: Response | None = None

    def _resend_last(self, now: float, _: Request | Response | None) -> list[Output]:
        return [Transmit(self.last_response)] if self.last_response is not None else []


class ClientInviteTransaction(Transaction):
    """§17.1.1, with the Accepted state of RFC 6026 (2xx retransmissions go to the TU)."""

    def __init__(self, request: Request, *, reliable: bool, timers: Timers = Timers()) -> None:
        super().__init__(request, reliable=reliable, timers=timers, state=State.CALLING)

    def start(self, now: float) -> list[Output]:
        if not self.reliable:
            self._start("A", now, self.timers.t1)
        self._start("B", now, 64 * self.timers.t1)
        return [Transmit(self.request)]

    def on_response(self, response: Response, now: float) -> list[Output]:
        return self._dispatch(_status_class(response), now, response)

    def _provisional(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        self.state = State.PROCEEDING
        self._stop("A", "B")
        return [Deliver(response)]

    def _success(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        self.state = State.ACCEPTED
        self._deadlines.clear()
        self._start("M", now, 64 * self.timers.t1)
        return [Deliver(response)]

    def _pass_up(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        return [Deliver(response)]

    def _failure(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        self.state = State.COMPLETED
        self._deadlines.clear()
        self._wait("D", now, 32.0)
        return [Transmit(make_ack_for_failure(self.request, response)), Deliver(response)]

    def _reack(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        return [Transmit(make_ack_for_failure(self.request, response))]

    def _retransmit(self, now: float, _: Request | Response | None) -> list[Output]:
        self._start("A", now, 2 * self._intervals["A"])
        return [Transmit(self.request)]

    def _timeout(self, now: float, _: Request | Response | None) -> list[Output]:
        self._terminate()
        return [TimedOut("B")]

    def _table(self) -> Table:
        return _CLIENT_INVITE


_CLIENT_INVITE: Table = {
    (State.CALLING, "1xx"): ClientInviteTransaction._provisional,
    (State.PROCEEDING, "1xx"): ClientInviteTransaction._pass_up,
    (State.CALLING, "2xx"): ClientInviteTransaction._success,
    (State.PROCEEDING, "2xx"): ClientInviteTransaction._success,
    (State.ACCEPTED, "2xx"): ClientInviteTransaction._pass_up,
    (State.CALLING, "final"): ClientInviteTransaction._failure,
    (State.PROCEEDING, "final"): ClientInviteTransaction._failure,
    (State.COMPLETED, "final"): ClientInviteTransaction._reack,
    (State.CALLING, "timer_A"): ClientInviteTransaction._retransmit,
    (State.CALLING, "timer_B"): ClientInviteTransaction._timeout,
    (State.COMPLETED, "timer_D"): Transaction._end,
    (State.ACCEPTED, "timer_M"): Transaction._end,
}


class ClientNonInviteTransaction(Transaction):
    """§17.1.2: Timer E retransmits (doubling up to T2), F times out, K absorbs late responses."""

    def __init__(self, request: Request, *, reliable: bool, timers: Timers = Timers()) -> None:
        super().__init__(request, reliable=reliable, timers=timers, state=State.TRYING)

    def start(self, now: float) -> list[Output]:
        if not self.reliable:
            self._start("E", now, self.timers.t1)
        self._start("F", now, 64 * self.timers.t1)
        return [Transmit(self.request)]

    def on_response(self, response: Response, now: float) -> list[Output]:
        return self._dispatch("1xx" if response.status < 200 else "final", now, response)

    def _provisional(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        self.state = State.PROCEEDING
        return [Deliver(response)]

    def _final(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        self.state = State.COMPLETED
        self._deadlines.clear()
        self._wait("K", now, self.timers.t4)
        return [Deliver(response)]

    def _retransmit(self, now: float, _: Request | Response | None) -> list[Output]:
        interval = self.timers.t2 if self.state is State.PROCEEDING else 2 * self._intervals["E"]
        self._start("E", now, min(interval, self.timers.t2))
        return [Transmit(self.request)]

    def _timeout(self, now: float, _: Request | Response | None) -> list[Output]:
        self._terminate()
        return [TimedOut("F")]

    def _table(self) -> Table:
        return _CLIENT_NON_INVITE


_CLIENT_NON_INVITE: Table = {
    (State.TRYING, "1xx"): ClientNonInviteTransaction._provisional,
    (State.PROCEEDING, "1xx"): ClientNonInviteTransaction._provisional,
    (State.TRYING, "final"): ClientNonInviteTransaction._final,
    (State.PROCEEDING, "final"): ClientNonInviteTransaction._final,
    (State.TRYING, "timer_E"): ClientNonInviteTransaction._retransmit,
    (State.PROCEEDING, "timer_E"): ClientNonInviteTransaction._retransmit,
    (State.TRYING, "timer_F"): ClientNonInviteTransaction._timeout,
    (State.PROCEEDING, "timer_F"): ClientNonInviteTransaction._timeout,
    (State.COMPLETED, "timer_K"): Transaction._end,
}


class ServerInviteTransaction(_ServerBase):
    """§17.2.1 with RFC 6026: G retransmits a failure until ACK, H gives up, I and L absorb strays.

    The 100 (Trying) waits for :data:`TRYING_AFTER`: a response of the transaction user's before then
    makes it needless (§17.2.1 lets the server leave it out when the TU answers within 200 ms, as an IVR
    that answers at once does), and a retransmitted INVITE before then gets it at once."""

    def __init__(self, request: Request, *, reliable: bool, timers: Timers = Timers()) -> None:
        super().__init__(request, reliable=reliable, timers=timers, state=State.PROCEEDING)

    def start(self, now: float) -> list[Output]:
        """The INVITE is the transaction user's from ``now``: the 100 goes unless it responds in time."""
        self._start("trying", now, TRYING_AFTER)
        return []

    def on_request(self, request: Request, now: float) -> list[Output]:
        """A retransmitted INVITE or an ACK matched to this transaction."""
        return self._dispatch("ack" if request.method == "ACK" else "request", now, request)

    def send_response(self, response: Response, now: float) -> list[Output]:
        return self._dispatch(f"send_{_status_class(response)}", now, response)

    def _trying(self, now: float, _: Request | Response | None) -> list[Output]:
        """The 100 when nothing was sent yet (its timer, or a retransmission first); else the last response."""
        self._stop("trying")
        if self.last_response is None:
            self.last_response = make_response(self.request, 100)
        return [Transmit(self.last_response)]

    def _send_provisional(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        self._stop("trying")
        self.last_response = response
        return [Transmit(response)]

    def _send_success(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        self._stop("trying")
        self.last_response = response
        self.state = State.ACCEPTED
        self._start("L", now, 64 * self.timers.t1)
        return [Transmit(response)]

    def _send_again(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        return [Transmit(response)]

    def _send_failure(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        self._stop("trying")
        self.last_response = response
        self.state = State.COMPLETED
        if not self.reliable:
            self._start("G", now, self.timers.t1)
        self._start("H", now, 64 * self.timers.t1)
        return [Transmit(response)]

    def _ack(self, now: float, _: Request | Response | None) -> list[Output]:
        self.state = State.CONFIRMED
        self._stop("G", "H")
        self._wait("I", now, self.timers.t4)
        return []

    def _retransmit_failure(self, now: float, _: Request | Response | None) -> list[Output]:
        self._start("G", now, min(2 * self._intervals["G"], self.timers.t2))
        return self._resend_last(now, None)

    def _timeout(self, now: float, _: Request | Response | None) -> list[Output]:
        self._terminate()
        return [TimedOut("H")]

    def _table(self) -> Table:
        return _SERVER_INVITE


_SERVER_INVITE: Table = {
    (State.PROCEEDING, "request"): ServerInviteTransaction._trying,
    (State.PROCEEDING, "timer_trying"): ServerInviteTransaction._trying,
    (State.PROCEEDING, "send_1xx"): ServerInviteTransaction._send_provisional,
    (State.PROCEEDING, "send_2xx"): ServerInviteTransaction._send_success,
    (State.PROCEEDING, "send_final"): ServerInviteTransaction._send_failure,
    (State.ACCEPTED, "send_2xx"): ServerInviteTransaction._send_again,
    (State.COMPLETED, "request"): _ServerBase._resend_last,
    (State.COMPLETED, "ack"): ServerInviteTransaction._ack,
    (State.COMPLETED, "timer_G"): ServerInviteTransaction._retransmit_failure,
    (State.COMPLETED, "timer_H"): ServerInviteTransaction._timeout,
    (State.CONFIRMED, "timer_I"): Transaction._end,
    (State.ACCEPTED, "timer_L"): Transaction._end,
}


class ServerNonInviteTransaction(_ServerBase):
    """§17.2.2: retransmitted requests get the last response again until Timer J ends it."""

    def __init__(self, request: Request, *, reliable: bool, timers: Timers = Timers()) -> None:
        super().__init__(request, reliable=reliable, timers=timers, state=State.TRYING)

    def on_request(self, request: Request, now: float) -> list[Output]:
        return self._dispatch("request", now, request)

    def send_response(self, response: Response, now: float) -> list[Output]:
        return self._dispatch("send_1xx" if response.status < 200 else "send_final", now, response)

    def _send_provisional(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        self.last_response = response
        self.state = State.PROCEEDING
        return [Transmit(response)]

    def _send_final(self, now: float, response: Request | Response | None) -> list[Output]:
        assert isinstance(response, Response)
        self.last_response = response
        self.state = State.COMPLETED
        self._wait("J", now, 64 * self.timers.t1)
        return [Transmit(response)]

    def _table(self) -> Table:
        return _SERVER_NON_INVITE


_SERVER_NON_INVITE: Table = {
    (State.TRYING, "send_1xx"): ServerNonInviteTransaction._send_provisional,
    (State.TRYING, "send_final"): ServerNonInviteTransaction._send_final,
    (State.PROCEEDING, "request"): _ServerBase._resend_last,
    (State.PROCEEDING, "send_1xx"): ServerNonInviteTransaction._send_provisional,
    (State.PROCEEDING, "send_final"): ServerNonInviteTransaction._send_final,
    (State.COMPLETED, "request"): _ServerBase._resend_last,
    (State.COMPLETED, "timer_J"): Transaction._end,
}


ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
