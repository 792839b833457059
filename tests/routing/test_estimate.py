import math

import pytest

from routing.estimate import HandleTime, erlang_c, erlang_c_wait, expected_wait


def test_erlang_c_matches_the_textbook_example():
    # 100 calls in 30 min, 3 min each = 10 Erlangs; with 12 agents P(wait) = 0.4494 (the classic table)
    assert erlang_c(100 / 1800, 180, 12) == pytest.approx(0.4494, abs=1e-4)
    assert erlang_c_wait(100 / 1800, 180, 12) == pytest.approx(0.4494 * 180 / 2, rel=1e-3)


def test_erlang_c_with_too_few_agents_always_waits():
    assert erlang_c(1, 10, 10) == 1.0 and math.isinf(erlang_c_wait(1, 10, 5))


def test_expected_wait_shares_the_line_among_agents():
    assert expected_wait(3, 120, 2) == 180
    assert math.isinf(expected_wait(1, 120, 0))


def test_handle_time_moves_towards_recent_calls():
    average = HandleTime(initial=180)
    average.add(60)
    assert average.seconds == 60  # the first measurement replaces the guess
    average.add(160)
    assert average.seconds == pytest.approx(80)
