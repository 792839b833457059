"""SIP messages: parsing (RFC 3261 §7, §25), serialization and stream framing.

Headers are kept as ``(lowercase long name, value)`` pairs in arrival order; compact forms are
expanded when parsed. Structured headers (Via, From, To, CSeq, ...) are parsed on first access
and cached, so a message pays only for what the core looks at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ParseError
from .uri import NameAddr, Uri, Via, is_token, parse_name_addr, parse_uri, parse_via, split_outside_quotes

MAX_MESSAGE_BYTES = 65535
MAX_HEADERS = 128
MAX_CSEQ = 2**31 - 1

COMPACT_FORMS = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "o": "event", "r": "refer-to", "s": "subject", "t": "to",
    "u": "allow-events", "v": "via", "x": "session-expires", "y": "identity",
}  # fmt: skip
# Headers that may appear once only; a second one makes the request ambiguous (RFC 4475 §3.3.8).
SINGLE_VALUED = frozenset({"call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type"})
_CANONICAL = {
    "call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate", "mime-version": "MIME-Version",
    "rack": "RAck", "rseq": "RSeq",
}  # fmt: skip

_REQUEST_LINE = re.compile(r"([^ ]+) ([^ ]+) (SIP/[^ ]+)\Z")
_STATUS_LINE = re.compile(r"(SIP/[^ ]+) ([0-9]+) (.*)\Z")
_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\Z")
# Control characters are allowed only as a quoted-pair (``\\`` then the character) in a quoted string.
_CTL = re.compile(r"(?<!\\)[\x00-\x08\x0a-\x1f\x7f]")
_LWS = " \t"


def has_control_chars(value: str) -> bool:
    """True when a header value holds a control character that is not a quoted-pair."""
    return _CTL.search(value) is not None


def canonical_name(name: str) -> str:
    """``call-id`` -> ``Call-ID``: the spelling used when serializing."""
    canon = _CANONICAL.get(name)
    if canon is None:
        canon = "-".join(part.capitalize() for part in name.split("-"))
        _CANONICAL[name] = canon
    return canon


class Headers:
    """An ordered multi-map of header fields keyed by lowercase long name."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(n.lower(), v) for n, v in items]

    def get(self, name: str) -> str | None:
        name = name.lower()
        for n, v in self._items:
            if n == name:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self._items if n == name]

    def values(self, name: str) -> list[str]:
        """All comma-separated values of a list header, across all its header lines."""
        out: list[str] = []
        for line in self.get_all(name):
            out.extend(v.strip(_LWS) for v in split_outside_quotes(line, ","))
        return out

    def add(self, name: str, value: str) -> None:
        self._items.append((name.lower(), value))

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` with one field, kept where the first one stood."""
        name = name.lower()
        for i, (n, _) in enumerate(self._items):
            if n == name:
                self._items[i] = (name, value)
                self._items[i + 1 :] = [item for item in self._items[i + 1 :] if item[0] != name]
                return
        self._items.append((name, value))

    def set_first(self, name: str, value: str) -> None:
        """Replace the value of the first field called ``name`` (the top Via, say)."""
        name = name.lower()
        for i, (n, _) in enumerate(self._items):
            if n == name:
                self._items[i] = (name, value)
                return
        self._items.append((name, value))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        h = Headers()
        h._items = list(self._items)
        return h


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(text: str) -> CSeq:
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or not is_token(parts[1]):
        raise ParseError(f"bad CSeq {text.strip()!r}")
    number = int(parts[0]) if len(parts[0]) <= 10 else MAX_CSEQ + 1
    if number > MAX_CSEQ:
        raise ParseError("CSeq number out of range")
    return CSeq(number, parts[1])


class Message:
    """Fields shared by requests and responses; structured headers parse lazily and are cached."""

    __slots__ = ("_cache", "body", "headers")

    def __init__(self, headers: Headers, body: bytes = b"") -> None:
        self.headers = headers
        self.body = body
        self._cache: dict[str, Any] = {}

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise ParseError(f"missing {canonical_name(name)} header")
        return value

    @property
    def vias(self) -> list[Via]:
        if "via" not in self._cache:
            values = self.headers.values("via")
            if not values:
                raise ParseError("missing Via header")
            self._cache["via"] = [parse_via(v) for v in values]
        vias: list[Via] = self._cache["via"]
        return vias

    @property
    def top_via(self) -> Via:
        return self.vias[0]

    def replace_top_via(self, via: Via) -> None:
        """Put ``via`` in place of the top Via (the first value of the first Via line)."""
        values = split_outside_quotes(self.headers.get("via") or "", ",")
        values[0] = str(via)
        self.headers.set_first("via", ",".join(values))
        self._cache.pop("via", None)

    @property
    def from_(self) -> NameAddr:
        return self._name_addr("from")

    @property
    def to(self) -> NameAddr:
        return self._name_addr("to")

    def _name_addr(self, name: str) -> NameAddr:
        if name not in self._cache:
            self._cache[name] = parse_name_addr(self._required(name), what=canonical_name(name))
        value: NameAddr = self._cache[name]
        return value

    @property
    def call_id(self) -> str:
        value: str | None = self._cache.get("call-id")
        if value is None:
            value = self._required("call-id").strip(_LWS)
            if not value or " " in value or "\t" in value:
                raise ParseError("bad Call-ID")
            self._cache["call-id"] = value
        return value

    @property
    def cseq(self) -> CSeq:
        if "cseq" not in self._cache:
            self._cache["cseq"] = parse_cseq(self._required("cseq"))
        value: CSeq = self._cache["cseq"]
        return value

    @property
    def contacts(self) -> list[NameAddr]:
        if "contact" not in self._cache:
            self._cache["contact"] = [parse_name_addr(v, what="Contact") for v in self.headers.values("contact")]
        value: list[NameAddr] = self._cache["contact"]
        return value

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip(_LWS).lower() if value else None

    def validate(self) -> None:
        """Parse the headers that identify a transaction; raise :class:`ParseError` if one is bad."""
        self.vias  # noqa: B018 - parsing is the check
        self.call_id  # noqa: B018
        self.cseq  # noqa: B018
        self.from_  # noqa: B018
        self.to  # noqa: B018

    def _serialize(self, start_line: str) -> bytes:
        lines = [start_line]
        lines.extend(f"{canonical_name(n)}: {v}" for n, v in self.headers if n != "content-length")
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        # surrogates stand for octets that were not UTF-8 in a broken request's echoed headers
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body


class Request(Message):
    """A SIP request. ``uri`` is kept as text; :attr:`request_uri` parses it."""

    __slots__ = ("method", "uri")

    def __init__(self, method: str, uri: str, headers: Headers, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    @property
    def request_uri(self) -> Uri:
        if "ruri" not in self._cache:
            self._cache["ruri"] = parse_uri(self.uri)
        value: Uri = self._cache["ruri"]
        return value

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("max-forwards")
        if value is None:
            return None
        value = value.strip(_LWS)
        if not value.isdigit() or len(value) > 10 or int(value) > 255:
            raise ParseError("bad Max-Forwards")
        return int(value)

    def validate(self) -> None:
        """Check the headers every request needs (RFC 3261 §8.1.1); raise :class:`ParseError` if one is bad."""
        super().validate()
        if self.cseq.method != self.method:
            raise ParseError("CSeq method does not match the request method")
        self.max_forwards  # noqa: B018 - parsing is the check
        if self.method != "ACK" or self.headers.get("contact") is not None:
            self.contacts  # noqa: B018
        date = self.headers.get("date")
        if date is not None and _DATE.match(date.strip(_LWS)) is None:
            raise ParseError("bad Date (RFC 1123 form in GMT expected)")

    def to_bytes(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} SIP/2.0")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    """A SIP response."""

    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str, headers: Headers, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason

    def to_bytes(self) -> bytes:
        return self._serialize(f"SIP/2.0 {self.status} {self.reason}")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


_VERSION = re.compile(r"SIP/[0-9]{1,3}\.[0-9]{1,3}\Z", re.IGNORECASE)


def _check_version(version: str) -> None:
    """505 for a well-formed version other than 2.0 (RFC 4475 §3.1.2.16); 400 for what is no version."""
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        if _VERSION.match(version):
            raise ParseError(f"SIP version {version} not supported", 505)
        raise ParseError(f"bad SIP version {version[:20]!r}")


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4 :]
    end = data.find(b"\n\n")
    if end >= 0:
        return data[:end], data[end + 2 :]
    if data.endswith(b"\r\n") or data.endswith(b"\n"):
        return data.rstrip(b"\r\n"), b""
    raise ParseError("message has no end of headers")


def _header_lines(head: str) -> list[str]:
    """The header section's lines, continuations folded in (RFC 3261 §7.3.1), in time linear in its length
    however many continuations a line has."""
    text = head.replace("\r\n", "\n")
    if "\n " not in text and "\n\t" not in text and text[:1] not in (" ", "\t"):
        return text.split("\n")  # nothing folded: every message but a few
    lines: list[list[str]] = []
    for line in text.split("\n"):
        if line[:1] in (" ", "\t"):
            if not lines:
                raise ParseError("continuation line before the first header")
            lines[-1].append(line.strip(_LWS))
        else:
            lines.append([line])
    return [" ".join(parts) for parts in lines]


def parse_message(data: bytes, *, stream: bool = False, max_bytes: int = MAX_MESSAGE_BYTES) -> Request | Response:
    """Parse one message from a datagram (``stream=False``) or a framed stream message.

    On a datagram, octets beyond Content-Length are ignored and a missing Content-Length means
    "the rest of the datagram"; on a stream the framer has already cut the message to size.
    """
    if len(data) > max_bytes:
        raise ParseError("message too large", 513)
    data = data.lstrip(b"\r\n")
    head_bytes, body = _split_head(data)
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("headers are not UTF-8") from None
    lines = _header_lines(head)
    start = lines[0]
    headers = Headers()
    items = headers._items
    seen: set[str] = set()
    if len(lines) - 1 > MAX_HEADERS:
        raise ParseError("too many header fields")
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.rstrip(_LWS).lower()
        if not colon or not is_token(name):
            raise ParseError(f"bad header line {line[:40]!r}")
        if has_control_chars(value):
            raise ParseError(f"control character in {name} header")
        name = COMPACT_FORMS.get(name, name)
        if name in SINGLE_VALUED:
            if name in seen:
                raise ParseError(f"more than one {canonical_name(name)} header")
            seen.add(name)
        items.append((name, value.strip(_LWS)))

    length_text = headers.get("content-length")
    if length_text is not None:
        if not length_text.isdigit() or len(length_text) > 9:
            raise ParseError("bad Content-Length")
        length = int(length_text)
        if length > len(body):
            raise ParseError("Content-Length larger than the message")
        body = body[:length]
    elif stream:
        body = b""

    if start.startswith("SIP/"):
        m = _STATUS_LINE.match(start)
        if m is None:
            raise ParseError("bad status line")
        _check_version(m.group(1))
        code = m.group(2)
        if len(code) != 3 or not 100 <= int(code) <= 699:
            raise ParseError("bad status code")
        return Response(int(code), m.group(3), headers, body)
    m = _REQUEST_LINE.match(start)
    if m is None:
        raise ParseError("bad request line")
    method, uri, version = m.groups()
    if not is_token(method):
        raise ParseError("bad method")
    _check_version(version)
    request = Request(method, uri, headers, body)
    ruri = request.request_uri
    if ruri.is_sip and ruri.headers is not None:
        raise ParseError("headers are not allowed in a Request-URI")
    return request


class StreamFramer:
    """Cuts a byte stream (TCP) into messages using Content-Length (RFC 3261 §18.3).

    ``feed`` returns complete messages; CRLF keep-alives between messages (RFC 5626 §3.5.1)
    are skipped. A header section larger than ``max_bytes`` raises :class:`ParseError`:
    the connection cannot be resynchronised and must be closed. The work is linear in the bytes
    fed however they are cut: a peer sending a byte per segment costs no more than one sending
    whole messages (each byte is looked at once for the header's end).
    """

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_bytes
        self._scanned = 0  # how far the buffer was searched for the header's end
        self._total: int | None = None  # the current message's length, once its header is whole

    @property
    def partial(self) -> bool:
        """Whether part of a message has come and the rest has not."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        while True:
            total = self._total
            if total is None:
                if not self._scanned:  # a message's start: skip keep-alives before it (no copy of the rest)
                    keepalive = 0
                    while keepalive < len(buffer) and buffer[keepalive] in b"\r\n":
                        keepalive += 1
                    del buffer[:keepalive]
                end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
                if end < 0:
                    if len(buffer) > self._max:
                        raise ParseError("header section too large", 513)
                    self._scanned = len(buffer)
                    return out
                total = self._total = end + 4 + _content_length(bytes(buffer[:end]))
                if total > self._max:
                    raise ParseError("message too large", 513)
            if len(buffer) < total:
                return out
            out.append(bytes(buffer[:total]))
            del buffer[:total]
            self._total, self._scanned = None, 0


def _content_length(head: bytes) -> int:
    """The Content-Length of a message's header section (0 without one), as the stream framer reads it."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            value = value.strip()
            if not value.isdigit() or len(value) > 9:
                raise ParseError("bad Content-Length")
            return int(value)
    return 0
