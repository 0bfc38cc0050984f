"""What the report says first (bench/verdict.py): the limit named from each cell's evidence, the
def/async ratios with their intervals, and nothing said that the rows do not show."""

from __future__ import annotations

import dataclasses

import pytest

from bench.stats import summarize
from bench.verdict import Limit, limit_of, lines, ratio
from tests.rows import make_row


def row(**kw):
    base = dict(status="ok", style="def", workload="sleep", users=100, workers=1, threadpool_tokens=40,
                target_cpuset="0", rps=400.0, mean_ms=250.0, p50_ms=240.0, p99_ms=300.0, target_cpu_pct=20.0,
                threadpool_busy_max=10, threadpool_waiting_max=0, loop_lag_p99_ms=1.0, cpu_ms_per_request=0.5)
    return make_row(**{**base, **kw})


def test_a_full_threadpool_with_requests_waiting_is_the_limit_of_def() -> None:
    lim = limit_of([row(threadpool_busy_max=40, threadpool_waiting_max=60)])
    assert lim == Limit("the threadpool", "40 of 40 tokens busy, up to 60 requests waiting for one",
                        "raise threadpool_tokens, or make the endpoint async def if it waits on I/O")
    # full but nobody waiting: the pool is exactly big enough, not the limit
    assert limit_of([row(threadpool_busy_max=40, threadpool_waiting_max=0)]).name == "the load itself"
    # async endpoints do not use the pool
    assert limit_of([row(style="async", threadpool_busy_max=40, threadpool_waiting_max=9)]).name != "the threadpool"


def test_a_saturated_locust_comes_first_and_makes_the_figure_a_floor() -> None:
    lim = limit_of([row(threadpool_busy_max=40, threadpool_waiting_max=60), row(loadgen_saturated=True)])
    assert lim.name == "the load generator" and "floor" in lim.evidence


def test_the_target_cpu_counts_the_cores_its_workers_can_use() -> None:
    assert limit_of([row(target_cpu_pct=95.0)]).name == "the target's CPU"
    assert limit_of([row(target_cpu_pct=89.0)]).name == "the load itself"
    two = row(target_cpu_pct=150.0, workers=2, target_cpuset="0-1")
    assert limit_of([two]).name == "the load itself"  # 150 % of 2 cores is not full
    lim = limit_of([row(target_cpu_pct=98.0, workers=1, target_cpuset="0-1")])
    assert lim.evidence == "98 % of 1 core(s)" and lim.suggestion == 'add workers (workers = "cores")'
    assert "more cores" in limit_of([row(target_cpu_pct=99.0)]).suggestion


def test_a_lagging_loop_with_cores_to_spare_is_something_blocking_it() -> None:
    lim = limit_of([row(style="async", workload="blocking_sleep", loop_lag_p99_ms=1500.0, target_cpu_pct=5.0)])
    assert lim.name == "the event loop" and "1500 ms late" in lim.evidence
    assert limit_of([row(style="async", loop_lag_p99_ms=9.0)]).name == "the load itself"


def test_little_law_names_the_load_when_nothing_saturated() -> None:
    lim = limit_of([row(users=10, mean_ms=100.0, rps=99.0)])
    assert lim.evidence == "10 users / 100.0 ms mean latency = 100 req/s (Little's law); nothing in the target saturated"
    opened = limit_of([row(load_model="open", achieved_rps=250.0, offered_rps=250.0)])
    assert opened.name == "the offered rate" and "250 of 250 req/s served" in opened.evidence


def test_ratio_interval_adds_relative_errors_in_quadrature() -> None:
    r, lo, hi = ratio(200.0, 6.0, 100.0, 4.0)  # 3 % and 4 %: 5 % together
    assert r == 2.0 and lo == pytest.approx(1.9) and hi == pytest.approx(2.1)
    assert ratio(0.0, 0.0, 1.0, 0.0) == (0.0, 0.0, 0.0)


def test_lines_pair_def_and_async_and_name_each_limit() -> None:
    rows = [row(style="def", repeat=k, rps=r, cpu_ms_per_request=0.2, threadpool_busy_max=40,
                threadpool_waiting_max=60, cell_id="d") for k, r in ((1, 390.0), (2, 410.0))]
    rows += [row(style="async", repeat=k, rps=r, cpu_ms_per_request=0.1, cell_id="a") for k, r in ((1, 950.0), (2, 1050.0))]
    [text] = lines(summarize(rows), rows)
    assert text.startswith("sleep: async / def requests/s 2.50x (")
    assert "CPU per request 0.50x (0.50-0.50)" in text
    assert "def 400.0 req/s, p99 300.0 ms, bound by the threadpool (40 of 40 tokens busy" in text
    assert "async 1000.0 req/s, p99 300.0 ms, bound by the load itself" in text


def test_one_repeat_says_it_has_no_interval_and_floors_say_so() -> None:
    rows = [row(style="def", cell_id="d"), row(style="async", cell_id="a", rps=800.0, loadgen_saturated=True)]
    [text] = lines(summarize(rows), rows)
    assert "requests/s 2.00x (one repeat: no interval)" in text and "(floors: Locust saturated)" in text


def test_cells_that_differ_in_more_than_style_are_not_compared() -> None:
    rows = [row(style="def", cell_id="d"), row(style="async", cell_id="a", users=10)]
    texts = lines(summarize(rows), rows)
    assert len(texts) == 2 and not any("async / def" in t for t in texts)
    assert texts[0].startswith("sleep, users 100: def") and texts[1].startswith("sleep, users 10: async")


def test_failed_cells_say_nothing() -> None:
    rows = [dataclasses.replace(row(), status="failed")]
    assert lines(summarize(rows), rows) == []


def test_a_full_cpu_is_the_limit_even_with_the_threadpool_full() -> None:
    # def noop past its limit: the threads wait for the CPU, not for I/O
    lim = limit_of([row(workload="noop", target_cpu_pct=97.0, threadpool_busy_max=40, threadpool_waiting_max=900)])
    assert lim.name == "the target's CPU"


def test_a_late_loop_on_a_busy_core_is_overloaded_not_blocked() -> None:
    busy = limit_of([row(style="async", loop_lag_p99_ms=200.0, target_cpu_pct=83.0)])
    assert busy.evidence == "busy: its timers fired up to 200 ms late (p99) at 83 % of 1 core(s)"
    assert busy.suggestion == "add workers: one event loop each"
    blocked = limit_of([row(style="async", loop_lag_p99_ms=200.0, target_cpu_pct=49.0)])
    assert blocked.evidence == "its timers fired up to 200 ms late (p99) with the CPU at 49 %: a call blocks it"
