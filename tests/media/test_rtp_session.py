"""The RTP session core with no socket and no loop: packets and ``now`` in, the packets to send out, on a
fake clock. The socket shim over it is tested with real sockets in test_bridge.py and the integration
tests."""

from __future__ import annotations

import asyncio
import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ivrd.media.dtmf import Digit, Rfc4733Sender, parse_event
from ivrd.media.g711 import decode
from ivrd.media.player import FRAME_SAMPLES, Clip
from ivrd.media.recorder import Recorder
from ivrd.media.rtcp import ReportBlock, SenderReport, build_report, parse_rtcp
from ivrd.media.rtp import build_rtp, parse_rtp
from ivrd.media.rtp_session import MediaSettings, RtpSession
from ivrd.sip.sdp import AudioSession

CALLER = ("192.0.2.10", 4000)
LOUD = b"\x00" * 160  # μ-law: the loudest negative sample
QUIET = b"\xff" * 160  # μ-law: silence


def session(*, latch: str = "first", pt: int = 0, codec: str = "PCMU", telephone_event: int | None = 101,
            mux: bool = False) -> tuple[RtpSession, list[Digit], list[str]]:  # fmt: skip
    digits: list[Digit] = []
    starts: list[str] = []
    audio = AudioSession(CALLER[0], CALLER[1], pt, codec, telephone_event, 20, "sendrecv", mux)
    core = RtpSession(audio, MediaSettings(latch=latch, jitter_min_frames=1, jitter_max_frames=4),
                      on_digit=digits.append, on_digit_start=starts.append)  # fmt: skip
    return core, digits, starts


def rtp(seq: int, payload: bytes = LOUD, *, pt: int = 0, marker: bool = False, ssrc: int = 7) -> bytes:
    return build_rtp(pt, marker, seq, 1000 + 160 * seq, ssrc, payload)


def test_ticks_send_one_frame_each_and_carry_the_rtp_clock_over_frames_the_loop_missed():
    core, _, _ = session()
    core.player.play(Clip("beep", {"PCMU": (LOUD,) * 10, "PCMA": (LOUD,) * 10}))
    first = parse_rtp(core.tick(0, 0.0) or b"")
    second = parse_rtp(core.tick(1, 0.02) or b"")
    third = parse_rtp(core.tick(5, 0.10) or b"")  # the loop was held up: frames 2-4 never go out
    assert [p.sequence - first.sequence for p in (second, third)] == [1, 2]  # nothing sent and lost
    assert [p.timestamp - first.timestamp for p in (second, third)] == [160, 5 * 160]
    assert first.marker and first.payload == LOUD and first.payload_type == 0
    assert core.packet_counts().skipped == 3


def test_audio_out_of_order_reaches_the_listener_in_order_and_a_lost_frame_as_silence():
    core, _, _ = session()
    heard: list[np.ndarray] = []
    core.listen(heard.append)
    for seq, at in ((1, 0.0), (3, 0.04), (2, 0.041), (5, 0.08)):  # 4 never comes
        core.receive(rtp(seq, LOUD if seq != 3 else QUIET), CALLER, at)
    for index in range(6):
        core.tick(index, 0.1 + index * 0.02)
    loud = decode(LOUD, "PCMU")
    played = ["loud" if np.array_equal(f, loud) else "quiet" if not f.any() or abs(int(f[0])) < 10 else "?"
              for f in heard]  # fmt: skip
    assert played[:5] == ["loud", "loud", "quiet", "quiet", "loud"]  # 1, 2, 3 (silent), 4 lost, 5
    assert all(len(f) == FRAME_SAMPLES for f in heard)
    assert core.packet_counts().lost == 1


def test_the_source_latched_first_keeps_the_call_and_strangers_are_counted_and_dropped():
    core, _, _ = session(latch="first")
    heard: list[np.ndarray] = []
    core.listen(heard.append)
    for seq in range(1, 6):
        core.receive(rtp(seq), CALLER, seq * 0.02)
    core.receive(rtp(6, QUIET, ssrc=99), ("203.0.113.5", 5000), 0.13)
    assert core.latch.send_to == CALLER
    counts = core.packet_counts()
    assert (counts.received, counts.foreign) == (5, 1)


def test_a_payload_type_not_negotiated_and_garbage_are_counted_never_played():
    core, _, _ = session()
    core.receive(rtp(1, pt=18), CALLER, 0.0)  # G.729, not in the answer
    core.receive(b"\x80\x00", CALLER, 0.01)  # shorter than a header
    assert core.packet_counts().malformed == 2 and core.packet_counts().received == 0


def test_a_key_press_is_told_as_it_starts_then_once_over_and_passed_on_to_a_bridged_leg():
    caller, digits, starts = session()
    agent, _, _ = session(pt=8, codec="PCMA")
    caller.bridge(agent)
    press = Rfc4733Sender("5", duration_ms=60)
    seq, now = 1, 0.0
    while (event := press.next_payload()) is not None:
        caller.receive(build_rtp(101, event[1], seq, 8000, 7, event[0]), CALLER, now)
        if seq == 1:
            assert starts == ["5"] and digits == []  # barge-in can cut the prompt now, before the key is over
        seq, now = seq + 1, now + 0.02
    assert [(d.digit, d.source) for d in digits] == [("5", "rfc4733")]
    sent = [parse_rtp(p) for i in range(12) if (p := agent.tick(i, 1.0 + i * 0.02)) is not None]
    events = [parse_event(p.payload) for p in sent if p.payload_type == 101]
    assert events and {e.event for e in events} == {5} and events[-1].end


def test_bridged_audio_is_relayed_mapped_to_the_other_legs_law():
    caller, _, _ = session()
    agent, _, _ = session(pt=8, codec="PCMA")
    caller.bridge(agent)
    caller.receive(rtp(1), CALLER, 0.0)
    caller.tick(0, 0.02)  # takes the caller's frame out of the jitter buffer, hands it to the agent
    packet = parse_rtp(agent.tick(0, 0.02) or b"")
    relayed, original = decode(packet.payload, "PCMA"), decode(LOUD, "PCMU")
    assert packet.payload_type == 8 and np.allclose(relayed, original, rtol=0.03)  # the same sound, in A-law


def test_the_round_trip_comes_from_our_sender_report_and_the_peers_delay_since_it():
    core, _, _ = session()
    core.receive(rtp(1), CALLER, 0.0)
    core.sent_packet(core.tick(0, 0.0) or b"")
    ours = parse_rtcp(core.report(10.0, 1_700_000_000.0))
    (sr,) = [r for r in ours if isinstance(r, SenderReport)]
    lsr = (sr.ntp >> 16) & 0xFFFFFFFF
    block = ReportBlock(sr.ssrc, 0, 0, 1, 0, lsr, int(0.5 * 65536))  # held our report 0.5 s before answering
    answer = build_report(7, "caller@example", block)
    core.receive_rtcp(answer, CALLER, 10.62)
    assert core.rtt_ms is not None and abs(core.rtt_ms - 120.0) < 0.1


def test_a_renegotiation_without_telephone_event_drops_the_key_presses_queued_for_it():
    core, _, _ = session()
    core.send_digit("1")
    core.update(AudioSession(CALLER[0], CALLER[1], 0, "PCMU", None, 20, "sendrecv", False))
    packet = parse_rtp(core.tick(0, 0.0) or b"")
    assert packet.payload_type == 0  # audio, not an event of a type no longer agreed


def test_the_recording_holds_what_the_caller_heard_from_the_first_frame_even_before_they_sent_any(tmp_path):
    core, _, _ = session()
    greeting = (LOUD, LOUD, QUIET, LOUD)
    core.player.play(Clip("greeting", {"PCMU": greeting, "PCMA": greeting}))

    async def record() -> Recorder:
        recorder = Recorder(tmp_path / "call.wav", disk, channels=2)
        core.record(recorder)
        core.tick(0, 0.0)  # the greeting starts before the caller's phone sends anything
        core.tick(1, 0.02)
        core.receive(rtp(1), CALLER, 0.03)
        for index in range(2, 6):
            core.tick(index, index * 0.02)
        await recorder.close()
        return recorder

    with ThreadPoolExecutor(1) as disk:
        recorder = asyncio.run(record())
    with wave.open(str(recorder.path)) as wav:
        both = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    caller, heard = both[:, 0].reshape(-1, FRAME_SAMPLES), both[:, 1].reshape(-1, FRAME_SAMPLES)
    loud = decode(LOUD, "PCMU")
    assert [np.array_equal(frame, loud) for frame in heard[:4]] == [True, True, False, True]
    assert not caller[:2].any() and any(np.array_equal(frame, loud) for frame in caller[2:])
