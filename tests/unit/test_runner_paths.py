"""Each way a cell can go right or wrong, through the real CLI and runner with the fake executor
(tests/fakes.py): the figures a row carries come from the right column, the right file and the
right window, and every failure lands in its own row with its reason while the matrix goes on."""

from __future__ import annotations

import json
import re

import pytest

from bench.results.rundir import RunDir
from bench.run import runner
from bench.scenario import cpuset
from tests.fakes import CSV_PCT, SAMPLED, TARGET_LOG
from tests.runs import ONE, one_row, run, scen_file

LOG_TAIL = " | ".join(f"fake locust line {i}" for i in range(4, 9))  # the log's last 5 lines
def test_an_ok_row_takes_hdr_percentiles_final_totals_and_the_samplers_window(tmp_path, fake) -> None:
    code, row = one_row(tmp_path)
    assert code == 0 and row.status == "ok" and row.error == ""
    # the histogram (1..1000 x 100 µs), not Locust's rounded CSV columns
    assert row.latency_source == "hdr"
    # (HDR keeps 3 significant digits: within 0.1 %)
    assert [row.p50_ms, row.p90_ms, row.p95_ms, row.p99_ms, row.p999_ms, row.max_ms] == pytest.approx(
        [50.0, 90.0, 95.0, 99.0, 99.9, 100.0], rel=1e-3)
    assert row.mean_ms == pytest.approx(50.05, abs=0.01)
    # Locust's final totals from the result JSON (7 more than the lagging CSV's 1000)
    assert (row.requests, row.failures, row.rps) == (1007, 0, pytest.approx(100.5))
    # what the target's worker reported inside the measured window
    assert (row.threadpool_busy_max, row.threadpool_waiting_max, row.loop_lag_p99_ms) == (
        SAMPLED["busy_max"], SAMPLED["waiting_max"], 9.0)
    assert not row.loadgen_saturated


def test_without_a_histogram_each_percentile_comes_from_its_own_csv_column(tmp_path, fake) -> None:
    fake.no_result = True
    code, row = one_row(tmp_path)
    assert code == 0 and row.latency_source == "locust"
    assert (row.p50_ms, row.p90_ms, row.p95_ms, row.p99_ms, row.p999_ms) == (
        CSV_PCT["50%"], CSV_PCT["90%"], CSV_PCT["95%"], CSV_PCT["99%"], CSV_PCT["99.9%"])
    assert (row.max_ms, row.mean_ms, row.requests, row.rps) == (22.0, 10.5, 1000, 100.0)


def test_failed_requests_are_counted_and_named_in_the_row(tmp_path, fake, capsys) -> None:
    fake.failures = 9  # in the stats CSV; Locust's final totals (the result JSON) say 10
    code, row = one_row(tmp_path)
    assert code == 0 and row.status == "ok" and row.failures == 10
    assert row.error == "10 failed requests, e.g. HTTPError('503 Server Error') (x8)"
    assert "10 failed requests" in capsys.readouterr().err, "the progress line shows it"


def test_totals_without_latencies_take_the_mean_from_the_totals_and_percentiles_from_the_csv(
        tmp_path, fake) -> None:
    fake.empty_histogram = True
    code, row = one_row(tmp_path)
    assert code == 0 and row.latency_source == "locust"
    assert (row.requests, row.rps, row.mean_ms, row.p99_ms, row.max_ms) == (1007, 100.5, 50.05, CSV_PCT["99%"], 22.0)


def test_a_result_without_its_window_fails_the_cell(tmp_path, fake) -> None:
    """Locust writes t_start when it resets its statistics after the warmup: without it the
    figures hold the ramp and the warmup, so the cell fails with the reason."""
    fake.no_window = True
    code, row = one_row(tmp_path)
    assert code == 1 and row.status == "failed" and row.requests == 0
    assert row.error == ("Locust stopped before its measured window opened (not every user was running "
                         "by the end of --run-time)")


def test_a_window_cut_short_is_noted_in_the_row(tmp_path, fake) -> None:
    fake.window_s = 1.7  # of a 2 s duration: under 90 %
    code, row = one_row(tmp_path, "--set", "duration=2")
    assert code == 0 and row.status == "ok" and row.error == "measured window 1.7 s, not the 2 s asked"
    fake.window_s = 1.9
    code, row = one_row(tmp_path, "--set", "duration=2")
    assert code == 0 and row.error == ""


def test_failures_from_the_csv_when_there_is_no_result(tmp_path, fake) -> None:
    fake.no_result, fake.failures = True, 4
    _code, row = one_row(tmp_path)
    assert row.failures == 4 and row.error.startswith("4 failed requests")
    assert not row.loadgen_saturated and row.latency_source == "locust"


def test_a_lost_histogram_is_a_warning_in_the_row(tmp_path, fake, capsys) -> None:
    fake.lost_histogram = True
    code, row = one_row(tmp_path)
    assert code == 0 and row.status == "ok"
    assert row.error == "latency histogram incomplete (count says 1005, histogram holds 1000)"
    assert "latency histogram incomplete" in capsys.readouterr().err


@pytest.mark.parametrize(("setting", "reason"), [
    ({"zero_requests": True}, "no request completed in the measured window"),
    ({"no_csv": True}, f"Locust wrote no measure_stats.csv: {LOG_TAIL}"),
    ({"locust_code": 3}, f"Locust exited with code 3: {LOG_TAIL}"),
    ({"wrong_tokens": True}, "target threadpool has 41 tokens, not the requested 40"),
    ({"runs_server": "hypercorn"}, "target runs hypercorn, not the requested uvicorn (/info)"),
    ({"broken_path": "/def/sleep"}, "GET /def/sleep?ms=100 answered 500, not 200, before the load: {\"ok\": false}"),
])
def test_each_failure_fails_its_cell_with_its_reason(tmp_path, fake, setting, reason) -> None:
    for key, value in setting.items():
        setattr(fake, key, value)
    code, row = one_row(tmp_path)
    assert code == 1 and row.status == "failed"
    assert row.error.startswith(reason), row.error
    assert row.requests == 0 and row.rps == 0.0, "a failed row carries no figure"


def test_the_endpoint_is_verified_before_any_load(tmp_path, fake) -> None:
    fake.broken_path = "/def/sleep"
    _code, row = one_row(tmp_path)
    assert row.status == "failed" and fake.loads == [], "no Locust against an endpoint that fails"


def test_the_verifying_request_asks_for_the_cells_own_path_first(tmp_path, fake) -> None:
    code, _row = one_row(tmp_path, "--set", "sleep_ms=70")
    assert code == 0
    assert fake.made[0].requests[:2] == ["/__bench/info", "/def/sleep?ms=70"]
    assert fake.loads[0].path == "/def/sleep?ms=70"


def test_a_hung_locust_fails_its_cell_at_the_deadline_and_is_killed(tmp_path, fake) -> None:
    fake.locust_hangs = True
    code, row = one_row(tmp_path)
    assert code == 1 and row.status == "failed" and row.error.startswith("Locust still running after")
    measured = fake.runs[-1]
    # the deadline: the whole --run-time plus the grace for start-up, stop and CSV writing
    assert measured.waited == [fake.loads[-1].run_time_s + runner.LOCUST_GRACE_S] and measured.killed


def test_the_matrix_goes_on_after_each_kind_of_failure(tmp_path, fake) -> None:
    fake.zero_requests = True
    code, run_dir = run(tmp_path, scen_file(tmp_path, '[matrix]\nworkload = ["sleep", "noop"]\nstyle = ["def"]\n'))
    rows = RunDir(run_dir).rows()
    assert code == 1 and len(rows) == 2 and {r.status for r in rows} == {"failed"}


TWO = '[matrix]\nworkload = ["sleep"]\nstyle = ["def", "async"]\n'  # two cells, one target


def test_the_drain_waits_for_a_busy_target_before_the_next_cell(tmp_path, fake) -> None:
    """After each Locust run the target works on for 0.6 s (abandoned requests): the next cell's
    run must not start before it is idle."""
    fake.busy_after_stop_s = 0.6
    code, _run_dir = run(tmp_path, scen_file(tmp_path, TWO))
    assert code == 0
    first_started, second_started = fake.load_started
    assert second_started - first_started >= 0.5


def test_the_drain_does_not_wait_for_an_idle_target(tmp_path, fake) -> None:
    code, _run_dir = run(tmp_path, scen_file(tmp_path, TWO))
    first_started, second_started = fake.load_started
    assert code == 0 and second_started - first_started < 5


def test_the_runner_waits_for_every_worker_to_say_where_it_runs(tmp_path, fake) -> None:
    fake.late_workers_s = 0.5  # the first worker answers /healthz before the second one is up
    code, row = one_row(tmp_path, "--set", "workers=2", "--set", "worker_pinning=core", "--set", "target_cpuset=0-1")
    assert code == 0 and row.status == "ok" and row.target_affinity == "0/1"


def test_a_worker_that_never_says_where_it_runs_fails_the_cell(tmp_path, fake, monkeypatch) -> None:
    monkeypatch.setattr(runner, "WORKERS_DEADLINE_S", 0.3)
    fake.workers_shown = 1
    code, row = one_row(tmp_path, "--set", "workers=2")
    assert code == 1 and row.error == ("1 of the target's 2 workers said where they run (/info worker_affinity, "
                                       "within 0.3 s)")


@pytest.mark.parametrize(("asked", "placed", "error"), [
    ("core", "set", "target workers run on CPUs 0-1, not the requested 0/1 (worker_pinning = core)"),
    ("set", "core", "target workers run on CPUs 0/1, not the requested 0-1 (worker_pinning = set)"),
])
def test_workers_placed_otherwise_fail_the_cell(tmp_path, fake, asked, placed, error) -> None:
    fake.misplace = placed  # the target places its workers as `placed` says, whatever the cell asks
    code, row = one_row(tmp_path, "--set", "workers=2", "--set", f"worker_pinning={asked}", "--set", "target_cpuset=0-1")
    assert code == 1 and row.error == error


def test_locusts_own_cpu_warning_marks_the_row_saturated(tmp_path, fake) -> None:
    fake.cpu_warning = True
    code, row = one_row(tmp_path)
    assert code == 0 and row.loadgen_saturated


def test_the_lag_of_locusts_loop_is_its_mean_and_flags_a_starved_locust(tmp_path, fake, capsys) -> None:
    code, row = one_row(tmp_path)
    assert code == 0 and row.loadgen_lag_ms == pytest.approx(1.01, rel=1e-3) and not row.loadgen_saturated
    fake.lag_values = [100] * 60 + [9000] * 40  # mean 3.66 ms: over 1 ms and over 5 % of 50 ms
    code, row = one_row(tmp_path)
    assert code == 0 and row.loadgen_lag_ms == pytest.approx(3.66, rel=1e-3) and row.loadgen_saturated
    err = capsys.readouterr().err
    assert "1 row(s) flagged" in err and f"{row.cell_id}: Locust had 1 CPU(s)" in err


def test_a_row_names_its_run_and_its_times(tmp_path, fake) -> None:
    _code, run_dir = run(tmp_path, scen_file(tmp_path, ONE))
    [row] = RunDir(run_dir).rows()
    assert row.run_id == run_dir.name and row.backend == "fake" and row.attempt == 1
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(stamp, row.started_at) and re.fullmatch(stamp, row.ended_at)
    assert row.started_at <= row.ended_at
    cell = run_dir / "cells" / row.cell_id / "r1"
    assert (cell / "target.log").read_text() == "\n".join(TARGET_LOG) + "\n"
    assert list((run_dir / "targets" / "01" / "stats").glob("worker-*.jsonl")), "the target's own stats folder"
    info = json.loads((cell / "target_info.json").read_text())
    assert info["threadpool_tokens"] == 40 and info["cpu_affinity"] == sorted(cpuset.parse(row.target_cpuset))


def test_a_target_log_that_cannot_be_saved_costs_nothing_but_a_note(tmp_path, fake, monkeypatch) -> None:
    from tests.fakes import FakeTarget

    def broken(self, dest):
        raise OSError("disk full")

    monkeypatch.setattr(FakeTarget, "save_log", broken)
    code, run_dir = run(tmp_path, scen_file(tmp_path, ONE))
    [row] = RunDir(run_dir).rows()
    assert code == 0 and row.status == "ok"
    assert (run_dir / "cells" / row.cell_id / "r1" / "target.log").read_text() == (
        "bench: could not save the target's log: disk full\n")


def test_a_target_that_never_started_leaves_no_affinity_and_no_log(tmp_path, fake) -> None:
    fake.fail_server = "uvicorn"
    code, row = one_row(tmp_path)
    assert code == 1 and row.target_affinity == "" and row.error.startswith("target exited before answering")
    assert not list((tmp_path / "results").glob("*/cells/*/r1/target.log")), "no target, no log to copy"


@pytest.mark.parametrize("warmup", ["0", "2"])
def test_one_locust_run_per_cell_whatever_the_warmup(tmp_path, fake, warmup) -> None:
    code, _row = one_row(tmp_path, "--set", f"warmup={warmup}")
    assert code == 0 and [s.warmup_s for s in fake.loads] == [float(warmup)]


def test_the_verifying_request_waits_one_sleep_and_30_s(tmp_path, fake, monkeypatch) -> None:
    from bench.run import procs

    seen: list[tuple[str, float]] = []
    real = procs.request

    def request(url: str, *args, timeout: float = 5.0, **kw):
        seen.append((url.split("/", 3)[-1], timeout))
        return real(url, *args, timeout=timeout, **kw)

    monkeypatch.setattr(procs, "request", request)
    code, _row = one_row(tmp_path, "--set", "sleep_ms=2000")
    assert code == 0 and ("def/sleep?ms=2000", 32.0) in seen


def test_a_dying_target_fails_its_cell_with_the_end_of_its_log(tmp_path, fake) -> None:
    fake.die_on_path = "/def/sleep"
    code, row = one_row(tmp_path, "--set", "warmup=0")
    assert code == 1 and row.error == "target died during the load: " + " | ".join(TARGET_LOG[-5:])


def test_resources_are_sampled_inside_the_window(tmp_path, fake) -> None:
    """A measured run of 1.5 s with a target and a Locust that each burn a core: the monitor's
    samples inside the window give both their CPU, and the target's CPU per request."""
    fake.run_s = 1.5
    code, row = one_row(tmp_path, "--set", "warmup=0")
    assert code == 0, row.error
    assert row.target_cpu_pct > 10 and row.loadgen_cpu_pct > 10, row
    assert row.target_rss_mb > 1 and row.target_threads >= 1
    # at most 2 cores at 1007 requests in 1.2 s: well under 3 ms each, and not nothing
    assert 0 < row.cpu_ms_per_request < 3 and 0 < row.loadgen_cpu_ms_per_request < 3
    # one Locust process on its CPU set: headroom = its cores over the cores it used
    assert row.loadgen_headroom == pytest.approx(100 * row.loadgen_processes / row.loadgen_cpu_pct, rel=0.01)


def test_one_recorded_latency_is_a_histogram(tmp_path, fake) -> None:
    fake.hdr_values = [2000]  # under 2.048 ms every microsecond has its own bucket
    code, row = one_row(tmp_path)
    assert code == 0 and row.latency_source == "hdr" and row.p50_ms == row.p99_ms == 2.0


def test_failures_and_a_lost_histogram_both_noted_in_order(tmp_path, fake) -> None:
    fake.failures, fake.lost_histogram = 3, True
    code, row = one_row(tmp_path)
    assert code == 0 and row.error == ("4 failed requests, e.g. HTTPError('503 Server Error') (x2); "
                                       "latency histogram incomplete (count says 1005, histogram holds 1000)")


def test_the_drain_gives_up_at_its_deadline(tmp_path, fake, monkeypatch) -> None:
    monkeypatch.setattr(runner, "DRAIN_DEADLINE_S", 0.3)
    fake.busy_after_stop_s = 30.0  # a target that stays busy: the matrix must not wait for it
    code, _run_dir = run(tmp_path, scen_file(tmp_path, TWO))
    first_started, second_started = fake.load_started
    assert code == 0 and second_started - first_started < 5


def test_a_cell_where_nothing_completed_says_what_the_target_was_doing_in_its_window(tmp_path, fake) -> None:
    fake.zero_requests = True
    code, row = one_row(tmp_path)
    assert code == 1 and row.status == "failed"
    # the fake's worker: SAMPLED inside the window, far more just outside it (which must not count)
    assert row.error == (f"no request completed in the measured window (inside the target: {SAMPLED['busy_max']} "
                         f"threads busy, {SAMPLED['waiting_max']} requests waiting for one, 0 pooled connections "
                         "in use, 0 requests waiting for one)")


def test_without_a_result_file_the_window_for_that_comes_from_the_runners_clock(tmp_path, fake) -> None:
    fake.zero_requests = True
    fake.no_result = True
    code, row = one_row(tmp_path)
    assert code == 1 and row.error.startswith("no request completed in the measured window"), row.error


OPEN_ONE = 'load_model = "open"\nrate = 100\n[matrix]\nworkload = ["sleep"]\nstyle = ["def"]\n'


def test_an_open_row_notes_its_dropped_requests_and_a_late_schedule_flags_locust(tmp_path, fake) -> None:
    fake.dropped = 7
    code, row = one_row(tmp_path, body=OPEN_ONE)
    assert code == 0 and row.dropped == 7 and not row.loadgen_saturated
    assert row.error == f"7 requests dropped: max_inflight {row.max_inflight} were outstanding when they were due"
    fake.dropped, fake.late_ms = 0, 40.0  # every send 40 ms late: Locust did not keep its schedule
    (tmp_path / "late").mkdir()
    code, row = one_row(tmp_path / "late", body=OPEN_ONE)
    assert code == 0 and row.late_p99_ms == pytest.approx(40.0, rel=0.01) and row.loadgen_saturated


def test_a_cell_where_nothing_completed_on_an_idle_target_says_just_that(tmp_path, fake, monkeypatch) -> None:
    from tests import fakes

    monkeypatch.setitem(fakes.SAMPLED, "busy_max", 0)
    monkeypatch.setitem(fakes.SAMPLED, "waiting_max", 0)
    fake.zero_requests = True
    code, row = one_row(tmp_path)
    assert code == 1 and row.error == "no request completed in the measured window"
