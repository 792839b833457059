"""Digest authentication for REGISTER (RFC 3261 §22, RFC 7616 computation, RFC 8760 SHA-256), sans-IO.

Nonces carry their own issue time and an HMAC over it with a per-process secret, so no nonce
table is needed to know whether one is ours and fresh; the highest ``nc`` seen per nonce is kept
(bounded, expiring with the nonces) so a captured request cannot be replayed. An unknown user and
a wrong password fail the same way (no account enumeration); the reason is only for the log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

ALGORITHMS = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}
MAX_TRACKED_NONCES = 100_000
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class AuthResult:
    """``user`` when the request proved it; else ``reason`` (for the security log) and ``stale``."""

    user: str | None
    reason: str = ""
    stale: bool = False


def parse_digest(value: str) -> dict[str, str] | None:
    """The parameters of a ``Digest`` credentials value, unquoted; None when it is not one."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            return None
        name, raw = match.group(1).lower(), match.group(2)
        if name in params:
            return None  # a parameter twice: refuse rather than guess which one counts
        params[name] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        position = match.end()
    return params


def _h(algorithm: str, text: str) -> str:
    return ALGORITHMS[algorithm](text.encode()).hexdigest()


def digest_response(algorithm: str, *, user: str, realm: str, password: str, method: str, uri: str,
                    nonce: str, nc: str = "", cnonce: str = "", qop: str = "") -> str:  # fmt: skip
    """The ``response`` a client computes (RFC 7616 §3.4.1; qop=auth or none)."""
    ha1 = _h(algorithm, f"{user}:{realm}:{password}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop:
        return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{ha2}")


class DigestAuth:
    def __init__(self, realm: str, secret: bytes, *, nonce_ttl: float = 300.0,
                 algorithms: tuple[str, ...] = tuple(ALGORITHMS)) -> None:  # fmt: skip
        self.realm = realm
        self.algorithms = algorithms
        self._secret = secret
        self.nonce_ttl = nonce_ttl
        self._counts: OrderedDict[str, int] = OrderedDict()  # nonce -> highest nc seen

    def challenges(self, now: float, *, stale: bool = False) -> list[str]:
        """WWW-Authenticate values, one per algorithm in the order of preference (RFC 8760 §2.4)."""
        nonce = self._nonce(now)
        extra = ", stale=true" if stale else ""
        return [f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={name}, qop="auth"{extra}'
                for name in self.algorithms]  # fmt: skip

    def _nonce(self, now: float) -> str:
        stamp = struct.pack(">d", now)
        mac = hmac.new(self._secret, stamp + self.realm.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(stamp + mac).decode().rstrip("=")

    def _nonce_time(self, nonce: str) -> float | None:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != 24:
            return None
        stamp, mac = raw[:8], raw[8:]
        expected = hmac.new(self._secret, stamp + self.realm.encode(), hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            return None
        issued: float = struct.unpack(">d", stamp)[0]
        return issued

    def verify(self, method: str, value: str, now: float, password_of: Callable[[str], str | None]) -> AuthResult:
        """Check an Authorization value for a request with ``method``."""
        params = parse_digest(value)
        if params is None:
            return AuthResult(None, "malformed credentials")
        user, nonce, uri, response = (params.get(k, "") for k in ("username", "nonce", "uri", "response"))
        algorithm = params.get("algorithm", "MD5").upper()
        qop, nc, cnonce = params.get("qop", ""), params.get("nc", ""), params.get("cnonce", "")
        if not (user and nonce and uri and response) or params.get("realm") != self.realm:
            return AuthResult(None, "malformed credentials")
        if algorithm not in self.algorithms:
            return AuthResult(None, f"unsupported algorithm {algorithm}")
        if qop and (qop != "auth" or not cnonce or not re.fullmatch(r"[0-9a-fA-F]{8}", nc)):
            return AuthResult(None, "malformed credentials")
        issued = self._nonce_time(nonce)
        if issued is None:
            return AuthResult(None, "unknown nonce")
        password = password_of(user)
        expected = digest_response(algorithm, user=user, realm=self.realm, password=password or "", method=method,
                                   uri=uri, nonce=nonce, nc=nc, cnonce=cnonce, qop=qop)  # fmt: skip
        if password is None or not hmac.compare_digest(expected, response.lower()):
            return AuthResult(None, "unknown user" if password is None else "wrong password")
        if not 0 <= now - issued <= self.nonce_ttl:
            return AuthResult(None, "stale nonce", stale=True)  # the right password: a fresh nonce will do
        count = int(nc, 16) if nc else 0
        seen = self._counts.get(nonce)
        if seen is not None and (not qop or count <= seen):  # without qop a nonce is good for one request
            return AuthResult(None, "replayed nonce count")
        self._remember(nonce, count, now)
        return AuthResult(user)

    def _remember(self, nonce: str, count: int, now: float) -> None:
        self._counts[nonce] = count
        self._counts.move_to_end(nonce)
        while len(self._counts) > MAX_TRACKED_NONCES:
            self._counts.popitem(last=False)  # the oldest: expired long before this many came
