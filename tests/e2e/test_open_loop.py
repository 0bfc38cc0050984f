"""End to end, open loop: a real target, a real Locust sending on a schedule, real CSVs.

A def endpoint that sleeps 100 ms on one worker with 40 threadpool tokens serves at most
40 / 0.1 s = 400 requests/s (Little's law). Offered 250/s it keeps up; offered 600/s its queue
grows all through the window, and the latencies, counted from each request's due time, grow with
it. A closed loop at twice the tokens never shows that: it waits for the target. Margins are
shapes (2x and more), not timings.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench.results.rundir import RunDir
from tests.runs import bench, run_dir_of, scenario
from tests.servers import free_port

pytestmark = pytest.mark.e2e
SLEEP_MS = 100.0


def test_open_loop_shows_the_queue_a_closed_loop_hides(tmp_path: Path) -> None:
    body = ('duration = 2\nwarmup = 1\nworkload = "sleep"\nsleep_ms = 100\nthreadpool_tokens = 40\n'
            '[[matrix]]\nstyle = ["def"]\nusers = [80]\n'
            '[[matrix]]\nload_model = ["open"]\nstyle = ["def"]\nrate = [250, 600]\n'
            '[[matrix]]\nload_model = ["open"]\nstyle = ["async"]\nrate = [600]\n')
    proc = bench("run", scenario(tmp_path, body, free_port()), "--backend", "local", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    rows = {r.cell_id.split("-uvicorn")[0]: r for r in RunDir(run_dir_of(proc)).rows()}
    closed, slow, over, fast = rows["def-sleep-u80"], rows["def-sleep-r250"], rows["def-sleep-r600"], rows[
        "async-sleep-r600"]
    for r in (slow, over, fast):
        assert r.status == "ok" and r.load_model == "open" and r.latency_from == "intended", r
        assert r.offered_rps == pytest.approx(r.rate, rel=0.1)  # the schedule was kept
    assert closed.latency_from == "sent" and closed.offered_rps == 0 and closed.achieved_rps == closed.rps
    # under capacity: the latency is the sleep, nothing waits, nothing is dropped
    assert slow.p99_ms < 2 * SLEEP_MS and slow.achieved_rps >= 0.95 * 250 and slow.dropped == 0
    assert fast.p99_ms < 2 * SLEEP_MS and fast.achieved_rps >= 0.95 * 600 and fast.dropped == 0
    # over capacity: def serves about its 400/s, and the queue grows all through the window
    assert 300 <= over.achieved_rps <= 480, over
    assert over.p99_ms >= 5 * SLEEP_MS and over.threadpool_waiting_max > 100, over
    # the closed loop at twice the tokens queues too, but it waits for the target: its p99 stays near
    # two sleeps, well under what the open loop at 600/s sees
    assert closed.p99_ms < 4 * SLEEP_MS and over.p99_ms >= 2 * closed.p99_ms


def test_capacity_finds_the_threadpool_limit_of_def_and_more_for_async(tmp_path: Path) -> None:
    # 4 tokens / 50 ms = 80 requests/s for def; async has no such limit below max_rps
    body = ('workload = "sleep"\nsleep_ms = 50\nthreadpool_tokens = 4\n[matrix]\nstyle = ["def", "async"]\n'
            '[capacity]\nslo_p99_ms = 150\nstart_rps = 40\nmax_rps = 320\nstep_s = 1.5\nstep_warmup_s = 1\n')
    proc = bench("capacity", scenario(tmp_path, body, free_port()), "--backend", "local", "--out",
                 str(tmp_path / "r"), timeout=400)
    assert proc.returncode == 0, proc.stderr
    run_dir = run_dir_of(proc)
    with (run_dir / "capacity.csv").open() as fh:
        results = {r["style"]: r for r in csv.DictReader(fh)}
    def_cap, async_cap = float(results["def"]["capacity_rps"]), float(results["async"]["capacity_rps"])
    assert 40 <= def_cap <= 88, results["def"]  # near 80, never above it (+10 % for the window's noise)
    assert results["def"]["stopped_by"] == "converged"
    assert async_cap >= 3 * def_cap, results["async"]
    assert (run_dir / "report" / "capacity.png").exists()
    assert "capacity within p99 150 ms: async / def" in (run_dir / "report.md").read_text()
