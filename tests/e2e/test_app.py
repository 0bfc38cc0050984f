"""The target app on real servers: its endpoints, /info, the sampler inside a running server, each server's workers and stop."""

from __future__ import annotations

import json
import os
import platform
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchagent.buildinfo import python_build
from benchagent.sampler import aggregate
from tests.servers import (
    Server,
    has_ipv6_loopback,
    start_server,
    stop_server,
)

# ---------------------------------------------------------------- real servers

@pytest.fixture(scope="module")
def app_uvicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """uvicorn, 1 worker, pinned to CPU 0, 7 thread tokens, sampler on."""
    tmp = tmp_path_factory.mktemp("app_uvicorn")
    stats = tmp / "stats" / "nested"  # the sampler creates it
    server = start_server({"BENCH_THREADPOOL_TOKENS": "7", "BENCH_STATS_DIR": str(stats)}, tmp / "server.log",
                          preexec=lambda: os.sched_setaffinity(0, {0}))
    try:
        yield server, stats
    finally:
        stop_server(server)


@pytest.mark.e2e
def test_info(app_uvicorn: tuple[Server, Path]) -> None:
    server, _ = app_uvicorn
    status, info = server.get("/__bench/info")
    assert status == 200
    assert info["threadpool_tokens"] == 7
    assert info["cpu_affinity"] == [0]
    assert info["server"] == "uvicorn" and info["workers"] == 1 and info["http"] == "auto"
    assert isinstance(info["pid"], int) and info["loop"]
    # every worker says where it runs (here one, floating over its set of one CPU)
    assert info["worker_pinning"] == "set"
    assert info["worker_affinity"] == [{"pid": info["pid"], "slot": 0, "cpus": [0]}]
    for key in ("python", "fastapi", "starlette", "anyio", "uvicorn", "gunicorn", "uvicorn_worker", "granian",
                "hypercorn", "h11"):
        assert key in info
    assert info["server_version"] == info["uvicorn"]
    assert info["fastapi"] and info["anyio"] and info["python"].count(".") == 2
    assert info["python_build"].startswith(f"{platform.python_implementation()} {info['python']} (")


@pytest.mark.e2e
def test_info_python_build_matches_envinfo(app_uvicorn: tuple[Server, Path]) -> None:
    # the server runs this interpreter (sys.executable): the target's /info and the runner's
    # env.json must describe it with the same string
    from bench.run import envinfo

    server, _ = app_uvicorn
    assert server.get("/__bench/info")[1]["python_build"] == envinfo.python_build() == python_build()


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/__bench/healthz", "/__bench/info", "/healthz"])
def test_head(app_uvicorn: tuple[Server, Path], path: str) -> None:
    # health checks and `curl -I` send HEAD: 200 with GET's headers and no body, not 405
    server, _ = app_uvicorn
    status, headers, body = server.request("HEAD", path)
    assert (status, body) == (200, b"")
    assert headers["content-type"] == "application/json"
    if path != "/__bench/info":  # /info's length varies (pid, ...); /healthz's does not
        assert int(headers["content-length"]) == len(server.request("GET", path)[2])
    assert server.request("HEAD", "/async/noop")[0] == 405  # benchmark endpoints stay GET only


@pytest.mark.e2e
@pytest.mark.parametrize("style", ["def", "async"])
@pytest.mark.parametrize("workload,query,body", [
    ("noop", "", {"ok": True}),
    ("cpu", "?iterations=1234", {"count": 1234}),
    ("sleep", "?ms=5", {"slept_ms": 5}),
    ("blocking_sleep", "?ms=5", {"slept_ms": 5}),
])
def test_endpoints(app_uvicorn: tuple[Server, Path], style: str, workload: str, query: str, body: dict) -> None:
    server, _ = app_uvicorn
    assert server.get(f"/{style}/{workload}{query}") == (200, body)


@pytest.mark.e2e
def test_defaults(app_uvicorn: tuple[Server, Path]) -> None:
    server, _ = app_uvicorn
    assert server.get("/async/cpu") == (200, {"count": 1_000_000})
    assert server.get("/def/sleep") == (200, {"slept_ms": 100})


@pytest.mark.e2e
@pytest.mark.parametrize("path", [
    "/def/cpu?iterations=50000001", "/async/cpu?iterations=-1", "/def/sleep?ms=60001", "/async/sleep?ms=-1",
    "/def/blocking_sleep?ms=60001", "/async/blocking_sleep?ms=99999999", "/async/sleep?ms=abc",
])
def test_out_of_bounds_422(app_uvicorn: tuple[Server, Path], path: str) -> None:
    server, _ = app_uvicorn
    assert server.get(path, timeout=10)[0] == 422


def _lines(stats: Path) -> list[dict[str, Any]]:
    out = []
    for path in stats.glob("worker-*.jsonl"):
        out += [json.loads(t) for t in path.read_text().splitlines() if t.endswith("}")]
    return out


def _wait_lines(stats: Path, after: float, deadline_s: float = 10.0) -> list[dict[str, Any]]:
    # lines are flushed every 0.2 s (FLUSH_S); wait for one written after `after`
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        lines = [x for x in _lines(stats) if x["t"] > after]
        if lines:
            return lines
        time.sleep(0.2)
    return []


@pytest.mark.e2e
def test_sampler_lines(app_uvicorn: tuple[Server, Path]) -> None:
    server, stats = app_uvicorn
    lines = _wait_lines(stats, 0)
    assert lines, "no sampler line"
    line = lines[0]
    assert set(line) == {"t", "pid", "busy_max", "waiting_max", "lag_ms", "db_busy_max", "db_waiting_max"}
    assert (line["db_busy_max"], line["db_waiting_max"]) == (0, 0), "a target without pools reads none"
    assert line["pid"] == server.get("/__bench/info")[1]["pid"]
    assert isinstance(line["lag_ms"], list) and all(v >= 0 for v in line["lag_ms"])
    assert all(round(v, 2) == v for v in line["lag_ms"])


@pytest.mark.e2e
def test_sampler_sees_blocked_loop(app_uvicorn: tuple[Server, Path]) -> None:
    server, stats = app_uvicorn
    t0 = time.time()
    assert server.get("/async/blocking_sleep?ms=400")[0] == 200
    t1 = time.time()
    lines = _wait_lines(stats, t1)
    assert lines
    lags = [v for x in _lines(stats) if x["t"] >= t0 for v in x["lag_ms"]]
    assert max(lags) >= 300, max(lags)  # most of the 400 ms the loop stood still


@pytest.mark.e2e
def test_sampler_sees_busy_threads(app_uvicorn: tuple[Server, Path]) -> None:
    server, stats = app_uvicorn
    t0 = time.time()
    # 9 concurrent 600 ms def sleeps on 7 tokens: 7 threads busy, 2 requests waiting
    threads = [threading.Thread(target=server.get, args=("/def/sleep?ms=600",)) for _ in range(9)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    lines = _wait_lines(stats, time.time())
    assert lines
    agg = aggregate(_lines(stats), t0, time.time())
    assert agg["threadpool_busy_max"] == 7
    assert agg["threadpool_waiting_max"] >= 1


@pytest.mark.e2e
def test_gunicorn_two_workers(tmp_path: Path) -> None:
    server = start_server({"BENCH_SERVER": "gunicorn", "BENCH_WORKERS": "2", "BENCH_THREADPOOL_TOKENS": "5"},
                          tmp_path / "server.log")
    try:
        status, info = server.get("/__bench/info")
        assert status == 200
        assert info["server"] == "gunicorn" and info["workers"] == 2 and info["threadpool_tokens"] == 5
        assert info["pid"] != server.proc.pid  # a worker answers, not the arbiter
        deadline = time.time() + 30  # the second worker may still be starting
        while len(info["worker_affinity"]) < 2 and time.time() < deadline:
            time.sleep(0.1)
            info = server.get("/__bench/info")[1]
        workers = info["worker_affinity"]
        assert [w["slot"] for w in workers] == [0, 1] and server.proc.pid not in {w["pid"] for w in workers}
        assert server.get("/def/noop") == (200, {"ok": True})
    finally:
        stop_server(server)
    assert server.proc.poll() is not None


@pytest.mark.e2e
@pytest.mark.parametrize("server_name", ["granian", "hypercorn", "gunicorn"])
def test_each_server_runs_two_workers_that_report_and_sample_themselves(tmp_path: Path, server_name: str) -> None:
    """What the runner reads from every server: /info names the server that loaded the worker and
    its version, the loop in force, each worker's slot and CPUs; the sampler writes per worker."""
    stats = tmp_path / "stats"
    server = start_server({"BENCH_SERVER": server_name, "BENCH_WORKERS": "2", "BENCH_THREADPOOL_TOKENS": "5",
                           "BENCH_LOOP": "asyncio", "BENCH_STATS_DIR": str(stats)}, tmp_path / "server.log")
    try:
        info = server.get("/__bench/info")[1]
        deadline = time.time() + 30  # the second worker may still be starting
        while len(info["worker_affinity"]) < 2 and time.time() < deadline:
            time.sleep(0.1)
            info = server.get("/__bench/info")[1]
        assert info["server"] == server_name and info["server_version"] == info[server_name], info
        assert info["loop"].startswith("asyncio.") and info["threadpool_tokens"] == 5, info
        assert info["http"] == {"granian": "hyper", "hypercorn": "h11"}.get(server_name, "auto"), info
        workers = info["worker_affinity"]
        assert [w["slot"] for w in workers] == [0, 1] and server.proc.pid not in {w["pid"] for w in workers}
        assert server.get("/def/sleep?ms=5") == (200, {"slept_ms": 5})
        deadline = time.time() + 10
        while len(list(stats.glob("worker-*.jsonl"))) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert {p.name for p in stats.glob("worker-*.jsonl")} == {f"worker-{w['pid']}.jsonl" for w in workers}
    finally:
        stop_server(server)


@pytest.mark.e2e
@pytest.mark.parametrize("server_name", ["uvicorn", "gunicorn", "granian", "hypercorn"])
def test_each_server_stops_within_seconds_with_a_request_in_flight(tmp_path: Path, server_name: str) -> None:
    """Between cells the runner stops the target with SIGTERM to its session: a 30 s request in
    flight must not hold it (each server is given a 3 s grace; then its workers are killed)."""
    server = start_server({"BENCH_SERVER": server_name}, tmp_path / "server.log")
    answered: list[object] = []

    def slow_request() -> None:
        try:
            answered.append(server.get("/async/sleep?ms=30000", timeout=60))
        except (OSError, ValueError) as exc:  # closed under it, or uvicorn's plain-text 500 at its deadline
            answered.append(exc)

    slow = threading.Thread(target=slow_request, daemon=True)
    try:
        slow.start()
        time.sleep(0.5)
        assert not answered, "the request is in flight"
        started = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(15)
        assert time.monotonic() - started < 10
        slow.join(10)
        assert answered and not isinstance(answered[0], tuple), answered  # it did not finish its 30 s
    finally:
        stop_server(server)


@pytest.mark.e2e
@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
@pytest.mark.parametrize("env", [{"BENCH_HTTP": "h11"}, {"BENCH_SERVER": "gunicorn"}], ids=["uvicorn-h11", "gunicorn"])
def test_ipv6_loopback(tmp_path: Path, env: dict[str, str]) -> None:
    # BENCH_BIND=::1 as each server takes it (uvicorn --host ::1, gunicorn -b [::1]:PORT); HEAD
    # also on h11 here, as the module's server runs httptools when it is installed
    server = start_server(env, tmp_path / "server.log", host="::1")
    try:
        assert server.get("/def/noop") == (200, {"ok": True})
        assert server.request("HEAD", "/healthz")[::2] == (200, b"")
    finally:
        stop_server(server)
