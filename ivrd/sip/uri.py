"""SIP URIs, name-addr values (From, To, Contact, Route) and Via values (RFC 3261 §19, §20, §25).

Every parser here raises :class:`~ivrd.sip.errors.ParseError` and nothing else.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .errors import ParseError

MAX_URI_LENGTH = 1024

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?\Z")
# Characters that never appear unescaped in a URI; their presence means the value is not one URI.
_URI_FORBIDDEN = re.compile(r'[\s<>"{}|\\^`\x00-\x1f\x7f]')
_LWS = " \t"
_BAD_PARAM_VALUE = re.compile(r'[\s,<>"]')

Params = dict[str, str | None]


def is_token(text: str) -> bool:
    """True when ``text`` is an RFC 3261 token (methods, parameter names, tags)."""
    return _TOKEN.match(text) is not None


def parse_host(text: str) -> str:
    """Validate a host (hostname, IPv4 address or bracketed IPv6 reference) and return it unchanged."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise ParseError(f"unterminated IPv6 reference {text!r}")
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise ParseError(f"bad IPv6 reference {text!r}") from None
        return text
    if not text or _HOSTNAME.match(text) is None:
        raise ParseError(f"bad host {text!r}")
    return text


def split_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` into a validated host and an optional port (1-65535)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ParseError(f"bad host {text!r}")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_raw = text.partition(":")
        port_text = port_text_raw if sep else None
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or len(port_text) > 5 or not 0 < int(port_text) < 65536:
            raise ParseError(f"bad port in {text!r}")
        port = int(port_text)
    return parse_host(host), port


def bare_host(host: str) -> str:
    """A host without IPv6 brackets, as a socket address wants it."""
    return host[1:-1] if host.startswith("[") else host


def format_host(host: str) -> str:
    """A host as written in SIP: IPv6 addresses get their brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it stands outside quoted strings and angle brackets."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    quoted = False
    angle = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle += 1
        elif ch == ">":
            angle = max(0, angle - 1)
        elif ch == sep and angle == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise ParseError("unterminated quoted string")
    parts.append(text[start:])
    return parts


def parse_params(text: str, *, what: str) -> Params:
    """Parse ``;name[=value]`` pairs (``text`` starts after the first ``;``), allowing LWS around ``;``/``=``."""
    params: Params = {}
    for item in split_outside_quotes(text, ";"):
        name, eq, value = item.partition("=")
        name = name.strip(_LWS)
        if not is_token(name):
            raise ParseError(f"bad parameter {item.strip()!r} in {what}")
        if eq:
            value = value.strip(_LWS)
            if not value:
                raise ParseError(f"empty value for parameter {name!r} in {what}")
            if value.startswith('"'):
                if len(value) < 2 or not value.endswith('"'):
                    raise ParseError(f"bad quoted value for {name!r} in {what}")
            elif _BAD_PARAM_VALUE.search(value):
                raise ParseError(f"bad value for parameter {name!r} in {what}")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


@dataclass(frozen=True, slots=True)
class Uri:
    """A URI. For ``sip``/``sips`` the parts are split out; other schemes keep only ``opaque``."""

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = field(default_factory=dict)
    headers: str | None = None
    opaque: str | None = None

    @property
    def is_sip(self) -> bool:
        return self.scheme in ("sip", "sips")

    @property
    def transport(self) -> str:
        """The transport the URI asks for (``udp`` when it does not say; ``tls`` for sips)."""
        value = self.params.get("transport")
        if value:
            return value.lower()
        return "tls" if self.scheme == "sips" else "udp"

    def __str__(self) -> str:
        if not self.is_sip:
            return f"{self.scheme}:{self.opaque}"
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        headers = f"?{self.headers}" if self.headers is not None else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{format_params(self.params)}{headers}"


def parse_uri(text: str) -> Uri:
    """Parse any URI; sip/sips URIs are checked against the RFC 3261 grammar."""
    if len(text) > MAX_URI_LENGTH:
        raise ParseError(f"URI longer than {MAX_URI_LENGTH} characters", 414)
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME.match(scheme) is None:
        raise ParseError(f"bad URI {text!r}")
    if _URI_FORBIDDEN.search(rest) or not rest:
        raise ParseError(f"bad characters in URI {text!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        return Uri(scheme=scheme, opaque=rest)
    user: str | None = None
    password: str | None = None
    # "@" cannot stand unescaped after the userinfo, while "?" may stand inside it (user-unreserved).
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, pcolon, pw = userinfo.partition(":")
        if not user:
            raise ParseError(f"empty user in URI {text!r}")
        password = pw if pcolon else None
    rest, qmark, headers = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    host, port = split_hostport(hostport)
    params = parse_params(param_text, what="URI") if semi else {}
    return Uri(scheme, user, password, host.lower(), port, params, headers if qmark else None)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, a URI and header parameters."""

    uri: Uri
    display: str | None = None
    params: Params = field(default_factory=dict)
    wildcard: bool = False

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        if self.wildcard:
            return "*"
        display = f"{self.display} " if self.display else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"


def _read_quoted(text: str, start: int) -> int:
    """Index just past the quoted string that opens at ``text[start]``."""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise ParseError("unterminated quoted string")


def parse_name_addr(text: str, *, what: str = "header") -> NameAddr:
    """Parse ``[display] <uri> *(;param)`` or the bare ``uri *(;param)`` form of RFC 3261 §20."""
    text = text.strip(_LWS)
    if text == "*":
        return NameAddr(Uri("sip"), wildcard=True)
    display: str | None = None
    i = 0
    if text.startswith('"'):
        i = _read_quoted(text, 0)
        display = text[:i]
        while i < len(text) and text[i] in _LWS:
            i += 1
        if i >= len(text) or text[i] != "<":
            raise ParseError(f"expected <uri> after display name in {what}")
    lt = text.find("<", i)
    if lt >= 0:
        if display is None:
            words = text[:lt].split()
            if not all(is_token(w) for w in words):
                raise ParseError(f"display name must be quoted in {what}")
            display = " ".join(words) or None
        gt = text.find(">", lt)
        if gt < 0:
            raise ParseError(f"missing > in {what}")
        uri = parse_uri(text[lt + 1 : gt])
        rest = text[gt + 1 :].strip(_LWS)
    else:
        uri_text, semi, param_part = text.partition(";")
        uri_text = uri_text.strip(_LWS)
        if "?" in uri_text or "," in uri_text:
            raise ParseError(f"a URI with ?, ; or , must be in <> in {what}")
        uri = parse_uri(uri_text)
        rest = semi + param_part
    params: Params = {}
    if rest:
        if not rest.startswith(";"):
            raise ParseError(f"unexpected text after URI in {what}")
        params = parse_params(rest[1:], what=what)
    return NameAddr(uri, display, params)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (RFC 3261 §20.42, with RFC 3581 rport)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return f"{self.host}:{self.port}" if self.port is not None else self.host

    @property
    def rfc3261_branch(self) -> bool:
        """True when the branch carries the RFC 3261 magic cookie (and is more than the cookie)."""
        branch = self.branch
        return branch is not None and branch.startswith("z9hG4bK") and len(branch) > 7

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"


_VIA_PROTOCOL = re.compile(r"\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+", re.IGNORECASE)


def parse_via(text: str) -> Via:
    """Parse one Via value; LWS is allowed around the ``/`` of the sent-protocol (RFC 4475 §3.1.1.1)."""
    m = _VIA_PROTOCOL.match(text)
    if m is None:
        if re.match(r"\s*SIP\s*/\s*\d", text, re.IGNORECASE):
            raise ParseError("unsupported SIP version in Via", 505)
        raise ParseError(f"bad Via {text.strip()!r}")
    rest = text[m.end() :]
    sent_by, semi, param_text = rest.partition(";")
    host, port = split_hostport(sent_by.strip(_LWS))
    params = parse_params(param_text, what="Via") if semi else {}
    received = params.get("received")
    if received is not None:
        try:
            ipaddress.ip_address(bare_host(received))
        except ValueError:
            raise ParseError(f"bad received= in Via: {received!r}") from None
    return Via(m.group(1).upper(), host, port, params)
