"""The Docker Compose backend for real: images, pinned containers, distributed Locust, and the
docs/docker.md's by-hand `docker compose up` from a folder where nothing exists yet.

Skipped where no engine answers or the images cannot be built (a host that cannot pull the base
image, say), with that reason; required in CI (CI set): there they fail instead, since .ci/run
brings an engine up and builds the base image, and a silent skip would hide a broken stack.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results.rundir import RunDir
from bench.run.backends.compose import IMAGE_UID, build_failed, docker_available
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.docker, pytest.mark.e2e]


def unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, and {why}")
    pytest.skip(why)


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    if not docker_available():
        unavailable("no Docker engine with Compose v2 answers (scripts/docker-up.sh)")
    # the images, as `make images` builds them (quick when cached); Compose 2.40 exits 0 on a
    # failed build, so its output is read (bench.run.backends.docker.build_failed)
    proc = subprocess.run(["docker", "compose", "build", "target", "loadgen"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200)
    why = build_failed(proc)
    if why:
        unavailable(f"the images do not build here (BASE_IMAGE={os.environ.get('BASE_IMAGE', 'python:3.12-slim')}): "
                    f"{why}")


def bench(*args: str, cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess[str], Path]:
    proc = subprocess.run([sys.executable, "-m", "bench", "run", *args, "--backend", "docker", "--no-report"],
                          cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = proc.stdout.strip().splitlines()
    return proc, cwd / lines[-1] if lines else ROOT


def world_writable(root: Path) -> list[Path]:
    return [p for p in (root, *root.rglob("*")) if p.stat().st_mode & stat.S_IWOTH]


def test_smoke_through_compose_pinned_where_asked_in_folders_of_the_container_user(tmp_path: Path) -> None:
    # a relative --out, as `make bench` passes it: Compose must get absolute bind-mount paths
    proc, run_dir = bench("smoke", "--out", "results", "--set", "port=18601", "--set", "duration=2",
                          "--set", "warmup=1", "--set", "target_cpuset=1", "--set", "loadgen_cpuset=0", cwd=tmp_path)
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
    # what the containers wrote belongs to their unprivileged user, and nobody else may write it
    assert not world_writable(run_dir)
    cell = run_dir / "cells" / rows[0].cell_id / "r1"
    owner = IMAGE_UID if os.geteuid() == 0 else os.getuid()  # never root inside a container
    assert cell.stat().st_uid == owner and (cell / "measure_stats.csv").stat().st_uid == owner


def test_distributed_locust_two_workers_against_gunicorn(tmp_path: Path) -> None:
    # gunicorn with two workers on the read-only root: nothing of it may need to write there
    # and each worker pinned to its own CPU from inside the container (worker_pinning = core)
    proc, run_dir = bench("smoke", "--out", str(tmp_path), "--set", "port=18602", "--set", "duration=3",
                          "--set", "warmup=1.5", "--set", "workload=noop", "--set", "style=async",
                          "--set", "loadgen_workers=2", "--set", "server=gunicorn", "--set", "workers=2",
                          "--set", "worker_pinning=core", "--set", "target_cpuset=0-1", "--set", "loadgen_cpuset=0-1")
    assert proc.returncode == 0, proc.stderr
    [row] = RunDir(run_dir).rows()
    assert row.status == "ok" and row.requests > 0 and row.loadgen_workers == 2 and row.server == "gunicorn"
    result = json.loads((run_dir / "cells" / row.cell_id / "r1" / "measure_result.json").read_text())
    assert result["role"] == "master" and result["count"] == row.requests, "HDR merged across workers"
    assert result["t_start"] >= result["t_begin"] + 1.5, "the window opened after the warmup, in the same run"
    assert row.target_affinity == "0/1" and row.loadgen_headroom > 0
    info = json.loads((run_dir / "cells" / row.cell_id / "r1" / "target_info.json").read_text())
    assert sorted(w["cpus"] for w in info["worker_affinity"]) == [[0], [1]]


def test_granian_and_hypercorn_in_the_target_image_each_worker_pinned(tmp_path: Path) -> None:
    # both on the read-only root with two workers (Hypercorn's spawned workers and Granian's Rust
    # runtime alike), each worker on its own CPU from inside the container, named in /info
    proc, run_dir = bench("smoke", "--out", str(tmp_path), "--set", "port=18606", "--set", "duration=3",
                          "--set", "warmup=1", "--set", "workload=noop", "--set", "style=def",
                          "--set", "server=granian,hypercorn", "--set", "workers=2", "--set", "worker_pinning=core",
                          "--set", "target_cpuset=0-1", "--set", "loadgen_cpuset=0-1", "--set", "loadgen_processes=1",
                          "--set", "profile=cpu", "--set", "profile_rate=50")
    assert proc.returncode == 0, proc.stderr
    rows = RunDir(run_dir).rows()
    assert sorted(r.server for r in rows) == ["granian", "hypercorn"]
    for row in rows:
        assert row.status == "ok" and row.requests > 0 and row.failures == 0 and row.target_affinity == "0/1", row
        assert row.threadpool_busy_max >= 1 and row.target_cpu_pct > 0, "sampled inside, measured outside"
        info = json.loads((run_dir / "cells" / row.cell_id / "r1" / "target_info.json").read_text())
        assert info["server"] == row.server and info["server_version"] and info["loop"] == "uvloop.Loop", info
        assert sorted(w["cpus"] for w in info["worker_affinity"]) == [[0], [1]]
        # py-spy on this host read both workers inside the container (their host pids), images untouched
        logs = list((run_dir / "cells" / row.cell_id / "r1" / "profile").glob("worker-*.log"))
        assert len(logs) == 2 and all("Sampling process" in log.read_text() for log in logs), logs
        assert row.profile_samples > 0 and row.cpu_framework_pct > 0, row


def test_broken_target_fails_its_cell_with_the_container_log_and_the_run_goes_on(tmp_path: Path) -> None:
    # port 81 needs a privilege the unprivileged, capability-less container lacks
    proc, run_dir = bench("smoke", "--out", str(tmp_path), "--set", "port=81,18603", "--set", "duration=2",
                          "--set", "warmup=0", "--set", "workload=noop", "--set", "style=async")
    assert proc.returncode == 1, proc.stderr
    rows = {r.cell_id.split("-")[-1]: r for r in RunDir(run_dir).rows()}
    assert rows["port81"].status == "failed" and "permission denied" in rows["port81"].error.lower()
    assert rows["port18603"].status == "ok" and rows["port18603"].requests > 0
    leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=fastapi-bench"],
                               capture_output=True, text=True, timeout=30).stdout.split()
    assert not leftovers, "compose down runs at the end"


def test_real_io_through_the_db_and_upstream_services(tmp_path: Path) -> None:
    """PostgreSQL and the upstream stub as Compose services (Debian's package on the base image,
    nothing pulled): the pool limits def as on the local backend, and both services go at the end."""
    scen = tmp_path / "io.toml"
    scen.write_text('name = "io"\n[defaults]\nport = 18605\nduration = 4\nwarmup = 2\ndb_sleep_ms = 50\n'
                    'upstream_delay_ms = 50\n[[matrix]]\nworkload = ["db"]\nstyle = ["def"]\nusers = [40]\n'
                    '[[matrix]]\nworkload = ["http"]\nstyle = ["async"]\nusers = [10]\n')
    proc, run_dir = bench(str(scen), "--out", str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stderr
    rows = {r.workload: r for r in RunDir(run_dir).rows()}
    db, http = rows["db"], rows["http"]
    # pool 10, 50 ms per query: 10 / 0.05 = 200 req/s; 10 users on a 50 ms upstream: 200 req/s
    assert db.status == "ok" and 140 <= db.rps <= 260 and db.db_pool_waiting_max > 0, db
    assert http.status == "ok" and 140 <= http.rps <= 260, http
    info = json.loads((run_dir / "cells" / db.cell_id / "r1" / "target_info.json").read_text())
    assert info["db_pool_size"] == 10 and info["postgresql"].startswith(RunDir(run_dir).env()["services"]["postgresql"])
    assert (run_dir / "services" / "postgres.log").read_text().count("listening on IPv4 address \"127.0.0.1\"") == 1
    leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=fastapi-bench"],
                               capture_output=True, text=True, timeout=30).stdout.split()
    assert not leftovers, "the db and upstream services stop with the run"


def test_compose_up_by_hand_from_a_fresh_folder(tmp_path: Path) -> None:
    # docs/docker.md's command, with nothing made beforehand: Docker creates the missing bind folders
    # as root, which the unprivileged Locust could not write into before the `volumes` service
    # gave them to it. compose.yaml and .env.example (as .env, the target's settings: docs/docker.md's
    # `cp .env.example .env`) alone in a fresh folder: ./results/compose is relative to it.
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_UID", "BENCH_GID", "OUT_DIR", "STATS_DIR")}
    env.update(BENCH_PORT=str(free_port()), RUN_TIME="3s", USERS="5", TARGET_CPUSET="0", LOADGEN_CPUSET="1")
    compose = ["docker", "compose", "-f", str(tmp_path / "compose.yaml"), "-p", "fastapi-bench-byhand"]
    try:
        proc = subprocess.run([*compose, "up", "--exit-code-from", "loadgen"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run([*compose, "down", "-t", "5"], cwd=tmp_path, env=env, capture_output=True, timeout=120)
    out = tmp_path / "results" / "compose"
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    with (out / "measure_stats.csv").open(newline="") as fh:
        total = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    # Locust waited for the target (BENCH_WAIT_READY_S) instead of failing its first requests
    assert int(total["Request Count"]) > 0 and int(total["Failure Count"]) == 0, total
    assert json.loads((out / "measure_result.json").read_text())["count"] > 0
    assert (out / "stats").is_dir() and not world_writable(out)


SHOP_IMAGE = "fastapi-bench-test-shop:local"


def test_a_teams_own_image_runs_under_the_agents_layer_with_its_database(tmp_path: Path) -> None:
    """target_image: a team's image (here: examples/shop on the target image's Python, started by
    its own ENTRYPOINT) under the agent's thin layer, with the run's PostgreSQL (the db service)
    made from its SQL and handed to it in SHOP_DATABASE_URL. `stock`'s sync 5 ms query waits in the
    threadpool as written (8 connections) and blocks the loop on_loop: 8x, asked to be 3x. The
    team's image is neither pulled nor rebuilt."""
    context = tmp_path / "image"
    shutil.copytree(ROOT / "examples" / "shop" / "shop", context / "shop")
    (context / "Dockerfile").write_text('FROM fastapi-bench-target:local\nWORKDIR /app\nCOPY shop /app/shop\n'
                                        'ENTRYPOINT ["uvicorn", "shop.main:app"]\n')
    built = subprocess.run(["docker", "build", "-q", "-t", SHOP_IMAGE, str(context)], capture_output=True,
                           text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    before = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", SHOP_IMAGE], capture_output=True,
                            text=True, timeout=30).stdout.strip()
    text = (ROOT / "examples" / "shop" / "db.toml").read_text()
    head = text[:text.index("[defaults]")].replace('app = "shop.main:app"',
                                                   f'app = "shop.main:app"\ntarget_image = "{SHOP_IMAGE}"')
    for name in ("schema.sql", "seed.sql"):
        head = head.replace(f'"{name}"', f'"{ROOT / "examples" / "shop" / name}"')
    scen = tmp_path / "shop.toml"
    scen.write_text(head + f"[defaults]\nport = {free_port()}\nusers = 20\nduration = 1.5\nwarmup = 0.5\n"
                    'spawn_rate = 500\n[matrix]\nendpoint = ["stock"]\nstyle = ["as_written", "on_loop"]\n')
    proc, run_dir = bench(str(scen), "--out", str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stderr
    rows = {r.style: r for r in RunDir(run_dir).rows()}
    assert all(r.status == "ok" and r.requests > 0 and r.failures == 0 for r in rows.values()), rows
    assert rows["on_loop"].rps * 3 < rows["as_written"].rps, (rows["as_written"].rps, rows["on_loop"].rps)
    assert rows["on_loop"].loop_lag_p99_ms > 3 * rows["as_written"].loop_lag_p99_ms
    meta = json.loads((run_dir / "env.json").read_text())["backend_meta"]
    assert meta["target_image"] == SHOP_IMAGE and meta["images"]["app"] == before
    assert meta["app"]["target_image"] == SHOP_IMAGE and meta["app"]["packages"]["fastapi"]
    info = json.loads((run_dir / "cells" / rows["on_loop"].cell_id / "r1" / "target_info.json").read_text())
    assert info["app"] == "shop.main:app" and info["style"] == "on_loop" and info["pid"] == 1
    after = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", SHOP_IMAGE], capture_output=True,
                           text=True, timeout=30).stdout.strip()
    assert after == before, "the team's image is never rebuilt"

    # an image this engine does not have: one line, exit 2, before anything starts
    scen.write_text(scen.read_text().replace(SHOP_IMAGE, "fastapi-bench-test-nosuch:1"))
    proc, _ = bench(str(scen), "--out", str(tmp_path / "r2"))
    assert proc.returncode == 2 and not (tmp_path / "r2").exists(), proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "no such image on this Docker engine" in line and "never pulls" in line, line
