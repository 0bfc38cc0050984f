"""loadgen/locustfile.py under the real Locust CLI, with the runner's own command lines
(bench/run/loadspec.py), against a real target: standalone, --processes 2 and --master + --worker.

The HDR histogram must hold exactly the requests Locust's final totals count (same events, same
resets, same messages), and its p50 must be the real latency of a 50 ms endpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from bench.run.loadspec import LoadSpec, env_for, master_argv, worker_argv
from tests.servers import ROOT, Server, free_port, start_server, stop_server

USERS = 5
WARMUP_S = 1.5  # the window opens 1.5 s into the run
DURATION_S = 2.0  # and the locustfile closes it 2 s later
RUN_S = 9  # --run-time: only a backstop, 5.5 s beyond
PATH = "/async/sleep?ms=50"
LOCUST_DEADLINE_S = 90  # a bound for a hung run, not a timing


@pytest.fixture(scope="module")
def app_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server({}, tmp_path_factory.mktemp("app_target") / "server.log")
    try:
        yield server
    finally:
        stop_server(server)


def spec(host: str, processes: int = 1, workers: int = 0) -> LoadSpec:
    return LoadSpec(host=host, path=PATH, users=USERS, spawn_rate=USERS, run_time_s=RUN_S, warmup_s=WARMUP_S,
                    duration_s=DURATION_S, processes=processes, workers=workers, master_port=free_port(), cpuset="")


def locust(argv: list[str]) -> list[str]:
    # as the local backend runs it: this interpreter's Locust
    return [sys.executable, "-m", "locust", *argv[1:]]


def run_load(load: LoadSpec, out: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], int]:
    """Run Locust as the runner would; its result JSON and the Aggregated Request Count of its CSV."""
    env = {**os.environ, **env_for(load, str(out))}
    workers = [subprocess.Popen(locust(worker_argv(load)), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
               for _ in range(load.workers)]
    try:
        proc = subprocess.run(locust(master_argv(load, str(out))), cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=LOCUST_DEADLINE_S)
        for worker in workers:
            worker.wait(30)  # they quit when the master tells them to
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats_csv = out / "measure_stats.csv"
    assert stats_csv.exists(), proc.stderr[-3000:]
    with stats_csv.open(newline="") as fh:
        csv_count = next(int(r["Request Count"]) for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    result_path = Path(env["BENCH_RESULT_OUT"])
    assert result_path.exists(), proc.stderr[-3000:]
    assert not Path(f"{result_path}.tmp").exists()
    result = json.loads(result_path.read_text())
    # the owner of the window said when it opened, for the runner's profiler, as it opened
    opened = json.loads(Path(env["BENCH_WINDOW_OUT"]).read_text())
    assert opened == {"t_start": result["t_start"], "duration_s": load.duration_s}, opened
    return proc, result, csv_count


def check(result: dict[str, Any], csv_count: int, role: str) -> None:
    assert result["role"] == role
    assert isinstance(result["cpu_warning"], bool)
    hist = HdrHistogram.decode(result["hdr"])
    count = hist.get_total_count()
    assert count == result["count"] > 0
    # exactly Locust's final totals: anything else means a process's histogram got lost or doubled
    assert count == result["requests"] and result["failures"] == 0
    # the stats CSV is a snapshot taken every second, not at exit: it may miss the last second
    assert count - (1.5 * result["rps"] + USERS) <= csv_count <= count, (csv_count, count)
    # one run: the window opens when the warmup is over, counted from the test's start
    assert result["t_begin"] + WARMUP_S <= result["t_start"] < result["t_begin"] + WARMUP_S + 1.0, result
    # and the locustfile stopped Locust when the window was over, long before --run-time would
    window = result["t_stop"] - result["t_start"]
    assert DURATION_S - 0.1 <= window <= DURATION_S + 0.5, window
    # and only it is counted: Little's law, USERS always busy with 50 ms requests, within 30 %
    expected = USERS * window / 0.050
    assert 0.7 * expected <= count <= 1.1 * expected, (count, expected)
    p50_ms = hist.get_value_at_percentile(50) / 1000
    assert 50 <= p50_ms < 150, p50_ms
    # the processes that ran users timed their own event loop, every 20 ms
    lag = HdrHistogram.decode(result["lag_hdr"])
    assert lag.get_total_count() >= window / 0.020 * 0.5, lag.get_total_count()


@pytest.mark.e2e
def test_standalone(app_target: Server, tmp_path: Path) -> None:
    _, result, csv_count = run_load(spec(app_target.url), tmp_path)
    check(result, csv_count, "local")
    # the warmup's requests were counted, then reset: 1.5 s of 100 req/s, less the 1 s ramp
    assert result["warmup_requests"] >= 0.5 * USERS * (WARMUP_S - 1) / 0.050, result["warmup_requests"]
    assert (tmp_path / "measure.html").exists()


@pytest.mark.e2e
def test_processes_merge(app_target: Server, tmp_path: Path) -> None:
    load = spec(app_target.url, processes=2)
    assert "--processes" in master_argv(load, str(tmp_path))
    _, result, csv_count = run_load(load, tmp_path)
    check(result, csv_count, "master")


@pytest.mark.e2e
def test_master_and_workers_merge(app_target: Server, tmp_path: Path) -> None:
    load = spec(app_target.url, workers=2)
    _, result, csv_count = run_load(load, tmp_path)
    check(result, csv_count, "master")


@pytest.mark.e2e
@pytest.mark.parametrize("arrivals", ["constant", "poisson"])
def test_open_loop_workers_split_the_rate_and_the_master_adds_their_counts(
        app_target: Server, tmp_path: Path, arrivals: str) -> None:
    rate = 200.0  # in all: 100/s from each of two workers, one scheduling user each
    load = dataclasses.replace(spec(app_target.url, workers=2), users=2, load_model="open",
                               rate_per_user=rate / 2, arrivals=arrivals, inflight_per_user=50)
    _, result, _ = run_load(load, tmp_path)
    window = result["t_stop"] - result["t_start"]
    counts = result["open"]
    # what both workers had due in the window, merged by the master (a Poisson count: sd ~ 25)
    assert 0.75 * rate * window <= counts["offered"] <= 1.25 * rate * window, (counts, window)
    assert counts["sent"] + counts["dropped"] == counts["offered"] and counts["dropped"] == 0
    # every response counted once: the histogram, Locust's totals; a 50 ms endpoint keeps up
    assert HdrHistogram.decode(result["hdr"]).get_total_count() == result["requests"]
    assert result["requests"] >= 0.9 * counts["sent"] - 0.1 * rate, (result["requests"], counts)
    late = HdrHistogram.decode(result["late_hdr"])
    assert late.get_total_count() == counts["sent"]  # every send's lateness, from both workers
    p50_ms = HdrHistogram.decode(result["hdr"]).get_value_at_percentile(50) / 1000
    assert 50 <= p50_ms < 150, p50_ms  # from the due time: the sleep, and little else


