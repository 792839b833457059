"""Registrations (RFC 3261 §10.3), sans-IO: REGISTER proven by digest, and an address of record's
contacts, each with its expiry."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .auth import DigestAuth, parse_digest
from .errors import ParseError
from .events import AuthFailed, Registered
from .flow import SipFlow
from .layer import SipLayer
from .limits import RateLimiter, SourceList
from .message import Request
from .settings import UaSettings
from .uri import parse_name_addr

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
    flow: SipFlow | None = None  # where the REGISTER came from: a phone behind NAT is reached back there
    path: tuple[str, ...] = ()  # the proxies between (RFC 3327): a call to the phone goes back through them


class TooBrief(Exception):
    """423 Interval Too Brief: the answer carries Min-Expires."""


class Registrar:
    def __init__(self) -> None:
        self._bindings: dict[str, dict[str, Binding]] = {}  # user -> contact URI -> binding

    def contacts(self, user: str, now: float) -> list[Binding]:
        """The live bindings of ``user``, soonest to expire last."""
        live = [b for b in self._bindings.get(user, {}).values() if b.expires_at > now]
        return sorted(live, key=lambda b: -b.expires_at)

    def register(self, user: str, request: Request, now: float, flow: SipFlow | None = None) -> list[Binding]:
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
        path = registration_path(request)
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
                current[uri] = Binding(uri, now + min(expires, MAX_EXPIRES), call_id, cseq, flow, path)
        return self.contacts(user, now)


def registration_path(request: Request) -> tuple[str, ...]:
    """The Path of a REGISTER (RFC 3327), each a route to the phone; :class:`ParseError` (400) if broken."""
    path = tuple(str(parse_name_addr(value, what="Path")) for value in request.headers.values("path"))
    if any(p == "*" for p in path):
        raise ParseError("Path: * is not a route", 400)
    return path


class Registration:
    """REGISTER from the configured accounts (``settings.accounts``): challenged with digest (every
    algorithm offered, an unknown user and a wrong password alike), proven, then bound. Each failed proof
    is an :class:`AuthFailed` event: one log line each, for fail2ban."""

    def __init__(self, settings: UaSettings, layer: SipLayer, limit: RateLimiter, trusted: SourceList) -> None:
        self.settings = settings
        self._layer = layer
        self._limit = limit
        self._trusted = trusted
        self.bindings = Registrar()
        self.auth = DigestAuth(settings.realm, secrets.token_bytes(32), algorithms=settings.digest_algorithms)

    def receive(self, request: Request, flow: SipFlow, now: float) -> None:
        layer = self._layer
        source = flow.remote[0]
        if source not in self._trusted and not self._limit.allow(source, now):
            layer.respond(request, flow, 503, now, extra=(("retry-after", "1"),))
            return
        credentials = request.headers.get("authorization")
        if credentials is None:
            self._challenge(request, flow, now)
            return
        result = self.auth.verify("REGISTER", credentials, now, self.settings.accounts.get)
        claimed = (parse_digest(credentials) or {}).get("username", "")
        if result.user is None:
            if not result.stale:
                layer.emit(AuthFailed(flow, claimed, result.reason))
            self._challenge(request, flow, now, stale=result.stale)
            return
        if request.to.uri.user != result.user:  # an account registers its own address, no one else's
            layer.emit(AuthFailed(flow, result.user, f"registering {request.to.uri.user!r}"))
            layer.respond(request, flow, 403, now)
            return
        try:
            bindings = self.bindings.register(result.user, request, now, flow)
        except TooBrief:
            layer.respond(request, flow, 423, now, extra=(("min-expires", str(MIN_EXPIRES)),))
            return
        except ParseError as exc:
            layer.respond(request, flow, exc.status, now, reason=exc.reason)
            return
        contacts = tuple(("contact", f"<{b.contact}>;expires={max(0, int(b.expires_at - now))}") for b in bindings)
        path = tuple(("path", p) for p in request.headers.values("path"))  # echoed (RFC 3327 §5.3)
        layer.respond(request, flow, 200, now, extra=contacts + path)
        layer.emit(Registered(result.user, tuple(b.contact for b in bindings), flow))

    def _challenge(self, request: Request, flow: SipFlow, now: float, *, stale: bool = False) -> None:
        """401 with a challenge per algorithm (unknown user and wrong password look the same)."""
        challenges = self.auth.challenges(now, stale=stale)
        self._layer.respond(request, flow, 401, now, extra=tuple(("www-authenticate", c) for c in challenges))
