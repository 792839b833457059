"""A scripted caller in Python: SIP over UDP and an RTP socket, recording every packet it receives."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ivrd.media import g711
from ivrd.media.rtcp import build_report
from ivrd.media.rtp import build_rtp, parse_rtp
from ivrd.sip.build import make_response
from ivrd.sip.message import Request, Response, parse_message
from tests.audio import tone_level

SILENCE_PCMU = b"\xff" * 160  # one 20 ms frame of μ-law silence


@dataclass
class Received:
    arrival: float
    sequence: int
    timestamp: int
    marker: bool
    payload_type: int
    payload: bytes
    ssrc: int


@dataclass
class RtpCaller:
    """A phone on ``host`` (any loopback address: 127.0.0.31 is another machine to the daemon)."""

    daemon_port: int
    host: str = "127.0.0.1"
    user: str = "tester"
    route: str = ""  # Route header lines for in-dialog requests: the 2xx's Record-Route, reversed
    sip: socket.socket = field(init=False)
    rtp: socket.socket = field(init=False)
    received: list[Received] = field(default_factory=list)
    remote_rtp: tuple[str, int] | None = None
    to_tag: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((self.host, 0))
        self.sip.settimeout(10)
        self.rtp, self.rtcp = _port_pair(self.host)
        self.rtp.settimeout(0.2)
        self.rtcp.settimeout(15)
        self._reader = threading.Thread(target=self._read_rtp, daemon=True)
        self._reader.start()
        self._reporter: threading.Thread | None = None
        self.seq = 1000
        self.ts = 50000
        self.cseq = 1

    @property
    def sip_port(self) -> int:
        return self.sip.getsockname()[1]

    def _read_rtp(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.rtp.recv(2048)
            except (TimeoutError, OSError):
                continue
            packet = parse_rtp(data)
            with self._arrived:
                self.received.append(Received(time.monotonic(), packet.sequence, packet.timestamp, packet.marker,
                                              packet.payload_type, packet.payload, packet.ssrc))  # fmt: skip
                self._arrived.notify_all()

    def wait_for_packets(self, count: int, timeout: float = 20.0) -> None:
        """Block until ``count`` RTP packets have arrived in all."""
        self.wait_for_audio(lambda received: len(received) >= count, f"{count} RTP packets", timeout)

    def wait_for_audio(self, check: Callable[[list[Received]], bool], what: str, timeout: float = 20.0) -> None:
        """Block until ``check`` holds for the RTP packets received so far (checked as each arrives)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: check(self.received), timeout):
                raise AssertionError(f"timed out waiting for {what} ({len(self.received)} RTP packets arrived)")

    def request(self, method: str, body: str = "", content_type: str = "", branch: str = "", *,
                extra: str = "") -> bytes:  # fmt: skip
        """One of this phone's requests (``extra``: more header lines, each ending in CRLF)."""
        to_tag = f";tag={self.to_tag}" if self.to_tag else ""
        text = (
            f"{method} sip:ivr@127.0.0.1:{self.daemon_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.sip_port};branch=z9hG4bK{branch or method}{self.cseq}\r\n"
            f"From: <sip:{self.user}@{self.host}>;tag=caller\r\nTo: <sip:ivr@127.0.0.1>{to_tag}\r\n"
            f"Call-ID: rtp-caller-{self.sip_port}\r\nCSeq: {self.cseq} {method}\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:{self.user}@{self.host}:{self.sip_port}>\r\n" + (self.route if to_tag else "") + extra
            + (f"Content-Type: {content_type}\r\n" if content_type else "")
            + f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
        return text.encode()

    def _final(self) -> Response:
        while True:
            message = parse_message(self.sip.recv(65535))
            if isinstance(message, Response) and message.status >= 200:
                return message

    def sdp(self, *, telephone_event: bool = True, host: str | None = None, port: int | None = None) -> str:
        """This phone's offer (or another ``host`` and ``port`` in its place)."""
        port = port or self.rtp.getsockname()[1]
        host = host or self.host
        formats = "0 101\r\na=rtpmap:101 telephone-event/8000" if telephone_event else "0"
        return (f"v=0\r\no=t 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP {formats}\r\n")  # fmt: skip

    def invite(self, *, telephone_event: bool = True, extra: str = "", sdp: str | None = None) -> Response:
        """Send the INVITE (``sdp``: another offer than this phone's); its final response (not acknowledged
        yet when it is a 2xx)."""
        sdp = sdp or self.sdp(telephone_event=telephone_event)
        self.sip.sendto(self.request("INVITE", sdp, "application/sdp", extra=extra), ("127.0.0.1", self.daemon_port))
        return self._final()

    def call(self, *, telephone_event: bool = True) -> Response:
        ok = self.invite(telephone_event=telephone_event)
        assert ok.status == 200, ok
        self.to_tag = ok.to.tag or ""
        self.route = "".join(f"Route: {r}\r\n" for r in reversed(ok.headers.values("record-route")))
        media = next(line for line in ok.body.decode().splitlines() if line.startswith("m=audio"))
        self.remote_rtp = ("127.0.0.1", int(media.split()[1]))
        self.sip.sendto(self.request("ACK", branch="ack"), ("127.0.0.1", self.daemon_port))
        return ok

    def send_rtp(self, payload_type: int, payload: bytes, *, marker: bool = False, timestamp: int | None = None,
                 sock: socket.socket | None = None, advance: bool = True) -> None:  # fmt: skip
        """Send one packet of the caller's stream, or (``sock`` given) a lookalike from another socket."""
        assert self.remote_rtp is not None
        stamp = self.ts if timestamp is None else timestamp
        packet = build_rtp(payload_type, marker, self.seq, stamp, 0x1234, payload)
        (sock or self.rtp).sendto(packet, self.remote_rtp)
        if sock is not None:
            return
        self.seq += 1
        if advance:
            self.ts += 160

    def stream(self, samples: np.ndarray) -> None:
        """Send ``samples`` as μ-law 20 ms frames in real time, as a phone's microphone would."""
        start = time.monotonic()
        for n, i in enumerate(range(0, len(samples) - 159, 160)):
            delay = start + n * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing a real-time source, not waiting for the daemon
            self.send_rtp(0, g711.encode(samples[i : i + 160], "PCMU"))

    def talk_to_agent(self) -> float:
        """Say 2 s of 1 kHz to the agent's phone; how strongly its 440 Hz came back meanwhile (tone_level)."""
        before = len(self.received)
        self.stream((np.sin(2 * np.pi * 1000 * np.arange(8000 * 2) / 8000) * 8000).astype(np.int16))
        heard = b"".join(p.payload for p in self.received[before:] if p.payload_type == 0)
        return tone_level(g711.decode(heard, "PCMU"), 8000, 440)

    def press_rfc4733(self, code: int) -> None:
        """One press as a phone sends it: a start, an update, then the end packet three times."""
        start = self.ts
        for duration, end in ((160, False), (480, False), (800, True), (800, True), (800, True)):
            flags = (0x80 if end else 0) | 10
            self.send_rtp(101, bytes([code, flags]) + duration.to_bytes(2, "big"), marker=duration == 160,
                          timestamp=start, advance=False)  # fmt: skip
        self.ts += 800

    def info(self, digit: str) -> int:
        self.cseq += 1
        body = f"Signal={digit}\r\nDuration=100\r\n"
        self.sip.sendto(self.request("INFO", body, "application/dtmf-relay"), ("127.0.0.1", self.daemon_port))
        return self._final().status

    def bye(self) -> int:
        self.cseq += 1
        self.sip.sendto(self.request("BYE"), ("127.0.0.1", self.daemon_port))
        return self._final().status

    def wait_bye(self, timeout: float = 60.0) -> None:
        """Wait for the daemon's BYE (answering any retransmission of it too) and answer it with 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = parse_message(self.sip.recv(65535))
            if isinstance(message, Request) and message.method == "BYE":
                self.sip.sendto(make_response(message, 200).to_bytes(), ("127.0.0.1", self.daemon_port))
                return
        raise AssertionError("no BYE from the daemon")

    def wait_rtcp(self) -> bytes:
        """The next RTCP packet the daemon sends to our RTCP port (RTP port + 1)."""
        return self.rtcp.recv(2048)

    def send_rtcp(self, data: bytes) -> None:
        assert self.remote_rtp is not None
        self.rtcp.sendto(data, (self.remote_rtp[0], self.remote_rtp[1] + 1))

    def keep_reporting(self) -> None:
        """Send an RTCP receiver report every second from now on, as a phone does all call long: a caller
        who sends nothing at all is gone to the daemon (media.timeout_seconds)."""

        def report() -> None:
            while not self._stop.wait(1.0):
                with contextlib.suppress(OSError):
                    self.send_rtcp(build_report(0x5EED, "tester", None))

        self._reporter = threading.Thread(target=report, daemon=True)
        self._reporter.start()

    def close(self) -> None:
        self._stop.set()
        self._reader.join()
        if self._reporter is not None:
            self._reporter.join()
        self.sip.close()
        self.rtp.close()
        self.rtcp.close()


def _port_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on an even port and the odd one above it (RTP, RTCP)."""
    while True:
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((host, 0))
        port = rtp.getsockname()[1]
        if port % 2:
            rtp.close()
            continue
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind((host, port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        return rtp, rtcp
