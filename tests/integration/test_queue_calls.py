"""Callers reach agents: baresip phones register as agents, callers choose a queue by DTMF, wait, and are
bridged to the agent the skills call for; audio goes both ways; a missed offer goes to the next agent."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from ivrd.media.dtmf import parse_event
from tests.audio import read_stereo, tone_level
from tests.integration.baresip import CONFIG_DIR, agent_phone
from tests.integration.daemon import daemon_running, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import require
from tests.integration.rtp_caller import RtpCaller
from tests.integration.scrape import scrape, value

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")]

ACCOUNTS = '  accounts: {"2001": "pw-one", "2002": "pw-two"}\n  digest_algorithms: [MD5]\n'
ROUTING = """routing:
  offer_timeout: 3
  queues:
    billing: { skills: "billing >= 3", wrap_up: 1 }
    support: { skills: "support >= 1", wrap_up: 1 }
  agents:
    "2001": { skills: { billing: 4, support: 2 } }
    "2002": { skills: { billing: 1, support: 5 } }
"""
STEPS = """  menu:
    menu: "Press 1 for billing, 2 for support."
    choices:
      - { key: 1, goto: billing }
      - { key: 2, goto: support }
  billing:
    queue: billing
    next: nobody
  support:
    queue: support
    next: nobody
  nobody:
    hangup: "Nobody is there."
"""


def test_callers_are_bridged_to_the_skilled_agent_and_a_missed_offer_goes_to_the_next(tmp_path):
    require("baresip", "espeak-ng")
    config = one_flow(tmp_path / "flows", STEPS) + ROUTING + "calls:\n  record: true\n"
    with daemon_running(config, sip_section=ACCOUNTS) as daemon:
        # 2001 answers at once and speaks A-law only (the caller speaks μ-law: transcoded); 2002 never answers
        ada = agent_phone(daemon.port, "2001", "pw-one", auto=True, codecs="PCMA")
        grace = agent_phone(daemon.port, "2002", "pw-two", auto=False, codecs="PCMU,PCMA")
        callers: list[RtpCaller] = []
        try:
            daemon.wait_for_event("sip.registered", 2)
            for agent in ("2001", "2002"):
                assert daemon.api("POST", f"/agents/{agent}/state", {"state": "available"})["state"] == "available"

            # billing >= 3: only 2001 may take it, though 2002 has been idle longer
            caller = RtpCaller(daemon.port)
            callers.append(caller)
            caller.call()
            daemon.wait_for_event("call.flow")  # keys before the flow runs are not anyone's answer
            caller.press_rfc4733(1)
            daemon.wait_for_event("queue.bridged")
            before = len(caller.received)
            assert caller.talk_to_agent() > 0.5  # the agent's voice reached the caller
            ada.command("sndcode", "7")  # the agent presses 7: the caller gets it as RFC 4733 events
            while not any(p.payload_type == 101 and parse_event(p.payload).end for p in caller.received[before:]):
                caller.wait_for_packets(len(caller.received) + 1)
            keys = [parse_event(p.payload) for p in caller.received[before:] if p.payload_type == 101]
            context = daemon.api("GET", f"/calls/{events(daemon.log, 'queue.offer')[0]['context']}")
            assert context["queue"] == "billing" and context["agent"] == "2001" and context["digits"] == "1"
            assert [step["event"] for step in context["path"]][-2:] == ["queue", "agent"]
            assert caller.bye() == 200
            ada.wait_event("CALL_CLOSED")  # the caller's hang-up ended the agent's call
            (dump,) = ada.dir.glob("dump-*-dec.wav")  # what the agent's phone received, closed with the call
            with wave.open(str(dump)) as wav:
                rate, raw, channels = wav.getframerate(), wav.readframes(wav.getnframes()), wav.getnchannels()
            assert tone_level(np.frombuffer(raw, dtype="<i2")[::channels], rate, 1000) > 0.3  # the caller's tone
            daemon.wait_for_event("queue.call_end")
            assert daemon.api("GET", "/agents")[0]["state"] in ("wrap_up", "available")
            daemon.wait_for_event("call.end")
            said, heard = read_stereo(events(daemon.log, "call.end")[0]["recording"])

            # support: 2002 has been idle longest and is offered first; it never answers, so after the offer
            # timeout it is a miss and 2001 (after its wrap-up) gets the caller
            second = RtpCaller(daemon.port)
            callers.append(second)
            second.call()
            daemon.wait_for_event("call.flow", 2)
            second.press_rfc4733(2)
            grace.wait_event("CALL_INCOMING")
            daemon.wait_for_event("queue.missed")
            daemon.wait_for_event("queue.bridged", 2)
            agents = {a["id"]: a for a in daemon.api("GET", "/agents")}
            assert agents["2002"]["misses_in_a_row"] == 1 and agents["2002"]["state"] == "available"
            assert agents["2001"]["state"] == "busy" and agents["2001"]["calls"] == 2
            assert second.bye() == 200
            daemon.wait_for_event("queue.call_end", 2)
            daemon.wait_for_event("call.end", 2)
            samples = scrape(daemon)
            records = daemon.records(2)
        finally:
            for caller in callers:
                caller.close()
            ada.close()
            grace.close()
    log = daemon.final_log
    offers = [(o["agent"], o["queue"]) for o in events(log, "queue.offer")]
    assert offers == [("2001", "billing"), ("2002", "support"), ("2001", "support")]
    (missed,) = events(log, "queue.missed")
    assert missed["agent"] == "2002" and missed["reason"] == "cancel"
    bridged = events(log, "queue.bridged")
    assert [(b["caller_codec"], b["agent_codec"]) for b in bridged] == [("PCMU", "PCMA")] * 2
    first_end = events(log, "queue.call_end")[0]
    # packets both ways on the agent's leg: the caller's audio relayed out, the agent's audio in
    assert int(first_end["rtp_sent"]) >= 80 and int(first_end["rtp_received"]) >= 80

    # the contact-center counters tell the same story
    for queue in ("billing", "support"):
        assert value(samples, "ivrd_queue_offered_total", queue=queue) == 1
        assert value(samples, "ivrd_queue_answered_total", queue=queue) == 1
        assert value(samples, "ivrd_queue_abandoned_total", queue=queue) == 0
        assert value(samples, "ivrd_queue_handle_seconds_count", queue=queue, phase="talk") == 1
        assert value(samples, "ivrd_queue_handle_seconds_sum", queue=queue, phase="wrap_up") == 1.0
    waits = {q: float(a["waited"]) for q, a in ((a["queue"], a) for a in events(log, "queue.answered"))}
    assert waits["support"] >= 3  # rang 2002 for the whole offer timeout first
    for queue, waited in waits.items():  # answered within the 20 s service level, counted at its bound
        assert value(samples, "ivrd_queue_wait_seconds_bucket", queue=queue, outcome="answered", le="20.0") == 1
        assert abs(value(samples, "ivrd_queue_wait_seconds_sum", queue=queue, outcome="answered") - waited) < 0.01
    assert value(samples, "ivrd_agent_offers_total", queue="support", result="missed") == 1
    assert value(samples, "ivrd_agent_offers_total", queue="support", result="answered") == 1
    assert value(samples, "ivrd_queue_info", queue="billing", service_level_le="20.0", short_abandon_le="5.0") == 1
    assert value(samples, "ivrd_rtp_packets_received_total") >= sum(int(e["rtp_received"]) for e in
                                                                    events(log, "queue.call_end"))  # fmt: skip
    # each caller's record: the queue, the wait, the agent, the talk, and how it ended
    for queue, rec in zip(("support", "billing"), records, strict=True):  # newest first
        assert (rec["outcome"], rec["queue"], rec["agent"], rec["digits"]) == ("agent", queue, "2001", "1"
                                                                              if queue == "billing" else "2")
        assert abs(rec["wait"] - waits[queue]) < 0.01 and rec["wrap_up"] == 1.0 and rec["hold"] == 0.0
        assert rec["talk"] > 0 and rec["path"][-1]["event"] in ("agent", "hangup")
    # the agent's key reached the caller as one RFC 4733 event, ended
    assert keys and {k.event for k in keys} == {7} and keys[-1].end
    # the recording holds each side on its own channel: the caller's 1 kHz left, the agent's 440 Hz right
    assert tone_level(said, 8000, 1000) > 0.5 and tone_level(said, 8000, 440) < 0.05
    assert tone_level(heard, 8000, 440) > 0.15 and tone_level(heard, 8000, 1000) < 0.05
