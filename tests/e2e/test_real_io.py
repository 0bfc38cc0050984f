"""Real I/O end to end: a real PostgreSQL (started by the runner from the host's package), the real
upstream stub, the real target and a real Locust. Shapes with wide margins (±30 %, 2 noisy cores):
the pool, the threadpool or the blocked loop sets the rate, as the arithmetic says.

Skipped where PostgreSQL is not installed; required in CI (.ci/run installs it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.results.rundir import RunDir
from bench.run import postgres, services
from bench.scenario.matrix import from_dict
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    try:
        postgres.bindir()
    except postgres.ServiceError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, and {exc}")
        pytest.skip(str(exc))


def near(value: float, expected: float, margin: float = 0.3) -> bool:
    return (1 - margin) * expected <= value <= (1 + margin) * expected


SHAPES = """
[defaults]
duration = 2
warmup = 2
db_sleep_ms = 50
upstream_delay_ms = 50
[[matrix]]
workload = ["db"]
style = ["def"]
users = [40]
db_pool_size = [10]
[[matrix]]
workload = ["db"]
style = ["async"]
users = [40]
db_pool_size = [40]
[[matrix]]
workload = ["db_blocking"]
style = ["async"]
users = [10]
[[matrix]]
workload = ["http"]
style = ["def"]
users = [100]
threadpool_tokens = [10]
[[matrix]]
workload = ["http"]
style = ["async"]
users = [10]
[[matrix]]
workload = ["db"]
style = ["def"]
db_dependency = [true]
users = [40]
threadpool_tokens = [10]
db_pool_size = [5]
db_pool_timeout_s = [1]
"""


def test_the_pool_the_threadpool_and_a_blocked_loop_each_set_the_rate(tmp_path: Path) -> None:
    scen = tmp_path / "io.toml"
    scen.write_text(f'name = "io"\n[defaults]\nport = {free_port()}\n' + SHAPES.replace("[defaults]\n", ""))
    proc = subprocess.run([sys.executable, "-m", "bench", "run", str(scen), "--backend", "local", "--out",
                           str(tmp_path / "results"), "--no-report"], cwd=ROOT, capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode in (0, 1) and proc.stdout.strip(), proc.stderr[-2000:]
    run = RunDir(Path(proc.stdout.strip().splitlines()[-1]))
    rows = {r.cell_id.split("-uvicorn")[0]: r for r in run.rows()}
    # def, pool 10, 50 ms per query, 40 users: 10 / 0.05 = 200 req/s, the other 30 wait for a connection
    pool = rows["def-db-u40"]
    assert pool.status == "ok" and near(pool.rps, 200), pool
    assert pool.db_pool_busy_max == 10 and pool.db_pool_waiting_max > 0, "the pool is the limit"
    # async, pool 40 at 40 users: near 40 / 0.05 = 800 (nothing waits for a connection)
    wide = rows["async-db-u40"]
    assert wide.status == "ok" and near(wide.rps, 800), wide
    assert wide.rps > 2.5 * pool.rps
    # judged on the whole run: a pg_sleep query costs PostgreSQL a few 10 µs, so even 800 of them a
    # second over a 2 s window are a handful of /proc's 10 ms ticks spread over 40 backends, and CI
    # read 0.0 for this cell once (0.6 and 10.4 in two runs here); the upstream stub's Python reads
    # 3-4 % in every http cell, and a sampler that missed the services would read 0 in all of them
    assert sum(r.services_cpu_pct for r in rows.values()) > 1, "the services' CPU is measured beside the target's"
    # the sync driver inside async def: one query at a time per worker, 1 / 0.05 = 20 req/s
    blocked = rows["async-db_blocking-u10"]
    assert blocked.status == "ok" and near(blocked.rps, 20), blocked
    assert blocked.loop_lag_p99_ms > 25, "the loop stood still for whole queries"
    # def http, 10 threads, 100 users, 50 ms upstream: 10 / 0.05 = 200, 90 requests queue for a thread
    threads = rows["def-http-u100"]
    assert threads.status == "ok" and near(threads.rps, 200), threads
    assert threads.threadpool_waiting_max > 0
    # async http at 10 users: no thread in the way, 10 / 0.05 = 200
    aio = rows["async-http-u10"]
    assert aio.status == "ok" and near(aio.rps, 200), aio
    assert aio.threadpool_busy_max == 0
    # a def dependency holding a pooled connection, 10 threads, pool 5, 40 users: threads that wait for a
    # connection hold every token, and the requests that have a connection wait for a token to run
    # the endpoint (FastAPI's known deadlock). Only psycopg_pool's timeout (1 s here, 30 s by
    # default) breaks it, with a 500 for the request that waited: most requests fail.
    dead = rows["def-db_dep-u40"]
    assert dead.status == "ok" and dead.failures > 0.5 * dead.requests, dead
    assert "LocustBadStatusCode(code=500)" in dead.error, dead.error
    assert dead.threadpool_busy_max == 10 and dead.threadpool_waiting_max > 0 and dead.db_pool_waiting_max > 0
    env = run.env()
    assert env["services"]["postgresql"].split()[0].count(".") == 1  # e.g. 15.18
    assert env["packages"]["psycopg"] and env["packages"]["httpx"]
    assert (run.path / "services" / "postgres.log").is_file()
    assert (run.path / "services" / "upstream.log").is_file()


def one_db_cell() -> list:
    return from_dict({"defaults": {"workload": "db"}}, {}).cells()


def test_a_taken_port_fails_postgresql_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        local = services.LocalServices(db_port=port)
        with pytest.raises(postgres.ServiceError) as err:
            local.start(services.needs(one_db_cell()))
    message = str(err.value)
    assert "\n" not in message and f"127.0.0.1:{port}" in message
    assert "FATAL:  could not create any TCP/IP sockets" in message, message
    assert local.db is not None and not local.db.alive() and local.db.data is None, "stopped and cleaned up"


def test_a_database_that_dies_is_named_for_the_cells_that_need_it() -> None:
    local = services.LocalServices()
    [cell] = one_db_cell()
    try:
        out = local.start(services.needs([cell]))
        assert out.db_dsn and out.meta["postgresql"]
        assert local.down(cell) == ""
        assert local.db is not None and local.db.proc is not None
        os.kill(local.db.proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while local.db.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert local.down(cell).startswith("PostgreSQL is not running any more")
        [noop] = from_dict({}, {}).cells()
        assert local.down(noop) == "", "a cell without I/O does not care"
    finally:
        local.stop()
    assert local.scratch is None, "its logs and scratch folder go with it"


def test_services_leave_nothing_behind_and_keep_their_logs_only_when_they_ran(tmp_path: Path) -> None:
    idle = services.LocalServices()
    assert idle.start(services.Needs()) == services.Endpoints()
    idle.stop(tmp_path / "idle")
    assert not (tmp_path / "idle").exists(), "no services/ folder for a run that needed none"
    ran = services.LocalServices()
    [cell] = from_dict({"defaults": {"workload": "http"}}, {}).cells()
    out = ran.start(services.needs([cell]))
    scratch = ran.scratch
    assert out.upstream_url and scratch is not None and not out.db_dsn
    ran.stop(tmp_path / "kept")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["upstream.log"]
    assert not scratch.exists() and ran.upstream is None
