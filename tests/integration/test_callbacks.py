"""A caller asks to be called back and hangs up, keeping their place: when an agent (a registered baresip
phone) is free, the agent's phone rings first, then ivrd calls the caller (SIPp behind the callback
gateway) and bridges the two; a busy caller is tried again later, in the same place."""

from __future__ import annotations

import subprocess
import wave

import numpy as np
import pytest

from tests.audio import tone_level
from tests.integration.baresip import CONFIG_DIR, agent_phone
from tests.integration.daemon import daemon_running, free_port, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import SCENARIOS, require
from tests.integration.rtp_caller import RtpCaller
from tests.integration.scrape import scrape, value, wait_for

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")]

NUMBER = "+15550123"


def callback_steps(queue: str) -> str:
    """A flow that waits in ``queue``; a callback booked there (to NUMBER) sends the caller off."""
    return f"""  wait_for_agent:
    queue: {queue}
    callback_number: "{NUMBER}"
    left: {{ callback: booked }}
    next: nobody
  booked:
    hangup: "We will call you back."
  nobody:
    hangup: "Nobody is there."
"""


def routing(gateway_port: int) -> str:
    return f"""routing:
  offer_timeout: 5
  callback: {{ gateway: "sip:{{number}}@127.0.0.1:{gateway_port}", numbers: ["+1555*"], retry_after: 10,
              ring_timeout: 5 }}
  queues:
    sales: {{ join_empty: true, wrap_up: 1, callback_key: 1 }}
  agents:
    "2001": {{ skills: {{ sales: 3 }} }}
"""


def customer(port: int, scenario: list[str], cwd) -> subprocess.Popen[str]:
    """SIPp as the caller's phone at the gateway: one call, then it exits (0: the call went as scripted)."""
    return subprocess.Popen(["sipp", "-nostdin", "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-timeout", "60s",
                             *scenario], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def test_a_caller_called_back_keeps_their_place_and_is_bridged_to_the_agent(tmp_path):
    require("baresip", "sipp", "espeak-ng")
    gateway = free_port()
    config = one_flow(tmp_path / "flows", callback_steps("sales")) + routing(gateway) + "calls:\n  record: true\n"
    accounts = '  accounts: {"2001": "pw-one"}\n  digest_algorithms: [MD5]\n'
    with daemon_running(config, sip_section=accounts) as daemon:
        agent = agent_phone(daemon.port, "2001", "pw-one", auto=True, codecs="PCMU")
        caller = RtpCaller(daemon.port)
        phones: list[subprocess.Popen[str]] = []
        try:
            daemon.wait_for_event("sip.registered")
            # nobody is logged in: the caller waits (join_empty), asks for a callback, and is sent off
            caller.call()
            daemon.wait_for_event("queue.join")
            caller.press_rfc4733(1)
            daemon.wait_for_event("queue.callback_booked")
            caller.wait_bye()
            original = daemon.records(1)[0]

            # the first call back finds the line busy (486): the agent's call ends, the callback waits
            phones.append(customer(gateway, ["-sf", str(SCENARIOS / "busy.xml")], tmp_path))
            # logging in, the agent is reserved for the callback at once
            assert daemon.api("POST", "/agents/2001/state", {"state": "available"})["state"] == "offered"
            daemon.wait_for_event("queue.callback_no_answer")
            daemon.wait_for_event("queue.callback_retry")
            busy_out, _ = phones[0].communicate(timeout=30)
            assert phones[0].returncode == 0, busy_out[-2000:]

            # tried again after retry_after: now it answers, echoing what it hears; the agent's 440 Hz
            # goes to the caller and comes back
            phones.append(customer(gateway, ["-sn", "uas", "-rtp_echo"], tmp_path))
            daemon.wait_for_event("queue.callback_connected", timeout=40)
            context = daemon.api("GET", f"/calls/{original['id']}")  # the agent's context link still works
            before = daemon.records(2)[0]  # the busy attempt's record
            received = value(scrape(daemon), "ivrd_rtp_packets_received_total")
            wait_for(daemon, "ivrd_rtp_packets_received_total", received + 150)  # the echo flows for a while
            agent.command("hangup")  # the agent ends it: ivrd hangs up on the caller (SIPp gets the BYE)
            answered_out, _ = phones[1].communicate(timeout=30)
            assert phones[1].returncode == 0, answered_out[-2000:]
            daemon.wait_for_event("queue.call_end", 2)
            records = daemon.records(3)
            samples = scrape(daemon)
            agent.wait_event("CALL_CLOSED")
            agent.wait_event("CALL_CLOSED")  # the second call's audio file is complete
            dump = max(agent.dir.glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)
            with wave.open(str(dump)) as wav:
                rate, raw, channels = wav.getframerate(), wav.readframes(wav.getnframes()), wav.getnchannels()
        finally:
            caller.close()
            agent.close()
            for phone in phones:
                if phone.poll() is None:
                    phone.kill()
    log = daemon.final_log
    assert original["outcome"] == "callback" and original["queue"] == "sales"
    left = next(step for step in original["path"] if step["event"] == "queue_left")
    assert (left["reason"], left["callback"], left["step"]) == ("callback", NUMBER, "wait_for_agent")
    assert original["path"][-1]["step"] == "booked"  # the flow went on where `left: {callback: ...}` said
    assert context["callback"] == NUMBER and context["queue"] == "sales"
    # the agent's phone rang before each call back, showing the caller's number
    dialing = events(log, "queue.callback_dialing")
    assert [(d["number"], d["attempt"]) for d in dialing] == [(NUMBER, "1"), (NUMBER, "2")]
    assert [o["agent"] for o in events(log, "queue.offer")] == ["2001", "2001"]
    (connected,) = events(log, "queue.callback_connected")
    assert connected["attempt"] == "2" and connected["callback_call_id"] == dialing[1]["callback_call_id"]
    # the caller's place is where they joined: the wait counts from the first call
    assert float(connected["waited"]) >= 10
    # one record for each call back: the busy one, then the one that was answered
    assert before["outcome"] == "no_answer" and before["caller"] == NUMBER
    newest = records[0]
    assert (newest["outcome"], newest["caller"], newest["agent"], newest["queue"]) == ("agent", NUMBER, "2001",
                                                                                       "sales")  # fmt: skip
    assert newest["variables"] == {"callback_for": original["id"], "attempt": 2}
    assert newest["talk"] > 0 and newest["wrap_up"] == 1.0
    rtp = newest["rtp"]
    assert rtp["rtp_received"] >= 50 and rtp["rtp_sent"] >= 50  # the caller's leg carried audio both ways
    # what the agent heard once connected: its own tone, gone to the caller and back
    heard = np.frombuffer(raw, dtype="<i2")[::channels]
    assert tone_level(heard[-rate:], rate, 440) > 0.5
    for result, count in (("requested", 1), ("no_answer", 1), ("connected", 1), ("failed", 0)):
        assert value(samples, "ivrd_queue_callbacks_total", queue="sales", result=result) == count
    assert value(samples, "ivrd_queue_overflowed_total", queue="sales", reason="callback") == 1
    assert value(samples, "ivrd_queue_abandoned_total", queue="sales") == 0
