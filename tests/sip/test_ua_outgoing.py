"""Calls the user agent places (to agents' phones), on a fake clock: answer, failure, cancel, both hang-ups."""

from __future__ import annotations

import pytest

from ivrd.sip.build import make_response
from ivrd.sip.events import CallAnswered, CallEnded, CallRinging
from ivrd.sip.flow import SipFlow
from ivrd.sip.leg import LegState
from ivrd.sip.message import Request
from tests.sip.helpers import OFFER, request
from tests.sip.test_ua import Harness

PHONE = SipFlow("udp", ("10.0.0.1", 5060), ("10.0.0.9", 5070))
ANSWER = OFFER.replace("m=audio 4000 RTP/AVP 8 0 101", "m=audio 4000 RTP/AVP 0 101")


def place(h: Harness):
    leg = h.ua.call("sip:alice@10.0.0.9:5070", host="10.0.0.9", port=5070, flow=PHONE, caller="+1 555",
                    caller_name='Ann "A" Lee', media_address="10.0.0.1", media_port=20000,
                    now=h.now, extra=(("call-info", "<http://ivrd/calls/1>;purpose=info"),))
    sends, events = h.drain()
    assert len(sends) == 1 and not events
    invite, host, port = sends[0]
    assert isinstance(invite, Request) and (host, port) == ("10.0.0.9", 5070)
    return leg, invite


def reply(invite, status, *, body="", to_tag="ph"):
    extra = (("contact", "<sip:alice@10.0.0.9:5070>"),) + ((("content-type", "application/sdp"),) if body else ())
    return make_response(invite, status, to_tag=to_tag if status > 100 else None, extra=extra, body=body.encode())


def test_the_invite_carries_the_caller_the_context_link_and_an_offer():
    h = Harness()
    leg, invite = place(h)
    assert leg.state is LegState.CALLING and leg.outgoing
    assert invite.uri == "sip:alice@10.0.0.9:5070"
    assert invite.from_.uri.user == "+1%20555" and leg.caller_name == 'Ann "A" Lee'
    assert invite.headers.get("call-info") == "<http://ivrd/calls/1>;purpose=info"
    assert b"m=audio 20000 RTP/AVP 0 8" in invite.body
    assert h.ua.active_calls == 0  # placed calls do not take the places of incoming ones


def test_answered_call_is_acked_and_agrees_on_audio():
    h = Harness()
    leg, invite = place(h)
    _, events = h.feed(reply(invite, 180), PHONE)
    assert [type(e) for e in events] == [CallRinging]
    sends, events = h.feed(reply(invite, 200, body=ANSWER), PHONE)
    assert [type(e) for e in events] == [CallAnswered]
    ack = sends[0][0]
    assert ack.method == "ACK" and ack.cseq.number == invite.cseq.number and ack.uri == "sip:alice@10.0.0.9:5070"
    assert ack.to.tag == "ph" and ack.top_via.branch != invite.top_via.branch
    assert leg.state is LegState.CONFIRMED and leg.audio.codec == "PCMU" and leg.audio.remote_port == 4000
    # a retransmitted 2xx (our ACK was lost) is ACKed again, and reported once
    sends, events = h.feed(reply(invite, 200, body=ANSWER), PHONE)
    assert [m.method for m, _, _ in sends] == ["ACK"] and not events


def test_either_side_hangs_up():
    h = Harness()
    leg, invite = place(h)
    h.feed(reply(invite, 200, body=ANSWER), PHONE)
    h.ua.hangup(leg, h.now)
    sends, _ = h.drain()
    bye = sends[0][0]
    assert bye.method == "BYE" and bye.cseq.number == 2 and (sends[0][1], sends[0][2]) == ("10.0.0.9", 5070)
    _, events = h.feed(make_response(bye, 200), PHONE)
    assert [(type(e), e.reason) for e in events] == [(CallEnded, "hangup")]

    other, invite = place(h)
    h.feed(reply(invite, 200, body=ANSWER), PHONE)
    bye = request("BYE", branch="z9hG4bKb", call_id=invite.call_id, from_tag="ph", to_tag=other.local_tag, cseq=5)
    sends, events = h.feed(bye, PHONE)
    assert sends[0][0].status == 200 and [(type(e), e.reason) for e in events] == [(CallEnded, "bye")]


@pytest.mark.parametrize("status", [486, 603, 404])
def test_refused_call_ends_with_its_status(status):
    h = Harness()
    leg, invite = place(h)
    sends, events = h.feed(reply(invite, status), PHONE)
    assert [m.method for m, _, _ in sends] == ["ACK"]  # the transaction's own ACK (§17.1.1.3)
    assert [(type(e), e.reason) for e in events] == [(CallEnded, "failed")] and leg.final_status == status


def test_cancel_waits_for_a_provisional_then_the_487_ends_it():
    h = Harness()
    leg, invite = place(h)
    h.ua.hangup(leg, h.now)
    assert h.drain() == ([], [])  # §9.1: no CANCEL before a provisional response
    sends, _ = h.feed(reply(invite, 100), PHONE)
    cancel = sends[0][0]
    assert cancel.method == "CANCEL" and cancel.top_via.branch == invite.top_via.branch
    assert cancel.cseq.number == invite.cseq.number and cancel.to.tag is None
    h.feed(make_response(cancel, 200), PHONE)
    _, events = h.feed(reply(invite, 487), PHONE)
    assert [(type(e), e.reason) for e in events] == [(CallEnded, "cancel")] and leg.final_status == 487


def test_a_2xx_racing_our_cancel_is_acked_and_ended():
    h = Harness()
    leg, invite = place(h)
    h.feed(reply(invite, 180), PHONE)
    h.ua.hangup(leg, h.now)
    h.drain()
    sends, events = h.feed(reply(invite, 200, body=ANSWER), PHONE)
    assert [m.method for m, _, _ in sends] == ["ACK", "BYE"] and not events


def test_cancel_with_no_final_answer_gives_up_after_64_t1():
    h = Harness()
    leg, invite = place(h)
    h.feed(reply(invite, 180), PHONE)
    h.ua.hangup(leg, h.now)
    h.drain()
    h.advance(31.9)
    assert leg.state is LegState.CALLING
    h.advance(32.1)
    assert [(type(e), e.reason) for e in h.timed_events] == [(CallEnded, "cancel")]


def test_no_answer_at_all_times_out_with_timer_b():
    h = Harness()
    leg, _ = place(h)
    sent = h.advance(40)
    assert [round(t, 1) for t, m in sent if m.method == "INVITE"] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert [(type(e), e.reason) for e in h.timed_events] == [(CallEnded, "timeout")] and leg.final_status == 408


def test_a_bad_answer_is_acked_then_ended_with_bye():
    h = Harness()
    leg, invite = place(h)
    sends, events = h.feed(reply(invite, 200, body=OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 18")), PHONE)
    assert [m.method for m, _, _ in sends] == ["ACK", "BYE"] and not any(isinstance(e, CallAnswered) for e in events)
    assert leg.state is LegState.ENDING
