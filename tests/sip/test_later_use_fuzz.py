"""Property tests: what the core accepts it can use later. Whatever Contact and Record-Route an INVITE or
a re-INVITE carries, and whatever From, To and Via, it is refused when it comes (4xx, or dropped when no
answer could be routed), or the call can be answered, its re-INVITE answered and its BYE built and sent,
or taken from the peer: no use of a stored header ever raises."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ivrd.sip.events import CallEnded, IncomingCall
from ivrd.sip.leg import CallLeg, LegState
from ivrd.sip.message import Request, Response, parse_message
from tests.sip.helpers import OFFER, request
from tests.sip.test_ua import Harness

PIECES = ["<", ">", "@", ":", ";", " ", ",", '"', "%20", "?x=y", "*", "[", "]", "\t"]


@st.composite
def header_value(draw: st.DrawFn) -> str:
    """A Contact or Record-Route value: mostly the shape of one, with one piece out of place now and then."""
    scheme = draw(st.sampled_from(["sip:", "sips:", "tel:", "http:", ""]))
    user = draw(st.sampled_from(["", "proxy@", "bob%20@", "@", "a:b@"]))
    host = draw(st.sampled_from(["10.0.0.9", "[::1]", "host.example", "", "[::1", "10.0.0.9.", "-", "::1"]))
    port = draw(st.sampled_from(["", ":5060", ":port", ":99999999", ":", ":0"]))
    params = draw(st.lists(st.sampled_from([";lr", "; lr", ";maddr=10.0.0.8", ";maddr=host.example", ";transport=tcp",
                                            ";transport=sctp", ";", ';x="y"', ";lr=1"]), max_size=3))  # fmt: skip
    form = draw(st.sampled_from(["<{}>", "{}", '"Bob" <{}>', "<{}> ;lr", "<{}>, <sip:10.0.0.7;lr>", "Bob <{}>"]))
    value = form.format(scheme + user + host + port + "".join(params))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(st.sampled_from(PIECES)) + value[at:]
    return value


def answer_the_call(h: Harness, events: list[object]) -> tuple[CallLeg, Response]:
    """The one call ``events`` announce, answered: its leg and our 200."""
    (incoming,) = events
    assert isinstance(incoming, IncomingCall)
    h.ua.answer(incoming.leg, media_address="10.0.0.1", media_port=20000, now=h.now)
    return incoming.leg, next(m for m, _, _ in h.drain()[0] if isinstance(m, Response) and m.status == 200)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=header_value(), contact=header_value(), new_contact=header_value())
def test_headers_are_refused_when_they_come_or_work_when_used(route: str, contact: str, new_contact: str) -> None:
    h = Harness()
    invite = request(body=OFFER, extra=f"Record-Route: {route}\r\n").to_bytes().replace(
        b"Contact: <sip:caller@10.0.0.2:5062>", f"Contact: {contact}".encode())  # fmt: skip
    try:
        parse_message(invite)
    except Exception:
        event("not parsed")
        return  # the parser's own refusals are test_fuzz.py's
    sends, events = h.feed(invite)
    finals = [m.status for m, _, _ in sends if isinstance(m, Response) and m.status >= 200]
    if finals:
        assert 400 <= finals[0] < 500 and not any(isinstance(e, IncomingCall) for e in events)  # refused at once
        event("refused when it came")
        return
    leg, ok = answer_the_call(h, events)
    h.feed(request("ACK", to_tag=ok.to.tag, branch="z9hG4bKack"))
    reinvite = request(body=OFFER, to_tag=ok.to.tag, cseq=2, branch="z9hG4bKre").to_bytes().replace(
        b"Contact: <sip:caller@10.0.0.2:5062>", f"Contact: {new_contact}".encode())  # fmt: skip
    sends, _ = h.feed(reinvite)  # answered 200, or refused 400: either way the call goes on
    assert all(m.status in (200, 400) for m, _, _ in sends if isinstance(m, Response))
    h.ua.hangup(leg, h.now)
    sends, events = h.drain()
    byes = [m for m, _, _ in sends if isinstance(m, Request) and m.method == "BYE"]
    event("used")
    assert len(byes) == 1 and not [e for e in events if isinstance(e, CallEnded)]  # sent; ends on its answer


@st.composite
def party(draw: st.DrawFn, tags: bool = True) -> str:
    """A From or To value: a name-addr or addr-spec with tags of every shape (an initial INVITE's To has
    none: with one it is refused 481 and nothing more is tried), a piece out of place now and then."""
    name = draw(st.sampled_from(["", '"Bob" ', "Bob ", '"B\\"ob" ', '"" ']))
    uri = draw(st.sampled_from(["sip:caller@10.0.0.2", "sips:c@[::1]", "tel:+123", "sip:10.0.0.2;user=phone"]))
    kinds = [";tag=ft", ";tag=", ";tag=a;tag=b", ";tag=%41", ";tag=x y", ';tag="q"', ";TAG=ft", ";tag=" + "t" * 300]
    params = draw(st.lists(st.sampled_from([*(kinds if tags else []), ";x=1", ";user=phone"]), max_size=2))
    value = (f"{name}<{uri}>" if name or draw(st.booleans()) else uri) + "".join(params)
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(st.sampled_from(PIECES)) + value[at:]
    return value


@st.composite
def via(draw: st.DrawFn) -> str:
    """A Via value: where the responses go, with the parameters that move them, some out of shape."""
    odd = draw(st.integers(0, 3)) == 0  # a quarter out of shape, so that most get as far as being used
    transport = draw(st.sampled_from(["SCTP", "WS", "FOO"] if odd else ["UDP", "TCP", "TLS", "udp"]))
    sent_by = draw(st.sampled_from(["10.0.0.2:0", "10.0.0.2:99999", "[::1", "10.0.0.2:", "10.0.0.2;"] if odd else
                                   ["10.0.0.2:5062", "10.0.0.2", "[::1]:5062", "host.example:5062"]))  # fmt: skip
    kinds = [";rport", ";rport=5", ";received=10.0.0.9", ";received=host", ";maddr=10.0.0.8", ";maddr=host.example",
             ";ttl=1", ";ttl=999", ";branch=z9hG4bKx", ";branch=", ";branch=z9hG4bK"]  # fmt: skip
    params = draw(st.lists(st.sampled_from(kinds), max_size=3))
    value = f"SIP/2.0/{transport} {sent_by};branch=z9hG4bK1" + "".join(params)
    if draw(st.booleans()):
        value += draw(st.sampled_from([", SIP/2.0/UDP 10.0.0.7;branch=z9hG4bKp", ",", " ;", "\t"]))
    return value


def _with(data: bytes, header: str, value: str) -> bytes:
    """``data`` with the first ``header:`` line's value replaced."""
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    i = next(n for n, line in enumerate(lines) if line.startswith(header.encode() + b":"))
    lines[i] = f"{header}: {value}".encode()
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(from_=party(), to=party(tags=False), top_via=via(), peer_ends=st.booleans())
def test_parties_and_vias_are_refused_when_they_come_or_work_when_used(from_: str, to: str, top_via: str,
                                                                      peer_ends: bool) -> None:  # fmt: skip
    """Whatever From, To and Via an INVITE carries, it is refused (4xx) or answered, and then its ACK is taken
    and its BYE, the peer's or ours, ends the call: no stored party or Via raises when used."""
    h = Harness()
    invite = _with(_with(_with(request(body=OFFER).to_bytes(), "From", from_), "To", to), "Via", top_via)
    try:
        parsed = parse_message(invite)
    except Exception:
        event("not parsed")
        return
    sends, events = h.feed(invite)
    statuses = [m.status for m, _, _ in sends if isinstance(m, Response)]
    assert all(s < 500 for s in statuses), statuses
    if not any(isinstance(e, IncomingCall) for e in events):
        assert not statuses or statuses[-1] >= 400  # refused, or no route back for an answer
        event(f"refused when it came: {statuses[-1] if statuses else 'no answer'}")
        return
    leg, ok = answer_the_call(h, events)
    assert ok.headers.get("from") == parsed.headers.get("from") and ok.call_id == parsed.call_id  # echoed

    def in_dialog(method: str, cseq: int) -> bytes:
        data = request(method, cseq=cseq, branch=f"z9hG4bK{method}").to_bytes()
        return _with(_with(data, "From", from_), "To", ok.headers.get("to") or "")

    h.feed(in_dialog("ACK", 1))
    if peer_ends:
        sends, events = h.feed(in_dialog("BYE", 2))
        assert [m.status for m, _, _ in sends if isinstance(m, Response)] == [200]
        assert any(isinstance(e, CallEnded) for e in events)
        event("ended by the peer")
    else:
        h.ua.hangup(leg, h.now)
        sends, _ = h.drain()
        assert len([m for m, _, _ in sends if isinstance(m, Request) and m.method == "BYE"]) == 1
        event("ended by us")


METHODS = ["INFO", "NOTIFY", "OPTIONS", "UPDATE", "MESSAGE", "REFER", "SUBSCRIBE", "PRACK", "PUBLISH", "FOO"]
BODIES = ["", "SIP/2.0 200 OK\r\n", "SIP/2.0 486\r\n", "SIP/2.0 99999 X\r\n", "SIP/2.0\r\n", "\x00\xff", "Signal=5\r\n",
          "Signal=#\r\nDuration=99999999999\r\n", "Signal=\r\n", "d=123", "<xml/>", OFFER]  # fmt: skip
TYPES = ["", "message/sipfrag", "message/sipfrag;version=2.0", "application/dtmf-relay", "application/dtmf",
         "application/sdp", "text/plain", "bogus", "multipart/mixed;boundary=x"]  # fmt: skip
EVENTS = ["", "refer", "refer;id=2", "REFER", "presence", ";", "refer;id=x;x"]


@st.composite
def in_dialog_request(draw: st.DrawFn) -> tuple[str, str, str, str, str]:
    """A request within the call from its own peer: method, body, Content-Type, Event and Refer-To, any mix."""
    refer_to = draw(st.sampled_from(["", "<sip:x@10.0.0.5>", "sip:x@10.0.0.5?Replaces=abc", "<>", "<tel:+1>", "*"]))
    return (draw(st.sampled_from(METHODS)), draw(st.sampled_from(BODIES)), draw(st.sampled_from(TYPES)),
            draw(st.sampled_from(EVENTS)), refer_to)  # fmt: skip


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests=st.lists(in_dialog_request(), min_size=1, max_size=6))
def test_any_request_within_a_call_is_answered_once_and_the_call_goes_on(
    requests: list[tuple[str, str, str, str, str]],
) -> None:
    """INFO, NOTIFY, REFER and their kin with bodies and headers of every shape, from the call's own peer:
    each gets one final answer, none a server error but the ones RFC 3261 names for a busy dialog, and the call
    is still up and can be hung up after them."""
    h = Harness()
    leg, _ = h.answered()
    h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK"))
    for cseq, (method, body, ctype, event_, refer_to) in enumerate(requests, start=2):
        extra = (f"Event: {event_}\r\n" if event_ else "") + (f"Refer-To: {refer_to}\r\n" if refer_to else "")
        data = request(method, branch=f"z9hG4bKr{cseq}", to_tag="tok1", cseq=cseq, extra=extra).to_bytes()
        if body:
            head = data.split(b"Content-Length:")[0]
            data = head + (f"Content-Type: {ctype}\r\n" if ctype else "").encode() + \
                f"Content-Length: {len(body.encode())}\r\n\r\n{body}".encode()  # fmt: skip
        sends, events = h.feed(data)
        finals = [m.status for m, _, _ in sends if isinstance(m, Response) and m.status >= 200]
        assert len(finals) == 1 and (finals[0] < 500 or finals[0] in (500, 501)), (method, finals)
        answer = next(m for m, _, _ in sends if isinstance(m, Response) and m.status >= 200)
        assert answer.status != 405 or answer.headers.get("allow")  # what is allowed instead (§21.4.6)
        assert answer.status != 415 or answer.headers.get("accept")  # and what bodies are (§21.4.13)
        assert not any(isinstance(e, CallEnded) for e in events)
        event(f"{method} {finals[0]}")
    assert leg.state is LegState.CONFIRMED
    h.ua.hangup(leg, h.now)
    assert [m.method for m, _, _ in h.drain()[0] if isinstance(m, Request)] == ["BYE"]
