"""One call, one task: ring, answer with a media port, then wait for the end (BYE, CANCEL, time limit)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING, cast

from .logs import event
from .sip.ua import CallLeg, LegState

if TYPE_CHECKING:
    from .server import Daemon

log = logging.getLogger("ivrd.call")
# How long a BYE of ours may take to complete (Timer F is 64*T1 = 32 s by default).
BYE_GRACE = 40.0


class _RtpCounter(asyncio.DatagramProtocol):
    """Holds the call's RTP port open and counts what arrives on it."""

    def __init__(self) -> None:
        self.packets = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.packets += 1


class Call:
    """The life of one incoming call, driven by :meth:`run` in its own task."""

    def __init__(self, leg: CallLeg, daemon: Daemon) -> None:
        self.leg = leg
        self.daemon = daemon
        self.ended = asyncio.Event()
        self.end_reason = ""
        self._port: int | None = None
        self._rtp: _RtpCounter | None = None

    def on_ended(self, reason: str) -> None:
        self.end_reason = reason
        self.ended.set()

    async def _wait_end(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), timeout)
        return self.ended.is_set()

    async def run(self) -> None:
        sip = self.daemon.sip
        config = self.daemon.config
        leg = self.leg
        loop = asyncio.get_running_loop()
        try:
            sip.ua.ring(leg, loop.time())
            sip.flush()
            if config.sip.answer_after and await self._wait_end(config.sip.answer_after):
                return
            if self.ended.is_set():
                return
            address = config.media.address or leg.flow.local[0]
            port = await self._open_media(address)
            if self.ended.is_set():
                return
            if port is None:
                event(log, "call.no_media_port", logging.WARNING, call_id=leg.call_id)
                sip.ua.reject(leg, 503, loop.time(), reason="no-media-port")
                sip.flush()
                return
            sip.ua.answer(leg, media_address=address, media_port=port, now=loop.time())
            sip.flush()
            if not await self._wait_end(config.calls.max_duration):
                event(log, "call.max_duration", call_id=leg.call_id, seconds=config.calls.max_duration)
                await self.hangup()
        except asyncio.CancelledError:
            if leg.state is not LegState.ENDED:
                sip.ua.hangup(leg, loop.time())
                sip.flush()
            raise
        finally:
            self._close_media()
            event(log, "call.end", call_id=leg.call_id, reason=self.end_reason or leg.state.value,
                  rtp_packets_in=self._rtp.packets if self._rtp else 0)  # fmt: skip

    async def hangup(self) -> None:
        """End the call from our side and wait (bounded) for the BYE to complete."""
        self.daemon.sip.ua.hangup(self.leg, asyncio.get_running_loop().time())
        self.daemon.sip.flush()
        await self._wait_end(BYE_GRACE)

    async def _open_media(self, address: str) -> int | None:
        """Take a port from the pool and bind it (skipping ports something else holds)."""
        pool = self.daemon.ports
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        bind_to = "::" if family == socket.AF_INET6 else "0.0.0.0"
        for _ in range(16):
            port = pool.acquire()
            if port is None:
                return None
            # A socket bound here, not local_addr=: that would resolve the address in a thread per call.
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((bind_to, port))
            except OSError:
                sock.close()
                pool.release(port)
                continue
            _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(_RtpCounter, sock=sock)
            self._port, self._rtp = port, protocol
            return port
        return None

    def _close_media(self) -> None:
        if self._rtp is not None and self._rtp.transport is not None:
            self._rtp.transport.close()
        if self._port is not None:
            self.daemon.ports.release(self._port)
            self._port = None
