"""Building SIP messages for unit tests."""

from __future__ import annotations

from ivrd.sip.build import make_response
from ivrd.sip.message import Request, Response, parse_message

OFFER = (
    "v=0\r\no=caller 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)


def request(method: str = "INVITE", *, branch: str = "z9hG4bK1", call_id: str = "c1", from_tag: str = "ft",
            to_tag: str | None = None, cseq: int = 1, cseq_method: str | None = None, body: str = "",
            content_type: str | None = None, extra: str = "", uri: str = "sip:ivr@10.0.0.1") -> Request:
    to = "<sip:ivr@10.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    if body and content_type is None:
        content_type = "application/sdp"
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.2:5062;branch={branch}\r\n"
        f"From: <sip:caller@10.0.0.2>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\nMax-Forwards: 70\r\nContact: <sip:caller@10.0.0.2:5062>\r\n"
        + (f"Content-Type: {content_type}\r\n" if content_type else "")
        + extra
        + f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def response_to(req: Request, status: int, to_tag: str = "tt") -> Response:
    return make_response(req, status, to_tag=to_tag)
