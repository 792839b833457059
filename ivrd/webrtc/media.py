"""A browser leg's audio: an :class:`~ivrd.media.rtp_session.RtpSession` ticked on every call's frame clock,
whose packets travel through aiortc instead of a socket.

Each tick's packet goes to the browser as a G.711 packet aiortc sends as it is (when the browser took
PCMU or PCMA) or as linear audio aiortc encodes (Opus, resampled to 48 kHz by aiortc). What the browser
sends is taken from aiortc once decrypted (:class:`DirectReceiver`), decoded and resampled to 8 kHz
when it is Opus, and fed to the session as an RTP packet from its expected source: the jitter buffer,
the statistics, the recorder and the relay to the other leg take it from there, as for a phone.
"""

from __future__ import annotations

import asyncio
import fractions
from collections import deque
from typing import Any, Final

import av
import numpy as np
from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from ..media.clock import FrameClock
from ..media.g711 import Codec, decode, encode
from ..media.player import FRAME_SAMPLES
from ..media.rtp import build_rtp
from ..media.rtp_session import RTP_HEADER_BYTES, RtpSession

RATE: Final = 8000
PAYLOAD_TYPES: Final = {"PCMU": 0, "PCMA": 8}  # static: every browser uses them
TIME_BASE: Final = fractions.Fraction(1, RATE)
OPUS_BITRATE: Final = 24000  # bits/s: wideband speech (the caller's side is narrowband G.711 anyway)
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
        self._payload_type = PAYLOAD_TYPES.get(codec, -1)
        self._decoder = _opus_decoder() if codec == "opus" else None
        self._encoder = _opus_encoder() if codec == "opus" else None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE, frame_size=FRAME_SAMPLES)

    @property
    def law(self) -> Codec:
        return self.session.player.codec

    def start(self) -> None:
        """Send from now on (what the browser sends is taken as it comes, through :class:`DirectReceiver`)."""
        self._clock_key, first = self.clock.join(self._tick)
        self.session.started(first, self._loop.time())

    def close(self) -> None:
        self.session.drain()
        if self._clock_key is not None:
            self.clock.leave(self._clock_key)
            self._clock_key = None
        self.outbound.stop()

    # ---- to the browser -------------------------------------------------------------------------

    def _tick(self, index: int) -> None:
        session = self.session
        packet = session.tick(index, self._loop.time())
        if packet is None:
            return
        session.sent_packet(packet)
        payload = packet[RTP_HEADER_BYTES:]
        pts = self._samples_out
        self._samples_out += FRAME_SAMPLES
        if self._encoder is None:  # the browser's own law: aiortc sends the bytes as they are
            self.outbound.put(_packet(payload, pts))
            return
        # Opus, encoded here from the 8 kHz samples (libopus takes them as they are): aiortc would
        # resample to 48 kHz stereo first and encode on a thread, a hand-over per frame
        frame = av.AudioFrame.from_ndarray(decode(payload, self.law).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, pts, TIME_BASE
        for encoded in self._encoder.encode(frame):
            self.outbound.put(_packet(bytes(encoded), pts))

    # ---- from the browser -----------------------------------------------------------------------

    def receive(self, packet: RtpPacket) -> None:
        """An RTP packet from the browser, decrypted by aiortc: G.711 as it came (its own sequence and
        timestamp, so the session's loss and jitter figures are the browser's), Opus decoded to 8 kHz
        first. A packet that cannot be decoded is counted as the session counts malformed ones."""
        session = self.session
        if self._decoder is None:
            if packet.payload_type == self._payload_type:
                data = build_rtp(session.audio.payload_type, bool(packet.marker), packet.sequence_number,
                                 packet.timestamp, packet.ssrc, packet.payload)  # fmt: skip
                session.receive(data, BROWSER_SOURCE, self._loop.time())
            return
        try:
            decoded = self._decoder.decode(av.Packet(packet.payload))
        except av.FFmpegError:
            session.malformed += 1
            return
        for frame in decoded:
            for piece in self._resampler.resample(frame):
                samples = piece.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                data = build_rtp(session.audio.payload_type, False, self._seq, self._timestamp, packet.ssrc,
                                 encode(samples, self.law))  # fmt: skip
                self._seq = (self._seq + 1) & 0xFFFF
                self._timestamp += len(samples)
                session.receive(data, BROWSER_SOURCE, self._loop.time())


def _packet(payload: bytes, pts: int) -> av.Packet[Any]:
    """Encoded audio for aiortc to send as it is, stamped in 8 kHz samples (aiortc converts to the
    codec's RTP clock)."""
    packet = av.Packet(payload)
    packet.pts, packet.time_base = pts, TIME_BASE
    return packet


def _opus_decoder() -> av.AudioCodecContext:
    """FFmpeg's own Opus decoder, in mono: half the work of libopus's stereo, and mono resamples faster."""
    decoder = av.CodecContext.create("opus", "r")
    decoder.layout = "mono"
    return decoder


def _opus_encoder() -> av.AudioCodecContext:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = RATE, "mono", "s16"
    encoder.bit_rate = OPUS_BITRATE
    encoder.time_base = TIME_BASE
    encoder.options = {"application": "voip", "frame_duration": "20"}
    return encoder


class DirectReceiver(RTCRtpReceiver):
    """aiortc's receiver, handing each packet straight to a leg's :meth:`BrowserMedia.receive`.

    aiortc decodes each stream on a thread of its own and queues every frame back to the loop: per
    packet, a thread switch and the GIL changing hands (most of a leg's cost). The leg's session has
    its own jitter buffer and G.711 needs no decoding, so the packets go to it on the loop instead
    (aiortc's receiver reports then carry no reception figures; the leg's session keeps them).
    :func:`receive_directly` turns aiortc's receiver into this one in place."""

    _media: BrowserMedia

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if self._enabled:
            self._media.receive(packet)


def receive_directly(receiver: RTCRtpReceiver, media: BrowserMedia) -> None:
    receiver.__class__ = DirectReceiver
    assert isinstance(receiver, DirectReceiver)
    receiver._media = media
