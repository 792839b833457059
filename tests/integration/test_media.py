"""Audio through the real daemon: the caller's RTP and digits in, the prompt out, paced and interruptible."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import time
from itertools import pairwise

import numpy as np
import pytest

from ivrd.media import g711
from ivrd.media.rtcp import ReportBlock, SenderReport, build_report, parse_rtcp
from tests.audio import read_stereo, speech, tone_level, with_tones
from tests.integration.baresip import CONFIG_DIR, Baresip
from tests.integration.daemon import PROMPT, daemon_running, free_port, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import require, sipp
from tests.integration.rtp_caller import SILENCE_PCMU, RtpCaller
from tests.integration.scrape import scrape, value

pytestmark = pytest.mark.peers
PROMPT_THEN_HOLD = f"  greet:\n    play: {PROMPT}\n  hold:\n    wait: 3600\n    next: hold\n"


def test_sipp_pcap_audio_and_rfc4733_digit_reach_the_call(tmp_path):
    require("sipp")
    (tmp_path / "pcap").symlink_to("/usr/share/sip-tester")
    with daemon_running() as daemon:
        result = sipp(f"127.0.0.1:{daemon.port}", "-sn", "uac_pcap", "-i", "127.0.0.1", "-p", str(free_port()),
                      "-mi", "127.0.0.1", "-m", "1", cwd=tmp_path)  # fmt: skip
    assert (result.code, result.successful) == (0, 1), result.output[-2000:]
    (end,) = events(daemon.final_log, "call.end")
    assert end["digits"] == "1"  # dtmf_2833_1.pcap
    assert int(end["rtp_received"]) >= 236  # g711a.pcap's 236 packets, plus the event's packets
    assert (end["rtp_lost"], end["rtp_wrong_payload"], end["rtp_malformed"]) == ("0", "0", "0")


def test_prompt_is_paced_and_a_key_stops_it(tmp_path):
    with daemon_running(one_flow(tmp_path / "flows", PROMPT_THEN_HOLD)) as daemon:  # media.latch defaults to "first"
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            for _ in range(10):  # the caller talks: ten 20 ms frames, enough to latch its source
                caller.send_rtp(0, SILENCE_PCMU)
            caller.wait_for_packets(40)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
                intruder.bind(("127.0.0.1", 0))
                caller.send_rtp(0, SILENCE_PCMU, sock=intruder)  # RTP bleed attempt from another port
            before_press = len(caller.received)
            pressed_at = time.monotonic()
            caller.press_rfc4733(7)
            assert caller.info("7") == 200  # the same press again, as SIP INFO: one digit, not two
            caller.send_rtp(0, SILENCE_PCMU)
            caller.wait_for_packets(before_press + 40)
            assert caller.bye() == 200
        finally:
            caller.close()
    packets = caller.received
    assert packets[0].marker and not any(p.marker for p in packets[1:])
    assert {p.payload_type for p in packets} == {0}
    assert all((b.sequence - a.sequence) % 65536 == 1 for a, b in pairwise(packets))
    steps = [(b.timestamp - a.timestamp) % 2**32 for a, b in pairwise(packets)]
    assert all(step % 160 == 0 and step > 0 for step in steps)
    gaps = [b.arrival - a.arrival for a, b in pairwise(packets)]
    assert 0.010 <= statistics.median(gaps) <= 0.030
    assert any(p.payload != SILENCE_PCMU for p in packets[:before_press])  # the prompt was playing
    after = [p for p in packets if p.arrival > pressed_at + 0.2]
    assert after and all(p.payload == SILENCE_PCMU for p in after)  # and the key cut it off
    (end,) = events(daemon.final_log, "call.end")
    assert end["digits"] == "7"
    assert end["rtp_foreign"] == "1"
    assert (end["rtp_received"], end["rtp_lost"]) == (str(10 + 5 + 1), "0")
    assert events(daemon.final_log, "call.barge_in")[0]["digit"] == "7"


def test_frames_a_stalled_daemon_missed_are_skipped_and_counted(tmp_path):
    with daemon_running(one_flow(tmp_path / "flows", PROMPT_THEN_HOLD)) as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            caller.wait_for_packets(10)
            before = value(scrape(daemon), "ivrd_rtp_packets_skipped_total")
            os.kill(daemon.proc.pid, signal.SIGSTOP)
            time.sleep(0.3)  # the stall itself: 15 frames fall due while the daemon cannot run
            os.kill(daemon.proc.pid, signal.SIGCONT)
            caller.wait_for_packets(len(caller.received) + 10)
            during = value(scrape(daemon), "ivrd_rtp_packets_skipped_total")
            assert caller.bye() == 200
            daemon.wait_for_event("call.end")
            after = value(scrape(daemon), "ivrd_rtp_packets_skipped_total")
        finally:
            caller.close()
    packets = caller.received
    assert all((b.sequence - a.sequence) % 65536 == 1 for a, b in pairwise(packets))  # none sent and lost
    # the RTP clock moved on over the frames not sent: the caller's jitter buffer sees a gap, not a burst
    gaps = [(b.timestamp - a.timestamp) % 2**32 // 160 - 1 for a, b in pairwise(packets)]
    assert max(gaps) >= 10 and during - before >= 10
    (end,) = events(daemon.final_log, "call.end")
    assert sum(gaps) <= int(end["ticks_skipped"]) == after  # the call's own count, and the daemon's


@pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")
def test_baresip_digits_arrive_once_each(tmp_path):
    require("baresip")
    phone = Baresip()
    try:
        with daemon_running(one_flow(tmp_path / "flows", PROMPT_THEN_HOLD)) as daemon:
            phone.command("dial", f"sip:ivr@127.0.0.1:{daemon.port}")
            phone.wait_event("CALL_ESTABLISHED")
            phone.command("sndcode", "1234#")
            daemon.wait_for_event("call.dtmf", count=5)
            phone.command("hangup")
            phone.wait_event("CALL_CLOSED")
    finally:
        phone.close()
    (end,) = events(daemon.final_log, "call.end")
    assert end["digits"] == "1234#"
    assert [e["source"] for e in events(daemon.final_log, "call.dtmf")] == ["rfc4733"] * 5


def test_inband_tones_under_speech_become_digits(tmp_path):
    require("espeak-ng", "sox")
    audio = with_tones(speech("Hello, I would like to check my balance, my account number is", tmp_path),
                       "4071#", tmp_path)  # fmt: skip
    with daemon_running() as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call(telephone_event=False)  # no RFC 4733: the daemon must listen to the audio
            caller.stream(audio)
            daemon.wait_for_event("call.dtmf", count=5)
            assert caller.bye() == 200
        finally:
            caller.close()
    (end,) = events(daemon.final_log, "call.end")
    assert end["digits"] == "4071#"
    assert {e["source"] for e in events(daemon.final_log, "call.dtmf")} == {"inband"}


def test_the_callers_audio_is_recorded_frame_for_frame(tmp_path):
    require("espeak-ng", "sox")
    audio = speech("Please record this message after the tone", tmp_path)
    with daemon_running(f"calls:\n  record: true\n  recordings_dir: {tmp_path / 'rec'}\n") as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            caller.stream(audio)
            assert caller.bye() == 200
        finally:
            caller.close()
    (end,) = events(daemon.final_log, "call.end")
    (path,) = (tmp_path / "rec").iterdir()
    assert end["recording"] == str(path)
    sent = [g711.encode(audio[i : i + 160], "PCMU") for i in range(0, len(audio) - 159, 160)]
    recorded, heard = read_stereo(path)
    frames = {recorded[i : i + 160].tobytes() for i in range(0, len(recorded) - 159, 160)}
    spoken = [g711.decode(f, "PCMU").tobytes() for f in sent if f != SILENCE_PCMU]
    assert all(frame in frames for frame in spoken)  # every frame the caller spoke, sample for sample, on the left
    assert len(recorded) >= len(sent) * 160
    assert not heard.any()  # on the right what the caller heard: no flows, so the line's silence


def test_rtcp_reports_both_ways(tmp_path):
    with daemon_running(one_flow(tmp_path / "flows", PROMPT_THEN_HOLD)) as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            caller.stream(np.zeros(160 * 60, dtype=np.int16))  # 1.2 s of the caller's audio
            (report,) = parse_rtcp(caller.wait_rtcp())  # the daemon's first report comes within 3.75 s
            got_it = time.monotonic()
            dlsr = int((time.monotonic() - got_it) * 65536)  # our delay since that SR, as RFC 3550 says
            ours = ReportBlock(report.ssrc, 10, 5, 0, 80, (report.ntp >> 16) & 0xFFFFFFFF, dlsr)
            caller.send_rtcp(build_report(0x1234, "tester", ours))
            # Our report was queued at the daemon before this INFO left, so once the INFO is answered
            # the daemon has read the report too (one event loop reads both sockets).
            assert caller.info("1") == 200
            assert caller.bye() == 200
        finally:
            caller.close()
    assert isinstance(report, SenderReport)
    assert report.ssrc == caller.received[0].ssrc and report.packets > 0 and report.octets == 160 * report.packets
    (block,) = report.blocks
    assert (block.ssrc, block.cumulative_lost, block.highest_seq % 65536) == (0x1234, 0, (caller.seq - 1) % 65536)
    (end,) = events(daemon.final_log, "call.end")
    assert (end["rtcp_in"], end["peer_lost"], end["peer_jitter_ms"]) == ("1", "5", "10.0")
    assert 0 <= float(end["rtt_ms"]) < 1000



def test_spoken_text_reaches_the_caller(tmp_path):
    require("espeak-ng")
    steps = '  tell:\n    say: "Your balance is {{ 40 + 2 }} dollars"\n  hold:\n    wait: 3600\n    next: hold\n'
    with daemon_running(one_flow(tmp_path / "flows", steps)) as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            caller.wait_for_packets(100)  # two seconds of what the daemon sends
            assert caller.bye() == 200
        finally:
            caller.close()
    spoken = [p for p in caller.received if p.payload != SILENCE_PCMU]
    assert len(spoken) > 25  # at least half a second of speech among the silence
    assert spoken[0].marker  # a talkspurt starts when the speech starts
    assert not events(daemon.final_log, "call.say_failed")


def test_a_caller_who_falls_silent_is_hung_up_and_one_who_talks_or_reports_is_not(tmp_path):
    flows = one_flow(tmp_path / "flows", PROMPT_THEN_HOLD)
    with daemon_running(flows, media_section="  timeout_seconds: 2\n") as daemon:
        gone, talking = RtpCaller(daemon.port), RtpCaller(daemon.port, host="127.0.0.2")
        gone_id, talking_id = (f"rtp-caller-{c.sip_port}" for c in (gone, talking))
        try:
            gone.call()
            talking.call()
            talking.stream(np.zeros(160 * 50, dtype=np.int16))  # 1 s of audio...
            for _ in range(3):  # ...then only an RTCP report a second: still there
                talking.send_rtcp(build_report(0x99, "tester", None))
                time.sleep(1)  # the caller's own pace: one report a second
            gone.wait_bye(timeout=10)  # sent nothing since the answer: gone after 2 s
            daemon.wait_for_event("call.media_timeout")
            assert talking.bye() == 200  # never timed out: it sent something each second
        finally:
            gone.close()
            talking.close()
    ends = {e["call_id"]: e for e in events(daemon.final_log, "call.end")}
    assert ends[gone_id]["reason"] == "media-timeout" and ends[talking_id]["reason"] == "bye"
    (timeout,) = events(daemon.final_log, "call.media_timeout")
    assert timeout["call_id"] == gone_id and float(timeout["silent"]) >= 2  # rounded to 0.1 s: 2.04 is "2.0"


def test_a_recorded_call_is_announced_and_a_pause_through_the_api_leaves_silence_in_its_place(tmp_path):
    """The caller hears the announcement before the flow starts; while an agent's CRM has the recording
    paused (a card number), both channels hold silence, and the record says when."""
    config = (one_flow(tmp_path / "flows", "  hold:\n    wait: 3600\n    next: hold\n")
              + f"calls:\n  record: true\n  recordings_dir: {tmp_path / 'rec'}\n"
              "  record_announcement: This call is recorded.\n")  # fmt: skip
    tone = (np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000) * 8000).astype(np.int16)  # a second of it
    with daemon_running(config) as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            daemon.wait_for_event("call.flow")  # once the announcement has played
            record_id = events(daemon.log, "call.flow")[0]["context"]  # the call's id in the API
            announced = b"".join(p.payload for p in caller.received)  # what came before the flow started
            caller.stream(tone)
            assert daemon.api("POST", f"/calls/{record_id}/recording", {"paused": True})["changed"] is True
            caller.stream(tone)
            assert daemon.api("POST", f"/calls/{record_id}/recording", {"paused": False})["changed"] is True
            caller.stream(tone)
            assert caller.bye() == 200
        finally:
            caller.close()
        (record,) = daemon.records(1)
    said, heard = read_stereo(record["recording"])
    (span,) = json.loads(record["recording_paused"])
    start, end = (int(t * 8000) for t in span)
    assert 0.9 < (end - start) / 8000 < 1.3  # the second streamed between the two requests
    assert not said[start:end].any() and not heard[start:end].any()
    assert tone_level(said[start - 6000 : start - 400], 8000, 1000) > 0.9  # the tone before the pause ...
    assert tone_level(said[end + 400 : end + 6000], 8000, 1000) > 0.9  # ... and after it
    assert np.abs(g711.decode(announced, "PCMU")).max() > 2000, "the announcement, before the flow's first step"



def test_a_flows_recording_step_leaves_silence_for_what_comes_between_pause_and_resume(tmp_path):
    steps = ("  before:\n    wait: 1\n  hush:\n    recording: pause\n  card:\n    wait: 1\n"
             "  talk:\n    recording: resume\n  hold:\n    wait: 3600\n    next: hold\n")  # fmt: skip
    config = one_flow(tmp_path / "flows", steps) + f"calls:\n  record: true\n  recordings_dir: {tmp_path / 'rec'}\n"
    tone = (np.sin(2 * np.pi * 1000 * np.arange(8000 * 3) / 8000) * 8000).astype(np.int16)
    with daemon_running(config) as daemon:
        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            caller.stream(tone)
            assert caller.bye() == 200
        finally:
            caller.close()
        (record,) = daemon.records(1)
    said, _ = read_stereo(record["recording"])
    (span,) = json.loads(record["recording_paused"])
    start, end = (int(t * 8000) for t in span)
    assert 0.8 < (end - start) / 8000 < 1.2 and not said[start:end].any()
    assert tone_level(said[end + 400 : end + 4000], 8000, 1000) > 0.9
    assert [e["paused"] for e in record["path"] if e["event"] == "recording"] == [True, False]
