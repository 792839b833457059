"""While callers wait: the queue's hold music, and every ``announce_every`` seconds their place in line and
the expected wait, spoken over it (then the music again), measured at the caller's RTP socket."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest

from ivrd.media.player import load_wav
from tests.integration.daemon import daemon_running, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import require
from tests.integration.rtp_caller import Received, RtpCaller

HOLD = Path(__file__).resolve().parents[2] / "etc" / "flows" / "prompts" / "hold.wav"
STEPS = """  wait:
    queue: sales
"""


@pytest.mark.peers
def test_waiting_callers_hear_their_place_and_the_expected_wait_between_the_hold_music(tmp_path):
    require("espeak-ng")
    # the one agent's phone never answers: staffed, so a wait can be estimated; ringing for the first caller
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind(("127.0.0.1", 0))
    routing = f"""routing:
  offer_timeout: 60
  queues:
    sales: {{ hold_music: {HOLD}, announce_every: 10 }}
  agents:
    "3001": {{ contact: "sip:agent@127.0.0.1:{phone.getsockname()[1]}", logged_in: true }}
"""
    hold = set(load_wav(HOLD).frames["PCMU"])
    with daemon_running(one_flow(tmp_path / "flows", STEPS) + routing) as daemon:
        first, second = RtpCaller(daemon.port), RtpCaller(daemon.port)
        try:
            first.call()
            daemon.wait_for_event("queue.offer")  # the first caller's agent rings: no announcements for them
            second.call()
            daemon.wait_for_event("queue.join", 2)
            daemon.wait_for_event("queue.announce", timeout=30)
            announced_at = len(second.received)

            def music_again(received: list[Received]) -> bool:  # a second of speech, then a second of music
                after = [p.payload in hold for p in received[announced_at - 25 :] if p.payload_type == 0]
                spoken = [i for i, music in enumerate(after) if not music]
                return len(spoken) >= 50 and sum(after[spoken[-1] + 1 :]) >= 50

            second.wait_for_audio(music_again, "the announcement and then the music again", timeout=30)
            assert first.bye() == 200 and second.bye() == 200
            call_id = f"rtp-caller-{second.sip_port}"
        finally:
            first.close()
            second.close()
            phone.close()
        log = daemon.log
    (announce,) = [e for e in events(log, "queue.announce")]
    assert announce["call_id"] == call_id
    # second in line behind the caller whose agent rings; one agent staffed, 180 s a call until measured
    assert (announce["position"], announce["expected_wait"]) == ("2", "360")
    payloads = [p.payload for p in second.received if p.payload_type == 0]
    assert all(p in hold for p in payloads[: announced_at - 25])  # until the announcement: only hold music
    # no gap where the speech cuts in and where the music comes back: one stream, 20 ms a packet (a
    # frame the loop was too late for, on a loaded machine, moves the RTP clock on and is counted)
    window = second.received[announced_at - 25 :]
    steps = [((b.timestamp - a.timestamp) % 2**32, (b.sequence - a.sequence) % 2**16)
             for a, b in itertools.pairwise(window)]  # fmt: skip
    assert all(sequence == 1 and stamp % 160 == 0 and stamp >= 160 for stamp, sequence in steps)
    (end,) = [e for e in events(log, "call.end") if e["call_id"] == call_id]
    assert sum(stamp // 160 - 1 for stamp, _ in steps) <= int(end["ticks_skipped"])
