"""Admission control on made-up measures and arrivals: when it limits, how many calls it takes, when it stops."""

from ivrd.admission import Admission, Limits, Load

CALM = Load(busy=0.3, lag=0.001, late=0.0)
STRAINED = Load(busy=0.95, lag=0.001, late=0.0)
LIMITS = Limits(busy=0.8, lag=0.02, late=0.01, recover=0.75, calm_seconds=2.0, busy_seconds=0.25)


def offer(admission: Admission, rate: float, start: float, seconds: float = 0.25) -> int:
    """Calls arriving evenly at ``rate`` for ``seconds``; how many were admitted."""
    count = round(rate * seconds)
    return sum(admission.admit(start + i * seconds / count) for i in range(count))


def run(admission: Admission, windows: list[tuple[Load, float]], start: float = 0.0) -> list[int]:
    """Each window's load and offered rate: the calls admitted in each."""
    taken = []
    for n, (load, rate) in enumerate(windows):
        at = start + n * 0.25
        taken.append(offer(admission, rate, at))
        admission.measure(load, at + 0.25)
    return taken


def test_one_strained_window_is_borne_two_in_a_row_start_limiting_and_say_why():
    admission = Admission(LIMITS)
    assert run(admission, [(STRAINED, 400), (CALM, 400), (STRAINED, 400)]) == [100, 100, 100]
    assert not admission.limiting
    offer(admission, 400, 0.75)
    assert admission.measure(Load(0.5, 0.05, 0.02), 1.0) is False  # strained twice in a row
    assert admission.limiting and admission.why == "lag,late"
    assert 0 < admission.rate < 400  # 70% of what it was taking lately


def test_a_burst_of_busy_with_calls_on_time_is_borne_busy_for_long_starts_limiting():
    admission = Admission(Limits(busy_seconds=2.0))
    busy = Load(busy=1.0, lag=0.002, late=0.0)  # 500 calls set up at once: the loop busy, every frame on time
    assert run(admission, [(busy, 400)] * 7 + [(CALM, 400)] * 2) == [100] * 9
    assert not admission.limiting
    run(admission, [(busy, 400)] * 8, start=2.25)
    assert not admission.limiting  # 2 s
    run(admission, [(busy, 400)], start=4.25)
    assert admission.limiting and admission.why == "busy"


def test_limited_it_takes_calls_at_its_rate_and_refuses_the_rest():
    admission = Admission(LIMITS)
    run(admission, [(CALM, 200)] * 8)
    run(admission, [(STRAINED, 200)] * 2, start=2.0)
    rate = admission.rate
    assert rate is not None and 100 <= rate <= 140  # 0.7 x about 200/s
    taken = offer(admission, 800, 2.5, seconds=1.0)
    assert abs(taken - rate) <= rate / 4 + 1  # a quarter second of burst at most


def test_strained_it_cuts_at_most_once_a_second_calm_it_grows_and_lets_go_once_callers_fit():
    admission = Admission(LIMITS)
    run(admission, [(CALM, 100)] * 8 + [(STRAINED, 100)] * 2)
    first = admission.rate
    run(admission, [(STRAINED, 100)] * 3, start=2.5)  # within the second after the cut: held
    assert admission.rate == first
    run(admission, [(STRAINED, 100)], start=3.25)
    assert admission.rate < first  # a second later: cut again
    low = admission.rate
    run(admission, [(Load(0.7, 0.0, 0.0), 100)] * 4, start=3.5)  # under the bound, not under 0.75 of it: held
    assert admission.rate == low
    run(admission, [(CALM, 100)] * 4, start=4.5)
    assert admission.rate > low and admission.limiting  # grows; callers still offer more than it takes
    lifted = [n for n in range(40) if offer(admission, 10, 5.5 + n / 4) >= 0 and admission.measure(CALM, 5.75 + n / 4)]
    assert lifted and not admission.limiting  # the rate has passed what callers offer, calm for 2 s: lifted


def test_turned_off_it_lets_go_at_once():
    admission = Admission(LIMITS)
    assert admission.reset() is None
    run(admission, [(STRAINED, 100)] * 2)
    assert admission.limiting and admission.reset() is True and not admission.limiting


def test_no_frames_sent_is_no_lateness():
    assert Limits().over(Load(0.1, 0.0, 0.0)) == []
    assert Limits().over(Load(0.9, 0.03, 0.02)) == ["busy", "lag", "late"]
