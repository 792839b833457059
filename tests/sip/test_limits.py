from ivrd.sip.flow import SipFlow
from ivrd.sip.limits import SEEN_SOURCES, RateLimiter, SourceList
from ivrd.sip.settings import UaSettings
from tests.sip.helpers import OFFER, request
from tests.sip.test_ua import Harness, statuses


def test_bucket_allows_the_burst_then_the_rate():
    limiter = RateLimiter(rate=2.0, burst=3.0)
    assert [limiter.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", 0.0)  # another source has its own bucket
    assert not limiter.allow("a", 0.4)  # 0.8 of a token so far
    assert limiter.allow("a", 0.5) and not limiter.allow("a", 0.5)


def test_memory_is_bounded_and_zero_rate_is_off():
    limiter = RateLimiter(rate=1.0, burst=1.0, max_keys=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(limiter._buckets) == 100
    assert all(RateLimiter(0.0, 1.0).allow("x", 0.0) for _ in range(10))


def test_source_list_takes_addresses_and_networks():
    trusted = SourceList(["10.0.0.0/8", "::1", "192.0.2.7"])
    assert "10.9.8.7" in trusted and "::1" in trusted and "192.0.2.7" in trusted
    assert "192.0.2.8" not in trusted and "not-an-ip" not in trusted and "2001:db8::1" not in trusted


def test_source_list_answers_stay_right_and_bounded_under_a_spray_of_sources():
    trusted = SourceList(["10.0.0.0/8"])
    sprayed = [f"203.0.{i // 256}.{i % 256}" for i in range(SEEN_SOURCES + 100)]
    assert not any(source in trusted for source in sprayed)
    assert all(source in trusted for source in ("10.1.2.3", "10.1.2.3", "10.255.0.1"))
    assert len(trusted._seen) <= SEEN_SOURCES and "192.0.2.1" not in trusted and "not-an-ip" not in trusted


def test_a_flooding_source_gets_503_while_others_and_trusted_ones_are_served():
    h = Harness(invite_rate=1.0, invite_burst=2.0, trusted_sources=("10.0.0.0/24",))
    flood = SipFlow("udp", ("10.0.0.1", 5060), ("203.0.113.66", 5062))

    def outcome(call_id: str, flow: SipFlow) -> str:  # the call's, or the status it was turned away with
        sends, events = h.feed(request(call_id=call_id, branch=f"z9hG4bK{call_id}", body=OFFER), flow)
        return ",".join([str(s) for s in statuses(sends)] + [type(e).__name__ for e in events])

    assert [outcome(f"f{i}", flood) for i in range(5)] == ["IncomingCall"] * 2 + ["503,MessageRejected"] * 3
    other = SipFlow("udp", ("10.0.0.1", 5060), ("198.51.100.5", 5062))
    assert outcome("o", other) == "IncomingCall"
    trusted = SipFlow("udp", ("10.0.0.1", 5060), ("10.0.0.2", 5062))
    for i in range(10):
        assert outcome(f"t{i}", trusted) == "IncomingCall"
    assert UaSettings().invite_rate == 0.0  # the core itself limits nothing unless told
