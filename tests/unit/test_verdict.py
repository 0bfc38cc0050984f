"""What the report says first (bench/judge/verdict.py): the limit named from each cell's evidence, the
def/async ratios with their intervals, and nothing said that the rows do not show."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest

from bench.judge.verdict import Limit, limit_of, lines, ratio
from bench.results.stats import summarize
from tests.rows import make_row


def row(**kw):
    base = dict(status="ok", style="def", workload="sleep", users=100, workers=1, threadpool_tokens=40,
                target_cpuset="0", rps=400.0, mean_ms=250.0, p50_ms=240.0, p99_ms=300.0, target_cpu_pct=20.0,
                threadpool_busy_max=10, threadpool_waiting_max=0, loop_lag_p99_ms=1.0, cpu_ms_per_request=0.5)
    return make_row(**{**base, **kw})


def test_a_full_connection_pool_with_requests_waiting_is_named_before_the_threadpool() -> None:
    full = dict(workload="db", db_pool_size=10, db_pool_busy_max=10, db_pool_waiting_max=30)
    # the threads that wait for a connection are busy threads too: the pool is what binds them
    lim = limit_of([row(**full, threadpool_busy_max=40, threadpool_waiting_max=60)])
    assert lim == Limit("the connection pool", "10 of 10 connections in use, up to 30 requests waiting for one",
                        "raise db_pool_size (within the database's max_connections)")
    assert limit_of([row(**full, style="async")]).name == "the connection pool"
    # a full pool nobody waits for, or a pool that was never full, binds nothing
    assert limit_of([row(**{**full, "db_pool_waiting_max": 0})]).name == "the load itself"
    assert limit_of([row(**{**full, "db_pool_busy_max": 9})]).name == "the load itself"
    # no pool at all (db_pool_size 0): the waiting count of another workload's row means nothing
    assert limit_of([row(db_pool_waiting_max=5, db_pool_busy_max=5)]).name == "the load itself"
    assert limit_of([row(**full, target_cpu_pct=95.0)]).name == "the target's CPU"
    assert limit_of([row(**{**full, "db_pool_waiting_max": 1})]).name == "the connection pool", "one is enough"


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


def test_ratio_interval_adds_relative_errors_in_quadrature_on_the_log_scale() -> None:
    r, lo, hi = ratio(200.0, 6.0, 100.0, 4.0)  # 3 % and 4 %: 5 % together
    assert r == 2.0 and lo == pytest.approx(2 * math.exp(-0.05)) and hi == pytest.approx(2 * math.exp(0.05))
    r, lo, hi = ratio(100.0, 4.0, 200.0, 6.0)  # the inverse: the same interval, inverted
    assert lo == pytest.approx(1 / (2 * math.exp(0.05))) and hi == pytest.approx(1 / (2 * math.exp(-0.05)))
    assert ratio(100.0, 300.0, 100.0, 0.0)[1] > 0, "a half-width three times the mean still gives a floor above 0"
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
    assert "requests/s 2.00x (one repeat: no interval)" in text
    assert "(one repeat: no interval) (floors: Locust saturated). def" in text


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


def test_each_limit_is_named_whole() -> None:
    assert limit_of([row(loadgen_saturated=True)]) == Limit(
        "the load generator", "Locust was saturated: requests/s is a floor",
        "give Locust more CPUs (loadgen_cpuset, loadgen_processes) or a second VM")
    assert limit_of([row(target_cpu_pct=90.0)]) == Limit(  # exactly 90 % of its core is full
        "the target's CPU", "90 % of 1 core(s)", "give the target more cores (target_cpuset) and workers")
    assert limit_of([row(threadpool_busy_max=40, threadpool_waiting_max=1)]).name == "the threadpool"
    assert limit_of([row(style="async", loop_lag_p99_ms=10.0, target_cpu_pct=50.0)]) == Limit(
        "the event loop", "busy: its timers fired up to 10 ms late (p99) at 50 % of 1 core(s)",
        "add workers: one event loop each")
    # two cores: 99 % is under half of them, so a late loop there is blocked, not busy
    blocked = limit_of([row(style="async", loop_lag_p99_ms=10.0, target_cpu_pct=99.0, workers=2,
                            target_cpuset="0-1")])
    assert blocked == Limit("the event loop", "its timers fired up to 10 ms late (p99) with the CPU at 99 %: "
                            "a call blocks it", "move blocking calls out of async def (a def endpoint, or "
                            "run_in_threadpool)")
    assert limit_of([row(style="async", loop_lag_p99_ms=10.0, target_cpu_pct=100.0, workers=2,
                         target_cpuset="0-1")]).evidence.startswith("busy")
    assert limit_of([row(load_model="open", achieved_rps=250.0, offered_rps=251.0)]) == Limit(
        "the offered rate", "250 of 251 req/s served, nothing saturated",
        "a higher rate (or bench capacity) finds the limit")
    assert limit_of([row(users=10, mean_ms=0.5)]) == Limit(
        "the load itself", "10 users / 0.5 ms mean latency = 20000 req/s (Little's law); nothing in the target "
        "saturated", "more users find the server's limit")
    assert "= 0 req/s" in limit_of([row(mean_ms=0.0)]).evidence


def test_limit_text_leaves_out_a_missing_suggestion() -> None:
    assert Limit("a", "b").text() == "a (b)"
    assert Limit("a", "b", "c").text() == "a (b): c"


def test_a_ratio_with_nothing_on_either_side_is_none() -> None:
    assert ratio(1.0, 0.0, 0.0, 0.0) == (0.0, 0.0, 0.0)
    rows = [row(style="def", cell_id="d", cpu_ms_per_request=0.0), row(style="async", cell_id="a", rps=800.0)]
    [text] = lines(summarize(rows), rows)
    assert text.startswith("sleep: async / def requests/s 2.00x (one repeat: no interval). def 400.0")


def test_the_whole_line_of_a_pair_with_two_varying_parameters() -> None:
    rows = [row(style=s, cell_id=f"{s}{u}{t}", users=u, threadpool_tokens=t, backend="docker")
            for s in ("def", "async") for u, t in ((10, 40), (100, 5))]
    texts = lines(summarize(rows), rows)
    assert texts[0] == ("sleep, users 10, threadpool_tokens 40: async / def requests/s 1.00x (one repeat: no "
                        "interval); CPU per request 1.00x (one repeat: no interval). def 400.0 req/s, p99 300.0 ms, "
                        "bound by the load itself (10 users / 250.0 ms mean latency = 40 req/s (Little's law); "
                        "nothing in the target saturated): more users find the server's limit. async 400.0 req/s, "
                        "p99 300.0 ms, bound by the load itself (10 users / 250.0 ms mean latency = 40 req/s "
                        "(Little's law); nothing in the target saturated): more users find the server's limit.")
    assert "(floors" not in "".join(texts)


CAP = {"slo_p99_ms": "250.000", "workload": "sleep", "stopped_by": "converged", "p99_ms": "200.000"}


def test_capacity_lines_pair_the_searches_and_name_what_bound_the_first_failing_step() -> None:
    records = [{**CAP, "search_id": "def-sleep-cap-uvicorn-w1-tp40", "style": "def", "capacity_rps": "400.000"},
               {**CAP, "search_id": "async-sleep-cap-uvicorn-w1-tp40", "style": "async", "capacity_rps": "2000.000"},
               {**CAP, "search_id": "def-noop-cap-uvicorn-w1-tp40", "style": "def", "capacity_rps": "2600.000",
                "workload": "noop", "stopped_by": "max_rps", "p99_ms": "9.250"},
               {**CAP, "search_id": "async-noop-cap-uvicorn-w1-tp40", "style": "async", "capacity_rps": "0.000",
                "workload": "noop", "stopped_by": "the step failed: target died"}]
    steps = [  # the other search's steps come first: each line must take its own
        {"search_id": "async-sleep-cap-uvicorn-w1-tp40", "verdict": "pass", "rate": "400.000", "saturated": "true",
         "cell_id": "a400"},
        {"search_id": "async-sleep-cap-uvicorn-w1-tp40", "verdict": "pass", "rate": "2000.000", "saturated": "true",
         "cell_id": "a2000"},
        {"search_id": "def-sleep-cap-uvicorn-w1-tp40", "verdict": "fail", "rate": "800.000",
         "reason": "p99 2600.0 ms > 250 ms", "saturated": "true", "cell_id": "d800"},
        {"search_id": "async-sleep-cap-uvicorn-w1-tp40", "verdict": "fail", "rate": "4000.000",
         "reason": "p99 700.0 ms > 250 ms", "saturated": "false", "cell_id": "a4000"},
        {"search_id": "def-sleep-cap-uvicorn-w1-tp40", "verdict": "pass", "rate": "400.000", "saturated": "false",
         "cell_id": "d400"},
        {"search_id": "def-sleep-cap-uvicorn-w1-tp40", "verdict": "pass", "rate": "800.000", "saturated": "true",
         "cell_id": "d800"}]
    rows = [row(cell_id="d800", threadpool_busy_max=40, threadpool_waiting_max=960),
            row(cell_id="a4000", style="async", target_cpu_pct=95.0)]
    sleep, noop = lines([], rows, records, steps)
    assert sleep == (
        "sleep, capacity within p99 250 ms: async / def 5.00x. def 400 req/s; at 800 req/s p99 2600.0 ms > 250 ms, "
        "bound by the threadpool (40 of 40 tokens busy, up to 960 requests waiting for one): raise "
        "threadpool_tokens, or make the endpoint async def if it waits on I/O. async 2000 req/s (Locust was "
        "saturated at that rate: a floor); at 4000 req/s p99 700.0 ms > 250 ms, bound by the target's CPU "
        "(95 % of 1 core(s)): give the target more cores (target_cpuset) and workers.")
    assert noop == ("noop, capacity within p99 250 ms: def 2600 req/s (max_rps reached with p99 9.2 ms: a floor, "
                    "raise max_rps). async 0 req/s (stopped: the step failed: target died).")


def test_the_label_never_repeats_the_workload_nor_names_the_backend() -> None:
    rows = [row(cell_id="n", workload="noop", backend="local"), row(cell_id="s", backend="docker")]
    assert [t.split(":")[0] for t in lines(summarize(rows), rows)] == ["noop", "sleep"]


def test_a_blocked_loop_is_named_before_a_full_pool() -> None:
    """async def with a sync dependency: the pool is full and queued, but the loop stood still for
    whole queries with the CPU idle: the blocking call is what to fix."""
    lim = limit_of([row(style="async", workload="db", db_pool_size=10, db_pool_busy_max=10, db_pool_waiting_max=30,
                        loop_lag_p99_ms=185.0, target_cpu_pct=8.0)])
    assert lim.name == "the event loop" and "a call blocks it" in lim.evidence
    # in def a late loop with an idle CPU is not where the requests wait: the full pool is named
    lim = limit_of([row(style="def", workload="db", db_pool_size=10, db_pool_busy_max=10, db_pool_waiting_max=30,
                        loop_lag_p99_ms=185.0, target_cpu_pct=8.0)])
    assert lim.name == "the connection pool"
    assert limit_of([row(style="def", loop_lag_p99_ms=185.0, target_cpu_pct=8.0)]).evidence.endswith(
        "a call blocks it"), "nothing else full: the late loop is still named"


def test_a_def_dependency_above_the_threadpool_is_named_as_the_deadlock_it_is() -> None:
    deadlock = dict(workload="db", db_dependency=True, db_pool_size=10, db_pool_busy_max=10, db_pool_waiting_max=70,
                    threadpool_busy_max=40, threadpool_waiting_max=60)
    lim = limit_of([row(**deadlock)])
    assert lim == Limit("the threadpool and the connection pool waiting on each other",
                        "10 of 10 connections in use, up to 70 requests waiting for one, all 40 threads busy and "
                        "60 requests waiting for one",
                        "a def dependency that holds a connection needs db_pool_size >= threadpool_tokens "
                        "(or an async dependency)")
    # the same queues without the dependency: requests flow, the pool is the limit
    assert limit_of([row(**{**deadlock, "db_dependency": False})]).name == "the connection pool"
    assert limit_of([row(**{**deadlock, "threadpool_waiting_max": 0})]).name == "the connection pool"
    assert limit_of([row(**{**deadlock, "threadpool_waiting_max": 1})]).name.startswith("the threadpool and")


def test_a_line_names_only_the_knobs_its_cell_reads() -> None:
    from bench.judge.verdict import _label

    db = SimpleNamespace(workload="db", endpoint="", load_model="closed", users=40, rate=0.0, db_pool_size=10, db_sleep_ms=20,
                         upstream_delay_ms=0, http_pool_size=0)
    http = SimpleNamespace(**{**vars(db), "workload": "http", "db_pool_size": 0, "db_sleep_ms": 0,
                              "upstream_delay_ms": 50, "http_pool_size": 100})
    varying = ["users", "rate", "db_pool_size", "db_sleep_ms", "upstream_delay_ms", "http_pool_size"]
    assert _label(db, varying) == "db, users 40, db_pool_size 10, db_sleep_ms 20"
    assert _label(http, varying) == "http, users 40, upstream_delay_ms 50, http_pool_size 100"
    # a knob at its neutral value says nothing (db_sleep_ms of a pk query is 0)
    pk = SimpleNamespace(**{**vars(db), "db_sleep_ms": 0})
    assert _label(pk, varying) == "db, users 40, db_pool_size 10"
    opened = SimpleNamespace(**{**vars(db), "load_model": "open", "rate": 300.0})
    assert _label(opened, varying) == "db, rate 300.0, db_pool_size 10, db_sleep_ms 20"


def test_a_cell_where_nothing_completed_says_what_the_target_was_doing() -> None:
    from bench.run.headroom import stuck
    from bench.scenario.matrix import from_dict

    [dep] = from_dict({"defaults": {"workload": "db", "style": "def", "db_dependency": True}}, {}).cells()
    [plain] = from_dict({"defaults": {"workload": "db", "style": "def"}}, {}).cells()
    knot = {"threadpool_busy_max": 40, "threadpool_waiting_max": 60, "db_pool_busy_max": 10,
            "db_pool_waiting_max": 30}
    said = ("inside the target: 40 threads busy, 60 requests waiting for one, 10 pooled connections in use, "
            "30 requests waiting for one")
    assert stuck(dep, knot) == said + ": the threadpool and the connection pool wait on each other"
    assert stuck(plain, knot) == said, "without the dependency, a long query is no deadlock"
    assert stuck(dep, {**knot, "threadpool_busy_max": 39}) == said.replace("40 threads", "39 threads")
    assert stuck(dep, {**knot, "db_pool_waiting_max": 0}).endswith("0 requests waiting for one")
    assert stuck(dep, {**knot, "threadpool_waiting_max": 0}).endswith("30 requests waiting for one")
    idle = dict.fromkeys(knot, 0)
    assert stuck(dep, idle) == "", "an idle target: nothing to say"
    assert stuck(dep, {**idle, "db_pool_busy_max": 2}).startswith("inside the target: 0 threads busy")
    assert stuck(dep, {**idle, "threadpool_busy_max": 1}).startswith("inside the target: 1 threads busy")


def test_granian_knobs_name_a_line_only_when_they_differ_among_granian_cells() -> None:
    rows = [row(style=s, cell_id=f"{s}{server}{rt}", server=server, granian_runtime_threads=rt,
                granian_blocking_threads=1 if rt else 0)
            for s in ("def", "async") for server, rt in (("uvicorn", 0), ("granian", 1))]
    texts = lines(summarize(rows), rows)
    assert [t.split(":")[0] for t in texts] == ["sleep, server uvicorn", "sleep, server granian"]
    more = rows + [row(style=s, cell_id=f"{s}granian2", server="granian", granian_runtime_threads=2,
                       granian_blocking_threads=1) for s in ("def", "async")]
    texts = lines(summarize(more), more)
    assert [t.split(":")[0] for t in texts] == ["sleep, server uvicorn", "sleep, server granian, "
                                                "granian_runtime_threads 1", "sleep, server granian, "
                                                "granian_runtime_threads 2"]


def app_row(**kw):
    """A cell of a team's app: its endpoint named, the built-in knobs at their neutral values."""
    return row(**{"workload": "", "endpoint": "export", "style": "as_written", **kw})


def test_an_own_app_line_names_the_endpoint_and_pairs_on_loop_with_as_written() -> None:
    rows = [app_row(cell_id="w", rps=950.0, threadpool_busy_max=20, loop_lag_p99_ms=1.0),
            app_row(cell_id="l", style="on_loop", rps=47.5, loop_lag_p99_ms=780.0, target_cpu_pct=3.0)]
    [text] = lines(summarize(rows), rows)
    assert text.startswith("endpoint export: on_loop / as_written requests/s 0.05x (one repeat")
    assert "as_written 950.0 req/s, p99 300.0 ms, bound by the load itself" in text
    # on the loop the sync body blocks: the advice is to keep it def, not to move it out of async def
    assert ("on_loop 47.5 req/s, p99 300.0 ms, bound by the event loop (its timers fired up to 780 ms late "
            "(p99) with the CPU at 3 %: a call blocks it): its body blocks the loop: a def endpoint should stay def") in text


def test_an_own_app_endpoint_is_judged_on_its_evidence_not_on_its_style() -> None:
    # as written, a full threadpool with a queue is its def endpoint's limit, as for the built-in def
    assert limit_of([app_row(threadpool_busy_max=40, threadpool_waiting_max=9)]).name == "the threadpool"
    # on_loop: its def dependencies still run in the threadpool, so a full pool is still seen
    assert limit_of([app_row(style="on_loop", threadpool_busy_max=40, threadpool_waiting_max=9)]).name == \
        "the threadpool"
    # as written, a blocked loop with its threads idle is an async def that blocks
    lim = limit_of([app_row(loop_lag_p99_ms=400.0, target_cpu_pct=3.0, threadpool_busy_max=0)])
    assert lim.name == "the event loop" and lim.suggestion.startswith("an async def path operation or dependency")
    # a late loop on a busy CPU is an overloaded loop, whatever the style
    assert limit_of([app_row(style="on_loop", loop_lag_p99_ms=40.0, target_cpu_pct=70.0)]).suggestion == \
        "add workers: one event loop each"
