"""Building responses and requests from the messages they answer (RFC 3261 §8.2.6, §12.2, §17.1.1.3)."""

from __future__ import annotations

from .message import Headers, Request, Response

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    420: "Bad Extension", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
    503: "Service Unavailable", 505: "Version Not Supported", 513: "Message Too Large", 603: "Decline",
}  # fmt: skip

# Headers a response copies from its request, in order (RFC 3261 §8.2.6.2).
_COPIED = ("via", "record-route", "from", "to", "call-id", "cseq")


def reason_phrase(status: int) -> str:
    return REASONS.get(status, "Unknown")


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> Response:
    """A response to ``request``; ``to_tag`` is added to To when it has none (not on 100 Trying)."""
    headers = Headers()
    for name, value in request.headers:
        if name in _COPIED and (name != "record-route" or 100 < status < 300):
            tagged = name == "to" and to_tag is not None and status > 100 and ";tag=" not in value.replace(" ", "")
            headers.add(name, f"{value};tag={to_tag}" if tagged else value)
    for name, value in extra:
        headers.add(name, value)
    return Response(status, reason or reason_phrase(status), headers, body)


def make_ack_for_failure(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 3xx-6xx (RFC 3261 §17.1.1.3)."""
    return _same_transaction(invite, "ACK", response.headers.get("to") or "")


def make_cancel(invite: Request) -> Request:
    """The CANCEL of a client INVITE (RFC 3261 §9.1)."""
    return _same_transaction(invite, "CANCEL", invite.headers.get("to") or "")


def _same_transaction(invite: Request, method: str, to: str) -> Request:
    """A request with the INVITE's Request-URI, top Via, Call-ID, From, CSeq number and Route."""
    headers = Headers()
    headers.add("via", invite.headers.values("via")[0])
    for name in ("max-forwards", "from"):
        value = invite.headers.get(name)
        if value is not None:
            headers.add(name, value)
    headers.add("to", to)
    headers.add("call-id", invite.call_id)
    headers.add("cseq", f"{invite.cseq.number} {method}")
    for route in invite.headers.get_all("route"):
        headers.add("route", route)
    return Request(method, invite.uri, headers)
