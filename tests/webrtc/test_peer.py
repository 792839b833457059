"""A browser leg against a real WebRTC peer (aiortc on loopback, as a browser): the codec it answers with,
audio both ways through the leg's RTP session, host candidates where configured, offers it must refuse."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription
from hypothesis import given, settings
from hypothesis import strategies as st

from ivrd.media.clock import FrameClock
from ivrd.media.player import prompt_from_samples
from ivrd.media.rtp_session import MediaSettings
from ivrd.webrtc.peer import BrowserPeer, PeerSettings, WebRtcError
from tests.audio import tone_level

LOOPBACK = PeerSettings(addresses=("127.0.0.1",), port_min=41000, port_max=41099)


class Tone(MediaStreamTrack):
    """A browser's microphone saying a steady tone, paced in real time."""

    kind = "audio"

    def __init__(self, hz: float, rate: int = 48000) -> None:
        super().__init__()
        self.hz, self.rate, self.sent, self.start = hz, rate, 0, time.monotonic()

    async def recv(self) -> av.AudioFrame:
        await asyncio.sleep(max(0.0, self.start + self.sent / self.rate - time.monotonic()))
        t = np.arange(self.sent, self.sent + self.rate // 50) / self.rate
        frame = av.AudioFrame.from_ndarray((np.sin(2 * np.pi * self.hz * t) * 8000).astype(np.int16).reshape(1, -1),
                                           format="s16", layout="mono")  # fmt: skip
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self.sent, fractions.Fraction(1, self.rate)
        self.sent += frame.samples
        return frame


async def _browser(codecs: tuple[str, ...] | None = None) -> tuple[RTCPeerConnection, list[np.ndarray]]:
    """A peer that says 1 kHz, offering ``codecs`` only (None: aiortc's whole list), and keeps what it hears."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver(Tone(1000), direction="sendrecv")
    if codecs is not None:
        capabilities = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in capabilities if c.name in codecs])
    heard: list[np.ndarray] = []

    readers: list[asyncio.Task[None]] = []

    def track(remote: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)

        async def read() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    heard.extend(frame.to_ndarray().reshape(-1) for frame in resampler.resample(await remote.recv()))

        readers.append(asyncio.ensure_future(read()))

    pc.on("track", track)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, heard


async def _call(codecs: tuple[str, ...] | None, settings: PeerSettings = LOOPBACK) -> tuple[str, float, float, int]:
    """A 1.5 s call: (codec answered, 1 kHz share of what the leg heard, 440 Hz share of what the browser
    heard, the port of the leg's host candidate)."""
    up = asyncio.Event()
    peer = BrowserPeer(settings, MediaSettings(), FrameClock(), law="PCMU", on_up=up.set, on_gone=lambda _: None)
    browser, heard = await _browser(codecs)
    try:
        answer = await peer.answer(browser.localDescription.sdp)
        await browser.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.wait_for(up.wait(), 10)
        session = peer.session
        assert session is not None
        said: list[np.ndarray] = []
        session.listen(said.append)
        session.player.play(prompt_from_samples("tone", (np.sin(2 * np.pi * 440 * np.arange(12000) / 8000)
                                                         * 8000).astype(np.int16)))  # fmt: skip

        async def both_heard_a_second_and_a_half() -> None:  # 75 frames of 20 ms each way
            while len(said) < 75 or len(heard) < 75:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(both_heard_a_second_and_a_half(), 10)
        ports = [c.port for c in SessionDescription.parse(answer).media[0].ice_candidates]
        leg_heard = tone_level(np.concatenate(said[10:]), 8000, 1000)  # the jitter buffer's first frames: silence
        browser_heard = tone_level(np.concatenate(heard[10:]), 8000, 440)
        assert peer.codec is not None
        return peer.codec, leg_heard, browser_heard, ports[0]
    finally:
        await peer.close()
        await browser.close()


@pytest.mark.parametrize(("offered", "answered"), [(None, "PCMU"), (("PCMA", "opus"), "PCMA"), (("opus",), "opus")])
def test_a_browser_leg_answers_g711_first_and_carries_audio_both_ways(offered, answered):
    codec, leg_heard, browser_heard, port = asyncio.run(_call(offered))
    assert codec == answered
    assert leg_heard > 0.8, f"the browser's 1 kHz reached the leg's session at {leg_heard:.2f} of its energy"
    assert browser_heard > 0.8, f"the leg's 440 Hz reached the browser at {browser_heard:.2f} of its energy"
    assert LOOPBACK.port_min <= port <= LOOPBACK.port_max


def test_opus_first_when_ivrd_prefers_it():
    codec, _, _, _ = asyncio.run(_call(None, PeerSettings(addresses=("127.0.0.1",), codecs=("opus", "PCMU"))))
    assert codec == "opus"


async def _refusal(offer: str, settings: PeerSettings = LOOPBACK) -> str:
    peer = BrowserPeer(settings, MediaSettings(), FrameClock(), law="PCMU", on_up=lambda: None,
                       on_gone=lambda _: None)  # fmt: skip
    try:
        with pytest.raises(WebRtcError) as refused:
            await peer.answer(offer)
        return str(refused.value)
    finally:
        await peer.close()


async def _offer(video: bool = False, codecs: tuple[str, ...] | None = None) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("audio")
    if codecs:
        transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("audio").codecs if c.name in codecs])
    if video:
        pc.addTransceiver("video")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def test_offers_that_cannot_be_answered_are_refused_with_the_reason():
    assert "too long" in asyncio.run(_refusal("v=0\r\n" + "a=x\r\n" * 5000))
    assert "not SDP" in asyncio.run(_refusal("hello"))
    assert "one audio stream" in asyncio.run(_refusal(asyncio.run(_offer(video=True))))
    g711_only = PeerSettings(addresses=("127.0.0.1",), codecs=("PCMU", "PCMA"))
    assert "no common codec" in asyncio.run(_refusal(asyncio.run(_offer(codecs=("opus",))), g711_only))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_mangled_offer_is_answered_or_refused_never_anything_else(data):
    """Lines of a real offer dropped, repeated, cut or given other bytes: the leg answers or raises
    WebRtcError (the page gets the reason); nothing else escapes to the desk's socket."""
    lines = REAL_OFFER.split("\r\n")
    mangled = []
    for line in lines:
        action = data.draw(st.sampled_from(["keep"] * 6 + ["drop", "twice", "cut", "garble"]))
        if action == "keep":
            mangled.append(line)
        elif action == "twice":
            mangled += [line, line]
        elif action == "cut":
            mangled.append(line[: data.draw(st.integers(0, len(line)))])
        elif action == "garble":
            mangled.append(line[:2] + data.draw(st.text(max_size=30)))

    async def answer() -> None:
        peer = BrowserPeer(LOOPBACK, MediaSettings(), FrameClock(), law="PCMU", on_up=lambda: None,
                           on_gone=lambda _: None)  # fmt: skip
        try:
            await peer.answer("\r\n".join(mangled))
        except WebRtcError:
            pass
        finally:
            await peer.close()

    asyncio.run(answer())


REAL_OFFER = asyncio.run(_offer())
