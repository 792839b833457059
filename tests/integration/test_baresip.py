"""A real softphone (baresip) calls the daemon: rung, answered with G.711, hung up from either side."""

from __future__ import annotations

import pytest

from tests.integration.baresip import CONFIG_DIR, Baresip
from tests.integration.daemon import daemon_running
from tests.integration.logfmt import events
from tests.integration.peers import require

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")]


@pytest.fixture
def phone():
    require("baresip")
    phone = Baresip()
    yield phone
    phone.close()


def test_baresip_call_answered_then_hung_up_by_the_caller(phone):
    with daemon_running(sip_section="  answer_after: 0.3\n") as daemon:  # rung first (at once: no 180)
        phone.command("dial", f"sip:ivr@127.0.0.1:{daemon.port}")
        established = phone.wait_event("CALL_ESTABLISHED")
        phone.wait_event("CALL_RTPESTAB")  # the daemon's RTP reached the phone
        phone.command("hangup")
        closed = phone.wait_event("CALL_CLOSED")
    assert established["peeruri"] == f"sip:ivr@127.0.0.1:{daemon.port}"
    seen = phone.seen
    assert seen.index("CALL_RINGING") < seen.index("CALL_ESTABLISHED") < seen.index("CALL_CLOSED")
    assert seen.index("CALL_RTPESTAB") < seen.index("CALL_CLOSED")  # RTP may even beat the 200 OK there
    assert closed["param"] == "Connection reset by user"


def test_baresip_call_ended_by_the_daemon(phone):
    with daemon_running("calls:\n  max_duration: 1\n") as daemon:
        phone.command("dial", f"sip:ivr@127.0.0.1:{daemon.port}")
        phone.wait_event("CALL_ESTABLISHED")
        closed = phone.wait_event("CALL_CLOSED")
    assert closed["param"] == "Connection reset by peer"
    assert "CALL_RINGING" not in phone.seen  # answered at once: its 200 OK was the first response


def test_an_agent_phone_registers_with_digest_and_a_wrong_password_registers_nothing():
    require("baresip")
    # baresip 1.0's libre gives up when any challenge is SHA-256 (the unit tests cover SHA-256): MD5 only
    with daemon_running(sip_section='  accounts: {"1001": "s3cret"}\n  digest_algorithms: [MD5]\n') as daemon:
        good = Baresip(account=f"<sip:1001@127.0.0.1:{daemon.port};transport=udp>;auth_pass=s3cret;regint=600;"
                               "audio_codecs=PCMU,PCMA")  # fmt: skip
        try:  # it registers as it starts, before its control socket is up: the daemon's log says it
            daemon.wait_for_event("sip.registered")
        finally:
            good.close()
        bad = Baresip(account=f"<sip:1001@127.0.0.1:{daemon.port};transport=udp>;auth_pass=guess;regint=600;"
                              "audio_codecs=PCMU,PCMA")  # fmt: skip
        try:
            daemon.wait_for_event("security.auth_failed")
        finally:
            bad.close()
    (registered,) = events(daemon.final_log, "sip.registered")[:1]
    assert registered["user"] == "1001" and "@127.0.0.1:" in registered["contacts"]
    failures = events(daemon.final_log, "security.auth_failed")
    assert failures and all((f["user"], f["remote"], f["reason"]) == ("1001", "127.0.0.1", "wrong password")
                            for f in failures)  # fmt: skip
    assert len(events(daemon.final_log, "sip.registered")) in (1, 2)  # the good phone, and its unregister
