"""Property test: an offer the SDP layer accepts can be used by the media core. Offers of every shape go
through parse, answer, a session, its ticks, packets in, a renegotiation and an RTCP report; the only
thing allowed to escape is the SDP layer's own refusal."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ivrd.media.rtp import build_rtp
from ivrd.media.rtp_session import MediaSettings, RtpSession
from ivrd.sip.errors import ParseError, SdpError
from ivrd.sip.sdp import AudioSession, answer_offer, parse_sdp

ADDRESSES = ["10.0.0.2", "0.0.0.0", "::1", "IN IP6 ::1", "255.255.255.255", "10.0.0.2/127", "host.example", ""]
PORTS = ["4000", "0", "1", "65535", "65536", "4000/2", "-1", "99999999999"]
FORMATS = ["0", "8", "101", "0 101", "8 0 101", "96 101", "18", "0 0", "127", "128", ""]
ATTRIBUTES = ["a=rtpmap:101 telephone-event/8000", "a=rtpmap:96 PCMU/8000", "a=rtpmap:101 telephone-event/16000",
              "a=fmtp:101 0-15", "a=fmtp:101 0-16", "a=ptime:20", "a=ptime:0", "a=ptime:999999", "a=sendonly",
              "a=recvonly", "a=inactive", "a=rtcp-mux", "a=rtpmap:0 PCMA/8000", "a=rtpmap:8",
              "a=maxptime:10"]  # fmt: skip


@st.composite
def offer(draw: st.DrawFn) -> bytes:
    address = draw(st.sampled_from(ADDRESSES))
    connection = f"c={address}" if address.startswith("IN ") else f"c=IN IP4 {address}"
    lines = ["v=0", "o=caller 1 1 IN IP4 10.0.0.2", "s=-", connection, "t=0 0",
             f"m=audio {draw(st.sampled_from(PORTS))} RTP/AVP {draw(st.sampled_from(FORMATS))}".rstrip(),
             *draw(st.lists(st.sampled_from(ATTRIBUTES), max_size=5))]  # fmt: skip
    if draw(st.booleans()):
        lines.append("m=audio 5000 RTP/AVP 0")
    return ("\r\n".join(lines) + "\r\n").encode()


def usable(body: bytes) -> AudioSession | None:
    try:
        _, audio = answer_offer(parse_sdp(body), codecs=("PCMU", "PCMA"), address="10.0.0.1", port=20000,
                                session_id=1, version=1)  # fmt: skip
    except (SdpError, ParseError):
        return None
    return audio


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=offer(), second=offer())
def test_an_accepted_offer_works_in_the_media_core(first: bytes, second: bytes) -> None:
    audio = usable(first)
    if audio is None:
        event("refused")
        return
    event("used")
    core = RtpSession(audio, MediaSettings(), on_digit=lambda _: None, on_digit_start=lambda _: None)
    core.started(0, 0.0)
    source = (audio.remote_address, audio.remote_port)
    for index in range(3):
        core.receive(build_rtp(audio.payload_type, False, index, index * 160, 7, b"\xff" * 160), source, index * 0.02)
        if audio.telephone_event is not None:
            core.receive(build_rtp(audio.telephone_event, True, 10 + index, 0, 7, b"\x05\x8a\x00\xa0"), source, 0.05)
        packet = core.tick(index, index * 0.02)
        if packet is not None:
            core.sent_packet(packet)
    core.send_digit("1")
    renegotiated = usable(second)
    if renegotiated is not None:
        core.update(renegotiated)
        core.tick(3, 0.06)
    assert core.report(1.0, 1_700_000_000.0)
    assert core.summary()["rtp_received"] == core.packet_counts().received
