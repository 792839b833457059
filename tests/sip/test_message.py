import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivrd.sip.errors import ParseError
from ivrd.sip.message import Request, Response, StreamFramer, parse_message
from ivrd.sip.uri import parse_name_addr, parse_uri, parse_via

BASIC = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport\r\n"
    b"f: \"Alice \\\"A\\\"\" <sip:alice@example.com>;tag=1\r\n"
    b"t: <sip:bob@example.com>\r\n"
    b"i: call-1\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Max-Forwards: 70\r\n"
    b"Subject: first line\r\n"
    b" second line\r\n"
    b"m: <sip:alice@[2001:db8::1]:5070;transport=tcp>\r\n"
    b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"body"
)


def test_compact_forms_folding_and_lists():
    msg = parse_message(BASIC)
    assert isinstance(msg, Request)
    msg.validate()
    assert msg.call_id == "call-1"
    assert msg.from_.tag == "1"
    assert msg.from_.display == '"Alice \\"A\\""'
    assert msg.headers.get("subject") == "first line second line"
    assert msg.headers.values("route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert msg.contacts[0].uri.host == "[2001:db8::1]"
    assert msg.contacts[0].uri.port == 5070
    assert msg.contacts[0].uri.transport == "tcp"
    assert msg.top_via.params == {"branch": "z9hG4bKabc", "rport": None}
    assert msg.body == b"body"


def test_serialize_round_trip_recomputes_content_length():
    msg = parse_message(BASIC)
    msg.body = b"longer body"
    again = parse_message(msg.to_bytes())
    assert isinstance(again, Request)
    assert again.body == b"longer body"
    assert again.headers.get("content-length") == "11"
    assert list(again.headers) == [*list(msg.headers)[:-1], ("content-length", "11")]


def test_datagram_ignores_octets_past_content_length_and_stream_requires_it():
    msg = parse_message(BASIC + b"garbage")
    assert msg.body == b"body"
    no_length = BASIC.replace(b"l: 4\r\n", b"")
    assert parse_message(no_length).body == b"body"
    assert parse_message(no_length, stream=True).body == b""


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (BASIC.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505, "version"),
        (BASIC.replace(b"l: 4", b"l: 40"), 400, "Content-Length larger"),
        (BASIC.replace(b"CSeq: 7", b"CSeq: 4294967296"), 400, "CSeq"),
        (BASIC.replace(b"i: call-1\r\n", b"i: call-1\r\ni: call-2\r\n"), 400, "more than one Call-ID"),
        (BASIC.replace(b"Subject:", b"Sub ject:"), 400, "bad header line"),
        (BASIC + b"x" * 70000, 513, "too large"),
        (BASIC.replace(b"i: call-1", b"i: call\x00-1"), 400, "control character"),
    ],
)
def test_parse_errors_carry_the_status_to_answer(data, status, reason):
    with pytest.raises(ParseError) as info:
        msg = parse_message(data)
        msg.validate()
    assert info.value.status == status
    assert reason in info.value.reason


def test_response_and_status_code_bounds():
    resp = parse_message(b"SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(resp, Response) and resp.status == 180
    with pytest.raises(ParseError):
        parse_message(b"SIP/2.0 700 Nope\r\n\r\n")


def test_uri_grammar():
    uri = parse_uri("sip:user;par=u%40x:pw@Example.COM:5061;transport=TCP;lr?subject=hi")
    assert (uri.user, uri.password, uri.host, uri.port) == ("user;par=u%40x", "pw", "example.com", 5061)
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.transport == "tcp"
    assert uri.headers == "subject=hi"
    assert str(parse_uri("sip:a@[::1]:5080")) == "sip:a@[::1]:5080"
    assert parse_uri("tel:+15551234").opaque == "+15551234"
    for bad in ("sip:a@2001:db8::1", "sip:a@host:0", "sip:a@ho st", "<sip:a@b>", "sip:a@[::g]"):
        with pytest.raises(ParseError):
            parse_uri(bad)


def test_name_addr_and_via_grammar():
    na = parse_name_addr("Bob Smith <sip:bob@b.example> ; tag = x1")
    assert (na.display, na.tag) == ("Bob Smith", "x1")
    assert parse_name_addr("sip:bob@b.example;tag=7").tag == "7"
    via = parse_via("SIP / 2.0 / tcp  [2001:db8::9]:5062 ; branch=z9hG4bKx;received=2001:db8::1")
    assert (via.transport, via.host, via.port, via.branch) == ("TCP", "[2001:db8::9]", 5062, "z9hG4bKx")
    for bad in ('"unterminated <sip:a@b>', "Bell, Alexander <sip:a@b>", "< sip:a@b >", "sip:a@b?x=1"):
        with pytest.raises(ParseError):
            parse_name_addr(bad)


def test_stream_framer_cuts_messages_across_reads_and_skips_keepalives():
    framer = StreamFramer()
    two = BASIC + b"\r\n\r\n" + BASIC
    out = []
    for i in range(0, len(two), 7):
        out.extend(framer.feed(two[i : i + 7]))
    assert out == [BASIC, BASIC]


@settings(max_examples=300, deadline=None)
@given(bodies=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\r\n\r\n", b"")), min_size=1, max_size=5),
       keepalives=st.lists(st.sampled_from([b"", b"\r\n", b"\r\n\r\n", b"\n"]), min_size=5, max_size=5),
       cuts=st.lists(st.integers(1, 600), max_size=40))  # fmt: skip
def test_stream_framer_frames_the_same_messages_however_the_stream_is_cut(bodies, keepalives, cuts):
    messages = [b"MESSAGE sip:a@b SIP/2.0\r\nl: %d\r\n\r\n%s" % (len(body), body) for body in bodies]
    stream = b"".join(k + m for k, m in zip(keepalives, messages, strict=False))
    framer, out, at = StreamFramer(), [], 0
    for cut in [*cuts, len(stream)]:  # each read a segment of its own, down to a byte
        out.extend(framer.feed(stream[at : at + cut]))
        at += cut
    assert out == messages and not framer.partial


def test_stream_framer_refuses_endless_headers():
    framer = StreamFramer(max_bytes=2048)
    with pytest.raises(ParseError) as info:
        framer.feed(b"INVITE sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 500)
    assert info.value.status == 513
