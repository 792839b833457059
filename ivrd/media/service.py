"""Media for SIP legs, the calls that come in and the ones placed: a port pair bound, a session opened
on the process's frame clock and sockets, then closed, its ports released and its counts kept."""

from __future__ import annotations

from collections.abc import Callable

from ..sip.sdp import AudioSession
from .clock import FrameClock
from .dtmf import Digit
from .ports import BoundPorts, PortPool, bind_pair
from .rtp_session import MediaSettings
from .session import MediaSession
from .sockets import MediaSockets


def ignore_digit(_: object) -> None:
    """For legs whose keys are relayed by their media, not acted on."""


class MediaService:
    """See the module docstring. ``address``: the configured media address (None: the SIP flow's own);
    ``on_closed`` takes each session's counts as it closes."""

    def __init__(self, settings: MediaSettings, pool: PortPool, *, clock: FrameClock, sockets: MediaSockets,
                 address: str | None, on_closed: Callable[[MediaSession], None]) -> None:  # fmt: skip
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.sockets = sockets
        self.address = address
        self._on_closed = on_closed

    def bind(self, local: str) -> tuple[str, BoundPorts] | None:
        """The media address for a leg whose SIP goes out from ``local``, and a port pair bound on it;
        None when no pair is free."""
        address = self.address or local
        ports = bind_pair(self.pool, address)
        return None if ports is None else (address, ports)

    def open(self, audio: AudioSession, ports: BoundPorts, *, on_digit: Callable[[Digit], None] | None = None,
             on_digit_start: Callable[[str], None] = ignore_digit,
             on_prompt_done: Callable[[], None] | None = None, signalling_host: str | None = None) -> MediaSession:
        """The session of an answered leg, on ``ports`` (which it owns from now on); not started yet.
        ``signalling_host``: where the leg's SIP comes from (behind NAT its media comes from there too)."""
        media = MediaSession(audio, self.settings, self.clock, self.sockets, on_digit=on_digit or ignore_digit,
                             on_digit_start=on_digit_start, on_prompt_done=on_prompt_done,
                             signalling_host=signalling_host)  # fmt: skip
        if audio.rtcp_mux:  # RTCP comes on the RTP port: the odd one is not needed
            ports.rtcp.close()
            media.open(ports.rtp)
        else:
            media.open(ports.rtp, ports.rtcp)
        return media

    def close(self, media: MediaSession | None, ports: BoundPorts) -> None:
        """End a leg's media: its session (or, when none was opened, its sockets) closed, the pair free."""
        if media is not None:
            media.unbridge()
            media.close()
            self._on_closed(media)
        else:
            ports.rtp.close()
            ports.rtcp.close()
        self.pool.release(ports.port)
