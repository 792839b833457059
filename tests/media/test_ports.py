"""The RTP port pool: ports at random, and a released port kept back for a while."""

from __future__ import annotations

import itertools

from ivrd.media.ports import PortPool


def test_ports_come_at_random_so_the_next_calls_cannot_be_guessed():
    pool = PortPool(10000, 20000)
    taken = [pool.acquire() for _ in range(20)]
    assert all(port is not None and port % 2 == 0 and 10000 <= port < 20000 for port in taken)
    steps = {b - a for a, b in itertools.pairwise(taken)}  # type: ignore[operator]
    assert len(steps) > 10  # not a fixed stride


def test_a_released_port_cools_off_behind_half_the_pool_before_it_is_taken_again():
    pool = PortPool(10000, 10040)  # 20 ports
    first = pool.acquire()
    assert first is not None
    pool.release(first)
    again = [pool.acquire() for _ in range(19)]
    assert first not in again and None not in again
    assert pool.acquire() == first  # the pool ran dry: the cooling port is the last one
    assert pool.acquire() is None
