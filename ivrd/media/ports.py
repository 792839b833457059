"""The pool of RTP ports: even numbers in the configured range (RTCP takes the odd one above)."""

from __future__ import annotations

import socket
from collections import deque
from dataclasses import dataclass


class PortPool:
    """Hands out even ports round-robin, so a port just released is the last to be reused
    (late packets of an ended call do not land in a new one)."""

    def __init__(self, first: int, last: int) -> None:
        start = first + (first % 2)
        self._free: deque[int] = deque(range(start, last, 2))
        self._used: set[int] = set()

    def acquire(self) -> int | None:
        if not self._free:
            return None
        port = self._free.popleft()
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        if port in self._used:
            self._used.remove(port)
            self._free.append(port)



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
