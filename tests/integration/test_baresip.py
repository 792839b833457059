"""A real softphone (baresip) calls the daemon: rung, answered with G.711, hung up from either side."""

from __future__ import annotations

import pytest

from tests.integration.baresip import CONFIG_DIR, Baresip
from tests.integration.daemon import daemon_running
from tests.integration.peers import require

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")]


@pytest.fixture
def phone():
    require("baresip")
    phone = Baresip()
    yield phone
    phone.close()


def test_baresip_call_answered_then_hung_up_by_the_caller(phone):
    with daemon_running() as daemon:
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
