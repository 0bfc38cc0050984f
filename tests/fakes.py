"""A fake executor for fast tests of the matrix, resume and failure paths (hyperfine's mock
executor), built to tell right from wrong:

- the target is a real child process (its pid is sampled, killing it is a death) with a stats
  directory its "worker" writes sampler lines into (busy while it finishes abandoned requests,
  idle after), behind a stdlib HTTP server that answers like the agent and the app: /__bench/info, /__bench/healthz, 404 for an
  unknown path, 422 for a query the app refuses;
- the "Locust" writes a stats CSV in Locust 2.47's own columns with a distinct value in every
  percentile column, a failures CSV when requests failed, and a measure_result.json whose HDR
  histogram holds other, known latencies; it can also exit non-zero, hang past its deadline,
  write no CSV or count zero requests.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.run import hdr
from bench.run.loadspec import LoadSpec
from bench.run.services import Endpoints, Needs
from bench.scenario.cells import Cell, ServerConfig

LOCUST_COLUMNS = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time",
                  "Average Response Time", "Min Response Time", "Max Response Time",
                  "Average Content Size", "Requests/s", "Failures/s", "50%", "66%", "75%", "80%",
                  "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
# the fake Locust's percentile columns, each distinct: reading the wrong one shows
CSV_PCT = {"50%": 11.0, "66%": 12.0, "75%": 13.0, "80%": 14.0, "90%": 15.0, "95%": 16.0,
           "98%": 17.0, "99%": 18.0, "99.9%": 19.0, "99.99%": 20.0, "100%": 21.0}
CSV_MEAN, CSV_MAX = 10.5, 22.0
# the fake histogram: 1000 latencies, 1..1000 x 100 µs (p50 = 50.0 ms, p99 = 99.0 ms, max 100 ms)
HDR_VALUES_US = [i * 100 for i in range(1, 1001)]
# the fake Locust loop lag: 100 values, 1..100 x 20 µs (mean 1.01 ms: over the 1 ms limit, under 5 % of the 50 ms median latency)
LAG_VALUES_US = [i * 20 for i in range(1, 101)]
# what the fake target's worker reports inside every measured window
SAMPLED = {"busy_max": 3, "waiting_max": 2, "lag_ms": [9.0] * 5}
# just outside the window (the ramp before it, abandoned requests after it) it reports far more,
# which must not count
OUTSIDE = {"busy_max": 60, "waiting_max": 50, "lag_ms": [900.0] * 5}
LOCUST_LOG = "".join(f"fake locust line {i}\n" for i in range(1, 9))
TARGET_LOG = [f"fake target line {i}" for i in range(1, 9)]
SLEEPER = "import time; time.sleep(600)"
BURNER = "import time\nend = time.time() + 600\nwhile time.time() < end: pass"  # a core's worth of CPU
APP_PATHS = {f"/{s}/{w}" for s in ("def", "async")
             for w in ("noop", "cpu", "sleep", "blocking_sleep", "db", "db_blocking", "db_dep", "http")}
APP_LIMITS = {"ms": 60_000, "iterations": 50_000_000}


def write_locust_stats(path: Path, requests: int, rps: float, failures: int = 0) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LOCUST_COLUMNS)
        row = [requests, failures, CSV_PCT["50%"], CSV_MEAN, 1, CSV_MAX, 12, rps, failures / 10,
               *CSV_PCT.values()]
        # the endpoint's own row differs from the Aggregated one, so reading the wrong row shows
        w.writerow(["GET", "/x", requests + 1, failures + 1, *(v + 100 for v in row[2:])])
        w.writerow(["", "Aggregated", *row])


def write_locust_failures(path: Path, failures: int) -> None:
    """Locust's *_failures.csv: the most frequent error comes second, so sorting matters."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Method", "Name", "Error", "Occurrences"])
        w.writerow(["GET", "/x", "ConnectionResetError(104)", 1])
        w.writerow(["GET", "/x", "HTTPError('503 Server Error')", failures - 1])


def app_status(target: str) -> int:
    """The status the real app answers for GET target (its routes and Query bounds)."""
    url = urlsplit(target)
    if url.path in ("/__bench/info", "/__bench/healthz", "/healthz"):
        return 200
    if url.path not in APP_PATHS:
        return 404
    for key, values in parse_qs(url.query).items():
        if key in APP_LIMITS and not all(v.isdigit() and int(v) <= APP_LIMITS[key] for v in values):
            return 422
    return 200


class FakeTarget:
    managed = True

    def __init__(self, cfg: ServerConfig, affinity: list[int], stats_dir: Path | None = None,
                 tokens: int | None = None, broken_path: str | None = None, busy: bool = False,
                 on_stop: Callable[[FakeTarget], None] = lambda target: None, workers_shown: int | None = None,
                 late_workers_s: float = 0.0, misplace: str = "", worker_list: bool = True,
                 pool_off_by: int = 0, runs_server: str = "", routes: dict[str, int] | None = None) -> None:
        self.on_stop = on_stop
        self.stats_dir = stats_dir
        self.proc = subprocess.Popen([sys.executable, "-c", BURNER if busy else SLEEPER])
        self.busy_until = 0.0  # the worker reports busy threads until then
        self.requests: list[str] = []  # the paths it was asked for, in order
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # every worker where the app would put it on the CPUs this target was given (written out
        # here, not taken from benchagent/pinning.py, which the runner checks against)
        if (misplace or cfg.worker_pinning) == "core":
            placed = [[affinity[i % len(affinity)]] for i in range(cfg.workers)]
        else:
            placed = [list(affinity)] * cfg.workers
        # the first worker is the process itself (its pid is what a profiler samples), the others made up
        listed = [{"pid": self.proc.pid if i == 0 else 1000 + i, "slot": i, "cpus": c} for i, c in enumerate(placed)]
        shown = len(listed) if workers_shown is None else workers_shown
        info = {"cpu_affinity": placed[0], "server": runs_server or cfg.server, "workers": cfg.workers,
                "threadpool_tokens": cfg.threadpool_tokens if tokens is None else tokens,
                "db_pool_size": cfg.db_pool_size + pool_off_by, "http_pool_size": cfg.http_pool_size}
        all_by = time.time() + late_workers_s  # until then only the first worker has said where it runs
        seen = self.requests

        def info_now() -> dict[str, Any]:
            if not worker_list:  # an app from before worker pinning
                return {**info, "cpu_affinity": sorted(affinity)}
            return {**info, "worker_affinity": listed[:shown] if time.time() >= all_by else listed[:1]}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                broken = broken_path is not None and self.path.split("?")[0] == broken_path
                route = (routes or {}).get(self.path.split("?")[0])  # a team's app: its own paths
                status = 500 if broken else route if route is not None else app_status(self.path)
                body = json.dumps(info_now() if self.path == "/__bench/info" else {"ok": status == 200}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # a team's app's other methods: the body read, then as GET
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

            do_PUT = do_PATCH = do_DELETE = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        if stats_dir is not None:
            stats_dir.mkdir(parents=True, exist_ok=True)
            self.write_line(time.time(), 0, 0, [0.0])  # the app's sampler has a line by the first load
            threading.Thread(target=self._sample, daemon=True).start()

    def write_line(self, t: float, busy: int, waiting: int, lag_ms: list[float]) -> None:
        assert self.stats_dir is not None
        line = {"t": t, "pid": self.proc.pid, "busy_max": busy, "waiting_max": waiting, "lag_ms": lag_ms}
        with self._lock, (self.stats_dir / f"worker-{self.proc.pid}.jsonl").open("a") as fh:
            fh.write(json.dumps(line) + "\n")

    def _sample(self) -> None:
        # the app's sampler, every 20 ms instead of 500: busy until busy_until, idle after
        while not self._stop.wait(0.02) and self.alive():
            busy = 1 if time.time() < self.busy_until else 0
            self.write_line(time.time(), busy, busy, [0.0])

    def die(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(TARGET_LOG[-lines:])

    def save_log(self, dest: Path) -> None:
        dest.write_text("\n".join(TARGET_LOG) + "\n")

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        if self.alive():
            self.die()
        self.on_stop(self)


@dataclass
class FakeLoad:
    code: int = 0
    hangs: bool = False  # still running at the runner's deadline
    run_s: float = 0.0  # how long wait() takes: the monitor samples in between
    proc: subprocess.Popen[bytes] | None = None  # a process burning CPU as Locust would
    waited: list[float] = field(default_factory=list)  # the deadlines it was given
    killed: bool = False

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def poll(self) -> int | None:
        return None if self.hangs else self.code

    def wait(self, timeout: float) -> int:
        self.waited.append(timeout)
        time.sleep(self.run_s)
        if self.hangs:
            raise TimeoutError(f"Locust still running after {timeout:.0f} s")
        return self.code

    def kill(self) -> None:
        self.killed = True
        if self.proc:
            self.proc.kill()
            self.proc.wait()


@dataclass
class FakeServices:
    """PostgreSQL and the upstream as the runner sees them: started with what the run needs, and
    a database that dies once `db_dies_after` cells have asked for it."""

    started: list[Needs] = field(default_factory=list)
    db_dies_after: int | None = None
    burns: bool = False  # a "database" process burning a core while the run lasts
    proc: subprocess.Popen[bytes] | None = None
    asked: int = 0
    stopped: list[Path | None] = field(default_factory=list)

    def start(self, want: Needs) -> Endpoints:
        self.started.append(want)
        if self.burns:
            # burning before start() returns, as a real PostgreSQL is up by then: a CI run that
            # built images meanwhile saw a burner still starting through most of the window
            self.proc = subprocess.Popen([sys.executable, "-c", "print(flush=True)\n" + BURNER],
                                         stdout=subprocess.PIPE)
            assert self.proc.stdout is not None
            self.proc.stdout.readline()
        return Endpoints("host=127.0.0.1 port=1 user=bench", "http://127.0.0.1:2", {"postgresql": "fake"})

    def down(self, cell: Cell) -> str:
        if not cell.needs_db:
            return ""
        self.asked += 1
        if self.db_dies_after is not None and self.asked > self.db_dies_after:
            return "PostgreSQL is not running any more: FATAL: terminating (fake)"
        return ""

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def stop(self, keep_logs: Path | None = None) -> None:
        self.stopped.append(keep_logs)
        if self.proc:
            self.proc.kill()
            self.proc.wait()


@dataclass
class FakeBackend:
    name: str = "fake"
    fail_server: str | None = None  # start_target fails for this server name
    wrong_affinity: bool = False
    wrong_tokens: bool = False  # /info reports one token more than asked for
    runs_server: str = ""  # /info names this server, whichever was asked for
    workers_shown: int | None = None  # /info lists this many workers (None: all of them)
    late_workers_s: float = 0.0  # /info lists only the first worker for this long after the start
    misplace: str = ""  # the target places its workers as this pinning says, not as the cell asks
    broken_path: str | None = None  # the target answers 500 on this path
    die_on_path: str | None = None  # the target dies during the load of this path
    interrupt_after: int | None = None  # raise KeyboardInterrupt at this Locust run (1 = the first)
    no_aggregated_on_path: str | None = None  # a stats CSV without Locust's Aggregated row
    bad_hdr_on_path: str | None = None  # a measure_result.json whose histogram does not decode
    # the Locust run of every cell:
    locust_code: int = 0
    locust_hangs: bool = False
    no_csv: bool = False
    no_result: bool = False  # no measure_result.json: figures from the CSV alone
    zero_requests: bool = False
    failures: int = 0
    cpu_warning: bool = False
    lost_histogram: bool = False  # the result's count exceeds what its histogram holds
    empty_histogram: bool = False  # a result with totals but no latency recorded in its histogram
    no_window: bool = False  # a result without t_start/t_stop (Locust stopped before its window opened)
    window_s: float = 1.0  # the window of an instant run (the last window_s seconds)
    busy_after_stop_s: float = 0.0  # the target works this long on after each Locust run stops
    run_s: float = 0.0  # the measured run lasts this long, its window inside it; CPU burnt on both sides
    hdr_values: list[int] = field(default_factory=lambda: list(HDR_VALUES_US))
    lag_values: list[int] = field(default_factory=lambda: list(LAG_VALUES_US))  # Locust's loop lag
    rps_per_user: float = 10.0  # closed loop: the rate each user gets
    knee_rps: float = 1e9  # open loop: the rate it serves at most; beyond it latencies are 50 times longer
    dropped: int = 0  # open loop: requests due while max_inflight were outstanding
    late_ms: float = 0.0  # open loop: how late every send left (0: on time)
    starts: list[ServerConfig] = field(default_factory=list)
    loads: list[LoadSpec] = field(default_factory=list)
    load_started: list[float] = field(default_factory=list)
    runs: list[FakeLoad] = field(default_factory=list)
    live: list[FakeTarget] = field(default_factory=list)
    made: list[FakeTarget] = field(default_factory=list)
    closed: bool = False
    services: FakeServices = field(default_factory=FakeServices)
    pool_off_by: int = 0  # /info reports a db pool this much larger than asked for
    routes: dict[str, int] = field(default_factory=dict)  # a team's app: path -> the status it answers

    def start_services(self, want: Needs) -> Endpoints:
        return self.services.start(want)

    def start_target(self, cfg: ServerConfig, stats_dir: Path) -> FakeTarget:
        from bench.errors import TargetError
        from bench.scenario.cpuset import parse

        self.starts.append(cfg)
        if cfg.server == self.fail_server:
            raise TargetError(f"target exited before answering: cannot start {cfg.server}")
        affinity = [7] if self.wrong_affinity else sorted(parse(cfg.target_cpuset))
        tokens = cfg.threadpool_tokens + 1 if self.wrong_tokens else None
        target = FakeTarget(cfg, affinity, stats_dir, tokens, self.broken_path, busy=self.run_s > 0,
                            on_stop=self.live.remove, workers_shown=self.workers_shown,
                            late_workers_s=self.late_workers_s, misplace=self.misplace,
                            pool_off_by=self.pool_off_by, runs_server=self.runs_server, routes=self.routes)
        self.live.append(target)
        self.made.append(target)
        return target

    def start_load(self, spec: LoadSpec, out_dir: Path) -> FakeLoad:
        self.loads.append(spec)
        self.load_started.append(time.time())
        if self.interrupt_after == len(self.loads):
            raise KeyboardInterrupt
        target = self.live[-1] if self.live else None
        path = spec.path.split("?")[0]
        if target is not None and path == self.die_on_path:
            target.die()
        (out_dir / f"{spec.prefix}_locust.log").write_text(LOCUST_LOG)
        if target is not None:
            assert spec.host == target.url, "Locust loads the target the runner started"
        load = FakeLoad(code=self.locust_code, hangs=self.locust_hangs)
        if self.run_s:
            load.run_s = self.run_s
            load.proc = subprocess.Popen([sys.executable, "-c", BURNER])
        self.runs.append(load)
        if target is not None:
            target.busy_until = time.time() + self.busy_after_stop_s
        if self.no_csv:
            return load
        requests = 0 if self.zero_requests else spec.users * 100
        failures = self.failures if requests else 0
        write_locust_stats(out_dir / f"{spec.prefix}_stats.csv", requests, rps=spec.users * self.rps_per_user,
                           failures=failures)
        if failures:
            write_locust_failures(out_dir / f"{spec.prefix}_failures.csv", failures)
        if path == self.no_aggregated_on_path:
            (out_dir / f"{spec.prefix}_stats.csv").write_text(",".join(LOCUST_COLUMNS) + "\n")
        if path == self.bad_hdr_on_path:
            (out_dir / "measure_result.json").write_text('{"hdr": "not-a-histogram", "count": 3}')
        elif not self.no_result:
            self._write_result(out_dir / "measure_result.json", requests, failures, spec, target)
        return load

    def _write_result(self, path: Path, requests: int, failures: int, spec: LoadSpec,
                      target: FakeTarget | None) -> None:
        """What the locustfile writes at exit, with a measured window of the last second."""
        if self.run_s:  # a window ahead, inside the run that wait() is about to sit through
            t_start, t_stop = time.time() + 0.2, time.time() + self.run_s - 0.1
        else:  # the last second: the run is over at once
            t_stop = time.time() - 0.02
            t_start = t_stop - self.window_s
        hist = hdr.new_histogram()
        for value in self.hdr_values if requests and not self.empty_histogram else []:
            hist.record_value(value)
        count = hist.get_total_count() + (5 if self.lost_histogram else 0)
        lag = hdr.new_histogram()
        for value in self.lag_values:
            lag.record_value(value)
        # the final totals differ from the stats CSV's (which lags): these must win
        result: dict[str, Any] = {
            "requests": requests + 7 if requests else 0, "failures": failures + 1 if failures else 0,
            # a run that lasts gives the rate of its window; an instant one a fixed, known rate
            "rps": (requests + 7) / (t_stop - t_start) if self.run_s else spec.users * self.rps_per_user + 0.5,
            "mean_ms": 50.05, "hdr": hdr.encode(hist) if count else "",
            "count": count, "cpu_warning": self.cpu_warning, "role": "local",
            "lag_hdr": hdr.encode(lag) if self.lag_values else "", "warmup_requests": 123}
        if not self.no_window:
            result.update(t_begin=t_start - 1.0, t_start=t_start, t_stop=t_stop)
            # as the locustfile says when the window opens, for the profiler
            (path.parent / f"{spec.prefix}_window.json").write_text(
                json.dumps({"t_start": t_start, "duration_s": t_stop - t_start}))
        if spec.load_model == "open":
            self._open_loop(result, spec, t_stop - t_start)
        path.write_text(json.dumps(result))
        if target is not None and target.stats_dir is not None:
            target.write_line(t_start - 0.3, OUTSIDE["busy_max"], OUTSIDE["waiting_max"], OUTSIDE["lag_ms"])
            target.write_line(t_start + 0.5, SAMPLED["busy_max"], SAMPLED["waiting_max"], SAMPLED["lag_ms"])
            target.write_line(t_stop + 0.01, OUTSIDE["busy_max"], OUTSIDE["waiting_max"], OUTSIDE["lag_ms"])

    def _open_loop(self, result: dict[str, Any], spec: LoadSpec, window_s: float) -> None:
        """An open loop at the spec's rate: served up to knee_rps, queueing beyond it."""
        rate = spec.rate_per_user * spec.users
        due = round(rate * window_s)
        served = min(rate, self.knee_rps)
        late = hdr.new_histogram()
        for _ in range(due if self.late_ms else 0):
            late.record_value(int(self.late_ms * 1000))
        result.update(rps=served, requests=round(served * window_s),
                      open={"offered": due, "sent": due - self.dropped, "dropped": self.dropped,
                            "late": due if self.late_ms else 0},
                      late_hdr=hdr.encode(late) if self.late_ms else "")
        if rate > self.knee_rps:
            hist = hdr.new_histogram()
            for value in self.hdr_values:
                hist.record_value(value * 50)
            result.update(hdr=hdr.encode(hist))

    def metadata(self) -> dict[str, Any]:
        return {"fake": True}

    def close(self) -> None:
        for target in list(self.live):
            target.stop()
        self.closed = True


# py-spy as the profiler runs it. `record`: wait for SIGINT, then write one stack (FAKE_STACK, or an
# endpoint of the app's) with FAKE_SAMPLES samples (default: the pid) and py-spy's last line;
# FAKE_EARLY: end at once, as py-spy does when its process exits. `dump`: FAKE_DUMP_RC decides.
# Its first line, as py-spy's, says it samples: from then on a SIGINT gets its output. In Python,
# not bash: a bash started with SIGINT ignored (any background job of a script, mutmut's runner)
# cannot trap it, while py-spy, like this fake, sets its own handler.
PYSPY = """#!{python}
import os, signal, sys, time
args = sys.argv[1:]
if args[0] == "dump":
    print(os.environ.get("FAKE_DUMP_SAYS", "Error: Permission Denied"), file=sys.stderr)
    sys.exit(int(os.environ.get("FAKE_DUMP_RC", "0")))
pid, out = args[args.index("--pid") + 1], args[args.index("--output") + 1]
if os.environ.get("FAKE_EARLY"):
    print("py-spy> Stopped sampling because process exited", flush=True)
    sys.exit(0)
def finish(*_):
    samples = os.environ.get("FAKE_SAMPLES", pid)
    stack = os.environ.get("FAKE_STACK", "main (/srv/app/main.py:1);cpu (/srv/app/main.py:9)")
    with open(out, "w") as f:
        f.write(f"{{stack}} {{samples}}\\n")
    print(f"py-spy> Wrote raw flamegraph data to '{{out}}'. Samples: {{samples}} "
          f"Errors: {{os.environ.get('FAKE_ERRORS', '0')}}", flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, finish)
print("py-spy> Sampling process 100 times a second. Press Control-C to exit.", flush=True)
while True:
    time.sleep(0.05)
"""


def fake_pyspy(folder: Path) -> str:
    exe = folder / "py-spy"
    exe.write_text(PYSPY.format(python=sys.executable))
    exe.chmod(0o755)
    return str(exe)

