"""The command lines the figures depend on, asserted whole: a changed flag (Locust's stats reset,
a server's timeout or keep-alive) changes what is measured, so it must change a test too."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from app.main import app
from bench.run.loadspec import (
    LOCUSTFILE,
    MASTER_PORT_OFFSET,
    RUN_TIME_BACKSTOP_S,
    LoadSpec,
    env_for,
    load_spec,
    master_argv,
    worker_argv,
)
from bench.scenario import matrix as scenario
from bench.scenario.cells import work_order
from bench.scenario.keys import by_hand_env
from benchagent import serve
from benchagent.serve import BadSetting

HAND = by_hand_env()  # every setting, as .env.example has them: the launcher takes no default


def command(env: dict[str, str]) -> list[str]:
    return serve.command({**HAND, **env})


def cell(**kw):  # the default cell, with kw
    return dataclasses.replace(scenario.from_dict({}, {}).cells()[0], **kw)


def test_uvicorn_command_whole() -> None:
    assert command({"BENCH_WORKERS": "2", "BENCH_PORT": "9001"}) == [
        sys.executable, "-m", "uvicorn", "benchagent.asgi:app", "--host", "127.0.0.1", "--port", "9001",
        "--workers", "2", "--loop", "auto", "--http", "auto", "--no-access-log", "--log-level", "warning",
        "--backlog", "2048", "--timeout-graceful-shutdown", "3"]


def test_gunicorn_command_whole() -> None:
    # the loop and parser reach uvicorn through benchagent/gunicorn_worker.py (BENCH_LOOP, BENCH_HTTP)
    assert command({"BENCH_SERVER": "gunicorn", "BENCH_WORKERS": "3", "BENCH_PORT": "9002", "BENCH_LOOP": "asyncio",
                    "BENCH_HTTP": "h11"}) == [
        sys.executable, "-m", "gunicorn", "benchagent.asgi:app", "-k", "benchagent.gunicorn_worker.Worker", "-w", "3",
        "-b", "127.0.0.1:9002", "--log-level", "warning", "--backlog", "2048", "--graceful-timeout", "3",
        "--timeout", "120", "--keep-alive", "5", "--no-control-socket"]


def test_granian_command_whole() -> None:
    assert command({"BENCH_SERVER": "granian", "BENCH_WORKERS": "4", "BENCH_PORT": "9004", "BENCH_LOOP": "asyncio",
                    "BENCH_GRANIAN_RUNTIME_THREADS": "2", "BENCH_GRANIAN_BLOCKING_THREADS": "1"}) == [
        sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "9004",
        "--workers", "4", "--loop", "asyncio", "--runtime-threads", "2", "--blocking-threads", "1",
        "--backlog", "2048", "--no-access-log", "--log-level", "warning", "--workers-kill-timeout", "3",
        "benchagent.asgi:app"]


def test_hypercorn_command_whole() -> None:
    assert command({"BENCH_SERVER": "hypercorn", "BENCH_WORKERS": "2", "BENCH_PORT": "9005", "BENCH_BIND": "::1",
                    "BENCH_LOOP": "asyncio"}) == [
        sys.executable, "-m", "hypercorn", "benchagent.asgi:app", "-b", "[::1]:9005", "-w", "2", "-k", "asyncio",
        "--backlog", "2048", "--keep-alive", "5", "--log-level", "warning", "--graceful-timeout", "3"]


@pytest.mark.parametrize("installed", [True, False])
def test_auto_loop_means_uvloop_when_installed_for_every_server(monkeypatch: pytest.MonkeyPatch,
                                                                installed: bool) -> None:
    monkeypatch.setattr(serve.importlib.util, "find_spec",
                        lambda name: object() if installed and name == "uvloop" else None)
    want = "uvloop" if installed else "asyncio"
    assert serve.auto_loop() == want
    granian = command({"BENCH_SERVER": "granian"})
    assert granian[granian.index("--loop") + 1] == want  # not Granian's own auto, which takes rloop first
    hypercorn = command({"BENCH_SERVER": "hypercorn"})
    assert hypercorn[hypercorn.index("-k") + 1] == want  # not Hypercorn's default, asyncio
    uvicorn = command({})
    assert uvicorn[uvicorn.index("--loop") + 1] == "auto"  # uvicorn's auto is this same rule


def test_the_settings_whole_with_the_by_hand_values() -> None:
    assert serve.settings(HAND) == serve.Settings("uvicorn", 1, 8000, "127.0.0.1", "auto", "auto", 0, 0)
    assert serve.settings({**HAND, "BENCH_SERVER": "granian", "BENCH_LOOP": "asyncio"}) == serve.Settings(
        "granian", 1, 8000, "127.0.0.1", "asyncio", "auto", 1, 1)


def test_the_granian_knobs_have_granians_defaults_and_only_granian_reads_them() -> None:
    argv = command({"BENCH_SERVER": "granian"})
    assert argv[argv.index("--runtime-threads") + 1] == "1" and argv[argv.index("--blocking-threads") + 1] == "1"
    # the runner sends 0 for another server: not read, so not refused
    zero = {"BENCH_GRANIAN_RUNTIME_THREADS": "0", "BENCH_GRANIAN_BLOCKING_THREADS": "0"}
    assert command(zero) == command({})
    assert command({"BENCH_SERVER": "hypercorn", **zero}) == command({"BENCH_SERVER": "hypercorn"})


@pytest.mark.parametrize(("loaded", "server"), [
    ({"uvicorn"}, "uvicorn"), ({"gunicorn", "uvicorn", "uvicorn_worker"}, "gunicorn"), ({"granian"}, "granian"),
    ({"hypercorn", "h11"}, "hypercorn"), (set(), None)])
def test_info_names_the_server_from_the_modules_that_loaded_the_worker(monkeypatch: pytest.MonkeyPatch,
                                                                        loaded: set[str], server: str | None) -> None:
    from benchagent import info

    modules = {k: v for k, v in sys.modules.items() if k not in ("uvicorn", "gunicorn", "granian", "hypercorn")}
    monkeypatch.setattr(info.sys, "modules", {**modules, **{name: sys for name in loaded}})
    assert info.running_server() == server


def test_every_route_has_no_response_model() -> None:
    """response_model=None everywhere: with a model FastAPI would validate a def endpoint's result
    in the threadpool too, a second thread hop per request that async endpoints do not pay."""
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert [r.path for r in routes if r.response_model is not None] == []
    endpoints = {f"/{s}/{w}" for s in ("def", "async")
                 for w in ("noop", "cpu", "sleep", "blocking_sleep", "db", "db_blocking", "db_dep", "http")}
    assert {r.path for r in routes} == endpoints | {"/healthz"}  # /__bench/info is the agent's


def test_locust_standalone_command_whole() -> None:
    spec = load_spec(cell(users=10, spawn_rate=5.0, duration=10.0, warmup=3.0, port=8100,
                          loadgen_processes=1), "http://127.0.0.1:8100")
    assert spec == LoadSpec(host="http://127.0.0.1:8100", path="/async/noop", users=10, spawn_rate=5.0,
                            # 3 s of warmup (covering 2 s of ramp: 10 users at 5/s) + 10 s, + the backstop
                            run_time_s=13 + RUN_TIME_BACKSTOP_S, warmup_s=3.0, duration_s=10.0, processes=1, workers=0, master_port=8100 + MASTER_PORT_OFFSET,
                            cpuset=spec.cpuset)
    assert spec.cpuset == cell().loadgen_cpuset != ""  # every Locust process is pinned there
    # no --reset-stats: the locustfile resets once the warmup is over (loadgen/window.py)
    assert master_argv(spec, "/out/c/r1", "lf.py") == [
        "locust", "-f", "lf.py", "--headless", "--host", "http://127.0.0.1:8100", "-u", "10", "-r", "5.0",
        "--run-time", "18s", "--csv", "/out/c/r1/measure", "--csv-full-history",
        "--html", "/out/c/r1/measure.html", "--only-summary", "--exit-code-on-error", "0", "--stop-timeout", "0"]
    assert env_for(spec, "/out/c/r1") == {"BENCH_PATH": "/async/noop", "BENCH_LOAD_MODEL": "closed",
                                          "BENCH_WARMUP_S": "3", "BENCH_DURATION_S": "10",
                                          "BENCH_RESULT_OUT": "/out/c/r1/measure_result.json",
                                          "BENCH_WINDOW_OUT": "/out/c/r1/measure_window.json"}


def test_open_loop_splits_rate_and_inflight_over_the_processes_in_its_environment() -> None:
    scen = scenario.from_dict({"defaults": {"load_model": "open", "rate": 900, "arrivals": "poisson",
                                            "max_inflight": 31, "loadgen_processes": 3}}, {})
    (open_cell,) = scen.cells()
    assert (open_cell.users, open_cell.max_inflight) == (3, 31)  # one scheduling user per process
    spec = load_spec(open_cell, "http://127.0.0.1:8000")
    assert (spec.users, spec.processes, spec.rate_per_user, spec.inflight_per_user) == (3, 3, 300.0, 10)
    env = env_for(spec, "/o")
    assert {k: env[k] for k in ("BENCH_LOAD_MODEL", "BENCH_RATE", "BENCH_ARRIVALS", "BENCH_MAX_INFLIGHT")} == {
        "BENCH_LOAD_MODEL": "open", "BENCH_RATE": "300.0", "BENCH_ARRIVALS": "poisson", "BENCH_MAX_INFLIGHT": "10"}
    argv = master_argv(spec, "/o", "lf.py")
    assert argv[argv.index("-u") + 1] == "3" and argv[argv.index("--processes") + 1] == "3"


def test_open_loop_auto_inflight_is_a_thousand_per_process_and_caps_the_processes() -> None:
    auto = scenario.from_dict({"defaults": {"load_model": "open", "rate": 50, "loadgen_cpuset": "0-1",
                                            "target_cpuset": "0"}}, {}).cells()[0]
    assert (auto.users, auto.loadgen_processes, auto.max_inflight) == (2, 2, 2000)
    one = scenario.from_dict({"defaults": {"load_model": "open", "rate": 50, "max_inflight": 1,
                                           "loadgen_cpuset": "0-1", "target_cpuset": "0"}}, {}).cells()[0]
    assert (one.users, one.loadgen_processes, one.max_inflight) == (1, 1, 1)


@pytest.mark.parametrize(("warmup", "users", "run_time"), [
    (3.0, 10, 13),  # the warmup covers the 1 s ramp
    (0.0, 10, 11),  # no warmup: the window opens once the ramp is done
    (0.5, 30, 13),  # a ramp longer than the warmup: 30 users at 10/s = 3 s
])
def test_one_run_holds_warmup_and_window(warmup: float, users: int, run_time: int) -> None:
    spec = load_spec(cell(users=users, spawn_rate=10.0, duration=10.0, warmup=warmup), "http://h:1")
    argv = master_argv(spec, "/o")
    run_time += RUN_TIME_BACKSTOP_S  # the locustfile stops Locust itself; --run-time is the backstop
    assert spec.run_time_s == run_time and argv[argv.index("--run-time") + 1] == f"{run_time}s"
    assert argv[argv.index("--csv") + 1] == "/o/measure" and env_for(spec, "/o")["BENCH_WARMUP_S"] == f"{warmup:g}"


@pytest.mark.parametrize(("duration", "ramp_users", "run_time"), [(1.5, 1, 3), (2.0, 1, 3), (2.01, 2, 5)])
def test_run_time_rounds_a_fractional_window_up(duration: float, ramp_users: int, run_time: int) -> None:
    # ramp: ceil(users / spawn_rate) = users at 1/s; Locust takes whole seconds, never fewer than asked
    spec = load_spec(cell(users=ramp_users, spawn_rate=1.0, duration=duration, warmup=0.0), "http://h:1")
    assert spec.run_time_s == run_time + RUN_TIME_BACKSTOP_S
    assert env_for(spec, "/o")["BENCH_DURATION_S"] == f"{duration:g}", "the window itself is not rounded"


def test_locust_processes_and_distributed_commands() -> None:
    forked = load_spec(cell(loadgen_processes=4), "http://h:1")
    one = load_spec(cell(loadgen_processes=1), "http://h:1")
    assert master_argv(forked, "/o") == [*master_argv(one, "/o"), "--processes", "4"]
    assert master_argv(load_spec(cell(loadgen_processes=2), "http://h:1"), "/o")[-2:] == ["--processes", "2"]
    assert "--processes" not in master_argv(one, "/o")
    dist = load_spec(cell(loadgen_workers=2, loadgen_processes=4, port=8200), "http://h:1")
    assert dist.master_port == 8200 + MASTER_PORT_OFFSET
    assert master_argv(dist, "/o", "lf.py") == [*master_argv(one, "/o", "lf.py"), "--master", "--expect-workers", "2", "--master-bind-host", "127.0.0.1", "--master-bind-port", "8757"]
    assert "--processes" not in master_argv(dist, "/o"), "workers replace --processes"
    assert worker_argv(dist)[:7] == ["locust", "-f", LOCUSTFILE, "--worker", "--master-host", "127.0.0.1",
                                     "--master-port"]
    assert worker_argv(dist, "10.0.0.1", "lf.py") == [
        "locust", "-f", "lf.py", "--worker", "--master-host", "10.0.0.1", "--master-port", "8757"]


@pytest.mark.parametrize(("env", "message"), [
    ({"BENCH_SERVER": "daphne"}, "BENCH_SERVER='daphne': expected one of uvicorn, gunicorn, granian, hypercorn"),
    ({"BENCH_SERVER": "granian", "BENCH_HTTP": "httptools"},
     "http = 'httptools' is one of Uvicorn's parsers (server uvicorn or gunicorn); Granian parses HTTP itself "
     "(in Rust, with hyper): leave http = auto"),
    ({"BENCH_SERVER": "hypercorn", "BENCH_HTTP": "h11"},
     "http = 'h11' is one of Uvicorn's parsers (server uvicorn or gunicorn); Hypercorn parses HTTP/1.1 with h11 "
     "and HTTP/2 with h2, always: leave http = auto"),
    ({"BENCH_SERVER": "granian", "BENCH_GRANIAN_BLOCKING_THREADS": "2"},
     "granian_blocking_threads = 2: Granian refuses more than one blocking thread for an ASGI app (only its "
     "WSGI interface uses them); a def endpoint runs in anyio's threadpool: set threadpool_tokens"),
    ({"BENCH_SERVER": "granian", "BENCH_GRANIAN_RUNTIME_THREADS": "x"},
     "BENCH_GRANIAN_RUNTIME_THREADS='x': expected a whole number"),
    ({"BENCH_WORKERS": "-1"}, "BENCH_WORKERS='-1': expected a whole number"),
    ({"BENCH_PORT": "80.5"}, "BENCH_PORT='80.5': expected a whole number"),
    ({"BENCH_THREADPOOL_TOKENS": "forty"}, "BENCH_THREADPOOL_TOKENS='forty': expected a whole number"),
    ({"BENCH_DB_POOL_SIZE": ""}, "BENCH_DB_POOL_SIZE='': expected a whole number"),
    ({"BENCH_WORKER_PINNING": "cpu"}, "BENCH_WORKER_PINNING='cpu': expected one of set, core"),
    ({"BENCH_BIND": "fe80::1%lo"}, "BENCH_BIND='fe80::1%lo': expected an IP address such as 127.0.0.1, 0.0.0.0, "
                                   "::1 or :: (not a hostname; IPv6 without brackets or a %scope)"),
])
def test_a_bad_setting_is_named_whole(env: dict[str, str], message: str) -> None:
    with pytest.raises(BadSetting) as err:
        command(env)
    assert str(err.value) == message


@pytest.mark.parametrize("key", sorted(HAND))
def test_a_missing_setting_is_named_not_defaulted(key: str) -> None:
    env = {**HAND, "BENCH_SERVER": "granian"} if key.startswith("BENCH_GRANIAN") else dict(HAND)
    del env[key]
    with pytest.raises(BadSetting) as err:
        serve.command(env)
    assert str(err.value) == (f"{key} is not set (the runner sets every BENCH_ setting; by hand, start from "
                              ".env.example)")


def test_serve_main_execs_the_command_with_the_settings_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(serve.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    # a server's own variables would configure it behind the command line's back: dropped
    monkeypatch.setattr(serve.os, "environ", {**HAND, "BENCH_PORT": "9003", "BENCH_THREADPOOL_TOKENS": "7",
                                              "GRANIAN_BACKPRESSURE": "1", "UVICORN_LIMIT_CONCURRENCY": "2",
                                              "GUNICORN_CMD_ARGS": "--threads 8"})
    serve.main()
    [(path, argv, env)] = calls
    assert path == sys.executable and argv == command({"BENCH_PORT": "9003"})
    # a fresh folder for the workers' pinning slots, in the system's temporary folder when no stats
    # folder is given
    pin_dir = Path(env.pop("BENCH_PIN_DIR"))
    assert pin_dir.is_dir() and not any(pin_dir.iterdir()) and pin_dir.name.startswith("pin-")
    pin_dir.rmdir()
    # the settings pass on as given, without the server's own variables
    assert env == {**HAND, "BENCH_PORT": "9003", "BENCH_THREADPOOL_TOKENS": "7"}


def test_serve_main_puts_the_pin_folder_inside_the_stats_folder(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    calls: list[dict[str, str]] = []
    monkeypatch.setattr(serve.os, "execve", lambda path, argv, env: calls.append(env))
    for _ in range(2):
        monkeypatch.setattr(serve.os, "environ", {**HAND, "BENCH_STATS_DIR": str(tmp_path / "stats")})
        serve.main()
    first, second = (Path(env["BENCH_PIN_DIR"]) for env in calls)
    assert first.parent == second.parent == tmp_path / "stats" and first != second  # fresh per start


def test_serve_main_refuses_a_bad_setting_with_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(serve.os, "execve", lambda *a: pytest.fail("must not start"))
    monkeypatch.setattr(serve.os, "environ", {**HAND, "BENCH_LOOP": "trio"})
    with pytest.raises(SystemExit) as exit_:
        serve.main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "benchagent.serve: BENCH_LOOP='trio': expected one of auto, asyncio, uvloop\n"


@pytest.mark.parametrize(("kw", "seconds"), [
    # one Locust run: 2 s start-up + the warmup (which covers the 1 s ramp) + 10 s measured
    ({"warmup": 3.0}, 2 + 3 + 10),
    ({"warmup": 0.0}, 2 + 1 + 10),  # the ramp alone
    ({"warmup": 0.5, "users": 30}, 2 + 3 + 10),  # ramp 30 users at 10/s = 3 s, longer than the warmup
    ({"warmup": 0.0, "loadgen_workers": 2}, 2 + 1 + 10 + 2),  # master + workers start slower
])
def test_plan_estimate_per_repeat(kw: dict[str, float], seconds: float) -> None:
    assert cell(**{"users": 10, "spawn_rate": 10.0, "duration": 10.0, **kw}).estimated_s() == seconds


def test_work_order_of_nothing_is_nothing() -> None:
    assert work_order([]) == []
