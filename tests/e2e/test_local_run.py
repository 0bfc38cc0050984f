"""End to end on the local backend: real target processes, a real Locust, real CSVs.

Shapes with wide margins only (2 noisy cores): a 2x queueing effect, never a tight timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.results.row import SummaryRow
from bench.results.rundir import RunDir
from bench.run.attribution import PARTS
from bench.run.procs import port_in_use
from bench.scenario.cpuset import host_cpus, parse, split
from tests.runs import bench, run_dir_of, scenario
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def row_shares(row: SummaryRow) -> dict[str, float]:
    return {part: getattr(row, f"cpu_{part}_pct") for part in PARTS}


def ctrl_c_on() -> None:
    """SIGINT as a terminal's Ctrl-C: a suite started in the background of a non-interactive shell
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_tiny_matrix_all_ok_with_precise_latencies_and_report(tmp_path: Path) -> None:
    # every cell profiled (at 100 Hz: enough samples in 2 s; docs/profiling.md says what it costs)
    body = ('duration = 2\nwarmup = 1\nusers = 5\nsleep_ms = 20\ncpu_iterations = 100000\nprofile = "cpu"\n'
            'profile_rate = 100\n[matrix]\nworkload = ["noop", "sleep", "cpu"]\nstyle = ["def", "async"]\n')
    proc = bench("run", scenario(tmp_path, body, port := free_port()), "--backend", "local", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    run_dir = run_dir_of(proc)
    rows = RunDir(run_dir).rows()
    assert len(rows) == 6
    target_cpus = split(host_cpus())[0]
    for row in rows:
        assert row.status == "ok" and row.requests > 0 and row.rps > 0, row
        assert row.latency_source == "hdr" and 0 < row.p50_ms <= row.p99_ms <= row.max_ms
        assert row.target_affinity == target_cpus
        assert row.target_cpu_pct > 0 and row.target_rss_mb > 0 and row.loadgen_cpu_pct > 0
        # Locust's capacity: its cost per request, what its CPUs allow over what it did, its loop's lag
        assert row.loadgen_cpu_ms_per_request > 0 and row.loadgen_headroom > 0 and row.loadgen_lag_ms > 0
        assert row.loadgen_processes == min(len(parse(split(host_cpus())[1])), 5)  # "auto": one per Locust CPU
        cell = run_dir / "cells" / row.cell_id / "r1"
        for name in ("measure_stats.csv", "measure_stats_history.csv", "measure.html", "target.log",
                     "target_info.json", "measure_locust.log", "measure_result.json", "measure_window.json",
                     "profile.folded"):
            assert (cell / name).exists(), name
        assert row.profile_samples > 0 and sum(row_shares(row).values()) == pytest.approx(100, abs=0.1)
        assert len(list((cell / "profile").glob("worker-*.log"))) == 1  # one sampler: one worker
        assert (cell.parent / "profile.svg").exists()  # the report's flame graph of the cell's repeats
        assert not list(cell.glob("warmup*")), "one Locust run: the warmup leaves no files of its own"
    sleep_rows = [r for r in rows if r.workload == "sleep"]
    assert all(r.p50_ms >= 20 for r in sleep_rows)
    assert (run_dir / "report.html").exists() and (run_dir / "summary_stats.csv").exists()
    # why, from the profiles: def pays the thread hop on every request, async does not; an async
    # CPU loop is the app's own code (wide margins: 2 noisy cores, a few hundred samples)
    by = {(r.style, r.workload): row_shares(r) for r in rows}
    assert by[("def", "noop")]["hop"] >= 8 and by[("def", "noop")]["hop"] >= 3 * by[("async", "noop")]["hop"], by
    assert by[("async", "cpu")]["app"] >= 60, by
    report = (run_dir / "report.md").read_text()
    assert "## Where the target's CPU went" in report and "The thread hop is" in report
    assert not port_in_use("127.0.0.1", port), "the target is stopped at the end"


def test_interrupt_keeps_rows_and_resume_finishes(tmp_path: Path) -> None:
    body = 'duration = 2\nwarmup = 0\nusers = 2\n[matrix]\nstyle = ["def", "async"]\nworkload = ["noop", "sleep"]\n'
    path = scenario(tmp_path, body, port := free_port())
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", path, "--backend", "local", "--out", str(out),
                             "--no-report"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_on)
    deadline = time.monotonic() + 120
    summary = None
    while time.monotonic() < deadline:
        found = list(out.glob("*/summary.csv"))
        if found and len(RunDir(found[0].parent).rows()) >= 1:
            summary = found[0]
            break
        time.sleep(0.2)
    assert summary is not None, "no row within 2 minutes"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    kept = RunDir(summary.parent).rows()
    assert 1 <= len(kept) < 4 and all(r.status == "ok" for r in kept)
    assert not port_in_use("127.0.0.1", port), "Ctrl-C stops the target"
    resumed = bench("run", "--resume", str(summary.parent), "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    rows = RunDir(summary.parent).rows()
    assert len(rows) == 4 and len({r.cell_id for r in rows}) == 4
    assert [r.cell_id for r in rows[: len(kept)]] == [r.cell_id for r in kept], "kept rows untouched"


def test_target_url_loads_a_running_target_and_a_taken_port_is_refused(tmp_path: Path) -> None:
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "bench", "serve", "smoke", "--set", f"port={port}",
                              "--set", "threadpool_tokens=9"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True, preexec_fn=ctrl_c_on)
    try:
        line = serve.stdout.readline() if serve.stdout else ""
        assert "serving uvicorn" in line, line
        body = 'duration = 2\nwarmup = 0\nusers = 2\n'
        proc = bench("run", scenario(tmp_path, body, port), "--backend", "local", "--out", str(tmp_path / "a"),
                     "--target-url", f"http://127.0.0.1:{port}", "--no-report")
        assert proc.returncode == 0, proc.stderr
        row = RunDir(run_dir_of(proc)).rows()[0]
        assert row.status == "ok" and row.requests > 0 and row.target_affinity == split(host_cpus())[0]
        # the same port for a target of our own: another server answers there, which would be
        # measured instead of ours, so the run refuses before it starts
        proc = bench("run", scenario(tmp_path, body, port), "--backend", "local", "--out", str(tmp_path / "b"),
                     "--no-report")
        assert proc.returncode == 2 and f"port {port} is already in use" in proc.stderr
        assert not (tmp_path / "b").exists()
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(30)


def test_saturated_load_generator_is_flagged_and_an_idle_one_is_not(tmp_path: Path) -> None:
    # one Locust process on one core against a no-op: Locust, not the target, is the limit (a
    # uvicorn worker serves async no-ops about twice as fast as one Locust process sends them,
    # so Locust runs flat out). A 6 s window: a few samples of noise cannot pull the mean under 90 %;
    # the idle one reads well under 50 % in 2 s.
    target, loadgen = split(host_cpus())
    body = ('duration = 6\nwarmup = 1\n'
            f'target_cpuset = "{target}"\nloadgen_cpuset = "{loadgen.split(",")[0].split("-")[0]}"\n'
            '[[matrix]]\nworkload = ["noop"]\nstyle = ["async"]\nusers = [50]\n'
            '[[matrix]]\nworkload = ["sleep"]\nstyle = ["async"]\nusers = [10]\nsleep_ms = [100]\nduration = [2]\n')
    proc = bench("run", scenario(tmp_path, body, free_port()), "--backend", "local", "--out", str(tmp_path / "r"),
                 "--no-report")
    assert proc.returncode == 0, proc.stderr
    rows = {r.workload: r for r in RunDir(run_dir_of(proc)).rows()}
    assert rows["noop"].loadgen_saturated and rows["noop"].loadgen_cpu_pct >= 80, rows["noop"]
    assert not rows["sleep"].loadgen_saturated and rows["sleep"].loadgen_cpu_pct < 50, rows["sleep"]
    assert rows["noop"].loadgen_headroom < 1.25 < 3 < rows["sleep"].loadgen_headroom
    assert "Locust was the bottleneck" in proc.stderr
    assert f"{rows['noop'].cell_id}: Locust had 1 CPU(s)" in proc.stderr, proc.stderr


def test_a_starved_locust_is_flagged_by_its_event_loop_lag(tmp_path: Path) -> None:
    """Three busy loops share Locust's one CPU: its CPU use stays far from a core, yet its loop wakes
    late and the row is flagged (measured: mean lag 0.4 ms alone, 2.2-2.8 ms beside three busy loops,
    against 1 ms no-op requests; the limit is 1 ms)."""
    target, loadgen = split(host_cpus())
    one = loadgen.split(",")[0].split("-")[0]
    body = ('duration = 4\nwarmup = 1\n'
            f'target_cpuset = "{target}"\nloadgen_cpuset = "{one}"\n'
            'workload = "noop"\nstyle = "async"\nusers = 10\n')
    # each in a session of its own: the kernel's autogroup shares a CPU between sessions first, so
    # three hogs of pytest's session would leave Locust's (a session of its own) half the CPU, not
    # a quarter (CI measured Locust at 63 % that way)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True,
                             preexec_fn=lambda: os.sched_setaffinity(0, {int(one)})) for _ in range(3)]
    try:
        proc = bench("run", scenario(tmp_path, body, free_port()), "--backend", "local", "--out",
                     str(tmp_path / "r"), "--no-report")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert proc.returncode == 0, proc.stderr
    [row] = RunDir(run_dir_of(proc)).rows()
    assert row.loadgen_cpu_pct < 60, row  # the CPU signal alone would miss it
    assert row.loadgen_saturated and row.loadgen_lag_ms >= 1.0, row
    assert f"{row.cell_id}: Locust had 1 CPU(s)" in proc.stderr and "its event loop woke" in proc.stderr, proc.stderr
