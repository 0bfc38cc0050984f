"""The measured window inside one Locust run: warmup (it covers the ramp), then a reset, then
the measurement, without a second Locust start-up.

The window opens when every user runs and BENCH_WARMUP_S seconds have passed since the test
started, whichever comes last. Then the process that owns the statistics (a standalone Locust, or
the master of --processes / --master) resets Locust's statistics, its CPU warnings and our
histograms, and a master tells its workers to do the same. BENCH_DURATION_S seconds later it stops
Locust, so the window is exactly that long however late it opened (the runner's --run-time is only
a backstop). A worker report already on its way holds requests from before
the reset, so the master drops each worker's reports until that worker's acknowledgement arrives:
one ZeroMQ connection per worker delivers in order, so every report after the acknowledgement
holds only requests the worker made after its own reset. Locust's statistics and the histograms
travel in the same report and are dropped together: they keep counting the same requests.

Stdlib and Locust only (the image copies loadgen/*.py beside the locustfile).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING, MasterRunner, WorkerRunner
from locust.stats import StatsEntry

RESET = "bench_reset"
ACK = "bench_reset_ack"


@dataclass
class Window:
    warmup_s: float
    duration_s: float  # 0: no stop of its own (by hand, `docker compose up`: --run-time decides)
    on_reset: Callable[[], None]  # clears this process's own recordings (histograms)
    # told (t_start, duration_s) the moment the window opens: the runner's profiler starts then
    on_open: Callable[[float, float], None] = lambda t_start, duration_s: None
    t_begin: float = 0.0  # test start: the warmup counts from here
    t_start: float = 0.0  # the reset: the measured window opens
    t_stop: float = 0.0
    warmup_requests: int = 0  # what the statistics held when they were reset
    pending: set[str] = field(default_factory=set)  # workers whose acknowledgement has not come
    _opening: bool = False

    def install(self, environment: Environment) -> None:
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            runner.register_message(RESET, self._reset_worker)
        elif isinstance(runner, MasterRunner):
            runner.register_message(ACK, self._acked)

    def test_started(self) -> None:
        self.t_begin = time.time()

    def spawning_complete(self, environment: Environment) -> None:
        # workers fire this too (when the master says so); only the owner of the statistics opens
        if self._opening or isinstance(environment.runner, WorkerRunner):
            return
        self._opening = True
        assert environment.runner is not None
        # in the runner's own group: a Locust that quits first kills it, and nothing is reset after
        environment.runner.greenlet.spawn(self._open, environment)

    def _open(self, environment: Environment) -> None:
        delay = self.t_begin + self.warmup_s - time.time()
        if delay > 0:
            gevent.sleep(delay)
        runner = environment.runner
        assert runner is not None
        if self.t_stop or runner.state in (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP):
            return  # stopped first: no window (the runner fails the cell)
        self.warmup_requests = runner.stats.total.num_requests
        if isinstance(runner, MasterRunner):
            self.pending = set(runner.clients.keys())
            runner.worker_cpu_warning_emitted = False  # a warning in the warmup is not the window's
            for client in runner.clients.values():
                client.cpu_warning_emitted = False
        runner.cpu_warning_emitted = False
        runner.stats.reset_all()
        self.on_reset()
        self.t_start = time.time()
        if isinstance(runner, MasterRunner):
            runner.send_message(RESET)  # to every worker
        self.on_open(self.t_start, self.duration_s)
        if self.duration_s > 0:
            # outside the runner's group, as Locust's own --run-time timer: quit() kills that group
            gevent.spawn_later(self.duration_s, runner.quit)

    def _acked(self, environment: Environment, msg: Any) -> None:
        self.pending.discard(msg.node_id)

    def _reset_worker(self, environment: Environment, msg: Any) -> None:
        runner = environment.runner
        assert runner is not None
        runner.stats.reset_all()
        self.on_reset()
        runner.send_message(ACK)

    def admit(self, client_id: str, data: dict[str, Any], stats: Any) -> bool:
        """False (and the report emptied, so Locust's own listener merges nothing) for a report
        a worker sent before it reset."""
        if client_id not in self.pending:
            return True
        data["stats"] = []
        data["errors"] = {}
        data["stats_total"] = StatsEntry(stats, "Aggregated", None).get_stripped_report()
        return False

    def stopped(self) -> None:
        self.t_stop = time.time()

    def times(self) -> dict[str, float]:
        """The test's start (t_begin) and the window (t_start, t_stop) for the result JSON, once
        the window opened (nothing when it never did: Locust stopped first)."""
        if not self.t_start:
            return {}
        return {"t_begin": self.t_begin, "t_start": self.t_start, "t_stop": self.t_stop or time.time()}
