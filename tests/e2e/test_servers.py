"""The four servers through the whole chain on the local backend: real targets, a real Locust, real
CSVs. Shapes with wide margins only (2 noisy cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.serve import SERVERS
from bench.results.rundir import RunDir
from tests.runs import bench, run_dir_of, scenario
from tests.servers import free_port

pytestmark = pytest.mark.e2e


def test_a_smoke_matrix_over_the_four_servers_is_all_ok_and_each_names_itself(tmp_path: Path) -> None:
    body = ('duration = 2\nwarmup = 1\nusers = 4\n'
            f'[matrix]\nserver = {json.dumps(list(SERVERS))}\nstyle = ["def", "async"]\n')
    proc = bench("run", scenario(tmp_path, body, free_port()), "--backend", "local", "--out", str(tmp_path / "r"),
                 "--no-report")
    assert proc.returncode == 0, proc.stderr
    run_dir = run_dir_of(proc)
    rows = RunDir(run_dir).rows()
    assert sorted((r.server, r.style) for r in rows) == sorted((s, st) for s in SERVERS for st in ("def", "async"))
    for row in rows:
        assert row.status == "ok" and row.requests > 0 and row.failures == 0, row
        # measured the same way under each: CPU and memory of all its processes, the in-worker sampler
        assert row.target_cpu_pct > 0 and row.target_rss_mb > 0 and row.loop_lag_p99_ms >= 0, row
        assert row.threadpool_busy_max >= (1 if row.style == "def" else 0), row
        info = json.loads((run_dir / "cells" / row.cell_id / "r1" / "target_info.json").read_text())
        assert info["server"] == row.server and info["server_version"], info
        assert info["loop"] == "uvloop.Loop", "auto is uvloop for every server when it is installed"
    env = json.loads((run_dir / "env.json").read_text())
    assert {"granian", "hypercorn", "gunicorn", "uvicorn"} <= set(env["packages"]), "versions on record"


def test_def_queues_behind_the_threadpool_and_async_does_not_under_uvicorn_granian_and_hypercorn(tmp_path: Path) -> None:
    # users = 2 x tokens: half the def requests wait a whole sleep for a thread -> p50 ~ 2 x sleep.
    # Granian's and Hypercorn's own threads change nothing here: a def endpoint runs in anyio's pool.
    # Seen from inside the target too: every token busy, requests waiting for one; none under async.
    body = ('duration = 3\nwarmup = 1\nusers = 8\nthreadpool_tokens = 4\nsleep_ms = 200\nworkload = "sleep"\n'
            '[matrix]\nserver = ["uvicorn", "granian", "hypercorn"]\nstyle = ["def", "async"]\n')
    proc = bench("run", scenario(tmp_path, body, free_port()), "--backend", "local", "--out", str(tmp_path / "r"),
                 "--no-report")
    assert proc.returncode == 0, proc.stderr
    rows = {(r.server, r.style): r for r in RunDir(run_dir_of(proc)).rows()}
    for server in ("uvicorn", "granian", "hypercorn"):
        queued, direct = rows[server, "def"], rows[server, "async"]
        assert queued.p50_ms >= 1.8 * 200, queued
        assert direct.p50_ms < 1.3 * 200, direct
        assert queued.threadpool_busy_max == 4 and queued.threadpool_waiting_max >= 2, queued
        assert direct.threadpool_waiting_max == 0, direct
