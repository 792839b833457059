"""The framing mutations of the IWL SIP test suite (a published list of attack techniques) against a real
daemon: each mangled request is answered (a final response, never a 5xx of ours but 503) or dropped, and
the daemon goes on serving everyone else."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

import pytest

from ivrd.sip.message import Response, parse_message
from tests.integration.daemon import daemon_running

pytestmark = pytest.mark.peers
ATTACKER = "127.0.0.51"


def options(port: int, n: int, body: str = "") -> bytes:
    return (f"OPTIONS sip:ivr@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {ATTACKER}:5999;branch=z9hG4bKm{n}\r\n"
            f"From: <sip:probe@{ATTACKER}>;tag=m{n}\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: mangled-{n}\r\n"
            f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()  # fmt: skip


def _adjusted(data: bytes) -> bytes:
    """``data`` with its Content-Length made true again."""
    head, _, body = data.partition(b"\r\n\r\n")
    return re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(body), head) + b"\r\n\r\n" + body


def _in_lines(data: bytes, where: str, insert: bytes, *, before_crlf: bool) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    first, headers = lines[0], lines[1:]
    if where == "request":
        first = first + insert if before_crlf else first
    elif where == "headers":
        headers = [h + insert for h in headers]
    out = b"\r\n".join([first, *headers]) + b"\r\n\r\n"
    if where == "body":
        body = b"\r\n".join(line + insert for line in body.split(b"\r\n"))
    return out + body


BODY = "v=0\r\no=x 1 1 IN IP4 127.0.0.51\r\ns=-\r\nc=IN IP4 127.0.0.51\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
# The IWL suite's "IP and MAC layer framing" mutations that apply to one UDP datagram.
MUTATIONS: dict[str, Callable[[bytes], bytes]] = {
    "empty CRLF at the end, length as it was": lambda d: d + b"\r\n",
    "empty CRLF at the end, length adjusted": lambda d: _adjusted(d + b"\r\n"),
    "empty CR at the end": lambda d: d + b"\r",
    "empty LF at the end, length adjusted": lambda d: _adjusted(d + b"\n"),
    "gibberish appended": lambda d: d + b"\x8f\xff garbage \x00\x01",
    "gibberish appended, length adjusted": lambda d: _adjusted(d + b"\x8f\xff garbage \x00\x01"),
    "NUL after each CRLF": lambda d: d.replace(b"\r\n", b"\r\n\x00"),
    "blanks before the request line's CRLF": lambda d: _in_lines(d, "request", b"   ", before_crlf=True),
    "NUL before the request line's CRLF": lambda d: _in_lines(d, "request", b"\x00", before_crlf=True),
    "blanks before each header's CRLF": lambda d: _in_lines(d, "headers", b"  ", before_crlf=True),
    "NUL before each header's CRLF": lambda d: _in_lines(d, "headers", b"\x00", before_crlf=True),
    "blanks before each body line's CRLF": lambda d: _in_lines(d, "body", b" ", before_crlf=True),
    "blanks in body lines, length adjusted": lambda d: _adjusted(_in_lines(d, "body", b" ", before_crlf=True)),
    "NUL in body lines, length adjusted": lambda d: _adjusted(_in_lines(d, "body", b"\x00", before_crlf=True)),
    "no CRLF after the body": lambda d: d.removesuffix(b"\r\n"),
    "no CRLF after the body, length adjusted": lambda d: _adjusted(d.removesuffix(b"\r\n")),
    "blanks before each colon": lambda d: d.replace(b": ", b"   : "),
    "tabs before each colon": lambda d: d.replace(b": ", b"\t\t: "),
    "LF line ends only": lambda d: d.replace(b"\r\n", b"\n"),
    "CR line ends only": lambda d: d.replace(b"\r\n", b"\r"),
    "a header folded onto the next line": lambda d: d.replace(b"Max-Forwards: 70", b"Max-Forwards:\r\n 70"),
    "a header folded with a tab": lambda d: d.replace(b"Max-Forwards: 70", b"Max-Forwards:\r\n\t70"),
    "header names in upper case": lambda d: re.sub(rb"\r\n([A-Za-z-]+):", lambda m: b"\r\n" + m[1].upper() + b":", d),
    "truncated in the middle": lambda d: d[: len(d) // 2],
    "the datagram doubled": lambda d: d + d,
}


def test_the_iwl_framing_mutations_are_each_answered_or_dropped_and_the_daemon_serves_on():
    with daemon_running() as daemon:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((ATTACKER, 5999))
        sock.settimeout(0.5)
        answers: dict[str, int | None] = {}
        try:
            for n, (name, mutate) in enumerate(MUTATIONS.items()):
                sock.sendto(mutate(options(daemon.port, n, BODY)), ("127.0.0.1", daemon.port))
                try:
                    reply = parse_message(sock.recv(65535))
                    answers[name] = reply.status if isinstance(reply, Response) else None
                except TimeoutError:
                    answers[name] = None  # dropped: it could not be answered
            sock.settimeout(5)
            sock.sendto(options(daemon.port, 999), ("127.0.0.1", daemon.port))
            alive = parse_message(sock.recv(65535))
        finally:
            sock.close()
    assert isinstance(alive, Response) and alive.status == 200  # still serving, after all of them
    bad = {name: status for name, status in answers.items() if status is not None and status >= 500}
    assert not bad, bad
    assert answers["empty CRLF at the end, length adjusted"] in (200, 400)  # a clear answer, either way
    assert answers["truncated in the middle"] in (None, 400)
