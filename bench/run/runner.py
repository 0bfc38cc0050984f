"""The matrix loop: for each cell x repeat, reuse or start the target, check it, run one Locust
(warmup, then the measured window), and append one row to summary.csv at once (a crash at cell
37 keeps 36)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.errors import RunDirWriteError, TargetError
from bench.results.row import SummaryRow
from bench.results.rundir import RunDir
from bench.run import attribution, hdr, procs
from bench.run.backends.base import Backend, LoadRun, Target
from bench.run.headroom import cpu_ms_per_request, headroom, is_saturated, late_flags, stuck
from bench.run.loadspec import load_spec
from bench.run.locust_csv import most_frequent_failure, read_aggregated
from bench.run.monitor import Monitor
from bench.run.profiler import CpuProfile, Outcome, pyspy_path
from bench.scenario import cpuset
from bench.scenario.cells import Cell, ServerConfig
from benchagent import (
    INFO,
    pinning,  # stdlib-only, like benchagent.sampler: shared with the target's workers
)
from benchagent.sampler import idle_after, read_dir

LOCUST_GRACE_S = 60.0  # start-up, stop and CSV writing on top of --run-time
DRAIN_DEADLINE_S = 120.0
DRAIN_POLL_S = 0.1  # the workers write a sampler line every 0.2 s (benchagent/sampler.py FLUSH_S)
SHORT_WINDOW = 0.9  # a window under 90 % of `duration` is noted in the row
WORKERS_DEADLINE_S = 30.0  # every worker of a started target has pinned itself and said where


class CellFailed(Exception):
    """The reason this cell is recorded as failed."""


@dataclass
class Runner:
    backend: Backend
    rundir: RunDir
    on_row: Callable[[SummaryRow], None] = lambda row: None
    clock: Callable[[], float] = time.time
    _target: Target | None = None
    _target_cfg: ServerConfig | None = None
    _stats_dir: Path | None = None
    _affinity_seen: str = ""  # what /info said, kept for the failed row too

    def run_all(self, items: list[tuple[Cell, int]],
                attempts: dict[tuple[str, int], int] | None = None) -> None:
        """Run each (cell, repeat), appending its row to summary.csv at once (the rows live there
        and nowhere else); `attempts` numbers retries."""
        try:
            for cell, repeat in items:
                row = self.run_cell(cell, repeat, (attempts or {}).get((cell.cell_id, repeat), 1))
                self.rundir.append_row(row)
                self.on_row(row)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the target and whatever the backend still runs."""
        self._stop_target()
        self.backend.close()

    def run_cell(self, cell: Cell, repeat: int, attempt: int) -> SummaryRow:
        """One measurement. Any error of this cell (ours, the target's, Locust's, a file it wrote
        that does not parse) fails this cell alone, recorded with its reason; the matrix goes on.
        Only Ctrl-C (KeyboardInterrupt, not an Exception) stops the matrix."""
        cell_dir = self.rundir.cell_dir(cell.cell_id, repeat, attempt)
        started = _iso(self.clock())
        base = identity_row(cell, repeat, attempt, self.rundir.name, self.backend.name)
        try:
            figures = self._measure(cell, cell_dir)
            row = SummaryRow(**{**base, "error": "", **figures, "status": "ok",
                                "target_affinity": self._affinity_seen, "started_at": started,
                                "ended_at": _iso(self.clock())})
        except RunDirWriteError:
            raise  # the run directory, not this cell: every later row would fail the same way
        except Exception as exc:
            known = isinstance(exc, CellFailed | TargetError)
            reason = str(exc) if known else f"{type(exc).__name__}: {exc}"
            row = SummaryRow(**{**base, "status": "failed", "error": _one_line(reason),
                                "target_affinity": self._affinity_seen, "started_at": started,
                                "ended_at": _iso(self.clock())})
        if self._target is not None:
            try:
                self._target.save_log(cell_dir / "target.log")
            except Exception as exc:  # a log we could not copy must not cost the row it belongs to
                with contextlib.suppress(OSError):  # a full disk: the row's own write says so next
                    (cell_dir / "target.log").write_text(f"bench: could not save the target's log: {exc}\n")
        return row

    def _measure(self, cell: Cell, cell_dir: Path) -> dict[str, Any]:
        self._affinity_seen = ""
        down = self.backend.services.down(cell)
        if down:
            raise CellFailed(down)
        target = self._ensure_target(cell)
        info = self._info(target, cell)
        (cell_dir / "target_info.json").write_text(json.dumps(info, indent=2))
        workers = [list(w.get("cpus", [])) for w in info.get("worker_affinity", [])]
        # a remote target (or an older app) lists no workers: what answered is all there is
        self._affinity_seen = pinning.describe(workers) or cpuset.format(info.get("cpu_affinity", []))
        if target.managed:  # a target we started must run where the cell says
            if info.get("server") != cell.server:
                raise CellFailed(f"target runs {info.get('server')}, not the requested {cell.server} (/info)")
            if len(workers) != cell.workers:
                raise CellFailed(f"{len(workers)} of the target's {cell.workers} workers said where they "
                                 f"run (/info worker_affinity, within {WORKERS_DEADLINE_S:g} s)")
            want = pinning.expected(sorted(cpuset.parse(cell.target_cpuset)), cell.workers,
                                    cell.worker_pinning)
            if sorted(workers) != sorted(want):
                raise CellFailed(f"target workers run on CPUs {self._affinity_seen}, not the "
                                 f"requested {pinning.describe(want)} "
                                 f"(worker_pinning = {cell.worker_pinning})")
            if info.get("threadpool_tokens") != cell.threadpool_tokens:
                raise CellFailed(f"target threadpool has {info.get('threadpool_tokens')} tokens, "
                                 f"not the requested {cell.threadpool_tokens}")
            for pool in ("db_pool_size", "http_pool_size"):
                if info.get(pool, 0) != getattr(cell, pool):
                    raise CellFailed(f"target {pool} is {info.get(pool, 0)}, not the requested "
                                     f"{getattr(cell, pool)} (/info)")
        self._verify_endpoint(target, cell)
        return self._locust(cell, cell_dir, target, info)

    def _info(self, target: Target, cell: Cell) -> dict[str, Any]:
        """/__bench/info once every worker of a started target has pinned itself and said where:
        /__bench/healthz answered as soon as the first one could."""
        deadline = time.monotonic() + WORKERS_DEADLINE_S
        while True:
            status, body = procs.request(f"{target.url}{INFO}")
            if status != 200 and not target.managed:
                return {}  # a target someone else runs, without the agent: its figures only
            if status != 200:
                raise CellFailed(f"{INFO} answered {status}: {_first_line(body)}")
            info = json.loads(body)
            if (not target.managed or len(info.get("worker_affinity", [])) >= cell.workers
                    or time.monotonic() >= deadline):
                return info
            time.sleep(0.05)

    def _verify_endpoint(self, target: Target, cell: Cell) -> None:
        """One request before the load, as the load sends it: a 422 or 500 (any status but the
        endpoint's expect_status) fails the cell with the first line of what came back, instead of
        filling a CSV with failures."""
        ask = cell.sends
        try:
            status, body = procs.request(f"{target.url}{ask.path}", ask.method, ask.body.encode() or None,
                                         dict(ask.headers), timeout=cell.wait_s + 30)
        except OSError as exc:
            raise CellFailed(f"{ask.method} {ask.path} failed before the load: {exc}") from None
        if status != ask.expect_status:
            raise CellFailed(f"{ask.method} {ask.path} answered {status}, not {ask.expect_status}, before "
                             f"the load: {_first_line(body)}")

    def _locust(self, cell: Cell, cell_dir: Path, target: Target, info: dict[str, Any]) -> dict[str, Any]:
        spec = load_spec(cell, target.url)
        profile = self._profile(cell, cell_dir, target, info, spec.prefix)
        started = self.clock()
        outcome = None
        try:
            load = self.backend.start_load(spec, cell_dir)
            try:
                with Monitor({"target": target.pids, "loadgen": load.pids,
                              "services": self.backend.services.pids}) as mon:
                    code = self._wait(load, spec.run_time_s + LOCUST_GRACE_S)
            finally:
                load.kill()
        finally:  # no sampler outlives its cell
            outcome = profile.finish() if profile is not None else None
        ended = self.clock()
        self._drain(ended, target)  # returns at once when the target is dead
        if not target.alive():
            self._drop_target()
            raise CellFailed(f"target died during the load: {target.log_tail(5)}")
        if code != 0:
            log = cell_dir / f"{spec.prefix}_locust.log"
            raise CellFailed(f"Locust exited with code {code}: {procs.tail(log, 5)}")
        window_start = started + max(cell.ramp_s, cell.warmup)  # unless Locust says when it was
        out = self._figures(cell, cell_dir, mon, window_start, ended, target.managed)
        if outcome is not None:
            notes = self._profile_figures(out, cell_dir, outcome, cell.profile_rate)
            if notes:
                out["error"] = "; ".join(filter(None, [out.get("error", ""), *notes]))
        return out

    def _profile(self, cell: Cell, cell_dir: Path, target: Target, info: dict[str, Any],
                 prefix: str) -> CpuProfile | None:
        """py-spy on every worker /info listed, from when the window opens (bench/run/profiler.py);
        the workers' own pids (in a container, its namespace's) mapped to this host's."""
        if cell.profile != "cpu":
            return None
        exe = pyspy_path()
        if exe is None:  # checked before the run started (bench/commands/run.py): gone since
            raise CellFailed("profile = \"cpu\": py-spy is no longer installed")
        host = {procs.own_pid(pid): pid for pid in target.pids()}
        host.pop(0, None)  # gone meanwhile
        workers = {f"worker-{w['pid']}": host[int(w["pid"])] for w in info.get("worker_affinity", [])
                   if int(w.get("pid", 0)) in host}
        if not workers:
            raise CellFailed("profile = \"cpu\": /info listed no worker this host can see")
        return CpuProfile(workers, cell.profile_rate, cell_dir / f"{prefix}_window.json",
                          cell_dir / "profile", exe, clock=self.clock).start()

    @staticmethod
    def _profile_figures(out: dict[str, Any], cell_dir: Path, outcome: Outcome, rate: int) -> list[str]:
        """The profile's columns into the row's figures, profile.folded beside them; its notes."""
        (cell_dir / "profile.folded").write_text(attribution.to_text(outcome.stacks))
        out.update(attribution.figures(outcome.stacks, outcome.window_s, rate, outcome.workers))
        return outcome.notes + attribution.notes(outcome.samples, outcome.errors, outcome.seconds,
                                                 outcome.window_s)

    def _drain(self, since: float, target: Target) -> None:
        """Wait (bounded) until the target finished what Locust abandoned at its stop: with a full
        threadpool queue that takes whole sleeps, and it would otherwise slow the next cell."""
        if not target.managed or self._stats_dir is None or not self._stats_dir.is_dir():
            return
        deadline = time.monotonic() + DRAIN_DEADLINE_S
        while time.monotonic() < deadline and target.alive():
            if idle_after(self._stats_dir, since, procs.own_pids(target.pids())):
                return
            time.sleep(DRAIN_POLL_S)

    def _wait(self, load: LoadRun, deadline_s: float) -> int:
        try:
            return load.wait(deadline_s)
        except TimeoutError as exc:
            raise CellFailed(str(exc)) from None

    def _figures(self, cell: Cell, cell_dir: Path, mon: Monitor, t0: float, t1: float,
                 sampled: bool) -> dict[str, Any]:
        stats_csv = cell_dir / "measure_stats.csv"
        if not stats_csv.exists():
            log = procs.tail(cell_dir / "measure_locust.log", 5)
            raise CellFailed(f"Locust wrote no {stats_csv.name}: {log}")
        agg = read_aggregated(stats_csv)
        result_path = cell_dir / "measure_result.json"
        hist, meta = hdr.load_result(result_path) if result_path.exists() else (None, {})
        if "requests" in meta:  # Locust's final totals; its stats CSV may lag by up to a second
            agg = replace(agg, requests=int(meta["requests"]), failures=int(meta["failures"]),
                          rps=float(meta["rps"]), mean_ms=float(meta["mean_ms"]))
        if agg.requests == 0:
            reason = "no request completed in the measured window"
            if sampled and self._stats_dir is not None and self._stats_dir.is_dir():
                window = float(meta.get("t_start", t0)), float(meta.get("t_stop", t1))
                inside = stuck(cell, read_dir(self._stats_dir, *window))
                if inside:  # what the target's workers were doing meanwhile
                    reason += f" ({inside})"
            raise CellFailed(reason)
        if meta and "t_start" not in meta:  # the statistics were never reset: warmup and ramp in them
            raise CellFailed("Locust stopped before its measured window opened (not every user was running "
                             "by the end of --run-time)")
        # Locust tells when it reset its statistics after the warmup and when it stopped: the window
        t0, t1 = float(meta.get("t_start", t0)), float(meta.get("t_stop", t1))
        out: dict[str, Any] = {"requests": agg.requests, "failures": agg.failures, "rps": agg.rps,
                               "mean_ms": agg.mean_ms, "p50_ms": agg.p50_ms, "p90_ms": agg.p90_ms,
                               "p95_ms": agg.p95_ms, "p99_ms": agg.p99_ms, "p999_ms": agg.p999_ms,
                               "max_ms": agg.max_ms, "latency_source": "locust"}
        if hist is not None and hist.get_total_count() > 0:
            out.update(hdr.percentiles_ms(hist), latency_source="hdr")
        # an ok row's error column carries what its figures should be read with
        notes = []
        if agg.failures:
            example = most_frequent_failure(cell_dir / "measure_failures.csv")
            notes.append(f"{agg.failures} failed requests, e.g. {example}")
        if "count_mismatch" in meta:  # a Locust process's histogram was lost on the way
            notes.append(f"latency histogram incomplete ({meta['count_mismatch']})")
        if "t_start" in meta and t1 - t0 < SHORT_WINDOW * cell.duration:  # the --run-time backstop cut it
            notes.append(f"measured window {t1 - t0:.1f} s, not the {cell.duration:g} s asked")
        accounting = open_accounting(cell, meta, t1 - t0, agg.rps, agg.requests)
        out.update(accounting)
        if accounting["dropped"]:
            notes.append(f"{accounting['dropped']} requests dropped: max_inflight "
                         f"{cell.max_inflight} were outstanding when they were due")
        if notes:
            out["error"] = "; ".join(notes)
        load_use = mon.usage("loadgen", t0, t1)
        lag = hdr.lag_mean_ms(meta)
        target_use = mon.usage("target", t0, t1)
        out.update(
            loadgen_cpu_pct=load_use.cpu_pct,
            loadgen_cpu_ms_per_request=cpu_ms_per_request(load_use.cpu_pct, agg.rps),
            loadgen_headroom=headroom(cell, load_use.cpu_pct),
            loadgen_lag_ms=lag,
            # Locust's own warning, what we sampled, or an open loop that could not keep its schedule
            loadgen_saturated=bool(meta.get("cpu_warning")) or is_saturated(
                cell, load_use.cpu_pct, load_use.max_proc_cpu_pct, lag, out["p50_ms"])
                or late_flags(accounting["late_p99_ms"], out["p99_ms"]),
            target_cpu_pct=target_use.cpu_pct, target_rss_mb=target_use.rss_mb,
            services_cpu_pct=mon.usage("services", t0, t1).cpu_pct if cell.db_cpuset else 0.0,
            target_threads=target_use.threads,
            cpu_ms_per_request=cpu_ms_per_request(target_use.cpu_pct, agg.rps),
        )
        if sampled and self._stats_dir is not None and self._stats_dir.is_dir():
            out.update(read_dir(self._stats_dir, t0, t1))
        return out

    def _ensure_target(self, cell: Cell) -> Target:
        cfg = cell.server_config
        if self._target is not None and (self._target_cfg != cfg or not self._target.alive()):
            self._stop_target()
        if self._target is None:
            self._stats_dir = self.rundir.new_target_dir() / "stats"
            self._target = self.backend.start_target(cfg, self._stats_dir)
            self._target_cfg = cfg
        return self._target

    def _stop_target(self) -> None:
        if self._target is not None:
            self._target.stop()
        self._drop_target()

    def _drop_target(self) -> None:
        self._target, self._target_cfg = None, None


def open_accounting(cell: Cell, meta: dict[str, Any], window_s: float, rps: float,
                    requests: int) -> dict[str, Any]:
    """The open loop's figures from the result's counts (loadgen/openloop.py); a closed loop
    offers what it achieves, and its latencies run from when each request left. Offered and
    achieved are counts over the same window: Locust's own rate divides by its span to the last
    response, which with several processes ends later than the window (on 16 CPUs, 11 processes:
    199.4 req/s from 1,004 responses against 1,008 due in a 5.0 s window)."""
    if not cell.is_open:
        return {"latency_from": "sent", "offered_rps": 0.0, "achieved_rps": rps, "late_sends": 0,
                "late_p99_ms": 0.0, "dropped": 0}
    counts = meta.get("open")
    if not isinstance(counts, dict):
        raise CellFailed("the open loop's result has no accounting (offered, dropped, late): "
                         "is the locustfile older than the runner?")
    return {"latency_from": "intended",
            "offered_rps": int(counts.get("offered", 0)) / window_s if window_s > 0 else 0.0,
            "achieved_rps": requests / window_s if window_s > 0 else rps,
            "late_sends": int(counts.get("late", 0)),
            "late_p99_ms": hdr.p99_ms(meta.get("late_hdr", "")), "dropped": int(counts.get("dropped", 0))}


def identity_row(cell: Cell, repeat: int, attempt: int, run_id: str, backend: str) -> dict[str, Any]:
    """The cell's parameters as summary columns: the spec travels with its results."""
    return {"run_id": run_id, "cell_id": cell.cell_id, "repeat": repeat, "attempt": attempt,
            "backend": backend, **cell.columns()}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _first_line(body: bytes) -> str:
    lines = body.decode("utf-8", "replace").strip().splitlines()
    return lines[0][:200] if lines else "(empty body)"


def _one_line(text: str) -> str:
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())[:500]
