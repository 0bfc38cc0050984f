"""The open loop's schedule and accounting (loadgen/openloop.py) on a fake clock: no Locust, no
sleeping, exact counts."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from bench.run import hdr
from loadgen.openloop import LATE_S, Counters, OpenLoop, latency_ms, schedule, split


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.overshoot = 0.0  # every sleep wakes this much late (a busy or starved scheduler)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self.overshoot


def take(n: int, it: object) -> list[float]:
    return list(itertools.islice(it, n))  # type: ignore[call-overload]


def test_constant_schedule_is_evenly_spaced_without_drift() -> None:
    times = take(1001, schedule(250.0, "constant"))
    assert times[0] == 0.0 and times[1] == pytest.approx(0.004)
    assert times[1000] == pytest.approx(4.0, abs=1e-12)  # k / rate: no rounding error piles up


def test_poisson_schedule_has_the_rate_and_the_spread_of_poisson_arrivals() -> None:
    times = take(20_001, schedule(500.0, "poisson", random.Random(42)))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.fmean(gaps) == pytest.approx(1 / 500, rel=0.03)
    # exponential gaps: the standard deviation equals the mean (constant spacing has none)
    assert statistics.stdev(gaps) == pytest.approx(1 / 500, rel=0.05)
    # in one second, about rate arrivals (a Poisson count: sd sqrt(500) ~ 22)
    assert 400 < sum(1 for t in times if t < 1.0) < 600
    assert take(5, schedule(500.0, "poisson", random.Random(42))) == times[:5]  # a seed repeats


@pytest.mark.parametrize(("rate", "arrivals"), [(0.0, "constant"), (-1.0, "poisson"), (10.0, "bursty")])
def test_schedule_refuses_what_it_cannot_send(rate: float, arrivals: str) -> None:
    with pytest.raises(ValueError):
        next(schedule(rate, arrivals))


def test_the_rate_is_split_evenly_over_the_processes() -> None:
    assert split(900.0, 3) == 300.0
    assert split(10.0, 4) * 4 == pytest.approx(10.0)
    with pytest.raises(ValueError):
        split(10.0, 0)


def run_loop(n: int, rate: float, max_inflight: int, clock: FakeClock, send_s: float = 0.0,
             concurrent: bool = False) -> tuple[Counters, list[float]]:
    """n due times at `rate`; each send takes send_s of the fake clock and records its latency.
    concurrent: sends never finish (they stay in flight), as with a target that stopped answering."""
    counters = Counters(hdr.new_histogram())
    latencies: list[float] = []

    def send(due: float) -> None:
        clock.now += send_s
        latencies.append(latency_ms(due, clock()))

    pending: list[object] = []

    def spawn(fn: object, *args: object) -> None:
        if concurrent:
            pending.append((fn, args))
        else:
            fn(*args)  # type: ignore[operator]

    loop = OpenLoop(schedule(rate, "constant"), send, max_inflight, counters, clock, clock.sleep, spawn)
    loop.run(limit=n)
    return counters, latencies


def test_on_time_sends_are_neither_late_nor_dropped() -> None:
    counters, latencies = run_loop(100, 100.0, 10, FakeClock())
    assert counters.as_dict() == {"offered": 100, "sent": 100, "dropped": 0, "late": 0}
    assert latencies == [0.0] * 100


def test_a_request_that_waited_counts_the_wait_in_its_latency() -> None:
    # a sender that wakes 50 ms late: every request after the first (due at once, sent at once)
    # leaves 50 ms after it was due, and its latency (from the due time) holds those 50 ms and the
    # 10 ms it then took
    clock = FakeClock()
    clock.overshoot = 0.05
    counters, latencies = run_loop(20, 10.0, 10, clock, send_s=0.01)
    assert latencies[0] == pytest.approx(10.0)
    assert min(latencies[1:]) >= 50.0 + 10.0 - 1e-6
    assert counters.late == 19 and counters.late_hist.get_value_at_percentile(99) >= 50_000


def test_a_send_just_within_a_millisecond_is_not_late() -> None:
    clock = FakeClock()
    clock.overshoot = LATE_S * 0.9
    counters, _ = run_loop(10, 10.0, 10, clock)
    assert counters.late == 0 and counters.sent == 10


def test_requests_due_while_max_inflight_are_outstanding_are_dropped_and_counted() -> None:
    counters, _ = run_loop(50, 100.0, 8, FakeClock(), concurrent=True)
    assert counters.as_dict() == {"offered": 50, "sent": 8, "dropped": 42, "late": 0}


def test_counters_reset_and_add_up_across_processes() -> None:
    master = Counters(hdr.new_histogram())
    master.add({"offered": 10, "sent": 9, "dropped": 1, "late": 2})
    master.add({"offered": 5, "sent": 5})
    assert master.as_dict() == {"offered": 15, "sent": 14, "dropped": 1, "late": 2}
    master.late_hist.record_value(5)
    master.reset()
    assert master.as_dict() == {"offered": 0, "sent": 0, "dropped": 0, "late": 0}
    assert master.late_hist.get_total_count() == 0


def test_latency_never_goes_below_zero() -> None:
    assert latency_ms(10.0, 9.9) == 0.0
    assert latency_ms(10.0, 10.25) == pytest.approx(250.0)
