"""The load one Locust run sends, and the Locust command lines for it.

Both backends build their command lines here, so the local processes and the
containers run exactly the same Locust invocation.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from bench.scenario.cells import MASTER_PORT_OFFSET, Cell
from loadgen.openloop import split

LOCUSTFILE = "loadgen/locustfile.py"
# The locustfile stops Locust `duration` seconds after the window opens; --run-time, this much
# later than a window opened on time would end, is only the backstop (a window that opens later
# still gets its whole duration)
RUN_TIME_BACKSTOP_S = 5


@dataclass(frozen=True)
class LoadSpec:
    """One Locust run per cell: the warmup (which covers the ramp) and the measured window in one,
    the locustfile resetting the statistics and the histograms between them (no second start-up)
    and stopping Locust when the window is over."""

    host: str  # http://127.0.0.1:PORT - loopback unless the user pointed --target-url elsewhere
    path: str
    users: int
    spawn_rate: float
    run_time_s: int
    warmup_s: float  # from Locust's start; the measured window opens once it is over and all users run
    duration_s: float  # the measured window
    processes: int
    workers: int  # 0: one Locust (maybe forked with --processes); N: master + N worker processes
    master_port: int
    cpuset: str  # CPUs every Locust process is pinned to
    load_model: str = "closed"  # open: each user sends rate_per_user requests/s on a schedule
    rate_per_user: float = 0.0
    arrivals: str = ""
    inflight_per_user: int = 0
    # the request: the built-in app's is a plain GET of `path` answered 200
    method: str = "GET"
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    expect_status: int = 200

    @property
    def prefix(self) -> str:
        return "measure"  # measure_stats.csv, measure_result.json, measure_locust.log...


def load_spec(cell: Cell, host: str) -> LoadSpec:
    ask = cell.sends
    return LoadSpec(
        host=host,
        path=ask.path,
        method=ask.method,
        body=ask.body,
        headers=tuple(ask.headers),
        expect_status=ask.expect_status,
        users=cell.users,
        spawn_rate=cell.spawn_rate,
        # whole seconds, rounded up, and a backstop: the locustfile ends the window itself
        run_time_s=math.ceil(max(cell.ramp_s, cell.warmup) + cell.duration) + RUN_TIME_BACKSTOP_S,
        warmup_s=cell.warmup,
        duration_s=cell.duration,
        processes=cell.loadgen_processes,
        workers=cell.loadgen_workers,
        master_port=cell.port + MASTER_PORT_OFFSET,
        cpuset=cell.loadgen_cpuset,
        load_model=cell.load_model,
        # one scheduling user per Locust process (scenario.resolve_cell): each takes an equal share
        rate_per_user=split(cell.rate, cell.users) if cell.is_open else 0.0,
        arrivals=cell.arrivals,
        inflight_per_user=cell.max_inflight // cell.users if cell.is_open else 0,
    )


def users_env(spec: LoadSpec) -> dict[str, str]:
    """What every Locust process that runs users reads: distributed workers need it as well."""
    env = {"BENCH_PATH": spec.path, "BENCH_LOAD_MODEL": spec.load_model}
    if (spec.method, spec.body, spec.headers, spec.expect_status) != ("GET", "", (), 200):
        env.update(BENCH_METHOD=spec.method, BENCH_BODY=spec.body,
                   BENCH_HEADERS=json.dumps(dict(spec.headers)), BENCH_EXPECT_STATUS=str(spec.expect_status))
    if spec.load_model == "open":
        env.update(BENCH_RATE=repr(spec.rate_per_user), BENCH_ARRIVALS=spec.arrivals,
                   BENCH_MAX_INFLIGHT=str(spec.inflight_per_user))
    return env


def env_for(spec: LoadSpec, out_dir: str) -> dict[str, str]:
    """Environment the locustfile reads (see loadgen/locustfile.py)."""
    return {
        **users_env(spec),
        "BENCH_WARMUP_S": f"{spec.warmup_s:g}",
        "BENCH_DURATION_S": f"{spec.duration_s:g}",
        "BENCH_RESULT_OUT": f"{out_dir}/{spec.prefix}_result.json",
        "BENCH_WINDOW_OUT": f"{out_dir}/{spec.prefix}_window.json",
    }


def master_argv(spec: LoadSpec, out_dir: str, locustfile: str = LOCUSTFILE) -> list[str]:
    """The Locust that writes the CSVs: a standalone one, or the master of distributed workers."""
    argv = [
        "locust", "-f", locustfile, "--headless",
        "--host", spec.host,
        "-u", str(spec.users), "-r", str(spec.spawn_rate),
        "--run-time", f"{spec.run_time_s}s",
        # no --reset-stats: the locustfile resets the stats and its histogram itself, once every
        # user runs and the warmup is over (loadgen/window.py), in every process at once
        "--csv", f"{out_dir}/{spec.prefix}", "--csv-full-history",
        "--html", f"{out_dir}/{spec.prefix}.html",
        "--only-summary", "--exit-code-on-error", "0",
        "--stop-timeout", "0",
    ]
    if spec.workers:
        argv += ["--master", "--expect-workers", str(spec.workers),
                 "--master-bind-host", "127.0.0.1", "--master-bind-port", str(spec.master_port)]
    elif spec.processes > 1:
        argv += ["--processes", str(spec.processes)]
    return argv


def worker_argv(spec: LoadSpec, master_host: str = "127.0.0.1", locustfile: str = LOCUSTFILE) -> list[str]:
    return ["locust", "-f", locustfile, "--worker", "--master-host", master_host,
            "--master-port", str(spec.master_port)]
