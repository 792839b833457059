"""Thin asyncio UDP and TCP listeners that feed bytes and ``loop.time()`` into the SIP core.

Everything protocol-related lives in :class:`ivrd.sip.ua.UserAgent`; this module receives, feeds,
sends what the core queued, and re-arms one timer at the core's next deadline, after every datagram,
timer and command of the application's: nobody else flushes. The application acts through the
commands here (:meth:`SipTransport.ring`, :meth:`SipTransport.call`, ...), and hears the core's events
through one handler, never from inside a command of its own: what a command causes comes on a later
turn of the loop, so no handler is re-entered halfway through.

A burst of messages (a step of new calls, a proxy's backlog after a failover) is taken
:data:`RECEIVE_BUDGET` of work at a time: past it, messages wait in order for the next turns of the
loop, so the timers due meanwhile (every call's audio frames) run in between, however many come at once.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import count
from typing import TypeVar, cast

from .faults import Faults
from .logs import event
from .sip.errors import ParseError
from .sip.events import Send, SipEvent
from .sip.flow import SipFlow
from .sip.leg import CallLeg
from .sip.message import StreamFramer
from .sip.ua import UserAgent
from .tasks import TaskSet

log = logging.getLogger("ivrd.sip")
T = TypeVar("T")
RESOLVE_TIMEOUT = 2.0  # seconds a host name in a Via or Route may take to resolve
Resolve = Callable[[str, int], Awaitable[str]]  # (host, port) -> an address, or OSError
RESOLVE_TTL = 60.0  # seconds an answer (or a failure) is kept
_WILDCARDS = ("0.0.0.0", "::")
RECEIVE_BUDGET = 0.004  # seconds of SIP work a turn of the loop takes on; a 20 ms frame period holds several
MAX_BACKLOG = 10000  # messages waiting for their turn; past it they are dropped, as a full socket buffer would


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@dataclass(frozen=True, slots=True)
class TcpLimits:
    """What one TCP peer may hold: connections (in all, from one address), and how long a message may
    take to come whole, and a connection stay silent."""

    max_connections: int = 1024
    max_per_source: int = 32
    message_timeout: float = 10.0
    idle_timeout: float = 900.0


class SipTransport:
    """Owns the sockets of every listener and TCP connection, and drives one :class:`UserAgent`."""

    def __init__(self, ua: UserAgent, on_event: Callable[[SipEvent], None], faults: Faults, *,
                 tcp: TcpLimits = TcpLimits(), max_message_bytes: int = 65535, resolve: Resolve | None = None,
                 resolve_timeout: float = RESOLVE_TIMEOUT) -> None:  # fmt: skip
        self.ua = ua
        self.loop = asyncio.get_running_loop()
        self._lookup = resolve or self._getaddrinfo
        self._resolve_timeout = resolve_timeout
        self._on_event = on_event
        self._faults = faults
        self.tcp = tcp
        self.tcp_dropped: dict[str, int] = {}  # TCP connections refused or closed by us, by reason
        self._per_source: dict[str, int] = {}  # open TCP connections by remote address
        self._max_message_bytes = max_message_bytes
        self._udp: dict[tuple[int, int], tuple[asyncio.DatagramTransport, str]] = {}
        self._servers: list[asyncio.Server] = []
        self._connections: dict[int, _TcpConnection] = {}
        self._ids = count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._delivery: asyncio.Handle | None = None  # events a command caused, handed over on the next turn
        self._local_ip: dict[str, str] = {}
        self._resolved: dict[str, tuple[str | None, float]] = {}  # host name -> (address, until)
        self._resolving: dict[str, asyncio.Task[str | None]] = {}  # host names being asked now
        self._pending = TaskSet(faults, "sip.send")
        self._spent = 0.0  # seconds of work on messages this turn of the loop
        self._turn_open = False
        self._backlog: deque[tuple[bytes, SipFlow]] = deque()
        self._draining: asyncio.Handle | None = None
        self.backlog_dropped = 0

    # ---- listeners --------------------------------------------------------------------------------

    async def listen(self, transport: str, address: str, port: int) -> int:
        """Start a listener; returns the bound port (useful with port 0)."""
        family = _family(address)
        sock = socket.socket(family, socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            sock.close()
            raise
        bound = int(sock.getsockname()[1])
        if transport == "udp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            udp, _ = await self.loop.create_datagram_endpoint(lambda: _UdpListener(self, address, bound), sock=sock)
            self._udp[(family, bound)] = (udp, address)
        else:
            server = await self.loop.create_server(lambda: _TcpConnection(self), sock=sock, backlog=512)
            self._servers.append(server)
        event(log, "sip.listening", transport=transport, address=address, port=bound)
        return bound

    def close(self) -> None:
        for udp, _ in self._udp.values():
            udp.close()
        for server in self._servers:
            server.close()
        for conn in list(self._connections.values()):
            conn.close()
        if self._timer is not None:
            self._timer.cancel()
        if self._delivery is not None:
            self._delivery.cancel()
        if self._draining is not None:
            self._draining.cancel()
        for task in (*self._pending, *self._resolving.values()):
            task.cancel()

    # ---- the application's commands ------------------------------------------------------------------

    def ring(self, leg: CallLeg) -> None:
        self._command(leg, lambda now: self.ua.ring(leg, now))

    def answer(self, leg: CallLeg, *, media_address: str, media_port: int) -> None:
        self._command(leg, lambda now: self.ua.answer(leg, media_address=media_address, media_port=media_port,
                                                      now=now))  # fmt: skip

    def reject(self, leg: CallLeg, status: int, *, reason: str = "rejected") -> None:
        self._command(leg, lambda now: self.ua.reject(leg, status, now, reason=reason))

    def hangup(self, leg: CallLeg) -> None:
        """BYE, CANCEL or a failure response, whichever ends ``leg`` from where it is."""
        self._command(leg, lambda now: self.ua.hangup(leg, now))

    def refer(self, leg: CallLeg, target: str) -> bool:
        """A blind transfer of ``leg`` to ``target``; False when the call is not up."""
        return self._command(leg, lambda now: self.ua.refer(leg, target, now)) is True

    def _command(self, leg: CallLeg, command: Callable[[float], T]) -> T | None:
        """Run a command on ``leg``: a bug in it costs that command (logged, counted), never the caller's code."""
        try:
            return command(self.loop.time())
        except Exception:
            self._faults.count("sip.command")
            log.exception("sip.command_error", extra={"fields": {"call_id": leg.call_id}})
            return None
        finally:
            self._commanded()

    def call(self, target: str, *, host: str, port: int, flow: SipFlow, caller: str, caller_name: str,
             media_address: str, media_port: int, extra: tuple[tuple[str, str], ...] = ()) -> CallLeg:
        """Place a call (see :meth:`UserAgent.call`); its events come through the handler."""
        leg = self.ua.call(target, host=host, port=port, flow=flow, caller=caller, caller_name=caller_name,
                           media_address=media_address, media_port=media_port, now=self.loop.time(),
                           extra=extra)  # fmt: skip
        self._commanded()
        return leg

    def draining(self) -> None:
        """From now on new calls are answered 503 (stopping)."""
        self.ua.draining = True

    # ---- the core's loop --------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Messages received and waiting for their turn."""
        return len(self._backlog)

    def feed(self, data: bytes, flow: SipFlow) -> None:
        """One message from ``flow``, now or, past this turn's budget, on a later turn (see the module docstring)."""
        if self._backlog or self._spent >= RECEIVE_BUDGET:
            if len(self._backlog) >= MAX_BACKLOG:
                self.backlog_dropped += 1  # the sender retransmits, as after a kernel drop
                return
            self._backlog.append((data, flow))
            if self._draining is None:
                self._draining = self.loop.call_soon(self._next_turn)
            return
        if not self._turn_open:
            self._turn_open = True
            self.loop.call_soon(self._end_turn)  # after this turn's input
        self._spent += self._timed_feed(data, flow)

    def _end_turn(self) -> None:
        self._turn_open = False
        self._spent = 0.0

    def _next_turn(self) -> None:
        # Called back once the loop's input is handled: what this schedules runs on the next turn,
        # after the timers due by then.
        self._draining = self.loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._draining = None
        spent = 0.0
        while self._backlog:
            data, flow = self._backlog.popleft()
            spent += self._timed_feed(data, flow)
            if spent >= RECEIVE_BUDGET:
                break
        if self._backlog:
            self._draining = self.loop.call_soon(self._drain)  # from a callback: the next turn

    def _timed_feed(self, data: bytes, flow: SipFlow) -> float:
        started = time.perf_counter()
        self._feed_now(data, flow)
        return time.perf_counter() - started

    def _feed_now(self, data: bytes, flow: SipFlow) -> None:
        try:
            self.ua.receive_datagram(data, flow, self.loop.time())
        except Exception:  # a bug must cost one message, never the daemon
            self._faults.count("sip.receive")
            log.exception("sip.internal_error", extra={"fields": {"remote": f"{flow.remote[0]}:{flow.remote[1]}"}})
        self._flush()
        self._deliver()

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self.ua.handle_timer(self.loop.time())
        except Exception:
            self._faults.count("sip.timer")
            log.exception("sip.internal_error")
        self._flush()
        self._deliver()

    def _commanded(self) -> None:
        """After a command: send at once; its events wait for the caller's handler to return."""
        self._flush()
        if self._delivery is None:
            self._delivery = self.loop.call_soon(self._deliver)

    def _flush(self) -> None:
        """Send what the core queued and re-arm the timer at its next deadline."""
        for send in self.ua.datagrams_to_send():
            try:
                self._send(send)
            except Exception:  # one message that cannot go (an address the OS refuses) holds up no other
                self._faults.count("sip.send")
                log.exception("sip.send_error", extra={"fields": {"destination": f"{send.host}:{send.port}"}})
        deadline = self.ua.get_timer()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._fire) if deadline is not None else None

    def _deliver(self) -> None:
        """Hand the core's events to the application, one handler call each; what a handler's commands
        send goes out as they are made, and the events they cause are handed over in this same loop."""
        if self._delivery is not None:
            self._delivery.cancel()
            self._delivery = None
        while (happened := self.ua.next_event()) is not None:
            try:
                self._on_event(happened)
            except Exception:  # one handler's bug loses that event, not the ones after it
                self._faults.count("sip.event")
                log.exception("sip.event_error", extra={"fields": {"event": type(happened).__name__}})
        if self._delivery is not None:  # a handler's command scheduled a delivery this loop has done
            self._delivery.cancel()
            self._delivery = None

    # ---- sending ----------------------------------------------------------------------------------

    def _send(self, send: Send) -> None:
        flow = send.flow
        if flow.reliable:
            # Responses, and requests within a dialog, go over the connection the peer opened while it
            # is open (a phone behind NAT cannot be reached by a new one); else a new connection.
            conn = self._connections.get(flow.connection or 0)
            if conn is not None:
                conn.write(send.data)
            else:
                self._pending.spawn(self._connect_and_send(send))
        elif _is_ip(send.host):
            self._sendto(send.data, send.host, send.port, flow)
        else:
            self._pending.spawn(self._resolve_and_send(send))

    def _sendto(self, data: bytes, host: str, port: int, flow: SipFlow) -> None:
        entry = self._udp.get((_family(host), flow.local[1])) or next(
            (e for (fam, _), e in self._udp.items() if fam == _family(host)), None)  # fmt: skip
        if entry is None:
            event(log, "sip.no_route", logging.WARNING, destination=f"{host}:{port}")
            return
        entry[0].sendto(data, (host, port))

    async def _resolve_and_send(self, send: Send) -> None:
        address = await self._resolve(send.host, send.port)
        if address is not None:
            self._sendto(send.data, address, send.port, send.flow)

    async def _resolve(self, host: str, port: int) -> str | None:
        """``host``'s address, off the loop's thread, within the resolve timeout, asked once however many
        messages wait for it, and remembered RESOLVE_TTL seconds (a name that does not resolve too: it
        costs its own messages, never the loop)."""
        cached = self._resolved.get(host)
        if cached is not None and cached[1] > self.loop.time():
            return cached[0]
        asking = self._resolving.get(host)
        if asking is None:
            asking = self._resolving[host] = self.loop.create_task(self._ask(host, port))
            asking.add_done_callback(lambda _: self._resolving.pop(host, None))
        return await asyncio.shield(asking)

    async def _ask(self, host: str, port: int) -> str | None:
        address = None
        try:
            address = await asyncio.wait_for(self._lookup(host, port), self._resolve_timeout)
        except (OSError, TimeoutError) as exc:
            event(log, "sip.unresolvable", logging.WARNING, host=host[:100], error=repr(exc))
        if len(self._resolved) >= 4096:
            self._resolved.clear()
        self._resolved[host] = (address, self.loop.time() + RESOLVE_TTL)
        return address

    async def _getaddrinfo(self, host: str, port: int) -> str:
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        return str(infos[0][4][0])

    async def _connect_and_send(self, send: Send) -> None:
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: _TcpConnection(self, outgoing=True), send.host, send.port),
                timeout=5)  # fmt: skip
        except (OSError, TimeoutError) as exc:
            event(log, "sip.connect_failed", logging.WARNING, destination=f"{send.host}:{send.port}", error=exc)
            return
        conn.write(send.data)

    # ---- addresses --------------------------------------------------------------------------------

    def tcp_open(self) -> int:
        """TCP connections open now."""
        return len(self._connections)

    def local_address(self, bound: str, remote_ip: str) -> str:
        """The address a wildcard listener is reached at from ``remote_ip`` (the route's source address)."""
        if bound not in _WILDCARDS:
            return bound
        cached = self._local_ip.get(remote_ip)
        if cached is None:
            with socket.socket(_family(remote_ip), socket.SOCK_DGRAM) as probe:
                try:
                    probe.connect((remote_ip, 9))  # no packet is sent: this only asks the routing table
                    cached = str(probe.getsockname()[0])
                except OSError:
                    cached = "127.0.0.1" if _family(remote_ip) == socket.AF_INET else "::1"
            if len(self._local_ip) > 4096:
                self._local_ip.clear()
            self._local_ip[remote_ip] = cached
        return cached


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport, address: str, port: int) -> None:
        self._owner = owner
        self._address = address
        self._port = port

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        host, port = addr[0], addr[1]
        local = (self._owner.local_address(self._address, host), self._port)
        self._owner.feed(data, SipFlow("udp", local, (host, port)))

    def error_received(self, exc: Exception) -> None:
        event(log, "sip.udp_error", logging.DEBUG, error=exc)  # ICMP unreachable from a peer that left


class _TcpConnection(asyncio.Protocol):
    """One TCP connection: framed into messages, held to the limits (``TcpLimits``) when a peer opened it."""

    def __init__(self, owner: SipTransport, *, outgoing: bool = False) -> None:
        self._owner = owner
        self._limits = owner.tcp
        self._outgoing = outgoing
        self._framer = StreamFramer(owner._max_message_bytes)
        self._transport: asyncio.Transport | None = None
        self.id = next(owner._ids)
        self.remote: tuple[str, int] = ("", 0)
        self._flow: SipFlow | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._message_started: float | None = None  # when the first byte of a message not yet whole came

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport = transport
        owner = self._owner
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.remote = (str(peer[0]), int(peer[1]))
        if not self._outgoing:
            if len(owner._connections) >= self._limits.max_connections:
                self._refuse("limit", "too many connections")
                return
            if owner._per_source.get(self.remote[0], 0) >= self._limits.max_per_source:
                self._refuse("source_limit", "too many connections from this address")
                return
        self._flow = SipFlow("tcp", (str(sock[0]), int(sock[1])), self.remote, self.id)
        owner._connections[self.id] = self
        owner._per_source[self.remote[0]] = owner._per_source.get(self.remote[0], 0) + 1
        self._last_data = owner.loop.time()
        self._arm()

    def _refuse(self, reason: str, why: str) -> None:
        self._owner.tcp_dropped[reason] = self._owner.tcp_dropped.get(reason, 0) + 1
        event(log, "sip.tcp_refused", logging.WARNING, remote=self.remote[0], port=self.remote[1], reason=why)
        assert self._transport is not None
        self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._flow is None:
            return
        now = self._owner.loop.time()
        self._last_data = now
        try:
            messages = self._framer.feed(data)
        except ParseError as exc:
            self._drop("framing", exc.reason)
            return
        if not self._framer.partial:
            self._message_started = None
        elif self._message_started is None:
            self._message_started = now
            self._arm()
        for message in messages:
            self._owner.feed(message, self._flow)

    def _arm(self) -> None:
        """One timer at the nearer of the two deadlines: the message coming whole, and silence."""
        deadline = self._last_data + self._limits.idle_timeout
        if self._message_started is not None:
            deadline = min(deadline, self._message_started + self._limits.message_timeout)
        if self._timer is not None:
            if self._timer.when() <= deadline:
                return  # it fires first and re-arms for the rest
            self._timer.cancel()
        self._timer = self._owner.loop.call_at(deadline, self._check)

    def _check(self) -> None:
        self._timer = None
        now = self._owner.loop.time()
        if self._message_started is not None and now >= self._message_started + self._limits.message_timeout:
            self._drop("slow", f"a message not whole after {self._limits.message_timeout:g} s")
        elif now >= self._last_data + self._limits.idle_timeout:
            self._drop("idle", f"silent for {self._limits.idle_timeout:g} s")
        elif self._transport is not None and not self._transport.is_closing():
            self._arm()

    def _drop(self, reason: str, why: str) -> None:
        self._owner.tcp_dropped[reason] = self._owner.tcp_dropped.get(reason, 0) + 1
        event(log, "sip.tcp_closed", logging.WARNING, remote=self.remote[0], port=self.remote[1], reason=why)
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._owner._connections.pop(self.id, None) is not None:
            left = self._owner._per_source.get(self.remote[0], 1) - 1
            if left > 0:
                self._owner._per_source[self.remote[0]] = left
            else:
                self._owner._per_source.pop(self.remote[0], None)

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
