"""One call's RTP on the event loop: the sockets, one paced tick, and RTCP reports on a timer, around the
sans-IO :class:`~ivrd.media.rtp_session.RtpSession`.

The 20 ms tick comes from the process's :class:`~ivrd.media.clock.FrameClock`, on absolute
deadlines, so lateness never accumulates into drift; a tick that comes more than a frame late
skips the frames it missed (their timestamps too) rather than bursting them. This shim only reads
the loop's clock, sends what the core hands out and feeds it what the sockets receive.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable
from typing import Final

from ..sip.sdp import AudioSession
from .clock import FrameClock
from .dtmf import Digit
from .rtp_session import MediaSettings, RtpSession
from .sockets import MediaSockets

REPORT_INTERVAL: Final = 5.0  # seconds between RTCP reports, on average


class MediaSession(RtpSession):
    """An :class:`RtpSession` with its sockets (RTP, and RTCP unless muxed) on the shared
    :class:`MediaSockets`, ticked by the shared :class:`FrameClock`."""

    def __init__(self, audio: AudioSession, settings: MediaSettings, clock: FrameClock, sockets: MediaSockets, *,
                 on_digit: Callable[[Digit], None], on_digit_start: Callable[[str], None],
                 on_prompt_done: Callable[[], None] | None = None, signalling_host: str | None = None) -> None:
        super().__init__(audio, settings, on_digit=on_digit, on_digit_start=on_digit_start,
                         on_prompt_done=on_prompt_done, signalling_host=signalling_host)  # fmt: skip
        self.clock = clock
        self.sockets = sockets
        self._sock: socket.socket | None = None
        self._rtcp_sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock_key: int | None = None
        self._report_timer: asyncio.TimerHandle | None = None

    def open(self, sock: socket.socket, rtcp_sock: socket.socket | None = None) -> None:
        """Adopt bound UDP sockets for RTP (and RTCP, unless it shares the RTP port), on the
        running loop; the session owns them."""
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self.sockets.add(sock, self._on_rtp)
        if rtcp_sock is not None:
            self._rtcp_sock = rtcp_sock
            self.sockets.add(rtcp_sock, self._on_rtcp)

    def start(self) -> None:
        """Start the paced tick (the first frame goes out at the clock's next deadline for this call)."""
        assert self._loop is not None
        self._clock_key, first = self.clock.join(self._on_tick)
        self.started(first, self._loop.time())
        self._report_timer = self._loop.call_later(REPORT_INTERVAL * random.uniform(0.5, 1.5) / 2, self._report)

    def close(self) -> None:
        """Stop sending and receiving; the caller's audio still in the jitter buffer goes to the recorder."""
        self.drain()
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

    def _on_tick(self, index: int) -> None:
        assert self._loop is not None
        packet = self.tick(index, self._loop.time())
        if packet is not None and self._send(self._sock, packet, self.latch.send_to):
            self.sent_packet(packet)

    def _on_rtp(self, data: bytes, source: tuple[str, int]) -> None:
        assert self._loop is not None
        self.receive(data, source, self._loop.time())

    def _on_rtcp(self, data: bytes, source: tuple[str, int]) -> None:
        assert self._loop is not None
        self.receive_rtcp(data, source, self._loop.time())

    def _report(self) -> None:
        """Send a report and schedule the next (RFC 3550 §6.2: about every 5 s, randomized by ±50% so
        calls do not report in step)."""
        assert self._loop is not None
        data = self.report(self._loop.time(), time.time())
        host, port = self.latch.send_to
        sock, to = (self._sock, (host, port)) if self.audio.rtcp_mux else (self._rtcp_sock, (host, port + 1))
        if self._send(sock, data, to):
            self.rtcp_out += 1
        self._report_timer = self._loop.call_later(REPORT_INTERVAL * random.uniform(0.5, 1.5), self._report)

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
