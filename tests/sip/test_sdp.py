import pytest

from ivrd.sip.errors import SdpError
from ivrd.sip.sdp import accept_answer, answer_offer, make_offer, parse_sdp
from tests.sip.helpers import OFFER


def answer(offer_text: str, codecs=("PCMU", "PCMA")):
    return answer_offer(parse_sdp(offer_text.encode()), codecs=codecs, address="10.0.0.1", port=20000,
                        session_id=5, version=1)


def test_answer_keeps_the_offerers_preference_and_telephone_event():
    sdp, audio = answer(OFFER)
    assert (audio.codec, audio.payload_type, audio.telephone_event) == ("PCMA", 8, 101)
    assert (audio.remote_address, audio.remote_port, audio.direction) == ("10.0.0.2", 4000, "sendrecv")
    text = sdp.to_bytes().decode()
    assert "m=audio 20000 RTP/AVP 8 101\r\n" in text
    assert "a=rtpmap:101 telephone-event/8000\r\n" in text
    assert "c=IN IP4 10.0.0.1\r\n" in text


def test_static_payload_types_without_rtpmap_and_our_codec_list():
    _, audio = answer(OFFER, codecs=("PCMU",))
    assert (audio.codec, audio.payload_type, audio.telephone_event) == ("PCMU", 0, 101)


@pytest.mark.parametrize(("attr", "ours"), [("sendonly", "recvonly"), ("recvonly", "sendonly"),
                                            ("inactive", "inactive"), ("sendrecv", "sendrecv")])
def test_direction_is_mirrored(attr, ours):
    sdp, audio = answer(OFFER + f"a={attr}\r\n")
    assert audio.direction == ours
    assert f"a={ours}" in sdp.to_bytes().decode()


def test_rfc2543_hold_address_means_sendonly():
    _, audio = answer(OFFER.replace("c=IN IP4 10.0.0.2", "c=IN IP4 0.0.0.0"))
    assert audio.on_hold


def test_other_streams_are_refused_with_port_zero():
    text = OFFER + "m=video 5000 RTP/AVP 31\r\n"
    sdp, _ = answer(text)
    assert "m=video 0 RTP/AVP 31" in sdp.to_bytes().decode()


def test_ptime_and_ipv6():
    _sdp, audio = answer(OFFER.replace("IN IP4 10.0.0.2", "IN IP6 2001:db8::2") + "a=ptime:30\r\n")
    assert (audio.remote_address, audio.ptime) == ("2001:db8::2", 30)


@pytest.mark.parametrize(
    ("mutation", "status"),
    [
        (("m=audio 4000 RTP/AVP 8 0 101", "m=audio 4000 RTP/AVP 18"), 488),  # G.729 only
        (("m=audio 4000 RTP/AVP 8 0 101", "m=audio 4000 RTP/SAVP 8"), 488),
        (("m=audio 4000 RTP/AVP 8 0 101", "m=audio 4000 RTP/AVP 4294967296"), 400),
        (("a=rtpmap:101 telephone-event/8000", "a=rtpmap:300 telephone-event/8000"), 400),
        (("m=audio 4000", "m=audio 99999"), 400),
        (("v=0", "v=1"), 400),
        (("a=fmtp:101 0-15", "a=fmtp:101 0-15\x00"), 400),
    ],
)
def test_bad_or_unacceptable_offers(mutation, status):
    with pytest.raises(SdpError) as info:
        answer(OFFER.replace(*mutation))
    assert info.value.status == status


def test_offer_and_answer_for_an_offerless_invite():
    offer = make_offer(codecs=("PCMA", "PCMU"), address="10.0.0.1", port=20000, session_id=1, version=1)
    text = offer.to_bytes().decode()
    assert "m=audio 20000 RTP/AVP 8 0 101" in text
    peer_answer = parse_sdp(b"v=0\r\no=p 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
                            b"m=audio 7000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
    audio = accept_answer(parse_sdp(offer.to_bytes()), peer_answer)
    assert (audio.codec, audio.remote_port, audio.telephone_event) == ("PCMU", 7000, 101)


def test_rtpmap_without_clock_rate_is_ignored_and_long_session_ids_parse():
    text = OFFER.replace("o=caller 1 1", "o=caller 971731711378798081 1")
    text += "m=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n"
    sdp = parse_sdp(text.encode())
    assert sdp.origin[1] == 971731711378798081
    assert sdp.media[1].rtpmaps == {}


@pytest.mark.parametrize("host", ["pc33.atlanta.example.com", "localhost"])
def test_a_host_name_for_media_is_parsed_but_refused_for_use_never_resolved(host):
    offer = OFFER.replace("c=IN IP4 10.0.0.2", f"c=IN IP4 {host}")
    assert parse_sdp(offer.encode()).connection == host  # legal SDP
    with pytest.raises(SdpError) as refused:
        answer(offer)
    assert refused.value.status == 488 and "host name" in refused.value.reason
    with pytest.raises(SdpError):
        accept_answer(parse_sdp(OFFER.encode()), parse_sdp(offer.encode()))
