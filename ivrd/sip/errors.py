"""The SIP package's exceptions: every parser failure carries the status code to answer with."""

from __future__ import annotations


class SipError(Exception):
    """Base of every error raised by :mod:`ivrd.sip`."""


class ParseError(SipError):
    """A message, header, URI or SDP body that does not follow its grammar.

    ``status`` is the response code a UAS answers with (400 unless a more precise one applies,
    e.g. 505 for an unknown SIP version or 513 for an oversized message); ``reason`` is a short
    human-readable explanation that goes into the response's reason phrase.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class SdpError(ParseError):
    """An SDP body that cannot be parsed or negotiated (answered with 488 by default)."""

    def __init__(self, reason: str, status: int = 488) -> None:
        super().__init__(reason, status)
