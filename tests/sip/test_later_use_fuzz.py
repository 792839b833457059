"""Property test: what the core accepts it can use later. Whatever Contact and Record-Route an INVITE or
a re-INVITE carries, it is refused when it comes (4xx), or the call can be answered, its re-INVITE
answered and its BYE built and sent: no use of a stored header ever raises."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ivrd.sip.events import CallEnded, IncomingCall
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
    (incoming,) = events
    assert isinstance(incoming, IncomingCall)
    leg = incoming.leg
    h.ua.answer(leg, media_address="10.0.0.1", media_port=20000, now=h.now)
    ok = next(m for m, _, _ in h.drain()[0] if isinstance(m, Response) and m.status == 200)
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
