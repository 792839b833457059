"""Sending one torture message to the daemon the way its Via asks to be answered."""

from __future__ import annotations

import re
import socket
import time

from ivrd.sip.errors import ParseError
from ivrd.sip.message import Response, parse_message
from ivrd.sip.uri import Via

_CALL_ID = re.compile(rb"^(?:Call-ID|i)\s*:\s*(\S+)", re.I | re.M)
_TOP_VIA_PORT = re.compile(rb"^(?:Via|v)\s*:[^\r\n]*?(?:\]|[^:\]\s;,]+)(?::(\d+))?\s*[;,\r\n]", re.I | re.M)


def reply_port(data: bytes) -> int:
    """Where RFC 3261 §18.2.2 sends the answer: 127.0.0.1 (received=) at the top Via's port, or 5060."""
    m = _TOP_VIA_PORT.search(data)
    return int(m.group(1)) if m and m.group(1) else 5060


def exchange(data: bytes, daemon_port: int, *, wait: float = 3.0) -> list[Response]:
    """Send ``data`` from the Via's port; collect its responses (same Call-ID) until a final one
    or until ``wait`` passes. Retransmissions answering earlier messages are left out."""
    found = _CALL_ID.search(data)
    call_id = found.group(1).decode(errors="replace") if found else None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", reply_port(data)))
    responses: list[Response] = []
    try:
        sock.sendto(data, ("127.0.0.1", daemon_port))
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                packet = sock.recv(65535)
            except TimeoutError:
                break
            try:
                message = parse_message(packet)
            except ParseError:
                continue
            if isinstance(message, Response) and message.headers.get("call-id") == call_id:
                responses.append(message)
                if message.status >= 300 and message.cseq.method == "INVITE":
                    sock.sendto(_ack_for_failure(message), ("127.0.0.1", daemon_port))
                if message.status >= 200:
                    break
    finally:
        sock.close()
    return responses


def _ack_for_failure(response: Response) -> bytes:
    """The ACK a UAC sends for a failure to INVITE (same branch, the response's To tag)."""
    top = response.top_via
    params = {k: v for k, v in top.params.items() if k not in ("received", "rport")}
    via = Via(top.transport, top.host, top.port, params)
    return (
        f"ACK sip:ivr@127.0.0.1 SIP/2.0\r\nVia: {via}\r\nFrom: {response.headers.get('from')}\r\n"
        f"To: {response.headers.get('to')}\r\nCall-ID: {response.call_id}\r\n"
        f"CSeq: {response.cseq.number} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
