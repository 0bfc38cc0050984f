"""One endpoint per run, closed loop, with precise latencies.

Env: BENCH_PATH (path + query, e.g. /async/sleep?ms=100; default /async/noop), BENCH_WAIT_READY_S
(seconds to wait for the target's /healthz before loading it; 0, the default, does not wait),
BENCH_RESULT_OUT (where the local or master process writes its result JSON at exit):

    {"hdr": base64 HdrHistogram.encode() ("" when empty), "count": requests in it,
     "requests", "failures", "rps", "mean_ms": Locust's final totals,
     "cpu_warning": bool, "role": "local" | "master", "t_start", "t_stop": unix times}

Locust rounds its percentiles (to 2 significant figures above 100 ms), which hides the
difference between two close cells, so every response time also goes into an HDR histogram at
microsecond resolution. With --processes or --master/--worker, each worker ships what it recorded
since its last report inside Locust's own stats message and the master merges it, so the
histogram holds exactly the requests Locust's totals count: same events, same resets, same
messages, same losses.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from hdr_config import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS
from hdrh.histogram import HdrHistogram
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from ready import wait_ready

PATH = os.environ.get("BENCH_PATH", "/async/noop")
RESULT_OUT = os.environ.get("BENCH_RESULT_OUT", "")
WAIT_READY_S = float(os.environ.get("BENCH_WAIT_READY_S") or 0)
HDR_KEY = "bench_hdr"  # our entry in the worker -> master stats message


def new_histogram() -> HdrHistogram:
    # the settings bench/hdr.py reads with (loadgen/hdr_config.py, beside this file: Locust puts
    # this file's folder on sys.path while it loads it)
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


_hist = new_histogram()
_window: dict[str, float] = {}
_env_holder: dict[str, Environment] = {}


class EndpointUser(FastHttpUser):
    # closed loop: the next request leaves when the last one answered, like `ab -c N`
    wait_time = constant(0)

    @task
    def hit(self) -> None:
        self.client.get(PATH, name=PATH)


@events.request.add_listener
def _record(response_time: float, **kw: Any) -> None:
    # every request, failed ones included, as Locust's own request count does
    _hist.record_value(max(1, round(response_time * 1000)))


@events.spawning_complete.add_listener
def _reset(user_count: int, **kw: Any) -> None:
    # Locust resets its stats on this event when --reset-stats is given (Runner.__init__), in each
    # process: local and master when their ramp is done, workers when the master says so. This
    # listener runs in the same event firing, so the ramp-up is in neither.
    env = _env_holder.get("env")
    if env is not None and env.reset_stats:
        _hist.reset()
    _window["t_start"] = time.time()


@events.init.add_listener
def _init(environment: Environment, **kw: Any) -> None:
    _env_holder["env"] = environment
    # the process that starts the load waits (workers only follow the master)
    if WAIT_READY_S > 0 and environment.host and not isinstance(environment.runner, WorkerRunner):
        wait_ready(environment.host, WAIT_READY_S)


@events.report_to_master.add_listener
def _ship(client_id: str, data: dict[str, Any]) -> None:
    # a worker sends what it recorded since its last report, then starts afresh (Locust's stats do
    # the same); its last report leaves when the master's "quit" arrives (WorkerRunner.worker)
    if _hist.get_total_count():
        data[HDR_KEY] = _hist.encode().decode("ascii")
        _hist.reset()


@events.worker_report.add_listener
def _merge(client_id: str, data: dict[str, Any]) -> None:
    encoded = data.get(HDR_KEY)
    if encoded:
        _hist.add(HdrHistogram.decode(encoded))


@events.test_stop.add_listener
def _stopped(environment: Environment, **kw: Any) -> None:
    _window["t_stop"] = time.time()


@events.quitting.add_listener
def _write(environment: Environment, **kw: Any) -> None:
    # quitting fires in reverse order of registration, so this listener (registered at import)
    # runs after MasterRunner's own one, which sends "quit" to the workers and waits 0.5 s for
    # their final reports; the master's totals and histogram are final here.
    runner = environment.runner
    if not RESULT_OUT or runner is None or isinstance(runner, WorkerRunner):
        return
    total = runner.stats.total
    result = {
        # Locust's *_stats.csv is rewritten every second but not at exit, so it can miss the last
        # second of requests; these are its final totals, the ones its printed summary shows.
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": total.total_rps,
        "mean_ms": total.avg_response_time,
        "hdr": _hist.encode().decode("ascii") if _hist.get_total_count() else "",
        "count": _hist.get_total_count(),
        # a master also counts its workers' warnings (from their heartbeats' CPU usage)
        "cpu_warning": bool(runner.cpu_warning_emitted or runner.worker_cpu_warning_emitted),
        "role": "master" if isinstance(runner, MasterRunner) else "local",
        **_window,
    }
    tmp = f"{RESULT_OUT}.tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh)
    os.replace(tmp, RESULT_OUT)
