"""Property tests: the parser lets only ParseError escape, and parse -> serialize -> parse is stable."""

import contextlib
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivrd.sip.errors import ParseError
from ivrd.sip.flow import SipFlow
from ivrd.sip.message import Request, parse_message
from ivrd.sip.sdp import parse_sdp
from ivrd.sip.ua import UserAgent
from tests.sip.helpers import OFFER, request
from tests.torture import cases

SEEDS = [c.data for c in cases()] + [request(body=OFFER).to_bytes()]
FLOW = SipFlow("udp", ("127.0.0.1", 5060), ("127.0.0.1", 5062))


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 40))]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 80))]
        else:
            data[pos:pos] = draw(st.sampled_from([b"\r\n", b" ", b":", b";", b",", b"<", b'"', b"\x00", b"%",
                                                  b"[", b"99999999999", b"\r\n "]))
    return bytes(data)


def parse_or_refuse(data: bytes):
    try:
        message = parse_message(data)
        message.validate()
        return message
    except ParseError:
        return None


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_parser_raises_only_parse_error_and_round_trips(data):
    message = parse_or_refuse(data)
    if message is None:
        return
    again = parse_message(message.to_bytes())
    again.validate()
    assert type(again) is type(message)
    assert again.body == message.body
    if isinstance(message, Request):
        assert (again.method, again.uri) == (message.method, message.uri)


@settings(max_examples=800, deadline=None)
@given(mutated())
def test_user_agent_survives_any_datagram(data):
    """What it sends parses, but for the answer to a broken request, which echoes its From, To and
    Call-ID as they came: that one is a final status with the request's own Via and CSeq."""
    ua = UserAgent()
    ua.receive_datagram(data, FLOW, 0.0)
    ua.handle_timer(100.0)
    for send in ua.datagrams_to_send():
        if parse_or_refuse(send.data) is None:
            assert parse_or_refuse(data) is None
            assert re.match(rb"SIP/2\.0 [45]\d\d ", send.data)
            cseq = re.search(rb"\nCSeq: ([^\r]*)\r", send.data)
            assert cseq is not None and cseq.group(1) in data


@settings(max_examples=800, deadline=None)
@given(st.binary(max_size=600) | st.builds(lambda b, i: OFFER.encode()[:i] + b + OFFER.encode()[i:],
                                          st.binary(max_size=20), st.integers(0, len(OFFER))))
def test_sdp_parser_raises_only_sdp_error(data):
    with contextlib.suppress(ParseError):
        parse_sdp(data)
