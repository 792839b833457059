"""One call's RTP on the event loop: a socket, one paced tick, and the receive path.

The 20 ms tick comes from the process's :class:`~ivrd.media.clock.FrameClock`, on absolute
deadlines, so lateness never accumulates into drift; a tick that comes more than a frame late
skips the frames it missed (their timestamps too) rather than bursting them. Each tick sends
one frame from the :class:`~ivrd.media.player.Player` and takes one frame out of the jitter
buffer for the consumers of the caller's audio (in-band DTMF detection, the recorders).
Received packets are latched to one source and filtered to the negotiated payload types;
telephone-events become digits.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NamedTuple, cast

import numpy as np

from ..sip.sdp import AudioSession
from .capture import Capture
from .clock import FrameClock
from .dtmf import Digit, DtmfError, InbandDetector, Rfc4733Receiver, Rfc4733Sender
from .g711 import Codec, Samples, decode, mix, transcode
from .jitter import JitterBuffer
from .player import FRAME_SAMPLES, Player
from .recorder import Recorder
from .rtcp import ReportBlock, RtcpError, SenderReport, build_report, ntp_time, parse_rtcp
from .rtp import ReceiveStats, RtpError, SourceLatch, build_rtp, is_rtcp, parse_rtp
from .sockets import MediaSockets

REPORT_INTERVAL: Final = 5.0  # seconds between RTCP reports, on average
CNAME: Final = f"ivrd@{socket.gethostname()}"
ADAPT_EVERY: Final = 25  # packets between jitter-buffer target updates (twice a second): jitter moves slowly
SILENT_FRAME: Final = np.zeros(FRAME_SAMPLES, dtype=np.int16)


@dataclass(frozen=True, slots=True)
class MediaSettings:
    latch: str = "first"  # "first" or "sdp"
    inband_dtmf: str = "auto"  # "auto" (when no telephone-event was negotiated), "always" or "never"
    idle_silence: bool = True
    jitter_min_frames: int = 1
    jitter_max_frames: int = 10


class PacketCounts(NamedTuple):
    """A session's RTP packet counts, as the metrics add them up over every call."""

    received: int  # from the latched source
    sent: int
    skipped: int  # never sent: the loop was held up a whole frame or more past their time
    lost: int  # never came in time to be played
    late: int  # came after their playout time
    foreign: int  # from a source other than the latched one
    malformed: int  # unparsable, or of a payload type not negotiated


class MediaSession:
    """See the module docstring. ``on_digit_start`` fires on a press's first packet (barge-in);
    ``on_digit`` once the press is over."""

    def __init__(self, audio: AudioSession, settings: MediaSettings, clock: FrameClock, sockets: MediaSockets, *,
                 on_digit: Callable[[Digit], None], on_digit_start: Callable[[str], None]) -> None:  # fmt: skip
        self.settings = settings
        self.clock = clock
        self.sockets = sockets
        self.audio = audio
        self.player = Player(cast(Codec, audio.codec), idle_silence=settings.idle_silence)
        self.stats = ReceiveStats()
        self.jitter = JitterBuffer(min_frames=settings.jitter_min_frames, max_frames=settings.jitter_max_frames)
        self.latch = SourceLatch((audio.remote_address, audio.remote_port), mode=settings.latch)
        self.events = Rfc4733Receiver()
        self.inband: InbandDetector | None = None
        self.recorder: Recorder | None = None
        self.capture: Capture | None = None  # a message being recorded
        self.speech: Callable[[Samples], None] | None = None  # a recognizer listening to the caller
        self.bridged_to: MediaSession | None = None  # the other leg of a bridged call: it hears our caller
        self._configure_inband()
        self._on_digit = on_digit
        self._on_digit_start = on_digit_start
        self._ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._timestamp = random.getrandbits(32)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock_key: int | None = None
        self._frame = 0  # the index (in the clock's count) of the next frame due
        self.sent = 0
        self._digits_out: deque[Rfc4733Sender] = deque()  # key presses to send, the first going out now
        self._digit_timestamp = 0  # the RTP timestamp of the press going out (all its packets carry it)
        self.digits_sent = 0
        self.skipped = 0
        self.malformed = 0
        self.wrong_payload = 0
        self.send_errors = 0
        self.frames_out = 0  # frames taken out of the jitter buffer
        self.octets = 0
        self._rtcp_sock: socket.socket | None = None
        self._report_timer: asyncio.TimerHandle | None = None
        self._last_sr: tuple[int, float] | None = None  # (middle 32 bits of its NTP time, when it came)
        self.rtcp_in = 0
        self.rtcp_out = 0
        self.rtcp_malformed = 0
        self.peer_report: ReportBlock | None = None  # what the caller last said about our stream
        self.rtt_ms: float | None = None

    def open(self, sock: socket.socket, rtcp_sock: socket.socket | None = None) -> None:
        """Adopt bound UDP sockets for RTP (and RTCP, unless it shares the RTP port), on the
        running loop; the session owns them."""
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self.sockets.add(sock, self.receive)
        if rtcp_sock is not None:
            self._rtcp_sock = rtcp_sock
            self.sockets.add(rtcp_sock, self.receive_rtcp)

    def start(self) -> None:
        """Start the paced tick (the first frame goes out at the clock's next deadline for this call)."""
        assert self._loop is not None
        self._clock_key, self._frame = self.clock.join(self._tick)
        self._report_timer = self._loop.call_later(REPORT_INTERVAL * random.uniform(0.5, 1.5) / 2, self._report)

    def close(self) -> None:
        """Stop sending and receiving; the caller's audio still in the jitter buffer goes to the recorder."""
        if self.recorder is not None and self.stats.received:
            for frame in self.jitter.drain():
                self.recorder.add(decode(frame, self.player.codec) if frame else SILENT_FRAME)
        if self._clock_key is not None:
            self.clock.leave(self._clock_key)
            self._clock_key = None
        if self._report_timer is not None:
            self._report_timer.cancel()
            self._report_timer = None
        for sock in (self._sock, self._rtcp_sock):
            if sock is not None:
                self.sockets.remove(sock)
                sock.close()
        self._sock = self._rtcp_sock = None

    def send_digit(self, digit: str, duration_ms: int | None = None) -> bool:
        """Send a key press as RFC 4733 events (from the next frame, after any press still going out);
        False when the other side did not negotiate telephone-event. Presses received as RFC 4733 on
        one side of a bridge are sent on to the other this way."""
        if self.audio.telephone_event is None:
            return False
        if not self._digits_out:
            self._digit_timestamp = self._timestamp
        self._digits_out.append(Rfc4733Sender(digit, max(40, duration_ms or 100)))
        self.digits_sent += 1
        return True

    def bridge(self, other: MediaSession) -> None:
        """Each side hears the other from now on (prompts still play first on either side)."""
        self.bridged_to, other.bridged_to = other, self
        self.player.relaying = other.player.relaying = True

    def unbridge(self) -> None:
        other, self.bridged_to = self.bridged_to, None
        self.player.relaying = False
        if other is not None:
            other.bridged_to = None
            other.player.relaying = False

    def update(self, audio: AudioSession) -> None:
        """A renegotiation (re-INVITE): new remote address, codec or direction; relearn the source."""
        self.audio = audio
        self.player.codec = cast(Codec, audio.codec)
        self.latch.relearn((audio.remote_address, audio.remote_port))
        self._configure_inband()

    def _configure_inband(self) -> None:
        mode = self.settings.inband_dtmf
        wanted = mode == "always" or (mode == "auto" and self.audio.telephone_event is None)
        if wanted and self.inband is None:
            self.inband = InbandDetector()
        elif not wanted:
            self.inband = None

    # ---- sending ----------------------------------------------------------------------------------

    def _tick(self, index: int) -> None:
        missed = index - self._frame
        self._frame = index + 1
        if missed:  # the loop was held up: skip the missed frames, keep the RTP clock true
            self.skipped += missed
            self._timestamp += missed * FRAME_SAMPLES
        payload, marker = self.player.next_frame()
        payload_type, timestamp = self.audio.payload_type, self._timestamp
        event = self._next_event() if self._digits_out else None
        if event is not None:  # a key press goes out instead of this frame's audio
            payload, marker, timestamp = event
            payload_type = cast(int, self.audio.telephone_event)
        if payload is not None and self.audio.direction in ("sendrecv", "sendonly"):
            packet = build_rtp(payload_type, marker, self._seq, timestamp, self._ssrc, payload)
            self._seq = (self._seq + 1) & 0xFFFF  # a packet the socket refused is lost, as on the wire
            if self._send(self._sock, packet, self.latch.send_to):
                self.sent += 1
                self.octets += len(payload)
        self._timestamp += FRAME_SAMPLES
        frame = self.jitter.pop()
        if frame is not None:
            self.frames_out += 1
            peer = self.bridged_to
            if peer is not None:  # the same law is relayed as it came; the other is mapped byte by byte
                peer.player.relay(transcode(frame, self.player.codec, peer.player.codec))
        if self.inband is not None or self.recorder is not None or self.capture is not None or self.speech is not None:
            # once bridged, the recording holds both sides: what the caller says and what they hear
            self._listen(frame, payload if self.bridged_to is not None and event is None else None)

    def _send(self, sock: socket.socket | None, data: bytes, address: tuple[str, int]) -> bool:
        """Send now or never: a real-time packet the socket cannot take at once would be late by the time
        it could, so it is counted, not queued."""
        if sock is None:
            return False
        try:
            sock.sendto(data, address)
        except OSError:  # a full send buffer, or no route to the caller
            self.send_errors += 1
            return False
        return True

    def _next_event(self) -> tuple[bytes, bool, int] | None:
        """The next packet of the key presses going out: ``(payload, marker, timestamp)``."""
        while self._digits_out:
            event = self._digits_out[0].next_payload()
            if event is not None:
                return event[0], event[1], self._digit_timestamp
            self._digits_out.popleft()
            self._digit_timestamp = self._timestamp  # the next press starts with this frame
        return None

    def _listen(self, frame: bytes | None, heard: bytes | None = None) -> None:
        """The consumers of the caller's audio, one 20 ms frame (decoded once) per tick; ``heard`` is
        what went out to the caller in the same tick, mixed into the recording."""
        assert self._loop is not None
        samples = decode(frame, self.player.codec) if frame else SILENT_FRAME  # lost or not there: silence
        if self.recorder is not None and self.stats.received:  # real time, from the caller's first packet
            self.recorder.add(mix(samples, decode(heard, self.player.codec)) if heard else samples)
        if self.capture is not None:
            self.capture.add(samples)
        if self.speech is not None:
            self.speech(samples)
        if self.inband is not None and frame is not None:
            started, finished = self.inband.feed(samples, self._loop.time())
            if started is not None:
                self._on_digit_start(started)
            if finished is not None:
                self._on_digit(finished)

    # ---- RTCP ---------------------------------------------------------------------------------------

    def _report(self) -> None:
        """Send a compound report (SR once we have sent audio, else RR) and schedule the next one
        (RFC 3550 §6.2: about every 5 s, randomized by ±50% so calls do not report in step)."""
        assert self._loop is not None
        block = None
        if self.stats.ssrc is not None:
            fraction, lost, highest, jitter = self.stats.report()
            lsr, dlsr = 0, 0
            if self._last_sr is not None:
                lsr, dlsr = self._last_sr[0], int((self._loop.time() - self._last_sr[1]) * 65536)
            block = ReportBlock(self.stats.ssrc, fraction, lost, highest, jitter, lsr, dlsr)
        sender = None
        if self.sent:
            sender = SenderReport(self._ssrc, ntp_time(time.time()), self._timestamp, self.sent, self.octets, ())
        data = build_report(self._ssrc, CNAME, block, sender=sender)
        host, port = self.latch.send_to
        sock, to = (self._sock, (host, port)) if self.audio.rtcp_mux else (self._rtcp_sock, (host, port + 1))
        if self._send(sock, data, to):
            self.rtcp_out += 1
        self._report_timer = self._loop.call_later(REPORT_INTERVAL * random.uniform(0.5, 1.5), self._report)

    def receive_rtcp(self, data: bytes, source: tuple[str, int]) -> None:
        """A report from the caller: keep its last SR (for our LSR/DLSR) and what it says of our stream."""
        assert self._loop is not None
        if source[0] != self.latch.send_to[0]:
            self.latch.foreign += 1
            return
        try:
            reports = parse_rtcp(data)
        except RtcpError:
            self.rtcp_malformed += 1
            return
        self.rtcp_in += 1
        now = self._loop.time()
        for report in reports:
            if isinstance(report, SenderReport):
                self._last_sr = ((report.ntp >> 16) & 0xFFFFFFFF, now)
            for block in report.blocks:
                if block.ssrc != self._ssrc:
                    continue
                self.peer_report = block
                if block.lsr:  # RFC 3550 §6.4.1: round trip = arrival - LSR - DLSR, in 1/65536 s
                    arrival = (ntp_time(time.time()) >> 16) & 0xFFFFFFFF
                    rtt = (arrival - block.lsr - block.dlsr) & 0xFFFFFFFF
                    self.rtt_ms = rtt / 65.536 if rtt < 2**31 else None  # "negative": a bad DLSR, not a time

    # ---- RTP in -----------------------------------------------------------------------------------

    def receive(self, data: bytes, source: tuple[str, int]) -> None:
        if is_rtcp(data):
            if self.audio.rtcp_mux:
                self.receive_rtcp(data, source)
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            self.malformed += 1
            return
        if not self.latch.accept(source, packet.sequence):
            return
        assert self._loop is not None
        now = self._loop.time()
        changes = self.stats.source_changes
        if packet.payload_type == self.audio.payload_type:
            ext = self.stats.update(packet, now)
            if self.stats.source_changes != changes:
                self.jitter.restart()
            self.jitter.push(ext, packet.payload)
            if not ext % ADAPT_EVERY:
                self.jitter.adapt(self.stats.jitter_seconds)
        elif packet.payload_type == self.audio.telephone_event:
            self.stats.update(packet, now, timing=False)
            try:
                started, finished = self.events.packet(packet.timestamp, packet.payload, now)
            except DtmfError:
                self.malformed += 1
                return
            if started is not None:
                self._on_digit_start(started)
            if finished is not None:
                if self.bridged_to is not None:  # the other side hears the key as it was pressed (in-band
                    self.bridged_to.send_digit(finished.digit, finished.duration_ms)  # tones go as audio)
                self._on_digit(finished)
        else:
            self.wrong_payload += 1

    def packet_counts(self) -> PacketCounts:
        """What this session has counted so far (read at every scrape: one call per session)."""
        jitter = self.jitter.stats
        return PacketCounts(self.stats.received, self.sent, self.skipped, jitter.lost, jitter.late, self.latch.foreign,
                            self.malformed + self.wrong_payload)

    def summary(self) -> dict[str, object]:
        """Figures for the call's end-of-call log line."""
        return {
            "rtp_sent": self.sent, "rtp_received": self.stats.received, "rtp_lost": self.stats.lost,
            "rtp_jitter_ms": round(self.stats.jitter_seconds * 1000, 2), "rtp_foreign": self.latch.foreign,
            "rtp_malformed": self.malformed, "rtp_wrong_payload": self.wrong_payload, "send_errors": self.send_errors,
            "jitter_late": self.jitter.stats.late, "jitter_duplicates": self.jitter.stats.duplicates,
            "ticks_skipped": self.skipped, "frames_played_in": self.frames_out, "digits_sent": self.digits_sent,
            "rtcp_in": self.rtcp_in, "rtcp_out": self.rtcp_out, "rtcp_malformed": self.rtcp_malformed,
            "peer_lost": self.peer_report.cumulative_lost if self.peer_report else None,
            "peer_jitter_ms": round(self.peer_report.jitter / 8, 2) if self.peer_report else None,
            "rtt_ms": round(self.rtt_ms, 2) if self.rtt_ms is not None else None,
        }  # fmt: skip

