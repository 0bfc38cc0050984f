"""One endpoint per run, closed or open loop, with precise latencies.

Env: BENCH_PATH (path + query, e.g. /async/sleep?ms=100; default /async/noop), BENCH_METHOD (GET),
BENCH_BODY (the request body, as bytes of its text), BENCH_HEADERS (a JSON object), BENCH_EXPECT_STATUS
(200: any other status counts as a failure; redirects are not followed), BENCH_LOAD_MODEL
("closed", the default: each user sends its next request when the last one answered; "open":
each Locust user, one per process, sends BENCH_RATE requests/s at their scheduled times, spaced
by BENCH_ARRIVALS "constant" or "poisson", with at most BENCH_MAX_INFLIGHT outstanding, and
measures each latency from its due time: loadgen/openloop.py), BENCH_WARMUP_S
(seconds from the start, ramp included, before the measured window opens; 0: as soon as every user
runs), BENCH_DURATION_S (the window's length: Locust stops then; 0: --run-time decides),
BENCH_WINDOW_OUT (where the process that owns the window writes {"t_start", "duration_s"} the
moment it opens: the runner's CPU profiler samples the target from then on), BENCH_WAIT_READY_S
(seconds to wait for the target's /__bench/healthz before loading it; 0, the default, does not
wait), BENCH_RESULT_OUT (where the local or master process writes its result
JSON at exit):

    {"hdr": base64 HdrHistogram.encode() ("" when empty), "count": requests in it,
     "requests", "failures", "rps", "mean_ms": Locust's final totals (measured window only),
     "lag_hdr": the processes' event-loop lag, same encoding (loadgen/lag.py),
     "warmup_requests": requests before the window, "cpu_warning": bool,
     "role": "local" | "master", "t_start", "t_stop": unix times of the window,
     open loop only: "open": {"offered", "sent", "dropped", "late"} counts of the window,
     "late_hdr": every send's lateness after its due time, same encoding}

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

import gevent
import gevent.pool
from hdr_config import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS
from hdrh.histogram import HdrHistogram
from lag import LoopLag
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from openloop import Counters, OpenLoop, latency_ms, schedule
from ready import wait_ready
from window import Window

PATH = os.environ.get("BENCH_PATH", "/async/noop")
# the request, when it is more than a GET answered 200 (an app's own [[endpoints]]): its method, body
# and headers, and the one status that counts as success (Locust's own rule is any status below 400)
METHOD = os.environ.get("BENCH_METHOD", "GET")
BODY = os.environ.get("BENCH_BODY", "").encode() or None
HEADERS = json.loads(os.environ.get("BENCH_HEADERS") or "{}") or None
EXPECT_STATUS = int(os.environ.get("BENCH_EXPECT_STATUS") or 200)
PLAIN = (METHOD, BODY, HEADERS, EXPECT_STATUS) == ("GET", None, None, 200)
RESULT_OUT = os.environ.get("BENCH_RESULT_OUT", "")
WINDOW_OUT = os.environ.get("BENCH_WINDOW_OUT", "")
WARMUP_S = float(os.environ.get("BENCH_WARMUP_S") or 0)
DURATION_S = float(os.environ.get("BENCH_DURATION_S") or 0)
WAIT_READY_S = float(os.environ.get("BENCH_WAIT_READY_S") or 0)
OPEN = os.environ.get("BENCH_LOAD_MODEL", "closed") == "open"
RATE = float(os.environ.get("BENCH_RATE") or 0)  # per Locust user (the runner split the cell's rate)
ARRIVALS = os.environ.get("BENCH_ARRIVALS", "constant")
MAX_INFLIGHT = int(os.environ.get("BENCH_MAX_INFLIGHT") or 1000)  # per Locust user
HDR_KEY = "bench_hdr"  # our entries in the worker -> master stats message
LAG_KEY = "bench_lag"
LATE_KEY = "bench_late"
OPEN_KEY = "bench_open"


def new_histogram() -> HdrHistogram:
    # the settings bench/run/hdr.py reads with (loadgen/hdr_config.py, beside this file: Locust puts
    # this file's folder on sys.path while it loads it)
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


_hist = new_histogram()
_lag = LoopLag(new_histogram())
_open = Counters(new_histogram())  # open loop: what was due, sent, dropped and late


# what a worker ships to its master in each stats report, under these keys
_SHIPPED = ((HDR_KEY, _hist), (LAG_KEY, _lag.hist), (LATE_KEY, _open.late_hist))


def _clear() -> None:
    _hist.reset()
    _lag.hist.reset()
    _open.reset()


def _opened(t_start: float, duration_s: float) -> None:
    if WINDOW_OUT:
        _write_json(WINDOW_OUT, {"t_start": t_start, "duration_s": duration_s})


_window = Window(WARMUP_S, DURATION_S, on_reset=_clear, on_open=_opened)
_env: dict[str, Environment] = {}


class EndpointUser(FastHttpUser):
    # closed loop: the next request leaves when the last one answered, like `ab -c N`
    abstract = OPEN
    wait_time = constant(0)

    @task
    def hit(self) -> None:
        if PLAIN:  # the built-in app's: no response context to build per request
            self.client.get(PATH, name=PATH)
            return
        with self.client.request(METHOD, PATH, name=PATH, data=BODY, headers=HEADERS, catch_response=True,
                                 allow_redirects=False) as response:
            judge(response)


class OpenLoopUser(FastHttpUser):
    # open loop: one user per Locust process sends on a schedule, one greenlet per request
    abstract = not OPEN
    concurrency = MAX_INFLIGHT  # connections: a request never waits for one beyond max_inflight
    wait_time = constant(0)

    def on_start(self) -> None:
        self._requests = gevent.pool.Group()

    def on_stop(self) -> None:
        self._requests.kill(block=False)  # the window is over: what is still in flight is not counted

    @task
    def drive(self) -> None:
        OpenLoop(schedule(RATE, ARRIVALS), self._send, MAX_INFLIGHT, _open, time.perf_counter,
                 gevent.sleep, self._requests.spawn).run()

    def _send(self, due: float) -> None:
        with self.client.request(METHOD, PATH, name=PATH, data=BODY, headers=HEADERS, catch_response=True,
                                 allow_redirects=False) as response:
            # Locust timed it from when it left; the client waited from when it was due
            response.request_meta["response_time"] = latency_ms(due, time.perf_counter())
            if not PLAIN:
                judge(response)


def judge(response: Any) -> None:
    """Success is the endpoint's expect_status, and nothing else (a 201 expected, a 200 is wrong)."""
    if response.status_code == EXPECT_STATUS:
        response.success()
    else:
        response.failure(f"HTTP {response.status_code}, not {EXPECT_STATUS}")


@events.request.add_listener
def _record(response_time: float, **kw: Any) -> None:
    # every request, failed ones included, as Locust's own request count does
    _hist.record_value(max(1, round(response_time * 1000)))


@events.init.add_listener
def _init(environment: Environment, **kw: Any) -> None:
    _env["env"] = environment
    _window.install(environment)
    if not isinstance(environment.runner, MasterRunner):  # the processes that run users
        _lag.start()
    # the process that starts the load waits (workers only follow the master)
    if WAIT_READY_S > 0 and environment.host and not isinstance(environment.runner, WorkerRunner):
        wait_ready(environment.host, WAIT_READY_S)


@events.test_start.add_listener
def _started(environment: Environment, **kw: Any) -> None:
    _window.test_started()


@events.spawning_complete.add_listener
def _spawned(user_count: int, **kw: Any) -> None:
    if "env" in _env:
        _window.spawning_complete(_env["env"])


@events.report_to_master.add_listener
def _ship(client_id: str, data: dict[str, Any]) -> None:
    # a worker sends what it recorded since its last report, then starts afresh (Locust's stats do
    # the same); its last report leaves when the master's "quit" arrives (WorkerRunner.worker)
    if OPEN:
        data[OPEN_KEY] = _open.as_dict()
    for key, hist in _SHIPPED:
        if hist.get_total_count():
            data[key] = hist.encode().decode("ascii")
    _clear()


@events.worker_report.add_listener
def _merge(client_id: str, data: dict[str, Any]) -> None:
    # registered at import, so it runs before Locust's own merge of the same report
    runner = _env["env"].runner if "env" in _env else None
    if runner is None or not _window.admit(client_id, data, runner.stats):
        return
    for key, hist in _SHIPPED:
        if data.get(key):
            hist.add(HdrHistogram.decode(data[key]))
    if OPEN_KEY in data:
        _open.add(data[OPEN_KEY])


@events.test_stop.add_listener
def _stopped(environment: Environment, **kw: Any) -> None:
    _window.stopped()


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
        "hdr": _encoded(_hist),
        "count": _hist.get_total_count(),
        "lag_hdr": _encoded(_lag.hist),
        "warmup_requests": _window.warmup_requests,
        # a master also counts its workers' warnings (from their heartbeats' CPU usage)
        "cpu_warning": bool(runner.cpu_warning_emitted or runner.worker_cpu_warning_emitted),
        "role": "master" if isinstance(runner, MasterRunner) else "local",
        **_window.times(),
    }
    if OPEN:
        result.update(open=_open.as_dict(), late_hdr=_encoded(_open.late_hist))
    _write_json(RESULT_OUT, result)


def _write_json(path: str, data: dict[str, Any]) -> None:
    # whole or not at all: the runner reads these files while Locust runs, or after it died
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _encoded(hist: HdrHistogram) -> str:
    return hist.encode().decode("ascii") if hist.get_total_count() else ""
