"""A browser leg's audio: an :class:`~ivrd.media.rtp_session.RtpSession` ticked on every call's frame clock,
whose packets travel through aiortc instead of a socket.

Each tick's packet goes to the browser as a G.711 packet aiortc sends as it is (when the browser took
PCMU or PCMA) or as linear audio aiortc encodes (Opus, resampled to 48 kHz by aiortc). What the browser
sends comes back decoded by aiortc, is resampled to 8 kHz when it was Opus, encoded in the session's
law and fed to the session as an RTP packet from its expected source: the jitter buffer, the
statistics, the recorder and the relay to the other leg take it from there, as for a phone.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Final, cast

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..logs import event
from ..media.clock import FrameClock
from ..media.g711 import Codec, decode, encode
from ..media.player import FRAME_SAMPLES
from ..media.rtp import build_rtp
from ..media.rtp_session import RTP_HEADER_BYTES, RtpSession

log = logging.getLogger("ivrd.webrtc")

RATE: Final = 8000
TIME_BASE: Final = fractions.Fraction(1, RATE)
QUEUED_FRAMES: Final = 5  # frames waiting for aiortc's sender at most (100 ms); older ones are dropped
BROWSER_SOURCE: Final = ("0.0.0.0", 9)  # where the session believes the browser's packets come from


class OutboundTrack(MediaStreamTrack):
    """The audio ivrd sends the browser: one frame per tick of the leg's session, handed to aiortc's
    sender as it asks. A sender that falls behind loses the oldest frames, never the newest."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: deque[av.AudioFrame | av.Packet[Any]] = deque(maxlen=QUEUED_FRAMES)
        self._ready = asyncio.Event()

    def put(self, frame: av.AudioFrame | av.Packet[Any]) -> None:
        self._frames.append(frame)
        self._ready.set()

    async def recv(self) -> av.AudioFrame | av.Packet[Any]:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()


class BrowserMedia:
    """See the module docstring. ``codec`` is what the browser negotiated: PCMU, PCMA or opus."""

    def __init__(self, session: RtpSession, codec: str, clock: FrameClock) -> None:
        self.session = session
        self.codec = codec
        self.clock = clock
        self.outbound = OutboundTrack()
        self._loop = asyncio.get_running_loop()
        self._clock_key: int | None = None
        self._samples_out = 0
        self._seq = 0
        self._timestamp = 0
        self._feed: asyncio.Task[None] | None = None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE, frame_size=FRAME_SAMPLES)
        self.frames_in = 0

    @property
    def law(self) -> Codec:
        return self.session.player.codec

    def start(self, inbound: MediaStreamTrack, on_gone: Callable[[], None]) -> None:
        """Send and receive from now on: ``inbound`` is the browser's track; ``on_gone`` is called
        once when it ends (the browser went away)."""
        self._clock_key, first = self.clock.join(self._tick)
        self.session.started(first, self._loop.time())
        self._feed = self._loop.create_task(self._receive(inbound, on_gone))

    def close(self) -> None:
        self.session.drain()
        if self._clock_key is not None:
            self.clock.leave(self._clock_key)
            self._clock_key = None
        if self._feed is not None:
            self._feed.cancel()
            self._feed = None
        self.outbound.stop()

    # ---- to the browser -------------------------------------------------------------------------

    def _tick(self, index: int) -> None:
        session = self.session
        packet = session.tick(index, self._loop.time())
        if packet is None:
            return
        session.sent_packet(packet)
        payload = packet[RTP_HEADER_BYTES:]
        frame: av.AudioFrame | av.Packet[Any]
        if self.codec == "opus":
            frame = av.AudioFrame.from_ndarray(decode(payload, self.law).reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = RATE
        else:  # the browser's own law: aiortc sends the bytes as they are
            frame = av.Packet(payload)
        frame.pts = self._samples_out
        frame.time_base = TIME_BASE
        self._samples_out += FRAME_SAMPLES
        self.outbound.put(frame)

    # ---- from the browser -----------------------------------------------------------------------

    async def _receive(self, inbound: MediaStreamTrack, on_gone: Callable[[], None]) -> None:
        try:
            while True:
                frame = await inbound.recv()
                for piece in self._to_8k(cast(av.AudioFrame, frame)):
                    self._feed_frame(piece)
        except MediaStreamError:
            on_gone()
        except Exception as exc:  # a frame aiortc or PyAV could not handle: the leg is lost, not the daemon
            event(log, "webrtc.media_failed", logging.WARNING, error=repr(exc))
            on_gone()

    def _to_8k(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        if frame.sample_rate == RATE and frame.layout.name == "mono" and frame.samples == FRAME_SAMPLES:
            return [frame]
        return self._resampler.resample(frame)

    def _feed_frame(self, frame: av.AudioFrame) -> None:
        samples = frame.to_ndarray().reshape(-1).astype(np.int16, copy=False)
        payload = encode(samples, self.law)
        session = self.session
        packet = build_rtp(session.audio.payload_type, self.frames_in == 0, self._seq, self._timestamp, 1, payload)
        self._seq = (self._seq + 1) & 0xFFFF
        self._timestamp += len(samples)
        self.frames_in += 1
        session.receive(packet, BROWSER_SOURCE, self._loop.time())
