"""Each comparison in full, and what bound each cell: generated from the rows (never written by hand).

The report opens with bench/judge/answer.py's table, which names each cell's limit from here; the
lines below follow the plots and tables.

Per group of cells that differ only in style, def against async as ratios (requests/s, CPU per
request) with their intervals; the capacity within the objective where a search measured it; and
for every cell the limit that bound it, named from the evidence the run recorded, with the
suggestion that follows from it. Cells whose requests/s are floors (Locust saturated) say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.results.row import SummaryRow
from bench.results.stats import PARAMS, CellStats
from bench.run.attribution import FEW_SAMPLES, PARTS
from bench.scenario import cpuset
from bench.scenario.keys import CLOSED_ONLY, OPEN_ONLY, SCOPED, differs

CPU_FULL = 0.9  # of the cores the target's workers can use
LOOP_LAG_MS = 10.0  # p99 lateness of the target's 10 ms timer: the loop is late
BUSY_LOOP = 0.5  # a late loop with at least this share of its cores busy is overloaded, not blocked
NOT_PAIRED = ("style", "port")
PART_NAMES = {"hop": "thread hop", "loop": "event loop", "server": "server", "framework": "framework",
              "app": "app code", "agent": "bench agent", "rest": "other libraries"}
SHOWN_SHARE = 10.0  # parts of a profile named in the verdict: at least this % of its samples
HOP_GONE = 0.5  # on the loop, a hop share under half of def's: the hop is gone, not merely smaller
# the styles compared within a group, the second over the first
PAIRS = (("def", "async"), ("as_written", "on_loop"))
# where a style's path operation runs its body: async def (the built-in app's "async"), or a
# team's sync ones moved onto the loop (on_loop); as_written keeps each where the app put it
ON_THE_LOOP = ("async", "on_loop")
UNBLOCK = {
    "async": "move blocking calls out of async def (a def endpoint, or run_in_threadpool)",
    "def": "move blocking calls out of async def (a def endpoint, or run_in_threadpool)",
    # on_loop cannot tell a def moved onto the loop from an async def that was there already
    "on_loop": "its body blocks the loop: a def endpoint should stay def; an async def one blocks as "
               "written too (make it def, or wrap the call in run_in_threadpool)",
    "as_written": "an async def path operation or dependency blocks: make it def, or wrap the call in "
                  "run_in_threadpool",
}


@dataclass(frozen=True)
class Limit:
    name: str  # what bound the cell
    evidence: str
    suggestion: str = ""

    def text(self) -> str:
        return f"{self.name} ({self.evidence})" + (f": {self.suggestion}" if self.suggestion else "")


def limit_of(rows: list[SummaryRow]) -> Limit:
    """What bound one cell, from its ok repeats (the worst of each signal)."""
    r = max(rows, key=lambda row: row.rps)  # its parameters; the signals below take every repeat
    if any(row.loadgen_saturated for row in rows):
        return Limit("the load generator", "Locust was saturated: requests/s is a floor",
                     "give Locust more CPUs (loadgen_cpuset, loadgen_processes) or a second VM")
    cores = min(r.workers, len(cpuset.parse(r.target_cpuset)))
    cpu = max(row.target_cpu_pct for row in rows)
    if cpu >= CPU_FULL * 100 * cores:
        more = ("add workers (workers = \"cores\")" if r.workers < len(cpuset.parse(r.target_cpuset))
                else "give the target more cores (target_cpuset) and workers")
        return Limit("the target's CPU", f"{cpu:.0f} % of {cores} core(s)", more)
    # the middle repeat's lag (the higher of two): one repeat's late timer, a neighbour's burst,
    # would otherwise name the loop where the other repeats show none
    lag = sorted(row.loop_lag_p99_ms for row in rows)[len(rows) // 2]
    blocked = Limit("the event loop", f"its timers fired up to {lag:.0f} ms late (p99) with the CPU at "
                    f"{cpu:.0f} %: a call blocks it", UNBLOCK[r.style])
    # a def endpoint (as_written: the app's sync ones) runs off the loop, so a late loop with its
    # pool full is the pool's queue, not a block; everywhere else a blocked loop holds up all else
    if r.style in ON_THE_LOOP and lag >= LOOP_LAG_MS and cpu < BUSY_LOOP * 100 * cores:
        return blocked  # in async def a blocked loop holds up all else, a full pool included
    busy = max(row.threadpool_busy_max for row in rows)
    waiting = max(row.threadpool_waiting_max for row in rows)
    in_use = max(row.db_pool_busy_max for row in rows)
    queued = max(row.db_pool_waiting_max for row in rows)
    if r.db_pool_size and in_use >= r.db_pool_size and queued > 0:
        # before the threadpool: threads that wait for a connection are busy threads too
        evidence = f"{in_use} of {r.db_pool_size} connections in use, up to {queued} requests waiting for one"
        if r.db_dependency and r.style == "def" and busy >= r.threadpool_tokens and waiting > 0:
            return Limit("the threadpool and the connection pool waiting on each other",
                         f"{evidence}, all {busy} threads busy and {waiting} requests waiting for one",
                         "a def dependency that holds a connection needs db_pool_size >= threadpool_tokens "
                         "(or an async dependency)")
        return Limit("the connection pool", evidence,
                     "raise db_pool_size (within the database's max_connections)")
    if r.style != "async" and busy >= r.threadpool_tokens and waiting > 0:
        return Limit("the threadpool", f"{busy} of {r.threadpool_tokens} tokens busy, up to {waiting} "
                     "requests waiting for one", "raise threadpool_tokens, or make the endpoint async def "
                     "if it waits on I/O")
    if lag >= LOOP_LAG_MS and cpu >= BUSY_LOOP * 100 * cores:
        return Limit("the event loop", f"busy: its timers fired up to {lag:.0f} ms late (p99) at "
                     f"{cpu:.0f} % of {cores} core(s)", "add workers: one event loop each")
    if lag >= LOOP_LAG_MS:
        return blocked
    if r.load_model == "open":
        return Limit("the offered rate", f"{r.achieved_rps:.0f} of {r.offered_rps:.0f} req/s served, "
                     "nothing saturated", "a higher rate (or bench capacity) finds the limit")
    little = r.users / (r.mean_ms / 1000) if r.mean_ms > 0 else 0.0
    return Limit("the load itself", f"{r.users} users / {r.mean_ms:.1f} ms mean latency = {little:.0f} req/s "
                 "(Little's law); nothing in the target saturated", "more users find the server's limit")


def ratio(a: float, a_half: float, b: float, b_half: float) -> tuple[float, float, float]:
    """a / b and its 95 % interval from the two means' half-widths (first order, independent
    errors: the relative half-widths add in quadrature, on the log scale, so that a wide interval
    never crosses zero and a ratio and its inverse have the same interval, inverted). The report's
    answer (bench/judge/answer.py) and its comparisons in full both use this one."""
    if a <= 0 or b <= 0:
        return 0.0, 0.0, 0.0
    r = a / b
    rel = math.hypot(a_half / a, b_half / b)
    return r, r * math.exp(-rel), r * math.exp(rel)


def _ratio_text(name: str, a: float, a_half: float, b: float, b_half: float, n: int) -> str:
    r, lo, hi = ratio(a, a_half, b, b_half)
    if not r:
        return ""
    return f"{name} {r:.2f}x" + (f" ({lo:.2f}-{hi:.2f})" if n > 1 else " (one repeat: no interval)")


def _label(s: CellStats, varying: list[str]) -> str:
    extra = ", ".join(f"{p} {getattr(s, p)}" for p in varying if reads(s, p))
    what = f"endpoint {s.endpoint}" if s.endpoint else s.workload
    return str(what) + (f", {extra}" if extra else "")


def reads(s: CellStats, param: str) -> bool:
    """Whether this cell's load model and workload use the parameter (another cell's knob, at its
    neutral value here, would only lengthen the line)."""
    if param in OPEN_ONLY:
        return s.load_model == "open"
    if param in CLOSED_ONLY:
        return s.load_model == "closed"
    if param in SCOPED:  # a knob its cell does not read is neutral there (scenario._scoped_values)
        return getattr(s, param) not in ("", 0)
    return True


def ok_rows(rows: list[SummaryRow]) -> dict[str, list[SummaryRow]]:
    """Each cell's ok repeats, by cell id."""
    by_cell: dict[str, list[SummaryRow]] = {}
    for row in rows:
        if row.status == "ok":
            by_cell.setdefault(row.cell_id, []).append(row)
    return by_cell


def style_groups(stats: list[CellStats]) -> list[dict[str, CellStats]]:
    """The ok cells that differ only in style (and port), each group by style, in run order."""
    groups: dict[tuple[object, ...], dict[str, CellStats]] = {}
    for s in stats:
        if s.n > 0:
            groups.setdefault(tuple(getattr(s, p) for p in PARAMS if p not in NOT_PAIRED), {})[s.style] = s
    return list(groups.values())


def lines(stats: list[CellStats], rows: list[SummaryRow],
          capacity: list[dict[str, str]] | None = None,
          steps: list[dict[str, str]] | None = None) -> list[str]:
    """The section's lines: one per def/async comparison (or per searched endpoint), in run order."""
    by_cell = ok_rows(rows)
    if capacity:
        return [_capacity_line(group, steps or [], by_cell) for group in _capacity_pairs(capacity)]
    ok = [s for s in stats if s.n > 0]
    varying = [p for p in PARAMS
               if p not in (*NOT_PAIRED, "workload", "endpoint", "backend") and differs(ok, p)]
    out = []
    for styles in style_groups(stats):
        group = list(styles.values())
        text = _label(group[0], varying) + ": "
        for first, second in PAIRS:
            if first not in styles or second not in styles:
                continue
            d, a = styles[first], styles[second]
            n = min(d.n, a.n)
            parts = [_ratio_text("requests/s", a.rps_mean, a.rps_ci95, d.rps_mean, d.rps_ci95, n),
                     _ratio_text("CPU per request", a.cpu_ms_per_request_mean, a.cpu_ms_per_request_ci95,
                                 d.cpu_ms_per_request_mean, d.cpu_ms_per_request_ci95, n)]
            floor = " (floors: Locust saturated)" if a.any_saturated or d.any_saturated else ""
            text += f"{second} / {first} {'; '.join(p for p in parts if p)}{floor}. "
            text += hop_text(by_cell[d.cell_id], by_cell[a.cell_id], first, second)
        text += " ".join(f"{s.style} {s.rps_mean:.1f} req/s, p99 {s.p99_ms_mean:.1f} ms, bound by "
                         f"{limit_of(by_cell[s.cell_id]).text()}.{profile_text(by_cell[s.cell_id])}"
                         for s in group)
        out.append(text)
    return out


def _capacity_pairs(records: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    groups: dict[str, list[dict[str, str]]] = {}
    for r in records:
        groups.setdefault(r["search_id"].split("-", 1)[-1], []).append(r)
    return list(groups.values())


def _capacity_line(group: list[dict[str, str]], steps: list[dict[str, str]],
                   by_cell: dict[str, list[SummaryRow]]) -> str:
    r0 = group[0]
    by_style = {r["style"]: float(r["capacity_rps"]) for r in group}
    text = f"{r0['workload']}, capacity within p99 {float(r0['slo_p99_ms']):g} ms: "
    if by_style.get("def") and by_style.get("async"):
        text += f"async / def {by_style['async'] / by_style['def']:.2f}x. "
    for r in group:
        cap = float(r["capacity_rps"])
        text += f"{r['style']} {cap:.0f} req/s"
        if r["stopped_by"] == "max_rps":
            text += f" (max_rps reached with p99 {float(r['p99_ms']):.1f} ms: a floor, raise max_rps). "
            continue
        at = next((s for s in steps if s["search_id"] == r["search_id"] and s["verdict"] == "pass"
                   and float(s["rate"]) == cap), None)
        if at is not None and at["saturated"] == "true":
            text += " (Locust was saturated at that rate: a floor)"
        fail = next((s for s in steps if s["search_id"] == r["search_id"] and s["verdict"] != "pass"), None)
        rows = by_cell.get(fail["cell_id"], []) if fail else []
        if fail and rows:
            text += (f"; at {float(fail['rate']):g} req/s {fail['reason']}, bound by "
                     f"{limit_of(rows).text()}. ")
        else:
            text += f" (stopped: {r['stopped_by']}). "
    return text.strip()


def profile_shares(rows: list[SummaryRow]) -> tuple[int, dict[str, float]]:
    """A cell's samples over its profiled repeats and each part's share of them (weighted by
    each repeat's samples)."""
    profiled = [r for r in rows if r.profile == "cpu" and r.profile_samples > 0]
    samples = sum(r.profile_samples for r in profiled)
    if not samples:
        return 0, {}
    return samples, {part: sum(getattr(r, f"cpu_{part}_pct") * r.profile_samples for r in profiled) / samples
                     for part in PARTS}


def profile_text(rows: list[SummaryRow]) -> str:
    """" Its CPU: 48 % the framework, 29 % the thread hop (83 samples)." for a profiled cell."""
    samples, shares = profile_shares(rows)
    if not any(r.profile == "cpu" for r in rows):
        return ""
    if samples < FEW_SAMPLES:
        return f" Its profile has {samples} samples: too few to say where its CPU went."
    named = sorted(((share, part) for part, share in shares.items() if share >= SHOWN_SHARE), reverse=True)
    where = ", ".join(f"{share:.0f} % {PART_NAMES[part]}" for share, part in named)
    return f" Its CPU: {where or 'no part above ' + format(SHOWN_SHARE, 'g') + ' %'} ({samples} samples)."


def hop_text(first: list[SummaryRow], second: list[SummaryRow], first_style: str, second_style: str) -> str:
    """What the profiles say of the thread hop between the pair: def pays it, on the loop it is gone."""
    n1, s1 = profile_shares(first)
    n2, s2 = profile_shares(second)
    if min(n1, n2) < FEW_SAMPLES or s1["hop"] < SHOWN_SHARE:
        return ""
    if second_style in ON_THE_LOOP and s2["hop"] < HOP_GONE * s1["hop"]:
        return (f"The thread hop is {s1['hop']:.0f} % of {first_style}'s CPU and {s2['hop']:.0f} % of "
                f"{second_style}'s: {second_style} removes it. ")
    return (f"The thread hop is {s1['hop']:.0f} % of {first_style}'s CPU and {s2['hop']:.0f} % of "
            f"{second_style}'s. ")

