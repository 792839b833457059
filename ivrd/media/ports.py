"""The pool of RTP ports: even numbers in the configured range (RTCP takes the odd one above)."""

from __future__ import annotations

import secrets
import socket
from collections import deque
from dataclasses import dataclass


class PortPool:
    """Hands out even ports at random, so the next call's port cannot be guessed from the last one's
    (media sent to a port before its caller does is the start of a hijack); a port released cools off
    behind half the pool's other releases before it can be taken again, so late packets of an ended call
    do not land in a new one."""

    def __init__(self, first: int, last: int) -> None:
        start = first + (first % 2)
        self._free: list[int] = list(range(start, last, 2))
        self._cooling: deque[int] = deque()
        self._cool = len(self._free) // 2
        self._used: set[int] = set()

    def acquire(self) -> int | None:
        if self._free:
            i = secrets.randbelow(len(self._free))
            self._free[i], self._free[-1] = self._free[-1], self._free[i]
            port = self._free.pop()
        elif self._cooling:
            port = self._cooling.popleft()
        else:
            return None
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        if port in self._used:
            self._used.remove(port)
            self._cooling.append(port)
            if len(self._cooling) > self._cool:
                self._free.append(self._cooling.popleft())



@dataclass(slots=True)
class BoundPorts:
    """An RTP socket on an even port and the RTCP socket on the odd one above, bound and non-blocking."""

    port: int
    rtp: socket.socket
    rtcp: socket.socket


def bind_pair(pool: PortPool, address: str) -> BoundPorts | None:
    """Take a port pair from ``pool`` and bind both (on the wildcard of ``address``'s family), skipping
    pairs something else holds; None when the pool runs dry."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
    for _ in range(16):
        port = pool.acquire()
        if port is None:
            return None
        pair = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            for offset, sock in enumerate(pair):
                sock.bind((wildcard, port + offset))
                sock.setblocking(False)
        except OSError:
            for sock in pair:
                sock.close()
            pool.release(port)
            continue
        return BoundPorts(port, pair[0], pair[1])
    return None
