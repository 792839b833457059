"""The media sockets behind one epoll instance, on a real event loop and real loopback sockets:
each socket's datagrams reach its own receiver with their source, one datagram per ready socket per
round (a flooded port does not hold up the others), and a socket removed in the middle of a round
is not read."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from ivrd.media.sockets import MediaSockets


def udp(family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def received(into: list[tuple[bytes, tuple[str, int]]], then: Callable[[], None] = lambda: None
             ) -> Callable[[bytes, tuple[str, int]], None]:  # fmt: skip
    def receive(data: bytes, source: tuple[str, int]) -> None:
        into.append((data, source))
        then()

    return receive


def test_each_socket_s_datagrams_reach_its_own_receiver_with_their_source():
    async def scenario() -> None:
        done = asyncio.get_running_loop().create_future()
        sockets = MediaSockets()
        a, b, six, phone, phone6 = udp(), udp(), udp(socket.AF_INET6), udp(), udp(socket.AF_INET6)
        got: dict[str, list[tuple[bytes, tuple[str, int]]]] = {"a": [], "b": [], "six": []}

        def all_in() -> None:
            if all(got.values()):
                done.set_result(None)

        for name, sock in (("a", a), ("b", b), ("six", six)):
            sockets.add(sock, received(got[name], all_in))
        phone.sendto(b"to a", a.getsockname())
        phone.sendto(b"to b", b.getsockname())
        phone6.sendto(b"to six", six.getsockname())
        await asyncio.wait_for(done, 5)
        assert got["a"] == [(b"to a", phone.getsockname())]
        assert got["b"] == [(b"to b", phone.getsockname())]
        assert got["six"] == [(b"to six", phone6.getsockname()[:2])]  # (host, port), as for IPv4
        sockets.close()
        for sock in (a, b, six, phone, phone6):
            sock.close()

    asyncio.run(scenario())


def test_a_flooded_socket_is_read_once_a_round_so_the_others_are_not_held_up():
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        quiet_read, flood_read = loop.create_future(), loop.create_future()
        sockets = MediaSockets()
        flooded, quiet, attacker, phone = udp(), udp(), udp(), udp()
        flood: list[tuple[bytes, tuple[str, int]]] = []

        def one_more() -> None:
            if len(flood) == 200:
                flood_read.set_result(None)

        sockets.add(flooded, received(flood, one_more))
        sockets.add(quiet, received([], lambda: quiet_read.set_result(len(flood))))
        for i in range(200):  # all queued before the loop gets to read anything
            attacker.sendto(b"%d" % i, flooded.getsockname())
        phone.sendto(b"voice", quiet.getsockname())
        read_before = await asyncio.wait_for(quiet_read, 5)
        assert read_before <= 1  # the quiet socket was read in the first round, not after 200 others
        await asyncio.wait_for(flood_read, 5)
        assert [data for data, _ in flood] == [b"%d" % i for i in range(200)]  # every one, in order
        sockets.close()
        for sock in (flooded, quiet, attacker, phone):
            sock.close()

    asyncio.run(scenario())


def test_a_socket_removed_by_a_receiver_in_the_same_round_is_not_read():
    async def scenario() -> None:
        done = asyncio.get_running_loop().create_future()
        sockets = MediaSockets()
        a, b, later, phone = udp(), udp(), udp(), udp()
        calls: list[str] = []

        def hang_up(name: str, other: socket.socket) -> Callable[[bytes, tuple[str, int]], None]:
            def receive(data: bytes, source: tuple[str, int]) -> None:
                calls.append(name)
                sockets.remove(other)  # as when one call's key press ends another call
                other.close()
                phone.sendto(b"next round", later.getsockname())

            return receive

        sockets.add(a, hang_up("a", b))
        sockets.add(b, hang_up("b", a))
        sockets.add(later, received([], lambda: done.set_result(None)))
        phone.sendto(b"x", a.getsockname())
        phone.sendto(b"x", b.getsockname())
        await asyncio.wait_for(done, 5)
        assert len(calls) == 1  # whichever came first removed the other, ready as it was
        sockets.close()
        for sock in (a, b, later, phone):
            sock.close()

    asyncio.run(scenario())


class FakeLoop:
    def __init__(self) -> None:
        self.readers: dict[int, Callable[[], None]] = {}

    def add_reader(self, fd: int, callback: Callable[[], None], /) -> None:
        self.readers[fd] = callback

    def remove_reader(self, fd: int, /) -> None:
        del self.readers[fd]


def test_the_loop_watches_one_descriptor_however_many_sockets_made_non_blocking_and_none_once_closed():
    loop = FakeLoop()
    sockets = MediaSockets(loop)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(50)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
        sockets.add(sock, received([]))
    assert len(loop.readers) == 1 and not set(loop.readers) & {sock.fileno() for sock in socks}
    assert not any(sock.getblocking() for sock in socks)  # a send or read on the loop never waits
    sockets.close()
    assert loop.readers == {}
    for sock in socks:
        sock.close()
