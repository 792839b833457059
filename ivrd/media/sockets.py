"""Every call's RTP and RTCP sockets behind one epoll instance, read in one loop callback per wake-up.

An event loop's datagram transports cost a callback per packet, and libuv reads each ready socket
until it is dry: two ``recvmsg`` calls for every packet, since a call's packets come one per 20 ms.
Here the loop watches a single descriptor, the epoll instance. When it is readable, one callback
asks it which sockets are ready and reads one datagram from each. Epoll is level-triggered, so a
socket with more queued is read again on the next round: a flooded port cannot starve the others.
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Callable
from typing import Final, Protocol

RECEIVE_BYTES: Final = 2048  # more than any RTP or RTCP packet a call sends (one MTU)

# What a socket's datagrams go to: ``receive(data, (host, port))``.
Receive = Callable[[bytes, tuple[str, int]], None]


class Readers(Protocol):
    """What the set needs of an event loop."""

    def add_reader(self, fd: int, callback: Callable[[], None], /) -> object: ...

    def remove_reader(self, fd: int, /) -> object: ...


class MediaSockets:
    """See the module docstring. Sockets are added bound; the set never closes them."""

    def __init__(self, loop: Readers | None = None, *, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._loop = loop
        self._on_error = on_error
        self._epoll: select.epoll | None = None
        self._members: dict[int, tuple[socket.socket, Receive]] = {}

    def add(self, sock: socket.socket, receive: Receive) -> None:
        """Read ``sock``'s datagrams into ``receive`` from the next round on. The socket is made non-blocking:
        its owner sends on the loop too."""
        sock.setblocking(False)
        if self._epoll is None:  # on the running loop, the first time a call needs it
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._epoll = select.epoll()
            self._loop.add_reader(self._epoll.fileno(), self._ready)
        self._epoll.register(sock.fileno(), select.EPOLLIN)
        self._members[sock.fileno()] = (sock, receive)

    def remove(self, sock: socket.socket) -> None:
        """Stop reading ``sock`` (before it is closed); its datagrams still queued are dropped."""
        if self._members.pop(sock.fileno(), None) is not None and self._epoll is not None:
            self._epoll.unregister(sock.fileno())

    def close(self) -> None:
        """Stop watching (the sockets stay open: their sessions own them)."""
        if self._epoll is not None and self._loop is not None:
            self._loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
        self._epoll = None
        self._members.clear()

    def _ready(self) -> None:
        assert self._epoll is not None
        members = self._members
        for fd, _ in self._epoll.poll(0):
            member = members.get(fd)
            if member is None:  # removed by an earlier socket's receiver in this round
                continue
            sock, receive = member
            try:
                data, source = sock.recvfrom(RECEIVE_BYTES)
            except OSError:  # nothing after all, or an ICMP error report: nothing to read either way
                continue
            try:
                receive(data, source[:2])  # an IPv6 source is (host, port, flow, scope)
            except Exception as error:  # a bug on one packet of one call: that packet, and nothing else
                if self._on_error is not None:
                    self._on_error(error)
