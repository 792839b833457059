"""The user-agent core on a fake clock: call flows, dialogs, every status code it answers."""

from __future__ import annotations

import itertools

import pytest

from ivrd.sip.events import (
    AuthFailed,
    CallConfirmed,
    CallEnded,
    DtmfInfo,
    IncomingCall,
    MediaChanged,
    ReferAnswered,
    ReferProgress,
    Registered,
)
from ivrd.sip.flow import SipFlow
from ivrd.sip.leg import LegState
from ivrd.sip.message import Response, parse_message
from ivrd.sip.settings import UaSettings
from ivrd.sip.ua import UserAgent
from tests.sip.helpers import OFFER, request
from tests.sip.test_auth import answer

FLOW = SipFlow("udp", ("10.0.0.1", 5060), ("10.0.0.2", 5062))


class Harness:
    def __init__(self, **settings):
        counter = itertools.count(1)
        self.ua = UserAgent(UaSettings(**settings), new_token=lambda: f"tok{next(counter)}")
        self.now = 0.0
        self.timed_events = []  # events raised by timers during advance()

    def feed(self, message, flow=FLOW):
        data = message if isinstance(message, bytes) else message.to_bytes()
        self.ua.receive_datagram(data, flow, self.now)
        return self.drain()

    def drain(self):
        sends = self.ua.datagrams_to_send()
        return [(parse_message(s.data), s.host, s.port) for s in sends], list(iter(self.ua.next_event, None))

    def advance(self, until):
        """Run the fake clock to ``until``, deadline by deadline; return every send on the way."""
        sent = []
        while (deadline := self.ua.get_timer()) is not None and deadline <= until:
            self.now = deadline
            self.ua.handle_timer(self.now)
            sends, events = self.drain()
            sent.extend((self.now, m) for m, _, _ in sends)
            self.timed_events.extend(events)
        self.now = until
        return sent

    def call(self, **kw):
        sends, events = self.feed(request(body=OFFER, **kw))
        assert sends == []  # the 100 (Trying) waits: an answer in time makes it needless
        (incoming,) = events
        assert isinstance(incoming, IncomingCall)
        return incoming.leg

    def answered(self):
        leg = self.call()
        self.ua.ring(leg, self.now)
        self.ua.answer(leg, media_address="10.0.0.1", media_port=20000, now=self.now)
        sends, _ = self.drain()
        ok = sends[-1][0]
        return leg, ok


def statuses(sends):
    return [m.status for m, _, _ in sends if isinstance(m, Response)]


def test_invite_ring_answer_ack_bye():
    h = Harness()
    leg = h.call()
    assert leg.audio.codec == "PCMA"
    h.ua.ring(leg, 0.0)
    h.ua.answer(leg, media_address="10.0.0.1", media_port=20000, now=0.0)
    sends, _ = h.drain()
    assert statuses(sends) == [180, 200]
    ok, host, port = sends[1]
    assert (host, port) == ("10.0.0.2", 5062)
    assert ok.to.tag == "tok1" and sends[0][0].to.tag == "tok1"
    assert ok.contacts[0].uri.host == "10.0.0.1"
    assert b"m=audio 20000 RTP/AVP 8 101" in ok.body
    _, events = h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK"))
    assert [type(e) for e in events] == [CallConfirmed]
    sends, events = h.feed(request("BYE", branch="z9hG4bKbye", to_tag="tok1", cseq=2))
    assert statuses(sends) == [200]
    assert [(type(e), e.reason) for e in events] == [(CallEnded, "bye")]
    assert h.ua.active_calls == 0


def test_2xx_is_retransmitted_until_ack():
    h = Harness()
    h.answered()
    sent = h.advance(3.0)
    assert [t for t, m in sent if m.status == 200] == [0.5, 1.5]
    h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK"))
    assert not [m for _, m in h.advance(40.0) if getattr(m, "status", None) == 200]


def test_no_ack_ends_the_call_with_bye():
    h = Harness()
    leg, _ = h.answered()
    sent = h.advance(32.0)
    assert [t for t, m in sent if getattr(m, "status", 0) == 200] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5,
                                                                       23.5, 27.5, 31.5]
    byes = [m for _, m in sent if getattr(m, "method", "") == "BYE"]
    assert len(byes) == 1 and byes[0].to.tag == "ft" and byes[0].from_.tag == "tok1"
    _sends, events = h.feed(parse_message(Response(200, "OK", byes[0].headers.copy()).to_bytes()))
    assert [(type(e), e.reason) for e in events] == [(CallEnded, "ack-timeout")]
    assert leg.state is LegState.ENDED


def test_hangup_sends_bye_to_contact_and_retransmits():
    h = Harness()
    leg, _ = h.answered()
    h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK"))
    h.ua.hangup(leg, h.now)
    sends, _ = h.drain()
    (bye, host, port), = sends
    assert (bye.method, bye.uri, host, port) == ("BYE", "sip:caller@10.0.0.2:5062", "10.0.0.2", 5062)
    assert bye.cseq.number == 2
    sent = h.advance(40)
    assert [t for t, m in sent if getattr(m, "method", "") == "BYE"] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5,
                                                                          23.5, 27.5, 31.5]
    assert leg.state is LegState.ENDED


def test_hangup_before_ack_waits_for_the_ack():
    h = Harness()
    leg, _ = h.answered()
    h.ua.hangup(leg, h.now)
    sends, _ = h.drain()
    assert sends == []
    sends, _ = h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK"))
    assert [m.method for m, _, _ in sends] == ["BYE"]


def notify(status_line, cseq, event="refer"):
    return request("NOTIFY", branch=f"z9hG4bKn{cseq}", to_tag="tok1", cseq=cseq, body=status_line,
                   content_type="message/sipfrag;version=2.0", extra=f"Event: {event}\r\n")  # fmt: skip


def test_a_transfer_waits_for_the_ack_then_follows_the_refer_and_its_notifications():
    h = Harness()
    leg, _ = h.answered()
    assert h.ua.refer(leg, "sip:desk@pbx.example.com", h.now)
    assert h.drain() == ([], [])  # not before the ACK (§13.3.1.4)
    sends, _ = h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK"))
    (refer, host, port), = sends
    assert (refer.method, refer.headers.get("refer-to"), host, port) == (
        "REFER", "<sip:desk@pbx.example.com>", "10.0.0.2", 5062)  # fmt: skip
    assert refer.contacts and refer.cseq.number == 2
    _, events = h.feed(parse_message(Response(202, "Accepted", refer.headers.copy()).to_bytes()))
    assert events == [ReferAnswered(leg, 202)]
    sends, events = h.feed(notify("SIP/2.0 100 Trying\r\n", 2))
    assert statuses(sends) == [200] and events == []  # provisional: not the outcome yet
    sends, events = h.feed(notify("SIP/2.0 486 Busy Here\r\n", 3))
    assert statuses(sends) == [200] and events == [ReferProgress(leg, 486)]
    sends, events = h.feed(notify("SIP/2.0 200 OK\r\n", 4, event="presence"))
    assert statuses(sends) == [489] and [e.status for e in events] == [489]  # logged as refused


def test_a_refer_that_is_refused_or_unanswered_is_reported():
    h = Harness()
    leg, _ = h.answered()
    h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK"))
    h.ua.refer(leg, "sip:desk@pbx.example.com", h.now)
    (refer, _, _), = h.drain()[0]
    _, events = h.feed(parse_message(Response(403, "Forbidden", refer.headers.copy()).to_bytes()))
    assert events == [ReferAnswered(leg, 403)]
    h.ua.refer(leg, "sip:desk@pbx.example.com", h.now)
    h.drain()
    h.advance(40)
    assert h.timed_events == [ReferAnswered(leg, 408)] and leg.state is LegState.CONFIRMED
    assert not h.ua.refer(h.call(call_id="c2", from_tag="x"), "sip:desk@pbx.example.com", h.now)  # not answered


def test_cancel_before_answer():
    h = Harness()
    leg = h.call()
    sends, events = h.feed(request("CANCEL"))
    assert statuses(sends) == [200, 487]
    assert [(type(e), e.reason) for e in events] == [(CallEnded, "cancel")]
    sends, _ = h.feed(request("ACK", to_tag="tok1", cseq_method="ACK"))  # ACK for the 487, same branch
    assert sends == []
    assert leg.transaction.state.value == "confirmed"
    sends, _ = h.feed(request("CANCEL", branch="z9hG4bKnone"))
    assert statuses(sends) == [481]


def test_invite_retransmission_is_absorbed():
    h = Harness()
    h.call()
    sends, events = h.feed(request(body=OFFER))
    assert statuses(sends) == [100] and events == []  # the caller waits: told at once it is being handled
    assert h.advance(1.0) == []  # and that 100 was the one


def test_the_100_goes_only_when_the_call_is_not_answered_within_200_ms():
    h = Harness()
    h.call(call_id="slow", branch="z9hG4bKslow")
    assert [(at, m.status) for at, m in h.advance(1.0)] == [(0.2, 100)]  # answered later, or not at all
    h.ua.ring(h.call(call_id="rung", branch="z9hG4bKrung"), h.now)  # a 180 within the 200 ms...
    assert statuses(h.drain()[0]) == [180]
    assert h.advance(2.0) == []  # ...and no 100 after it
    leg = h.call(call_id="quick", branch="z9hG4bKquick")
    h.ua.answer(leg, media_address="10.0.0.1", media_port=20000, now=h.now + 0.1)
    assert statuses(h.drain()[0]) == [200]
    assert all(m.status == 200 for _, m in h.advance(3.0))  # the 2xx again until its ACK, never a 100


def test_reinvite_hold_and_resume_and_glare_guard():
    h = Harness()
    _leg, _ = h.answered()
    h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK"))
    sends, events = h.feed(request(branch="z9hG4bKre1", to_tag="tok1", cseq=2, body=OFFER + "a=sendonly\r\n"))
    ok = sends[-1][0]
    assert ok.status == 200 and b"a=recvonly" in ok.body and b"o=ivrd" in ok.body
    assert b" 2 IN IP4" in ok.body  # version bumped
    assert [type(e) for e in events] == [MediaChanged] and events[0].audio.on_hold
    sends, _ = h.feed(request(branch="z9hG4bKre2", to_tag="tok1", cseq=3, body=OFFER))
    assert statuses(sends) == [500]  # the previous 2xx is not ACKed yet (§14.2)
    h.feed(request("ACK", branch="z9hG4bKack2", to_tag="tok1", cseq=2, cseq_method="ACK"))
    sends, events = h.feed(request(branch="z9hG4bKre3", to_tag="tok1", cseq=4, body=OFFER))
    assert b"a=sendrecv" in sends[-1][0].body and not events[0].audio.on_hold


def test_offerless_invite_gets_an_offer_and_the_ack_answers():
    h = Harness()
    _, events = h.feed(request())
    leg = events[0].leg
    h.ua.answer(leg, media_address="10.0.0.1", media_port=20000, now=0.0)
    sends, _ = h.drain()
    assert b"m=audio 20000 RTP/AVP 0 8 101" in sends[-1][0].body
    answer = OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 0 101")
    _, events = h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK", body=answer))
    assert [type(e) for e in events] == [CallConfirmed]
    assert leg.audio.codec == "PCMU" and leg.audio.remote_port == 4000


@pytest.mark.parametrize(
    ("body", "ctype", "signal"),
    [("Signal=5\r\nDuration=160\r\n", "application/dtmf-relay", ("5", 160)),
     ("Signal=11\r\nDuration=100\r\n", "application/dtmf-relay", ("#", 100)),
     ("*", "application/dtmf", ("*", None))],
)
def test_info_dtmf(body, ctype, signal):
    h = Harness()
    h.answered()
    h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK"))
    sends, events = h.feed(request("INFO", branch="z9hG4bKi", to_tag="tok1", cseq=2, body=body, content_type=ctype))
    assert statuses(sends) == [200]
    assert isinstance(events[0], DtmfInfo) and (events[0].digit, events[0].duration_ms) == signal


def test_in_dialog_cseq_must_grow():
    h = Harness()
    h.answered()
    sends, _ = h.feed(request("INFO", branch="z9hG4bKi", to_tag="tok1", cseq=1, body="5",
                              content_type="application/dtmf"))
    assert statuses(sends) == [500]


@pytest.mark.parametrize(
    ("req", "status", "header"),
    [
        (request("FOO"), 501, "allow"),
        (request("REGISTER"), 405, "allow"),
        (request("OPTIONS", extra="Max-Forwards: 0\r\n".replace("Max", "X-Max")), 200, "accept"),
        (request("OPTIONS", uri="im:alice@example.com"), 416, None),
        (request("OPTIONS", extra="Require: 100rel, foo\r\n"), 420, "unsupported"),
        (request(body="<xml/>", content_type="application/xml"), 415, "accept"),
        (request(body=OFFER, extra="Accept: text/plain\r\n"), 406, None),
        (request(body=OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 18")), 488, None),
        (request(body="v=0\r\nbroken\r\n"), 400, None),
        (request("BYE", to_tag="nope"), 481, None),
        (request("INVITE", body=OFFER, extra="Contact: <sip:a@b>, \"broken\r\n"), 400, None),
    ],
)
def test_requests_answered_with_the_right_status(req, status, header):
    h = Harness()
    sends, _ = h.feed(req)
    assert statuses(sends)[-1] == status
    if header:
        assert sends[-1][0].headers.get(header)


def test_max_forwards_zero_is_483():
    h = Harness()
    data = request("OPTIONS").to_bytes().replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    sends, _ = h.feed(data)
    assert statuses(sends) == [483]


def test_call_limit_answers_503_with_retry_after():
    h = Harness(max_calls=1)
    h.call()
    sends, _ = h.feed(request(branch="z9hG4bK2", call_id="c2", body=OFFER))
    assert statuses(sends) == [503] and sends[0][0].headers.get("retry-after") == "5"


def test_unparsable_request_gets_400_to_its_source_when_via_is_readable():
    h = Harness()
    data = request("OPTIONS").to_bytes().replace(b"OPTIONS sip:", b"OPTIONS  sip:")
    sends, _ = h.feed(data)
    assert statuses(sends) == [400]
    assert sends[0][0].headers.get("call-id") == "c1"
    assert h.feed(b"\x00\x01garbage")[0] == []


@pytest.mark.parametrize("broken", [
    (b"To: <sip:ivr@10.0.0.1>", b"To: <sip:i\xb5r@10.0.0.1>"),  # not UTF-8
    (b"From: <sip:caller@10.0.0.2>", b"From: <sip:caller@10.0.0.2"),  # no closing bracket
    (b"Call-ID: c1", b"Call-ID: c\xff\xfe1"),
])  # fmt: skip
def test_a_request_broken_only_in_from_to_or_call_id_gets_400_echoing_them_byte_for_byte(broken):
    """A client (sipsak's random mode, a phone with a broken header) hears why; it matches the answer by
    its Via branch and CSeq, and finds its own header octets in it."""
    h = Harness()
    good, bad = broken
    data = request("OPTIONS").to_bytes()
    assert good in data
    h.ua.receive_datagram(data.replace(good, bad), FLOW, h.now)
    (sent,) = h.ua.datagrams_to_send()
    assert sent.data.startswith(b"SIP/2.0 400 ") and bad in sent.data
    assert b"branch=z9hG4bK1" in sent.data and b"CSeq: 1 OPTIONS" in sent.data


def test_a_request_whose_via_or_cseq_is_broken_cannot_be_answered():
    h = Harness()
    data = request("OPTIONS").to_bytes()
    broken = ((b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS"), (b"Via: SIP/2.0/UDP 10.0.0.2", b"Via: SIP/2.0/UDP 10.\xb5"))
    for good, bad in broken:
        assert good in data
        sends, events = h.feed(data.replace(good, bad))
        assert sends == [] and events[0].status is None


def test_responses_follow_rport_and_received():
    h = Harness()
    nat = SipFlow("udp", ("10.0.0.1", 5060), ("203.0.113.9", 40000))
    data = request("OPTIONS").to_bytes().replace(b"branch=z9hG4bK1", b"branch=z9hG4bK1;rport")
    sends, _ = h.feed(data, nat)
    response, host, port = sends[0]
    assert (host, port) == ("203.0.113.9", 40000)
    assert response.top_via.params["received"] == "203.0.113.9"
    assert response.top_via.params["rport"] == "40000"
    sends, _ = h.feed(request("OPTIONS", branch="z9hG4bK2"), nat)  # no rport: received + Via port
    assert sends[0][1:] == ("203.0.113.9", 5062)


def test_tcp_responses_go_back_over_the_connection():
    h = Harness()
    tcp = SipFlow("tcp", ("10.0.0.1", 5060), ("10.0.0.2", 41000), connection=7)
    sends, _ = h.feed(request("OPTIONS"), tcp)
    assert sends[0][1:] == ("10.0.0.2", 41000)


def test_rfc2543_invite_without_contact_is_reached_at_its_from_uri():
    h = Harness()
    data = request(body=OFFER).to_bytes().replace(b"Contact: <sip:caller@10.0.0.2:5062>\r\n", b"")
    _, events = h.feed(data)
    leg = events[0].leg
    h.ua.answer(leg, media_address="10.0.0.1", media_port=20000, now=0.0)
    assert leg.dialog.remote_target.host == "10.0.0.2" and leg.dialog.remote_target.port is None


def test_reinvite_2xx_is_retransmitted_after_the_first_transaction_ended():
    h = Harness()
    h.answered()
    h.feed(request("ACK", branch="z9hG4bKack", to_tag="tok1", cseq_method="ACK"))
    h.advance(40.0)  # the INVITE server transaction is long gone (Timer L)
    h.feed(request(branch="z9hG4bKre1", to_tag="tok1", cseq=2, body=OFFER))
    start = h.now
    sent = h.advance(start + 2.0)
    assert [round(t - start, 3) for t, m in sent if getattr(m, "status", 0) == 200] == [0.5, 1.5]


def register(h, *, cseq, credentials="", contact="<sip:1001@10.0.0.2:5062>", expires="", user="1001", extra=""):
    extra += f"Authorization: {credentials}\r\n" if credentials else ""
    extra += f"Expires: {expires}\r\n" if expires else ""
    text = (f"REGISTER sip:10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKr{cseq}\r\n"
            f"From: <sip:{user}@10.0.0.1>;tag=r1\r\nTo: <sip:{user}@10.0.0.1>\r\nCall-ID: reg1\r\n"
            f"CSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\nContact: {contact}\r\n{extra}Content-Length: 0\r\n\r\n")
    return h.feed(text.encode())


def test_register_is_challenged_then_bound_refreshed_and_removed():
    h = Harness(accounts={"1001": "s3cret"})
    sends, events = register(h, cseq=1)
    (challenge, _, _), = sends
    assert challenge.status == 401 and [(type(e).__name__, e.status) for e in events] == [("MessageRejected", 401)]
    sha256, md5 = challenge.headers.get_all("www-authenticate")
    assert "algorithm=SHA-256" in sha256 and "algorithm=MD5" in md5
    auth = h.ua.registration.auth
    sends, events = register(h, cseq=2, credentials=answer(auth, sha256, uri="sip:10.0.0.1"), expires="120")
    (ok, _, _), = sends
    assert ok.status == 200 and ok.headers.get("contact") == "<sip:1001@10.0.0.2:5062>;expires=120"
    assert isinstance(events[0], Registered) and events[0].contacts == ("sip:1001@10.0.0.2:5062",)
    assert [b.contact for b in h.ua.registrar.contacts("1001", 100.0)] == ["sip:1001@10.0.0.2:5062"]
    assert h.ua.registrar.contacts("1001", 121.0) == []  # bindings expire
    sends, _ = register(h, cseq=3, credentials=answer(auth, sha256, uri="sip:10.0.0.1", nc="00000002"),
                        expires="30")  # fmt: skip
    assert statuses(sends) == [423] and sends[0][0].headers.get("min-expires") == "60"
    sends, events = register(h, cseq=4, credentials=answer(auth, md5, uri="sip:10.0.0.1", user="1001",
                                                           password="nope"))  # fmt: skip
    assert statuses(sends) == [401] and [e.reason for e in events if isinstance(e, AuthFailed)] == ["wrong password"]
    sends, _ = register(h, cseq=5, credentials=answer(auth, sha256, uri="sip:10.0.0.1", nc="00000003"),
                        user="1002")  # fmt: skip
    assert statuses(sends) == [403]  # 1001's credentials do not register 1002


def test_register_without_accounts_is_405():
    h = Harness()
    sends, _ = register(h, cseq=1)
    assert statuses(sends) == [405] and "REGISTER" not in sends[0][0].headers.get("allow")


def test_a_registration_through_a_proxy_keeps_its_path_and_echoes_it():
    h = Harness(accounts={"1001": "s3cret"})
    (challenge, _, _), = register(h, cseq=1)[0]
    path = "<sip:10.0.0.9:5060;lr;received=sip:10.0.0.2:5062>"
    extra = f"Path: {path}\r\nRequire: path\r\nSupported: path\r\n"
    md5 = challenge.headers.get_all("www-authenticate")[1]
    credentials = answer(h.ua.registration.auth, md5, uri="sip:10.0.0.1")
    sends, _ = register(h, cseq=2, credentials=credentials, extra=extra)
    (ok, _, _), = sends
    assert ok.status == 200 and ok.headers.get("path") == path
    (binding,) = h.ua.registrar.contacts("1001", 1.0)
    assert binding.path == (path,)
    credentials = answer(h.ua.registration.auth, md5, uri="sip:10.0.0.1", nc="00000002")
    sends, _ = register(h, cseq=3, credentials=credentials, extra="Path: <sip:10.0.0.9\r\n")
    assert statuses(sends) == [400]  # a Path that is no route


def test_a_draining_node_answers_options_503():
    h = Harness()
    h.ua.draining = True
    sends, _ = h.feed(request("OPTIONS"))
    assert statuses(sends) == [503]  # a load balancer's probe: send new calls elsewhere
