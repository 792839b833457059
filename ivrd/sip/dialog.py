"""Dialogs (RFC 3261 §12) on both sides, and the 2xx retransmission of §13.3.1.4."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import ParseError
from .message import Headers, Message, Request, Response
from .transaction import Timers
from .uri import NameAddr, Uri, parse_name_addr

DialogId = tuple[str, str, str]  # Call-ID, local tag, remote tag


def dialog_id_of_request(request: Request) -> DialogId:
    """The id of the dialog an incoming in-dialog request belongs to (our tag is in To)."""
    return (request.call_id, request.to.tag or "", request.from_.tag or "")


def record_route(message: Message) -> list[NameAddr]:
    """The Record-Route set of ``message``, parsed: :class:`ParseError` (400) when a value would not do
    as a Route later. Checked when the message comes, never first when a request of ours needs it."""
    try:
        routes = [parse_name_addr(value, what="Record-Route") for value in message.headers.values("record-route")]
    except ParseError as exc:
        raise ParseError(f"Record-Route: {exc.reason}", exc.status) from None
    if any(route.wildcard for route in routes):
        raise ParseError("Record-Route: * is not a route")
    return routes


def remote_target(message: Message) -> Uri | None:
    """The Contact URI a dialog's requests would go to (None: no Contact); :class:`ParseError` when bad."""
    try:
        contacts = message.contacts
    except ParseError as exc:
        raise ParseError(f"Contact: {exc.reason}", exc.status) from None
    if any(contact.wildcard for contact in contacts):
        raise ParseError("Contact: * is for REGISTER only")
    return contacts[0].uri if contacts else None


@dataclass(slots=True)
class Dialog:
    """One dialog: identity, the route set, the remote target and both CSeq spaces."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # the value our requests put in From (the INVITE's To, with our tag)
    remote_uri: str  # the value our requests put in To (the INVITE's From)
    remote_target: Uri
    route_set: list[NameAddr] = field(default_factory=list)
    local_cseq: int = 1
    remote_cseq: int = 0

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uas(cls, invite: Request, local_tag: str) -> Dialog:
        """The dialog a UAS creates when it answers ``invite`` (§12.1.1)."""
        # An RFC 2543 INVITE may lack Contact: then the caller is reached at its From URI.
        target = remote_target(invite) or invite.from_.uri
        to_value = invite.headers.get("to") or ""
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_.tag or "",
            local_uri=f"{to_value};tag={local_tag}" if invite.to.tag is None else to_value,
            remote_uri=invite.headers.get("from") or "",
            remote_target=target,
            route_set=record_route(invite),
            remote_cseq=invite.cseq.number,
        )

    @classmethod
    def as_uac(cls, invite: Request, response: Response) -> Dialog:
        """The dialog a 2xx to our ``invite`` creates (§12.1.2): the route set is the Record-Route reversed.
        :class:`ParseError` when its Contact or Record-Route would not do."""
        return cls(
            call_id=invite.call_id,
            local_tag=invite.from_.tag or "",
            remote_tag=response.to.tag or "",
            local_uri=invite.headers.get("from") or "",
            remote_uri=response.headers.get("to") or "",
            remote_target=remote_target(response) or invite.request_uri,
            route_set=list(reversed(record_route(response))),
            local_cseq=invite.cseq.number,
        )

    def accept_remote_cseq(self, request: Request) -> bool:
        """§12.2.2: a request with a CSeq lower than the last one is out of order (answered 500)."""
        number = request.cseq.number
        if request.method not in ("ACK", "CANCEL") and number <= self.remote_cseq:
            return False
        self.remote_cseq = max(self.remote_cseq, number)
        return True

    def target_refresh(self, request: Request) -> None:
        """A re-INVITE's Contact replaces the remote target (§12.2.2)."""
        target = remote_target(request)
        if target is not None:
            self.remote_target = target

    def next_hop(self) -> Uri:
        """The URI the next request is sent towards: the first route, or the remote target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def new_request(self, method: str, via: str, *, contact: str | None = None, body: bytes = b"",
                    extra: tuple[tuple[str, str], ...] = (), cseq: int | None = None) -> Request:  # fmt: skip
        """A request within the dialog (§12.2.1.1), loose or strict routing as the route set says.
        ``cseq`` is for the ACK of a 2xx, which repeats its INVITE's number (§13.2.2.4)."""
        if cseq is None:
            self.local_cseq += 1
        routes = [str(route) for route in self.route_set]
        uri = self.remote_target
        if routes and "lr" not in self.route_set[0].uri.params:
            uri = self.route_set[0].uri  # strict router: it takes the R-URI
            routes = [*routes[1:], f"<{self.remote_target}>"]
        if uri.headers is not None:  # a Request-URI carries none (§19.1.5: they are for building the request)
            uri = replace(uri, headers=None)
        headers = Headers()
        headers.add("via", via)
        headers.add("max-forwards", "70")
        headers.add("from", self.local_uri)
        headers.add("to", self.remote_uri)
        headers.add("call-id", self.call_id)
        headers.add("cseq", f"{self.local_cseq if cseq is None else cseq} {method}")
        for route in routes:
            headers.add("route", route)
        if contact is not None:
            headers.add("contact", contact)
        for name, value in extra:
            headers.add(name, value)
        return Request(method, str(uri), headers, body)


class AnswerRetransmitter:
    """Retransmits a 2xx to INVITE until the ACK arrives (§13.3.1.4): T1, doubling to T2, for 64*T1.

    On a reliable transport nothing is retransmitted but the ACK is still awaited for 64*T1.
    """

    def __init__(self, response: Response, now: float, *, reliable: bool, timers: Timers) -> None:
        self.response = response
        self._timers = timers
        self._reliable = reliable
        self._interval = timers.t1
        self._give_up = now + 64 * timers.t1
        self._next: float | None = None if reliable else now + timers.t1

    @property
    def deadline(self) -> float:
        return self._next if self._next is not None else self._give_up

    def on_timer(self, now: float) -> str | None:
        """``"retransmit"`` (send :attr:`response` again), ``"give_up"`` (no ACK came) or None."""
        if now >= self._give_up:
            return "give_up"
        if self._next is not None and now >= self._next:
            self._interval = min(2 * self._interval, self._timers.t2)
            self._next = now + self._interval
            if self._next >= self._give_up:
                self._next = None
            return "retransmit"
        return None
