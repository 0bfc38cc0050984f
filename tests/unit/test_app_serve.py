"""The target app without a load: its launcher's command lines and its sampler's arithmetic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.scenario.keys import by_hand_env
from benchagent import serve
from benchagent.sampler import aggregate, idle_after, percentile, read_dir
from benchagent.serve import BadSetting
from tests.servers import (
    ROOT,
)


def command(env: dict[str, str]) -> list[str]:
    """The launcher's command over every setting as .env.example has it (it takes no default)."""
    return serve.command({**by_hand_env(), **env})


# ---------------------------------------------------------------- command()

def test_command_uvicorn_defaults() -> None:
    argv = command({})
    assert argv[:4] == [sys.executable, "-m", "uvicorn", "benchagent.asgi:app"]
    flags = argv[4:]
    for flag, value in (("--host", "127.0.0.1"), ("--port", "8000"), ("--workers", "1"), ("--loop", "auto"),
                        ("--http", "auto"), ("--log-level", "warning")):
        assert flags[flags.index(flag) + 1] == value
    assert "--no-access-log" in flags
    assert int(flags[flags.index("--timeout-graceful-shutdown") + 1]) <= 5


def test_command_uvicorn_settings() -> None:
    argv = command({"BENCH_WORKERS": "4", "BENCH_PORT": "9001", "BENCH_BIND": "0.0.0.0", "BENCH_LOOP": "asyncio",
                    "BENCH_HTTP": "h11"})
    assert argv[argv.index("--workers") + 1] == "4"
    assert argv[argv.index("--port") + 1] == "9001"
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--loop") + 1] == "asyncio"
    assert argv[argv.index("--http") + 1] == "h11"


def test_command_gunicorn() -> None:
    argv = command({"BENCH_SERVER": "gunicorn", "BENCH_WORKERS": "3", "BENCH_PORT": "9002", "BENCH_LOOP": "asyncio"})
    assert argv[:4] == [sys.executable, "-m", "gunicorn", "benchagent.asgi:app"]
    assert argv[argv.index("-k") + 1] == "benchagent.gunicorn_worker.Worker"
    assert argv[argv.index("-w") + 1] == "3"
    assert argv[argv.index("-b") + 1] == "127.0.0.1:9002"
    assert argv[argv.index("--log-level") + 1] == "warning"
    assert int(argv[argv.index("--graceful-timeout") + 1]) <= 5
    assert argv[argv.index("--timeout") + 1] == "120"  # /async/blocking_sleep may block a loop 60 s
    assert argv[argv.index("--keep-alive") + 1] == "5"  # uvicorn's default, not gunicorn's 2
    assert "--loop" not in argv  # the worker class reads BENCH_LOOP (benchagent/gunicorn_worker.py)
    assert "--no-control-socket" in argv  # nothing to write under $HOME on a read-only root


@pytest.mark.parametrize("bind,uvicorn_host,gunicorn_bind", [
    ("127.0.0.1", "127.0.0.1", "127.0.0.1:8000"),
    ("0.0.0.0", "0.0.0.0", "0.0.0.0:8000"),
    ("::1", "::1", "[::1]:8000"),  # gunicorn splits -b at the last colon: IPv6 needs brackets
    ("::", "::", "[::]:8000"),
])
def test_command_bind(bind: str, uvicorn_host: str, gunicorn_bind: str) -> None:
    argv = command({"BENCH_BIND": bind})
    assert argv[argv.index("--host") + 1] == uvicorn_host
    argv = command({"BENCH_SERVER": "gunicorn", "BENCH_BIND": bind})
    assert argv[argv.index("-b") + 1] == gunicorn_bind


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
@pytest.mark.parametrize("bind", ["", " ", "127.0.0.1 ", " ::1", "localhost", "example.com", "[::1]", "[::1]:8000",
                                  "127.0.0.1:8000", "1.2.3", "256.0.0.1", "fe80::1%lo", "http://127.0.0.1"])
def test_command_rejects_bind(server: str, bind: str) -> None:
    with pytest.raises(BadSetting, match=r"BENCH_BIND=.*expected an IP address"):
        command({"BENCH_SERVER": server, "BENCH_BIND": bind})


@pytest.mark.parametrize("env", [
    {"BENCH_SERVER": "daphne"}, {"BENCH_WORKERS": "1.5"}, {"BENCH_WORKERS": "two"}, {"BENCH_PORT": ""},
    {"BENCH_LOOP": "trio"}, {"BENCH_HTTP": "h2"}, {"BENCH_THREADPOOL_TOKENS": "x"}, {"BENCH_THREADPOOL_TOKENS": "-3"},
    {"BENCH_BIND": ""},
])
def test_command_rejects(env: dict[str, str]) -> None:
    with pytest.raises(BadSetting):
        command(env)


def test_serve_bad_setting_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchagent.serve"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "BENCH_SERVER": "nope"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "BENCH_SERVER" in lines[0]


# ---------------------------------------------------------------- aggregate() / read_dir()

def test_percentile_nearest_rank() -> None:
    assert percentile([], 99) == 0.0
    assert percentile([5.0], 99) == 5.0
    values = [float(v) for v in range(1, 201)]  # 1..200: rank ceil(0.99 * 200) = 198
    assert percentile(values, 99) == 198.0
    assert percentile(values, 50) == 100.0


def test_aggregate_by_hand() -> None:
    lines = [
        {"t": 9.0, "pid": 1, "busy_max": 40, "waiting_max": 99, "lag_ms": [500.0],  # before the window
         "db_busy_max": 50, "db_waiting_max": 60},
        {"t": 10.0, "pid": 1, "busy_max": 3, "waiting_max": 0, "lag_ms": [float(v) for v in range(1, 101)],
         "db_busy_max": 4, "db_waiting_max": 1},
        {"t": 10.5, "pid": 2, "busy_max": 5, "waiting_max": 2, "lag_ms": [float(v) for v in range(101, 201)],
         "db_busy_max": 2, "db_waiting_max": 6},
        # a line without pool figures (a worker without pools, or an older app) counts as none in use
        {"t": 11.0, "pid": 1, "busy_max": 1, "waiting_max": 7, "lag_ms": []},
        {"t": 11.5, "pid": 2, "busy_max": 40, "waiting_max": 99, "lag_ms": [900.0],  # after it
         "db_busy_max": 50, "db_waiting_max": 60},
    ]
    # in [10, 11]: busy max(3, 5, 1) = 5, waiting max(0, 2, 7) = 7, pool max(4, 2) = 4 and max(1, 6) = 6,
    # lags 1..200 -> p99 = 198
    assert aggregate(lines, 10.0, 11.0) == {"threadpool_busy_max": 5, "threadpool_waiting_max": 7,
                                            "db_pool_busy_max": 4, "db_pool_waiting_max": 6,
                                            "loop_lag_p99_ms": 198.0}
    assert aggregate([], 0, 1) == {"threadpool_busy_max": 0, "threadpool_waiting_max": 0, "db_pool_busy_max": 0,
                                   "db_pool_waiting_max": 0, "loop_lag_p99_ms": 0.0}
    assert aggregate(lines, 100, 200)["threadpool_busy_max"] == 0


def test_read_dir(tmp_path: Path) -> None:
    (tmp_path / "worker-1.jsonl").write_text(
        json.dumps({"t": 5.0, "pid": 1, "busy_max": 2, "waiting_max": 1, "lag_ms": [1.5, 2.5]}) + "\n"
        + '{"t": 5.5, "pid": 1, "busy_'  # cut short by a killed worker
    )
    (tmp_path / "worker-2.jsonl").write_text(
        json.dumps({"t": 6.0, "pid": 2, "busy_max": 4, "waiting_max": 0, "lag_ms": [0.5]}) + "\n")
    (tmp_path / "other.txt").write_text("not a worker file")
    assert read_dir(tmp_path, 0, 10) == {"threadpool_busy_max": 4, "threadpool_waiting_max": 1,
                                         "db_pool_busy_max": 0, "db_pool_waiting_max": 0,
                                         "loop_lag_p99_ms": 2.5}
    assert read_dir(tmp_path / "missing", 0, 10)["loop_lag_p99_ms"] == 0.0


def _line(t: float, busy: int = 0, waiting: int = 0, lag: float = 0.5) -> str:
    return json.dumps({"t": t, "pid": 1, "busy_max": busy, "waiting_max": waiting, "lag_ms": [lag]}) + "\n"


def test_idle_after(tmp_path: Path) -> None:
    now = time.time()
    worker = tmp_path / "worker-1.jsonl"
    assert idle_after(tmp_path, now, {1})  # no worker files: nothing to wait for
    worker.write_text(_line(now - 1, busy=3))
    assert not idle_after(tmp_path, now, {1})  # nothing written after t yet (or a blocked loop)
    worker.write_text(_line(now + 1, busy=3))
    assert not idle_after(tmp_path, now, {1})  # threads still busy with abandoned requests
    worker.write_text(_line(now + 1, waiting=2))
    assert not idle_after(tmp_path, now, {1})
    worker.write_text(_line(now + 1, lag=400.0))
    assert not idle_after(tmp_path, now, {1})  # loop blocked
    worker.write_text(_line(now + 1, busy=3) + _line(now + 1.5) + '{"t": 9')
    assert idle_after(tmp_path, now, {1})  # last whole line idle; a cut-short line is skipped
    (tmp_path / "worker-2.jsonl").write_text(_line(now - 60, busy=5))
    assert idle_after(tmp_path, now, {1})  # a worker that is gone never writes again: ignored
    assert not idle_after(tmp_path, now, {1, 2})


def test_own_pids_of_this_process() -> None:
    from bench.run.procs import own_pids

    assert own_pids([os.getpid()]) == {os.getpid()}  # no namespace here: the same pid
    assert own_pids([2**22 + 12345]) == set()  # no such process


@pytest.mark.parametrize("module", ["benchagent.sampler", "benchagent.buildinfo", "benchagent.pinning", "benchagent.serve", "loadgen.hdr_config"])
def test_shared_module_is_stdlib_only(module: str) -> None:
    # the runner imports these in an environment that need not have the app's or Locust's
    # dependencies (and hdr_config also loads in the Locust image, beside the locustfile)
    code = (f"import sys, {module}; "
            "sys.exit(int(any(m.split('.')[0] in ('fastapi', 'anyio', 'starlette', 'hdrh', 'locust', 'gevent') "
            "for m in sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=30).returncode == 0


# ---------------------------------------------------------------- the sampler's pool probe

def test_the_sampler_writes_the_pools_worst_moment_per_line(tmp_path, monkeypatch) -> None:
    """With a probe (app/db.py's pool stats) each line carries the most connections in use and the
    most requests waiting seen since the last line; without one, zeros."""
    import asyncio

    from benchagent import sampler

    monkeypatch.setattr(sampler, "FLUSH_S", 0.2)
    seen = iter([(3, 0), (10, 7), (4, 1)] + [(1, 0)] * 10_000)

    async def run(probe) -> None:
        task = asyncio.create_task(sampler.sample_forever(tmp_path / ("probe" if probe else "none"), probe))
        await asyncio.sleep(0.5)
        task.cancel()

    asyncio.run(run(lambda: next(seen)))
    asyncio.run(run(None))
    [first, *rest] = [json.loads(x) for x in next((tmp_path / "probe").glob("worker-*.jsonl")).read_text().splitlines()]
    assert (first["db_busy_max"], first["db_waiting_max"]) == (10, 7), "the worst of its ticks"
    assert rest and all((line["db_busy_max"], line["db_waiting_max"]) == (1, 0) for line in rest), "reset per line"
    lines = [json.loads(x) for x in next((tmp_path / "none").glob("worker-*.jsonl")).read_text().splitlines()]
    assert lines and all((line["db_busy_max"], line["db_waiting_max"]) == (0, 0) for line in lines)
