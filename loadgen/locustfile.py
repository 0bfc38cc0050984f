"""One endpoint per run, closed loop, with precise latencies.

Env: BENCH_PATH (path + query, e.g. /async/sleep?ms=100), BENCH_RESULT_OUT (where the local or
master process writes its final totals, the HDR histogram, the CPU warning and the measured
window's start and stop times as JSON at the end).

Locust rounds its percentiles (whole ms below 100 ms), which hides the difference between two
no-op endpoints, so every response time also goes into an HDR histogram at microsecond
resolution. With --processes or --master/--worker, workers ship what they recorded since their
last report inside Locust's own stats messages and the master merges it, so the histogram
covers exactly the requests Locust's CSV counts.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from hdrh.histogram import HdrHistogram
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

PATH = os.environ.get("BENCH_PATH", "/async/noop")
RESULT_OUT = os.environ.get("BENCH_RESULT_OUT", "")
HDR_KEY = "bench_hdr"

_hist = HdrHistogram(1, 3_600_000_000, 3)  # microseconds, 1 us .. 1 h, 3 significant digits
_window: dict[str, float] = {}
_env: dict[str, Environment] = {}


def _new() -> HdrHistogram:
    return HdrHistogram(1, 3_600_000_000, 3)


class EndpointUser(FastHttpUser):
    # closed loop: the next request leaves when the last one answered, like `ab -c N`
    wait_time = constant(0)

    @task
    def hit(self) -> None:
        self.client.get(PATH, name=PATH)


@events.request.add_listener
def _record(response_time: float, **kw: Any) -> None:
    _hist.record_value(max(1, round(response_time * 1000)))


@events.spawning_complete.add_listener
def _reset(user_count: int, **kw: Any) -> None:
    # Locust resets its own stats at this moment in every process when --reset-stats is given
    # (Runner.__init__): do the same, so the ramp-up is in neither.
    env = _env.get("env")
    if env is not None and env.reset_stats:
        _hist.reset()
    _window["t_start"] = time.time()


@events.init.add_listener
def _init(environment: Environment, **kw: Any) -> None:
    _env["env"] = environment


@events.report_to_master.add_listener
def _ship(client_id: str, data: dict[str, Any]) -> None:
    # a worker sends the delta since its last report, then starts afresh
    data[HDR_KEY] = _hist.encode().decode()
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
    runner = environment.runner
    if not RESULT_OUT or runner is None or isinstance(runner, WorkerRunner):
        return
    master = isinstance(runner, MasterRunner)
    total = runner.stats.total
    result = {
        # Locust's *_stats.csv is rewritten every second but not at exit, so it can miss the last
        # second of requests; these are its final totals, the ones its printed summary shows.
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": total.total_rps,
        "mean_ms": total.avg_response_time,
        "hdr": _hist.encode().decode() if _hist.get_total_count() else "",
        "count": _hist.get_total_count(),
        "cpu_warning": bool(runner.cpu_warning_emitted
                            or getattr(runner, "worker_cpu_warning_emitted", False)),
        "role": "master" if master else "local",
        **_window,
    }
    tmp = f"{RESULT_OUT}.tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh)
    os.replace(tmp, RESULT_OUT)
