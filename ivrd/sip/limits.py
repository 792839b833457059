"""Per-source rate limits, sans-IO: one token bucket per remote address, bounded in number."""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SEEN_SOURCES = 4096  # sources whose membership is remembered


class RateLimiter:
    """Allows ``rate`` events a second per key with bursts up to ``burst``.

    Keys beyond ``max_keys`` push out the least recently seen one, so a spoofed-source flood
    cannot grow memory; an evicted key starts again with a full bucket, which is the generous
    side to err on. A ``rate`` of 0 turns the limiter off.
    """

    def __init__(self, rate: float, burst: float, *, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last update)

    def allow(self, key: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed


class SourceList:
    """Addresses and networks (``10.0.0.0/8``, ``::1``) a source is checked against."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks: tuple[Network, ...] = tuple(ipaddress.ip_network(e, strict=False) for e in entries)
        self._seen: dict[str, bool] = {}  # each recent source's answer: else an address parsed per INVITE

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str) or not self._networks:
            return False
        known = self._seen.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                return False
            if len(self._seen) >= SEEN_SOURCES:  # a spray of sources: start again rather than grow
                self._seen.clear()
            known = self._seen[host] = any(address in network for network in self._networks)
        return known
