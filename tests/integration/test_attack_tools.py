"""Published SIP attack tools against one real daemon holding a call: sipvicious (svmap, svwar, svcrack),
the scanners internet-facing SIP servers meet every day, and sipsak's flood and random-trash modes. After
each tool the held call still gets its audio; at the end every call the tools made has ended and the log
holds no error."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.integration.daemon import PROMPT, daemon_running, free_port, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import require
from tests.integration.rtp_caller import RtpCaller

pytestmark = pytest.mark.peers
HOLD = f"  greet:\n    play: {PROMPT}\n  hold:\n    wait: 3600\n    next: hold\n"
CALLER = "127.0.0.31"
# sipvicious 0.3.3 cannot answer a SHA-256 challenge (it gives up at once): offer it what it can attack
ACCOUNTS = "  accounts:\n    '1001': 'not-in-any-range'\n    '1005': 'nor-this'\n  digest_algorithms: [MD5]\n"


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    """The daemon and a caller it holds, with audio, for the whole module."""
    require("svmap", "svwar", "svcrack", "sipsak")
    flows = tmp_path_factory.mktemp("flows")
    with daemon_running(one_flow(flows, HOLD), sip_section=ACCOUNTS) as daemon:
        caller = RtpCaller(daemon.port, host=CALLER)
        try:
            caller.call()
            caller.keep_reporting()  # the module outlasts media.timeout_seconds: a live phone reports
            yield daemon, caller
            assert caller.bye() == 200
        finally:
            caller.close()
    log = daemon.final_log
    assert len(events(log, "call.end")) == len(events(log, "call.incoming")), "a call the tools made never ended"


def run(*command: str, timeout: float = 120) -> str:
    done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    return (done.stdout + done.stderr).decode("utf-8", "replace")


def still_heard(caller: RtpCaller) -> None:
    caller.wait_for_packets(len(caller.received) + 25)


def test_svmap_scans_by_options_and_by_invite_and_leaves_the_call_alone(held):
    daemon, caller = held
    for method in ("OPTIONS", "INVITE"):
        found = run("svmap", "-p", str(daemon.port), "-m", method, "127.0.0.1")
        assert f"127.0.0.1:{daemon.port}" in found
        still_heard(caller)


def test_svwar_invite_scan_calls_every_extension_and_each_call_is_ended(held):
    """svwar's INVITEs carry no offer and its ACKs no answer: each call fails and is hung up (the module's
    fixture checks that every call ended)."""
    daemon, caller = held
    before = len(events(daemon.log, "call.incoming"))
    run("svwar", "-m", "INVITE", "-e", "2000-2009", "-p", str(daemon.port), "127.0.0.1")
    assert len(events(daemon.log, "call.incoming")) - before >= 10
    still_heard(caller)


def test_svwar_cannot_tell_an_existing_account_from_any_other(held):
    """Unknown users and known ones are challenged alike, so svwar's REGISTER scan learns nothing."""
    daemon, caller = held
    found = run("svwar", "-m", "REGISTER", "-e", "1000-1010", "-p", str(daemon.port), "127.0.0.1")
    assert "authentication request for an unknown extension" in found, found
    assert "1001" not in found and "1005" not in found
    still_heard(caller)


def test_svcrack_pays_one_logged_failure_per_guess_and_finds_nothing(held):
    daemon, caller = held  # on a port of its own: the BYEs to svwar's hung-up calls must not reach it
    before = len(events(daemon.log, "security.auth_failed"))
    cracked = run("svcrack", "-P", str(free_port()), "-u", "1001", "-r", "1-30", "-p", str(daemon.port), "127.0.0.1")
    assert "found nothing" in cracked
    failed = events(daemon.log, "security.auth_failed")[before:]
    assert len(failed) >= 30
    assert {(f["user"], f["remote"]) for f in failed} == {("1001", "127.0.0.1")}
    still_heard(caller)


def test_sipsak_flood_leaves_the_call_alone(held):
    daemon, caller = held
    assert "flood end reached" in run("sipsak", "-F", "-e", "5000", "-s", f"sip:ivr@127.0.0.1:{daemon.port}")
    still_heard(caller)


SIPSAK_VIA = re.compile(r"^Via: SIP/2\.0/UDP [\d.]+:\d+;branch=z9hG4bK\.[0-9a-f]+;rport;alias$", re.MULTILINE)
ECHOED_NAMES = ("From: ", "To: ", "Call-ID: ")


def answerable(message: str) -> bool:
    """Whether a trashed request still holds what a response needs: a request line, its Via and CSeq lines
    untouched, and From, To and Call-ID lines."""
    lines = message.split("\n")
    return (" " in lines[0] and SIPSAK_VIA.search(message) is not None and "\nCSeq: 1 OPTIONS\n" in message
            and all(any(line.startswith(name) for line in lines) for name in ECHOED_NAMES))  # fmt: skip


def test_sipsak_random_trash_is_answered_whenever_it_can_be(held):
    """sipsak's random mode trashes more and more characters of an OPTIONS until one goes unanswered: that
    one must be beyond answering (its Via or CSeq is hurt, or a header a response echoes is gone)."""
    daemon, caller = held
    for _ in range(2):
        output = run("sipsak", "-R", "-t", "300", "-s", f"sip:ivr@127.0.0.1:{daemon.port}").replace("\r", "")
        last = output.rpartition("three times without getting a response:\n")[2]
        if last != output:
            assert not answerable(last), f"unanswered, though a response could be built:\n{last}"
        still_heard(caller)
