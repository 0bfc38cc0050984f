"""The Docker Compose backend for real: images, pinned containers, distributed Locust.

Skipped where no engine answers, but required in CI (CI set): there they fail instead, since
.ci/run brings an engine up and a silent skip would hide a broken stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.backends.docker import docker_available
from bench.rundir import RunDir

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.docker, pytest.mark.e2e]


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    if docker_available():
        return
    if os.environ.get("CI"):
        pytest.fail("CI is set but no Docker engine with Compose v2 answers (scripts/docker-up.sh)")
    pytest.skip("no Docker engine with Compose v2")


def bench(*args: str, cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess[str], Path]:
    proc = subprocess.run([sys.executable, "-m", "bench", "run", *args, "--backend", "docker", "--no-report"],
                          cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = proc.stdout.strip().splitlines()
    return proc, cwd / lines[-1] if lines else ROOT


def test_smoke_through_compose_pinned_where_asked(tmp_path: Path) -> None:
    # a relative --out, as `make bench` passes it: Compose must get absolute bind-mount paths
    proc, run_dir = bench("smoke", "--out", "results", "--set", "port=18601", "duration=3", "warmup=1",
                          "target_cpuset=1", "loadgen_cpuset=0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = RunDir(run_dir).rows()
    assert len(rows) == 4
    for row in rows:
        assert row.status == "ok" and row.requests > 0 and row.backend == "docker", row
        assert row.target_affinity == "1", "the affinity seen inside the container is the cpuset asked for"
        assert row.latency_source == "hdr" and row.target_cpu_pct > 0
        info = json.loads((run_dir / "cells" / row.cell_id / "r1" / "target_info.json").read_text())
        assert info["cpu_affinity"] == [1] and info["pid"] == 1, "the server runs as the container's process"
    env = json.loads((run_dir / "env.json").read_text())
    assert env["backend_meta"]["docker_engine"] and env["backend_meta"]["images"]["target"].startswith("sha256:")


def test_distributed_locust_two_workers(tmp_path: Path) -> None:
    proc, run_dir = bench("smoke", "--out", str(tmp_path), "--set", "port=18602", "duration=3", "warmup=0",
                          "workload=noop", "style=async", "loadgen_workers=2")
    assert proc.returncode == 0, proc.stderr
    [row] = RunDir(run_dir).rows()
    assert row.status == "ok" and row.requests > 0 and row.loadgen_workers == 2
    result = json.loads((run_dir / "cells" / row.cell_id / "r1" / "measure_result.json").read_text())
    assert result["role"] == "master" and result["count"] == row.requests, "HDR merged across workers"


def test_broken_target_fails_its_cell_with_the_container_log_and_the_run_goes_on(tmp_path: Path) -> None:
    # port 81 needs a privilege the unprivileged, capability-less container lacks
    proc, run_dir = bench("smoke", "--out", str(tmp_path), "--set", "port=81,18603", "duration=2", "warmup=0",
                          "workload=noop", "style=async")
    assert proc.returncode == 1, proc.stderr
    rows = {r.cell_id.split("-")[-1]: r for r in RunDir(run_dir).rows()}
    assert rows["port81"].status == "failed" and "permission denied" in rows["port81"].error.lower()
    assert rows["port18603"].status == "ok" and rows["port18603"].requests > 0
    leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=fastapi-bench"],
                               capture_output=True, text=True, timeout=30).stdout.split()
    assert not leftovers, "compose down runs at the end"
