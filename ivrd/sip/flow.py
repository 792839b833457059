"""Where a SIP message came from, or goes: the transport, both addresses and the TCP connection."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SipFlow:
    """Where a message came from: transport, our local address, the peer's, and the TCP connection."""

    transport: str  # "udp" or "tcp"
    local: tuple[str, int]
    remote: tuple[str, int]
    connection: int | None = None

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"
