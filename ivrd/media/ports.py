"""The pool of RTP ports: even numbers in the configured range (RTCP takes the odd one above)."""

from __future__ import annotations

from collections import deque


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

