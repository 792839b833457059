"""One call's RTP, sans-IO: packets and ``now`` in, the packet to send each 20 ms out.

:meth:`RtpSession.tick` sends one frame from the :class:`~ivrd.media.player.Player` (or a key press
going out) and takes one frame out of the jitter buffer for the consumers of the caller's audio
(in-band DTMF detection, the call recording, a message being recorded, a recognizer listening) and,
once bridged, for the other leg. :meth:`RtpSession.receive` latches the caller's source, filters the
negotiated payload types and turns telephone-events into digits. RTCP reports are built and read here
too. Nothing here reads a clock or touches a socket: :class:`~ivrd.media.session.MediaSession` does,
and the tests drive this with a fake clock.
"""

from __future__ import annotations

import random
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NamedTuple, cast

import numpy as np

from ..sip.sdp import AudioSession
from .capture import Capture
from .dtmf import Digit, DtmfError, InbandDetector, Rfc4733Receiver, Rfc4733Sender
from .g711 import Codec, Samples, decode, transcode
from .jitter import JitterBuffer
from .player import FRAME_SAMPLES, Player
from .recorder import Recorder
from .rtcp import ReportBlock, RtcpError, SenderReport, build_report, ntp_time, parse_rtcp
from .rtp import ReceiveStats, RtpError, SourceLatch, build_rtp, is_rtcp, parse_rtp

CNAME: Final = f"ivrd@{socket.gethostname()}"
ADAPT_EVERY: Final = 25  # packets between jitter-buffer target updates (twice a second): jitter moves slowly
SILENT_FRAME: Final = np.zeros(FRAME_SAMPLES, dtype=np.int16)
RTP_HEADER_BYTES: Final = 12  # what build_rtp puts before the payload
SENDER_REPORTS_KEPT: Final = 4  # our last SRs, by the stamp a peer's report block quotes (LSR)


@dataclass(frozen=True, slots=True)
class MediaSettings:
    latch: str = "first"  # "first", "any" or "sdp" (rtp.SourceLatch)
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


class RtpSession:
    """See the module docstring. ``on_digit_start`` fires on a press's first packet (barge-in);
    ``on_digit`` once the press is over; ``on_prompt_done`` when the player has played all it was given.
    ``signalling_host`` is where the call's SIP comes from: behind NAT, its media comes from there too."""

    def __init__(self, audio: AudioSession, settings: MediaSettings, *, on_digit: Callable[[Digit], None],
                 on_digit_start: Callable[[str], None], on_prompt_done: Callable[[], None] | None = None,
                 signalling_host: str | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.audio = audio
        self.player = Player(cast(Codec, audio.codec), idle_silence=settings.idle_silence)
        self.player.on_finished = on_prompt_done
        self.stats = ReceiveStats()
        self.jitter = JitterBuffer(min_frames=settings.jitter_min_frames, max_frames=settings.jitter_max_frames)
        self.latch = SourceLatch((audio.remote_address, audio.remote_port), mode=settings.latch,
                                 hosts=frozenset({signalling_host} if signalling_host else ()))  # fmt: skip
        self.events = Rfc4733Receiver()
        self.inband: InbandDetector | None = None
        self.recorder: Recorder | None = None
        self.capture: Capture | None = None
        self.speech: Callable[[Samples], None] | None = None
        self.bridged_to: RtpSession | None = None  # the other leg of a bridged call: it hears our caller
        self._configure_inband()
        self._on_digit = on_digit
        self._on_digit_start = on_digit_start
        self._ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._timestamp = random.getrandbits(32)
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
        self._last_sr: tuple[int, float] | None = None  # (middle 32 bits of its NTP time, when it came)
        self._our_reports: dict[int, float] = {}  # our SRs' LSR stamps -> when they were built
        self.rtcp_in = 0
        self.rtcp_out = 0
        self.rtcp_malformed = 0
        self.peer_report: ReportBlock | None = None  # what the caller last said about our stream
        self.rtt_ms: float | None = None
        self.heard_at = 0.0  # when the caller last sent anything (RTP or RTCP): a silent caller may be gone

    def started(self, index: int, now: float) -> None:
        """The media starts now, its first frame being the clock's ``index``: the latch's window opens."""
        self._frame = index
        self.latch.open(now)
        self.heard_at = now

    # ---- who hears the caller ------------------------------------------------------------------------

    def listen(self, speech: Callable[[Samples], None] | None) -> None:
        """Hand every frame of the caller's audio to ``speech`` (a recognizer), or to nobody (None)."""
        self.speech = speech

    def record(self, recorder: Recorder | None) -> None:
        """Record the whole call from the caller's first packet: the caller left, what they hear right."""
        self.recorder = recorder

    def capture_message(self, capture: Capture | None) -> None:
        """Record what the caller says into ``capture`` (a voicemail message), or stop (None)."""
        self.capture = capture

    def _configure_inband(self) -> None:
        mode = self.settings.inband_dtmf
        wanted = mode == "always" or (mode == "auto" and self.audio.telephone_event is None)
        if wanted and self.inband is None:
            self.inband = InbandDetector()
        elif not wanted:
            self.inband = None

    # ---- the other leg --------------------------------------------------------------------------------

    def bridge(self, other: RtpSession) -> None:
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
        if audio.telephone_event != self.audio.telephone_event:
            self._digits_out.clear()  # key presses queued for events the peer no longer takes (or takes elsewhere)
        self.audio = audio
        self.player.codec = cast(Codec, audio.codec)
        self.latch.relearn((audio.remote_address, audio.remote_port))
        self._configure_inband()

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

    # ---- sending ----------------------------------------------------------------------------------

    def tick(self, index: int, now: float) -> bytes | None:
        """Frame ``index`` is due: the RTP packet to send to ``latch.send_to`` now (None: nothing to
        send); the caller's next frame goes to its consumers. A jump in ``index`` is frames the loop
        missed: skipped, the RTP clock carried over them."""
        missed = index - self._frame
        self._frame = index + 1
        if missed > 0:
            self.skipped += missed
            self._timestamp += missed * FRAME_SAMPLES
        payload, marker = self.player.next_frame()
        payload_type, timestamp = self.audio.payload_type, self._timestamp
        event = self._next_event() if self._digits_out else None
        if event is not None:  # a key press goes out instead of this frame's audio
            payload, marker, timestamp = event
            payload_type = cast(int, self.audio.telephone_event)
        packet = None
        if payload is not None and self.audio.direction in ("sendrecv", "sendonly"):
            packet = build_rtp(payload_type, marker, self._seq, timestamp, self._ssrc, payload)
            self._seq = (self._seq + 1) & 0xFFFF  # a packet the socket refuses is lost, as on the wire
        self._timestamp += FRAME_SAMPLES
        frame = self.jitter.pop()
        if frame is not None:
            self.frames_out += 1
            peer = self.bridged_to
            if peer is not None:  # the same law is relayed as it came; the other is mapped byte by byte
                peer.player.relay(transcode(frame, self.player.codec, peer.player.codec))
        if self.inband is not None or self.recorder is not None or self.capture is not None or self.speech is not None:
            # the recording holds both sides: what the caller says, and what they hear (no key events)
            self._listen(frame, payload if event is None else None, now)
        return packet

    def sent_packet(self, packet: bytes) -> None:
        """``packet`` (from :meth:`tick`) went out."""
        self.sent += 1
        self.octets += len(packet) - RTP_HEADER_BYTES

    def _next_event(self) -> tuple[bytes, bool, int] | None:
        """The next packet of the key presses going out: ``(payload, marker, timestamp)``."""
        while self._digits_out:
            event = self._digits_out[0].next_payload()
            if event is not None:
                return event[0], event[1], self._digit_timestamp
            self._digits_out.popleft()
            self._digit_timestamp = self._timestamp  # the next press starts with this frame
        return None

    def _listen(self, frame: bytes | None, heard: bytes | None, now: float) -> None:
        """The consumers of the caller's audio, one 20 ms frame (decoded once) per tick; ``heard`` is
        what went out to the caller in the same tick, the recording's other channel."""
        samples = decode(frame, self.player.codec) if frame else SILENT_FRAME  # lost or not there: silence
        if self.recorder is not None:  # from the first frame sent: the caller hears it, whenever they speak
            self.recorder.add_pair(samples, decode(heard, self.player.codec) if heard else SILENT_FRAME)
        if self.capture is not None:
            self.capture.add(samples)
        if self.speech is not None:
            self.speech(samples)
        if self.inband is not None and frame is not None:
            started, finished = self.inband.feed(samples, now)
            if started is not None:
                self._on_digit_start(started)
            if finished is not None:
                self._on_digit(finished)

    def drain(self) -> None:
        """The session ends: the caller's audio still in the jitter buffer goes to the recorder."""
        if self.recorder is not None:
            for frame in self.jitter.drain():
                self.recorder.add_pair(decode(frame, self.player.codec) if frame else SILENT_FRAME, SILENT_FRAME)

    # ---- RTCP ---------------------------------------------------------------------------------------

    def report(self, now: float, wall: float) -> bytes:
        """A compound report (SR once we have sent audio, else RR) at ``now``; ``wall`` is the Unix time
        it carries (RFC 3550 §6.4)."""
        block = None
        if self.stats.ssrc is not None:
            fraction, lost, highest, jitter = self.stats.report()
            lsr, dlsr = 0, 0
            if self._last_sr is not None:
                lsr, dlsr = self._last_sr[0], int((now - self._last_sr[1]) * 65536)
            block = ReportBlock(self.stats.ssrc, fraction, lost, highest, jitter, lsr, dlsr)
        sender = None
        if self.sent:
            ntp = ntp_time(wall)
            sender = SenderReport(self._ssrc, ntp, self._timestamp, self.sent, self.octets, ())
            if len(self._our_reports) >= SENDER_REPORTS_KEPT:
                del self._our_reports[next(iter(self._our_reports))]
            self._our_reports[(ntp >> 16) & 0xFFFFFFFF] = now
        return build_report(self._ssrc, CNAME, block, sender=sender)

    def receive_rtcp(self, data: bytes, source: tuple[str, int], now: float) -> None:
        """A report from the caller: keep its last SR (for our LSR/DLSR) and what it says of our stream;
        the round trip from one of our SRs it quotes (RFC 3550 §6.4.1: now - our SR - its delay)."""
        if source[0] != self.latch.send_to[0]:
            self.latch.foreign += 1
            return
        try:
            reports = parse_rtcp(data)
        except RtcpError:
            self.rtcp_malformed += 1
            return
        self.rtcp_in += 1
        self.heard_at = now
        for report in reports:
            if isinstance(report, SenderReport):
                self._last_sr = ((report.ntp >> 16) & 0xFFFFFFFF, now)
            for block in report.blocks:
                if block.ssrc != self._ssrc:
                    continue
                self.peer_report = block
                sent_at = self._our_reports.get(block.lsr) if block.lsr else None
                if sent_at is not None:
                    rtt = now - sent_at - block.dlsr / 65536
                    self.rtt_ms = rtt * 1000 if rtt >= 0 else None  # "negative": a bad DLSR, not a time

    # ---- RTP in -----------------------------------------------------------------------------------

    def receive(self, data: bytes, source: tuple[str, int], now: float) -> None:
        if is_rtcp(data):
            if self.audio.rtcp_mux:
                self.receive_rtcp(data, source, now)
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            self.malformed += 1
            return
        if not self.latch.accept(source, packet.sequence, now):
            return
        self.heard_at = now
        changes = self.stats.source_changes
        if packet.payload_type == self.audio.payload_type:
            ext = self.stats.update(packet, now)
            if self.stats.source_changes != changes:
                self.jitter.restart()
            self.jitter.push(ext, packet.payload)
            if not ext % ADAPT_EVERY:
                self.jitter.adapt(self.stats.jitter_seconds)
        elif packet.payload_type == self.audio.telephone_event:
            try:
                started, finished = self.events.packet(packet.timestamp, packet.payload, now)
            except DtmfError:
                self.malformed += 1  # counted once: not as received too
                return
            self.stats.update(packet, now, timing=False)
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
