"""SDP (RFC 4566) parsing and RFC 3264 offer/answer for one G.711 audio stream with telephone-event.

Only what a telephony answerer needs is modelled; every count and number a peer controls is
bounded (payload types 0-127, ports, line counts), and a malformed body raises :class:`SdpError`
with status 400, an unacceptable one (no common codec, no audio) with 488.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .errors import SdpError

MAX_LINES = 512
MAX_MEDIA = 16
MAX_FORMATS = 64

# Static payload types an offer may use without an rtpmap (RFC 3551 table 4).
STATIC_PAYLOADS = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
SUPPORTED_CODECS = ("PCMU", "PCMA")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\Z")
_ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


@dataclass(frozen=True, slots=True)
class RtpMap:
    name: str
    rate: int
    channels: int = 1


@dataclass(frozen=True, slots=True)
class Media:
    """One m= section."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    rtpmaps: dict[int, RtpMap] = field(default_factory=dict)
    fmtps: dict[int, str] = field(default_factory=dict)
    direction: str | None = None
    ptime: int | None = None
    connection: str | None = None
    rtcp_mux: bool = False

    def codec(self, pt: int) -> RtpMap | None:
        """What payload type ``pt`` carries: its rtpmap, or the RFC 3551 static assignment."""
        mapped = self.rtpmaps.get(pt)
        if mapped is not None:
            return mapped
        static = STATIC_PAYLOADS.get(pt)
        return RtpMap(*static) if static else None


@dataclass(frozen=True, slots=True)
class SessionDescription:
    origin: tuple[str, int, int, str]  # username, session id, version, address
    media: tuple[Media, ...]
    connection: str | None = None
    direction: str | None = None
    name: str = "-"

    def to_bytes(self) -> bytes:
        user, sess_id, version, address = self.origin
        lines = ["v=0", f"o={user} {sess_id} {version} IN {_addrtype(address)} {address}", f"s={self.name}"]
        if self.connection:
            lines.append(f"c=IN {_addrtype(self.connection)} {self.connection}")
        lines.append("t=0 0")
        for m in self.media:
            lines.append(f"m={m.kind} {m.port} {m.proto} {' '.join(m.formats)}")
            if m.connection and m.connection != self.connection:
                lines.append(f"c=IN {_addrtype(m.connection)} {m.connection}")
            for pt, rm in m.rtpmaps.items():
                channels = f"/{rm.channels}" if rm.channels != 1 else ""
                lines.append(f"a=rtpmap:{pt} {rm.name}/{rm.rate}{channels}")
            lines.extend(f"a=fmtp:{pt} {value}" for pt, value in m.fmtps.items())
            if m.ptime is not None:
                lines.append(f"a=ptime:{m.ptime}")
            if m.rtcp_mux:
                lines.append("a=rtcp-mux")
            if m.direction:
                lines.append(f"a={m.direction}")
        return ("\r\n".join(lines) + "\r\n").encode()


@dataclass(frozen=True, slots=True)
class AudioSession:
    """What offer/answer agreed for the call's audio, as the media layer needs it."""

    remote_address: str
    remote_port: int
    payload_type: int
    codec: str  # PCMU or PCMA
    telephone_event: int | None
    ptime: int  # what the peer asked to receive; we send 20 ms frames
    direction: str  # ours: sendrecv, sendonly, recvonly or inactive
    rtcp_mux: bool

    @property
    def on_hold(self) -> bool:
        return self.direction in ("recvonly", "inactive")


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _int(text: str, what: str, limit: int) -> int:
    if not text.isdigit() or len(text) > len(str(limit)) or int(text) > limit:
        raise SdpError(f"bad {what} {text[:20]!r} in SDP", 400)
    return int(text)


def _address(text: str) -> str:
    parts = text.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError("bad c= line in SDP", 400)
    address = parts[2].split("/", 1)[0]
    if _IPV4.match(address):
        return address
    try:
        ipaddress.ip_address(address)
    except ValueError:
        # A host name is legal SDP (parsed, kept); using it for media is refused (_media_address).
        if not address or any(c.isspace() for c in address):
            raise SdpError("bad c= address in SDP", 400) from None
    return address


def _media_address(address: str | None) -> str:
    """The address an audio stream is sent to: an IP literal. A host name is refused (488) rather than
    resolved: every 20 ms frame would otherwise ask the resolver, on the event loop, and peers send
    literals (RFC 3264 offer/answer in practice)."""
    if address is None:
        raise SdpError("audio stream has no connection address", 400)
    if not _IPV4.match(address):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise SdpError(f"c= address {address[:40]!r} is a host name; an IP address is needed", 488) from None
    return address


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body; raise :class:`SdpError` (status 400) when it is malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8", 400) from None
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
    if len(lines) > MAX_LINES:
        raise SdpError("too many SDP lines", 400)
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP must start with v=0", 400)
    origin: tuple[str, int, int, str] | None = None
    connection: str | None = None
    session_direction: str | None = None
    name = "-"
    media: list[Media] = []
    current: dict[str, object] | None = None
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=" or any(ord(c) < 32 and c != "\t" for c in line):
            raise SdpError(f"bad SDP line {line[:30]!r}", 400)
        kind, value = line[0], line[2:].strip()
        if kind == "m":
            if len(media) + (current is not None) >= MAX_MEDIA:
                raise SdpError("too many m= lines", 400)
            if current is not None:
                media.append(_build_media(current))
            current = _media_line(value)
        elif kind == "o":
            parts = value.split()
            if len(parts) != 6:
                raise SdpError("bad o= line in SDP", 400)
            origin = (parts[0], _int(parts[1], "session id", 2**64), _int(parts[2], "version", 2**64),
                      _address(" ".join(parts[3:])))  # fmt: skip
        elif kind == "s":
            name = value or "-"
        elif kind == "c":
            if current is None:
                connection = _address(value)
            else:
                current["connection"] = _address(value)
        elif kind == "a":
            attr, _, arg = value.partition(":")
            if current is None:
                if attr in DIRECTIONS:
                    session_direction = attr
            else:
                _media_attribute(current, attr, arg)
    if current is not None:
        media.append(_build_media(current))
    if origin is None:
        raise SdpError("SDP has no o= line", 400)
    return SessionDescription(origin, tuple(media), connection, session_direction, name)


def _media_line(value: str) -> dict[str, object]:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError("bad m= line in SDP", 400)
    port_text = parts[1].split("/", 1)[0]
    formats = tuple(parts[3:])
    if len(formats) > MAX_FORMATS:
        raise SdpError("too many formats on an m= line", 400)
    return {"kind": parts[0], "port": _int(port_text, "port", 65535), "proto": parts[2], "formats": formats,
            "rtpmaps": {}, "fmtps": {}}  # fmt: skip


def _media_attribute(current: dict[str, object], attr: str, arg: str) -> None:
    if attr == "rtpmap":
        pt_text, _, encoding = arg.partition(" ")
        pt = _int(pt_text, "payload type", 127)
        enc = encoding.strip().split("/")
        if len(enc) < 2 or not enc[0]:
            return  # no clock rate: a format we cannot use, not a reason to refuse the whole offer
        channels = _int(enc[2], "channel count", 255) if len(enc) > 2 else 1
        rtpmaps = current["rtpmaps"]
        assert isinstance(rtpmaps, dict)
        rtpmaps[pt] = RtpMap(enc[0], _int(enc[1], "clock rate", 10**6), channels)
    elif attr == "fmtp":
        pt_text, _, params = arg.partition(" ")
        fmtps = current["fmtps"]
        assert isinstance(fmtps, dict)
        fmtps[_int(pt_text, "payload type", 127)] = params.strip()
    elif attr == "ptime":
        current["ptime"] = _int(arg.strip(), "ptime", 1000)
    elif attr in DIRECTIONS:
        current["direction"] = attr
    elif attr == "rtcp-mux":
        current["rtcp_mux"] = True


def _build_media(fields: dict[str, object]) -> Media:
    return Media(**fields)  # type: ignore[arg-type]


def _offer_direction(offer: SessionDescription, m: Media) -> str:
    address = m.connection or offer.connection
    if address in ("0.0.0.0", "::"):  # RFC 2543 hold
        return "sendonly"
    return m.direction or offer.direction or "sendrecv"


def answer_offer(
    offer: SessionDescription,
    *,
    codecs: tuple[str, ...],
    address: str,
    port: int,
    session_id: int,
    version: int,
    ptime: int = 20,
) -> tuple[SessionDescription, AudioSession]:
    """Answer ``offer`` (RFC 3264 §6): accept the first audio stream on RTP/AVP that offers one of
    ``codecs``, in the offerer's order of preference; refuse every other stream with port 0.

    Raise :class:`SdpError` (488) when no stream can be accepted.
    """
    accepted: AudioSession | None = None
    answer_media: list[Media] = []
    for m in offer.media:
        chosen = None if accepted is not None else _choose_audio(offer, m, codecs)
        if chosen is None:
            answer_media.append(Media(m.kind, 0, m.proto, m.formats[:1]))
            continue
        pt, rtpmap, event_pt = chosen
        remote = _media_address(m.connection or offer.connection)
        direction = _ANSWER_DIRECTION[_offer_direction(offer, m)]
        accepted = AudioSession(remote, m.port, pt, rtpmap.name.upper(), event_pt,
                                m.ptime or 20, direction, m.rtcp_mux)  # fmt: skip
        formats = [str(pt)] + ([str(event_pt)] if event_pt is not None else [])
        rtpmaps = {pt: RtpMap(rtpmap.name.upper(), 8000)}
        fmtps: dict[int, str] = {}
        if event_pt is not None:
            rtpmaps[event_pt] = RtpMap("telephone-event", 8000)
            fmtps[event_pt] = "0-16"
        answer_media.append(Media("audio", port, m.proto, tuple(formats), rtpmaps, fmtps, direction,
                                  ptime, rtcp_mux=m.rtcp_mux))  # fmt: skip
    if accepted is None:
        raise SdpError("no common audio codec", 488)
    answer = SessionDescription(("ivrd", session_id, version, address), tuple(answer_media), address)
    return answer, accepted


def _choose_audio(
    offer: SessionDescription, m: Media, codecs: tuple[str, ...]
) -> tuple[int, RtpMap, int | None] | None:
    if m.kind != "audio" or m.port == 0 or m.proto.upper() not in ("RTP/AVP", "RTP/AVPF"):
        return None
    audio: tuple[int, RtpMap] | None = None
    event_pt: int | None = None
    for fmt in m.formats:
        if not fmt.isdigit() or int(fmt) > 127:
            raise SdpError(f"bad payload type {fmt[:12]!r} in SDP", 400)
        pt = int(fmt)
        rtpmap = m.codec(pt)
        if rtpmap is None or rtpmap.rate != 8000:
            continue
        name = rtpmap.name.upper()
        if name == "TELEPHONE-EVENT":
            event_pt = pt if event_pt is None else event_pt
        elif audio is None and name in codecs and rtpmap.channels == 1:
            audio = (pt, rtpmap)
    if audio is None:
        return None
    return audio[0], audio[1], event_pt


def make_offer(*, codecs: tuple[str, ...], address: str, port: int, session_id: int, version: int,
               ptime: int = 20, telephone_event: int = 101) -> SessionDescription:  # fmt: skip
    """An offer for one audio stream with ``codecs`` (static payload types) and telephone-event."""
    pts = [pt for name in codecs for pt, (static, _) in STATIC_PAYLOADS.items() if static == name]
    rtpmaps = {pt: RtpMap(STATIC_PAYLOADS[pt][0], 8000) for pt in pts}
    rtpmaps[telephone_event] = RtpMap("telephone-event", 8000)
    formats = tuple(str(pt) for pt in [*pts, telephone_event])
    audio = Media("audio", port, "RTP/AVP", formats, rtpmaps, {telephone_event: "0-16"}, "sendrecv", ptime)
    return SessionDescription(("ivrd", session_id, version, address), (audio,), address)


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> AudioSession:
    """Read the peer's answer to our ``offer``: the first format it kept for the audio stream."""
    if not answer.media or not offer.media:
        raise SdpError("answer has no media", 488)
    m = answer.media[0]
    codecs = tuple(c for c in SUPPORTED_CODECS if c in {r.name for r in offer.media[0].rtpmaps.values()})
    chosen = _choose_audio(answer, m, codecs)
    if chosen is None:
        raise SdpError("answer accepted no audio codec we offered", 488)
    pt, rtpmap, event_pt = chosen
    remote = _media_address(m.connection or answer.connection)
    direction = _ANSWER_DIRECTION[_offer_direction(answer, m)]
    return AudioSession(remote, m.port, pt, rtpmap.name.upper(), event_pt, m.ptime or 20, direction, m.rtcp_mux)

