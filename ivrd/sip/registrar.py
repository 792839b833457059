"""Registrations (RFC 3261 §10.3), sans-IO: an address of record's contacts, each with its expiry."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ParseError
from .flow import Flow
from .message import Request

DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60
MAX_EXPIRES = 7200
MAX_CONTACTS = 5  # per address of record: a phone, a softphone, a spare


@dataclass(slots=True)
class Binding:
    contact: str  # the URI, as given
    expires_at: float
    call_id: str
    cseq: int
    flow: Flow | None = None  # where the REGISTER came from: a phone behind NAT is reached back there


class TooBrief(Exception):
    """423 Interval Too Brief: the answer carries Min-Expires."""


class Registrar:
    def __init__(self) -> None:
        self._bindings: dict[str, dict[str, Binding]] = {}  # user -> contact URI -> binding

    def contacts(self, user: str, now: float) -> list[Binding]:
        """The live bindings of ``user``, soonest to expire last."""
        live = [b for b in self._bindings.get(user, {}).values() if b.expires_at > now]
        return sorted(live, key=lambda b: -b.expires_at)

    def register(self, user: str, request: Request, now: float, flow: Flow | None = None) -> list[Binding]:
        """Apply a REGISTER that proved it is ``user``'s; the bindings after it (§10.3 steps 6-8)."""
        header = request.headers.get("expires")
        try:
            default = int(header) if header is not None else DEFAULT_EXPIRES
        except ValueError:
            raise ParseError("Expires is not a number", 400) from None
        current = self._bindings.setdefault(user, {})
        for uri, binding in list(current.items()):
            if binding.expires_at <= now:
                del current[uri]
        contacts = request.contacts
        if any(c.wildcard for c in contacts):
            if len(contacts) != 1 or default != 0:
                raise ParseError("Contact: * needs Expires: 0 and no other contact", 400)
            current.clear()
            return []
        call_id, cseq = request.call_id, request.cseq.number
        changes: list[tuple[str, int]] = []
        for contact in contacts:  # every check first: a refused REGISTER changes nothing
            try:
                expires = int(contact.params.get("expires") or default)
            except ValueError:
                raise ParseError("a Contact's expires is not a number", 400) from None
            uri = str(contact.uri)
            existing = current.get(uri)
            if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
                raise ParseError("CSeq not above the last REGISTER's", 400)  # an old request arriving late
            if 0 < expires < MIN_EXPIRES:
                raise TooBrief()
            changes.append((uri, expires))
        kept = {uri for uri, expires in changes if expires}
        if len(set(current) | kept) > MAX_CONTACTS:
            raise ParseError(f"more than {MAX_CONTACTS} contacts for one account", 403)
        for uri, expires in changes:
            if expires == 0:
                current.pop(uri, None)
            else:
                current[uri] = Binding(uri, now + min(expires, MAX_EXPIRES), call_id, cseq, flow)
        return self.contacts(user, now)
