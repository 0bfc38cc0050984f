"""The four servers through the whole chain on the local backend: real targets, a real Locust, real
CSVs. Shapes with wide margins only (2 noisy cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.results.rundir import RunDir
from benchagent.serve import SERVERS
from tests.runs import bench, run_dir_of, scenario
from tests.servers import free_port

pytestmark = pytest.mark.e2e


def test_each_server_runs_def_and_async_measured_alike_and_worker_pinning_core_pins_each_worker(
        tmp_path: Path) -> None:
    """One matrix over the four servers, two workers each on CPUs 0-1: `def` with `set` (both float
    over the two), `async` with `core` (worker i pinned to CPU i, from inside the worker); /info
    reports every worker and the runner checks them all. Each cell is also the servers' smoke test:
    measured the same way under each (CPU and memory of all its processes, the in-worker sampler)."""
    body = ('duration = 1\nwarmup = 0.25\nusers = 4\nworkers = 2\nworkload = "sleep"\nsleep_ms = 10\n'
            # one Locust process: two would cost 2 s a cell to connect and stop (tests/e2e/test_locustfile.py
            # has --processes)
            'target_cpuset = "0-1"\nloadgen_cpuset = "0-1"\nloadgen_processes = 1\n'
            # py-spy on every worker of every server (Granian's Python workers too)
            'profile = "cpu"\nprofile_rate = 100\n'
            f'[[matrix]]\nserver = {json.dumps(list(SERVERS))}\nstyle = ["def"]\nworker_pinning = ["set"]\n'
            f'[[matrix]]\nserver = {json.dumps(list(SERVERS))}\nstyle = ["async"]\nworker_pinning = ["core"]\n')
    proc = bench("run", scenario(tmp_path, body, free_port()), "--backend", "local", "--out", str(tmp_path / "r"),
                 "--no-report")
    assert proc.returncode == 0, proc.stderr
    run_dir = run_dir_of(proc)
    rows = {(r.server, r.style): r for r in RunDir(run_dir).rows()}
    assert sorted(rows) == sorted((s, st) for s in SERVERS for st in ("def", "async"))
    for (server, style), row in rows.items():
        mode = {"def": "set", "async": "core"}[style]
        assert row.status == "ok" and row.requests > 0 and row.failures == 0 and row.worker_pinning == mode, row
        assert row.target_cpu_pct > 0 and row.target_rss_mb > 0 and row.loop_lag_p99_ms >= 0, row
        assert row.threadpool_busy_max >= (1 if style == "def" else 0), row
        assert row.target_affinity == {"set": "0-1", "core": "0/1"}[mode], row
        info = json.loads((run_dir / "cells" / row.cell_id / "r1" / "target_info.json").read_text())
        assert info["server"] == server and info["server_version"] and info["worker_pinning"] == mode, info
        assert info["loop"] == "uvloop.Loop", "auto is uvloop for every server when it is installed"
        workers = info["worker_affinity"]
        assert len({w["pid"] for w in workers}) == 2, workers
        assert sorted(w["cpus"] for w in workers) == {"set": [[0, 1], [0, 1]], "core": [[0], [1]]}[mode], workers
        logs = sorted((run_dir / "cells" / row.cell_id / "r1" / "profile").glob("worker-*.log"))
        assert [log.name for log in logs] == sorted(f"worker-{w['pid']}.log" for w in workers), logs
        assert all("Sampling process" in log.read_text() for log in logs), [log.read_text() for log in logs]
        assert row.profile_samples > 0 and row.cpu_app_pct + row.cpu_framework_pct + row.cpu_server_pct > 0, row
    env = json.loads((run_dir / "env.json").read_text())
    assert {"granian", "hypercorn", "gunicorn", "uvicorn"} <= set(env["packages"]), "versions on record"


def test_def_queues_behind_the_threadpool_and_async_does_not_under_uvicorn_granian_and_hypercorn(tmp_path: Path) -> None:
    # users = 2 x tokens: half the def requests wait a whole sleep for a thread -> p50 ~ 2 x sleep.
    # Granian's and Hypercorn's own threads change nothing here: a def endpoint runs in anyio's pool.
    # Seen from inside the target too: every token busy, requests waiting for one; none under async.
    sleep = 100
    body = (f'duration = 1.5\nwarmup = 0.5\nusers = 8\nthreadpool_tokens = 4\nsleep_ms = {sleep}\nworkload = "sleep"\n'
            '[matrix]\nserver = ["uvicorn", "granian", "hypercorn"]\nstyle = ["def", "async"]\n')
    proc = bench("run", scenario(tmp_path, body, free_port()), "--backend", "local", "--out", str(tmp_path / "r"),
                 "--no-report")
    assert proc.returncode == 0, proc.stderr
    rows = {(r.server, r.style): r for r in RunDir(run_dir_of(proc)).rows()}
    for server in ("uvicorn", "granian", "hypercorn"):
        queued, direct = rows[server, "def"], rows[server, "async"]
        assert queued.p50_ms >= 1.8 * sleep, queued
        assert direct.p50_ms < 1.3 * sleep, direct
        assert queued.threadpool_busy_max == 4 and queued.threadpool_waiting_max >= 2, queued
        assert direct.threadpool_waiting_max == 0, direct
