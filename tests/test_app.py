"""The target app, its launcher and its sampler: unit tests, then real servers (e2e)."""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.buildinfo import python_build
from app.sampler import aggregate, idle_after, percentile, read_dir
from app.serve import BadSetting, command

ROOT = Path(__file__).resolve().parents[1]
READY_S = 30.0  # a cold start on a busy 2-core box takes a few seconds; this is only a deadline


# ---------------------------------------------------------------- helpers (real processes, urllib)

def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to, drawn at random below the kernel's ephemeral range (32768 and up
    by default): no outgoing connection (Locust's, say) can take it between this choice and the
    server's bind, and two suites at once rarely draw the same. OSError if `host` cannot be bound."""
    for _ in range(200):
        port = random.randint(20_000, 32_000)
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return port
    raise OSError(f"no free port on {host} in 20000-32000")


def has_ipv6_loopback() -> bool:
    try:
        free_port("::1")
    except OSError:
        return False
    return True


def http_get(url: str, timeout: float = 30.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def get(self, path: str, timeout: float = 30.0) -> tuple[int, Any]:
        return http_get(self.url + path, timeout)

    def request(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        """status, headers (lower-case names) and the raw body, which http.client reads as sent."""
        conn = http.client.HTTPConnection(self.url.removeprefix("http://"), timeout=30)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


def start_server(env: dict[str, str], log: Path, preexec: Callable[[], None] | None = None,
                 host: str = "127.0.0.1") -> Server:
    port = free_port(host)
    full = {**os.environ, "BENCH_PORT": str(port), "BENCH_BIND": host, **env}
    with log.open("wb") as fh:
        # own session: the whole tree (uvicorn/gunicorn master + workers) is one group to kill
        proc = subprocess.Popen([sys.executable, "-m", "app.serve"], cwd=ROOT, env=full, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec)
    server = Server(proc, f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}", log)
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if server.get("/healthz", timeout=2)[0] == 200:
                return server
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server not ready in {READY_S} s: {log.read_text()[-2000:]}")


def stop_server(server: Server) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(10)
    # whatever is left of the group (a worker that outlived its master, a hung master) goes now
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)


# ---------------------------------------------------------------- command()

def test_command_uvicorn_defaults() -> None:
    argv = command({})
    assert argv[:4] == [sys.executable, "-m", "uvicorn", "app.main:app"]
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
    assert argv[:4] == [sys.executable, "-m", "gunicorn", "app.main:app"]
    assert argv[argv.index("-k") + 1] == "app.gunicorn_worker.Worker"
    assert argv[argv.index("-w") + 1] == "3"
    assert argv[argv.index("-b") + 1] == "127.0.0.1:9002"
    assert argv[argv.index("--log-level") + 1] == "warning"
    assert int(argv[argv.index("--graceful-timeout") + 1]) <= 5
    assert argv[argv.index("--timeout") + 1] == "120"  # /async/blocking_sleep may block a loop 60 s
    assert argv[argv.index("--keep-alive") + 1] == "5"  # uvicorn's default, not gunicorn's 2
    assert "--loop" not in argv  # the worker class reads BENCH_LOOP (app/gunicorn_worker.py)
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
    {"BENCH_SERVER": "daphne"}, {"BENCH_WORKERS": "0"}, {"BENCH_WORKERS": "two"}, {"BENCH_PORT": "70000"},
    {"BENCH_LOOP": "trio"}, {"BENCH_HTTP": "h2"}, {"THREADPOOL_TOKENS": "0"}, {"THREADPOOL_TOKENS": "-3"},
    {"BENCH_BIND": ""},
])
def test_command_rejects(env: dict[str, str]) -> None:
    with pytest.raises(BadSetting):
        command(env)


def test_serve_bad_setting_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "app.serve"], cwd=ROOT, capture_output=True, text=True, timeout=30,
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
    from bench.procs import own_pids

    assert own_pids([os.getpid()]) == {os.getpid()}  # no namespace here: the same pid
    assert own_pids([2**22 + 12345]) == set()  # no such process


@pytest.mark.parametrize("module", ["app.sampler", "app.buildinfo", "app.pinning", "app.serve", "loadgen.hdr_config"])
def test_shared_module_is_stdlib_only(module: str) -> None:
    # the runner imports these in an environment that need not have the app's or Locust's
    # dependencies (and hdr_config also loads in the Locust image, beside the locustfile)
    code = (f"import sys, {module}; "
            "sys.exit(int(any(m.split('.')[0] in ('fastapi', 'anyio', 'starlette', 'hdrh', 'locust', 'gevent') "
            "for m in sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=30).returncode == 0


# ---------------------------------------------------------------- real servers

@pytest.fixture(scope="module")
def app_uvicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """uvicorn, 1 worker, pinned to CPU 0, 7 thread tokens, sampler on."""
    tmp = tmp_path_factory.mktemp("app_uvicorn")
    stats = tmp / "stats" / "nested"  # the sampler creates it
    server = start_server({"THREADPOOL_TOKENS": "7", "BENCH_STATS_DIR": str(stats)}, tmp / "server.log",
                          preexec=lambda: os.sched_setaffinity(0, {0}))
    try:
        yield server, stats
    finally:
        stop_server(server)


@pytest.mark.e2e
def test_info(app_uvicorn: tuple[Server, Path]) -> None:
    server, _ = app_uvicorn
    status, info = server.get("/info")
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
    from bench import envinfo

    server, _ = app_uvicorn
    assert server.get("/info")[1]["python_build"] == envinfo.python_build() == python_build()


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/healthz", "/info"])
def test_head(app_uvicorn: tuple[Server, Path], path: str) -> None:
    # health checks and `curl -I` send HEAD: 200 with GET's headers and no body, not 405
    server, _ = app_uvicorn
    status, headers, body = server.request("HEAD", path)
    assert (status, body) == (200, b"")
    assert headers["content-type"] == "application/json"
    if path == "/healthz":  # /info's length varies (pid, ...); /healthz's does not
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
    # lines are flushed every 0.5 s; wait for one written after `after`
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
    assert line["pid"] == server.get("/info")[1]["pid"]
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
    server = start_server({"BENCH_SERVER": "gunicorn", "BENCH_WORKERS": "2", "THREADPOOL_TOKENS": "5"},
                          tmp_path / "server.log")
    try:
        status, info = server.get("/info")
        assert status == 200
        assert info["server"] == "gunicorn" and info["workers"] == 2 and info["threadpool_tokens"] == 5
        assert info["pid"] != server.proc.pid  # a worker answers, not the arbiter
        deadline = time.time() + 30  # the second worker may still be starting
        while len(info["worker_affinity"]) < 2 and time.time() < deadline:
            time.sleep(0.1)
            info = server.get("/info")[1]
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
    server = start_server({"BENCH_SERVER": server_name, "BENCH_WORKERS": "2", "THREADPOOL_TOKENS": "5",
                           "BENCH_LOOP": "asyncio", "BENCH_STATS_DIR": str(stats)}, tmp_path / "server.log")
    try:
        info = server.get("/info")[1]
        deadline = time.time() + 30  # the second worker may still be starting
        while len(info["worker_affinity"]) < 2 and time.time() < deadline:
            time.sleep(0.1)
            info = server.get("/info")[1]
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


def test_the_sampler_writes_the_pools_worst_moment_per_line(tmp_path, monkeypatch) -> None:
    """With a probe (app/db.py's pool stats) each line carries the most connections in use and the
    most requests waiting seen since the last line; without one, zeros."""
    import asyncio

    from app import sampler

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
