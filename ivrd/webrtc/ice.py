"""ICE host candidates where the deployment wants them: on the configured addresses, on UDP ports from the
configured range (a firewall opens that range and nothing else).

aioice binds an ephemeral port on every address of the machine but loopback; a server in a data
center wants its media on known ports of known addresses, and a test on one machine wants loopback.
The node gathers host candidates only: STUN and TURN servers are for the browser, behind its NAT,
and are handed to the page.
"""

from __future__ import annotations

import asyncio
import random
import socket

import ifaddr
from aioice import Candidate, Connection
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import StunProtocol
from aiortc import RTCPeerConnection

ATTEMPTS = 64  # random ports tried in the range before a host address is given up for this leg


class HostConnection(Connection):
    """An aioice connection whose host candidates are ``_addresses`` on ports in ``_ports``
    (:func:`use_host_candidates` turns aiortc's own connections into these)."""

    _addresses: tuple[str, ...]
    _ports: tuple[int, int]

    async def get_component_candidates(self, component: int, addresses: list[str],
                                       timeout: int = 5) -> list[Candidate]:  # fmt: skip
        loop = asyncio.get_running_loop()
        candidates = []
        for address in self._addresses:
            sock = bind_in_range(address, *self._ports)
            if sock is None:
                continue
            _, protocol = await loop.create_datagram_endpoint(lambda: StunProtocol(self), sock=sock)
            host, port = sock.getsockname()[:2]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host), component=component, transport="udp",
                priority=candidate_priority(component, "host"), host=host, port=port, type="host")  # fmt: skip
            self._protocols.append(protocol)
            candidates.append(protocol.local_candidate)
        return candidates


def bind_in_range(address: str, low: int, high: int) -> socket.socket | None:
    """A non-blocking UDP socket bound on ``address`` at a random free port of ``low``-``high``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for _ in range(ATTEMPTS):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((address, random.randint(low, high)))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        return sock
    return None


def use_host_candidates(pc: RTCPeerConnection, addresses: tuple[str, ...], low: int, high: int) -> None:
    """Make every ICE transport of ``pc`` (not gathered yet) gather its host candidates on ``addresses`` in
    the port range. aiortc makes the connections and shares them between its objects: each is given
    the subclass in place, keeping its identity, credentials and everything aiortc set."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        connection.__class__ = HostConnection
        assert isinstance(connection, HostConnection)
        connection._addresses = addresses
        connection._ports = (low, high)


def host_addresses() -> tuple[str, ...]:
    """Every IPv4 address of the machine, loopback first (a browser on the same machine reaches it there)."""
    found = {ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if isinstance(ip.ip, str)}
    return tuple(sorted(found, key=lambda address: (not address.startswith("127."), address)))
