"""One browser on the other end of a leg: its RTCPeerConnection (aiortc), answering the browser's offer.

The browser offers; the node answers with the first of ``webrtc.codecs`` the browser offered (G.711
first by default: no transcoding, no resampling, the least CPU; Opus when the browser offers nothing
else), host candidates on the configured addresses and port range, and one audio track each way.
The leg's :class:`~ivrd.webrtc.media.BrowserMedia` starts once ICE and DTLS are up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.exceptions import InvalidStateError
from aiortc.sdp import SessionDescription

from ..config import WebRtcConfig
from ..logs import event
from ..media.clock import FrameClock
from ..media.g711 import Codec
from ..media.rtp_session import MediaSettings, RtpSession
from ..media.service import ignore_digit
from ..sip.sdp import AudioSession
from .ice import host_addresses, use_host_candidates
from .media import BROWSER_SOURCE, PAYLOAD_TYPES, BrowserMedia, receive_directly

log = logging.getLogger("ivrd.webrtc")

MAX_SDP: Final = 20_000  # bytes: a browser's audio offer is 2-5 kB
# how aiortc's SDP parser and offer/answer fail on an offer they cannot take (the parser asserts)
REFUSALS: Final = (ValueError, IndexError, KeyError, TypeError, AttributeError, AssertionError, InvalidStateError)


class WebRtcError(Exception):
    """The browser's offer cannot be answered (the message says why, for the page)."""


@dataclass(frozen=True, slots=True)
class PeerSettings:
    """Where and how browser legs get their media (``webrtc:`` in etc/ivrd.yaml)."""

    addresses: tuple[str, ...] = ("127.0.0.1",)
    port_min: int = 20000
    port_max: int = 20999
    codecs: tuple[str, ...] = ("PCMU", "PCMA", "opus")

    @classmethod
    def of(cls, webrtc: WebRtcConfig) -> PeerSettings:
        """From the configuration's ``webrtc:`` (no addresses there: every address of the machine)."""
        return cls(webrtc.addresses or host_addresses(), webrtc.port_min, webrtc.port_max, tuple(webrtc.codecs))


class BrowserPeer:
    """See the module docstring. ``law`` is the G.711 law the leg's session runs in when the browser
    takes Opus (the other leg's, so the relay between them copies bytes); ``on_up`` is called once the
    media flows, ``on_gone(reason)`` once when the browser is lost or closes."""

    def __init__(self, settings: PeerSettings, media: MediaSettings, clock: FrameClock, *, law: Codec,
                 on_up: Callable[[], None] = lambda: None,
                 on_gone: Callable[[str], None] = lambda _: None) -> None:  # fmt: skip
        self.settings = settings
        self._media_settings = replace(media, latch="sdp", inband_dtmf="never")
        self._clock = clock
        self._law = law
        self.on_up = on_up
        self.on_gone = on_gone
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.media: BrowserMedia | None = None
        self.codec: str | None = None
        self._over = False
        self._started = False
        self.pc.on("connectionstatechange", self._state)

    @property
    def session(self) -> RtpSession | None:
        return self.media.session if self.media is not None else None

    async def answer(self, offer: str) -> str:
        """The answer to the browser's SDP offer; raises :class:`WebRtcError` for an offer that cannot be."""
        if len(offer) > MAX_SDP:
            raise WebRtcError("the offer is too long")
        if not offer.startswith("v=0"):
            raise WebRtcError("the offer is not SDP (it starts with v=0)")
        try:
            described = SessionDescription.parse(offer)
        except REFUSALS as exc:
            raise WebRtcError(f"the offer is not SDP: {exc!r}"[:300]) from exc
        audio = [m for m in described.media if m.kind == "audio"]
        if len(audio) != 1 or len(described.media) != 1:
            raise WebRtcError("the offer must hold one audio stream and nothing else")
        offered = {codec.name.lower() for codec in audio[0].rtp.codecs}
        chosen = next((name for name in self.settings.codecs if name.lower() in offered), None)
        if chosen is None:
            raise WebRtcError(f"no common codec: the browser offered {sorted(offered)}, ivrd takes "
                              f"{list(self.settings.codecs)}")  # fmt: skip
        law: Codec = chosen if chosen in PAYLOAD_TYPES else self._law  # type: ignore[assignment]
        audio_session = AudioSession(BROWSER_SOURCE[0], BROWSER_SOURCE[1], PAYLOAD_TYPES[law], law, None, 20,
                                     "sendrecv", False)  # fmt: skip
        session = RtpSession(audio_session, self._media_settings, on_digit=ignore_digit,
                             on_digit_start=ignore_digit)  # keys come over the page's socket
        self.media = BrowserMedia(session, chosen if chosen in PAYLOAD_TYPES else "opus", self._clock)
        self.codec = chosen
        # the transceiver comes first so that the offer's stream takes it, with its codec and track
        transceiver = self.pc.addTransceiver(self.media.outbound, direction="sendrecv")
        receive_directly(transceiver.receiver, self.media)
        capabilities = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in capabilities if c.name.lower() == chosen.lower()])
        use_host_candidates(self.pc, self.settings.addresses, self.settings.port_min, self.settings.port_max)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except REFUSALS as exc:
            raise WebRtcError(f"the offer was refused: {exc!r}"[:300]) from exc
        return self.pc.localDescription.sdp

    def _state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.media is not None and not self._over and not self._started:
            self._started = True
            self.media.start()
            event(log, "webrtc.up", codec=self.codec)
            self.on_up()
        elif state in ("failed", "closed"):
            self._gone(f"connection {state}")

    def _gone(self, reason: str) -> None:
        if not self._over:
            self._over = True
            self.on_gone(reason)

    async def close(self) -> None:
        """Stop the media and the connection (no ``on_gone`` after this)."""
        self._over = True
        if self.media is not None:
            self.media.close()
        await self.pc.close()

