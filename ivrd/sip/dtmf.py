"""DTMF as SIP carries it: the sixteen keys (in RFC 4733's event order) and the bodies of SIP INFO."""

from __future__ import annotations

from .errors import ParseError
from .message import Request

KEYS = "0123456789*#ABCD"  # a key's index is its RFC 4733 event code
INFO_TYPES = ("application/dtmf-relay", "application/dtmf")
_SIGNALS = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}


def parse_info(request: Request) -> tuple[str | None, int | None]:
    """The key (and duration in ms) of an INFO body in application/dtmf-relay or application/dtmf;
    :class:`ParseError` when it names no key."""
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
    signal = _SIGNALS.get(signal, signal).upper()
    if len(signal) != 1 or signal not in KEYS:
        raise ParseError(f"bad DTMF signal {signal[:10]!r}")
    return signal, duration
