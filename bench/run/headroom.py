"""How much load-generator capacity a cell had, and whether Locust, not the target, set its pace.

Pure functions of one cell's parameters and its measured figures, so each threshold is tested
on made-up numbers. Two signals, either of which flags a row `loadgen_saturated`:

- CPU: one Locust process is one gevent loop, so it cannot use more than one core; the busiest
  process near a full core, or all of them near the cores they may use, is a Locust at its limit.
  The second test is the headroom's (the requests/s Locust's cores allow at the CPU cost per
  request it measured, over the requests/s it achieved) at 1/0.9 or less.
- Event-loop lag (loadgen/lag.py): a Locust starved by another process on its cores uses little
  CPU, yet sends late. Measured on this project's 2-core VM (Locust on one core, an async no-op
  target on the other, 10 users, 4 s windows, three runs each): alone, the loop's mean lag was
  0.37-0.40 ms; beside two busy-loop processes on that core, 3.3-3.9 ms, with a third of the
  requests/s (2,000-2,700 vs 8,300-9,100) while Locust used about half a core; beside three (in
  the end-to-end test), 2.2-2.8 ms with half the requests/s. (Its median is no
  use: starved at about half the time, half the ticks wake on time, and it jumped between 0.6 and
  3.8 ms from run to run.) A Locust that waits on its target loses little beside the same
  neighbours: 100 users of a 100 ms sleep, mean lag 3.3 ms, 2 % fewer requests/s. In a closed loop
  the lag adds to every request's turn, so the lag flags a row when its mean is both over
  LAG_LIMIT_MS (between the two: 2.5 times the lag of a Locust alone, under half the least
  starved one) and over LAG_SHARE_OF_LATENCY of the median
  latency (a loss of about that share of requests/s).
"""

from __future__ import annotations

import math
from typing import Any

from bench.results.row import SummaryRow
from bench.scenario import cpuset
from bench.scenario.cells import Cell

SATURATED_PCT = 90.0  # of a core per Locust process, or of the cores Locust may use in total
LATE_SHARE_OF_P99 = 0.1  # open loop: sends this late (p99) against the p99 latency: schedule not kept
LAG_LIMIT_MS = 1.0
LAG_SHARE_OF_LATENCY = 0.05


def usable_cores(cell: Cell | SummaryRow) -> int:
    """Cores Locust can use: one per process that runs users (no more processes than users get
    one), at most its CPU set's size."""
    generators = cell.loadgen_workers or cell.loadgen_processes
    return min(generators, cell.users, len(cpuset.parse(cell.loadgen_cpuset)))


def cpu_ms_per_request(cpu_pct: float, rps: float) -> float:
    """CPU time per request in ms from a CPU rate (100 = one core) and a request rate: rates of the
    same window, so a sampled span shorter than the window does not bias it."""
    return 10.0 * cpu_pct / rps if rps > 0 else 0.0


def headroom(cell: Cell, loadgen_cpu_pct: float) -> float:
    """The requests/s Locust's usable cores allow at its measured cost per request, over the
    requests/s achieved (= usable cores over cores used); 0.0 when no CPU use was sampled."""
    if loadgen_cpu_pct <= 0:
        return 0.0
    return 100.0 * usable_cores(cell) / loadgen_cpu_pct


def lag_flags(lag_ms: float, p50_ms: float) -> bool:
    """Locust's loop (mean lag `lag_ms`) woke late enough to slow requests of median `p50_ms`."""
    return lag_ms >= LAG_LIMIT_MS and lag_ms >= LAG_SHARE_OF_LATENCY * p50_ms


def late_flags(late_p99_ms: float, p99_ms: float) -> bool:
    """An open loop whose sends were late (p99 of the lateness) by over LAG_LIMIT_MS and over
    LATE_SHARE_OF_P99 of the p99 latency did not keep its schedule: a visible part of the tail it
    reports (measured from each due time) is Locust's own delay. Measured on this project's 2-core
    VM, a Locust at a fifth of its core sends 5-10 % of requests over 1 ms late (p99 1.1-1.6 ms):
    harmless beside a 100 ms sleep, most of a sub-millisecond no-op's latency."""
    return late_p99_ms >= LAG_LIMIT_MS and late_p99_ms >= LATE_SHARE_OF_P99 * p99_ms


def is_saturated(cell: Cell, total_pct: float, busiest_pct: float, lag_ms: float, p50_ms: float) -> bool:
    capacity = 100.0 * usable_cores(cell)
    return (busiest_pct >= SATURATED_PCT or total_pct >= capacity * SATURATED_PCT / 100
            or lag_flags(lag_ms, p50_ms))


def cpus_needed(rps: float, loadgen_cpu_ms: float) -> int:
    """Locust processes (one core each) that drive `rps` at this cost per request and stay under
    SATURATED_PCT of their cores; 0 when the cost is unknown."""
    if rps <= 0 or loadgen_cpu_ms <= 0:
        return 0
    return max(1, math.ceil(rps * loadgen_cpu_ms / (10.0 * SATURATED_PCT)))


def cpus_to_load_fully(row: SummaryRow) -> int:
    """Locust CPUs this row's target would have needed: for a CPU-bound workload (noop, cpu) whose
    target had idle cores, the requests/s scaled up to all of them (an estimate: a target's cost
    per request is not constant); otherwise the requests/s reached, with 10 % to spare."""
    target_cores = min(row.workers, len(cpuset.parse(row.target_cpuset)))
    rps = row.rps
    if row.workload in ("noop", "cpu") and 0 < row.target_cpu_pct < SATURATED_PCT * target_cores:
        rps = row.rps * 100.0 * target_cores / row.target_cpu_pct
    return cpus_needed(rps, row.loadgen_cpu_ms_per_request)


def at_cpu_limit(row: SummaryRow) -> bool:
    """Locust used (nearly) all the CPU it had: a busy loop lags too, whatever its lag says."""
    return 0 < row.loadgen_headroom < 100.0 / SATURATED_PCT


def advice(row: SummaryRow) -> str:
    """The end-of-run line for a flagged row: what Locust had, what it cost, what it needed."""
    had = usable_cores(row)
    cost = f"{row.loadgen_cpu_ms_per_request:.3f} ms of Locust CPU per request"
    at_limit = at_cpu_limit(row)
    if late_flags(row.late_p99_ms, row.p99_ms) and not at_limit:
        return (f"{row.cell_id}: Locust had {had} CPU(s), {cost}, and sent its requests up to "
                f"{row.late_p99_ms:.1f} ms late (p99; the p99 latency is {row.p99_ms:.1f} ms): it could not "
                "keep the open loop's schedule, so give it CPUs nothing else runs on, or more of them")
    if lag_flags(row.loadgen_lag_ms, row.p50_ms) and not at_limit:
        return (f"{row.cell_id}: Locust had {had} CPU(s), {cost}, and its event loop woke "
                f"{row.loadgen_lag_ms:.1f} ms late on average: it waited for its CPUs, so give it CPUs "
                "nothing else runs on")
    # at its CPU limit, it needed more than it had whatever the estimate says
    need = max(cpus_to_load_fully(row), had + 1)
    return (f"{row.cell_id}: Locust had {had} CPU(s), {cost}; loading this target fully takes about "
            f"{need} (loadgen_cpuset / loadgen_processes, or Locust on a second VM with --target-url)")


def stuck(cell: Cell, inside: dict[str, Any]) -> str:
    """What the target's workers were doing while nothing completed: every def request in a thread
    waiting for a connection while the requests that hold one wait for a thread is the deadlock
    of a sync dependency on a pool smaller than the threadpool (docs/real-io.md)."""
    busy, queued = inside["threadpool_busy_max"], inside["threadpool_waiting_max"]  # sampler.aggregate's
    pool_busy, pool_waiting = inside["db_pool_busy_max"], inside["db_pool_waiting_max"]
    if not (busy or pool_busy):
        return ""
    text = (f"inside the target: {busy} threads busy, {queued} requests waiting for one, "
            f"{pool_busy} pooled connections in use, {pool_waiting} requests waiting for one")
    if cell.db_dependency and cell.style == "def" and busy >= cell.threadpool_tokens and queued \
            and pool_waiting:
        text += ": the threadpool and the connection pool wait on each other"
    return text
