import math

import pytest

from routing.estimate import HandleTime, expected_wait


def test_expected_wait_shares_the_line_among_agents():
    assert expected_wait(3, 120, 2) == 180
    assert math.isinf(expected_wait(1, 120, 0))


def test_handle_time_moves_towards_recent_calls():
    average = HandleTime(initial=180)
    average.add(60)
    assert average.seconds == 60  # the first measurement replaces the guess
    average.add(160)
    assert average.seconds == pytest.approx(80)
