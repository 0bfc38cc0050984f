"""The CI gate: this run's cells judged against a baseline run's (docs/ci.md).

The rule, stated in every output: a cell regressed when its rps fell or its p50 rose by more than
the threshold (percent of the baseline's mean) AND Welch's t-test on the repeats says the change is
beyond noise (two-sided p < compare.ALPHA). p99 is shown, not gated: in 380 A/A pairs of the ci
preset on a 2-vCPU VM it alone still alarmed at 20 % where rps and p50 were quiet (docs/ci.md).

Cells pair by their place in the matrix (the values of the parameters that vary within either
run), not by cell id, so a change of one setting for the whole run (threadpool_tokens 40 -> 5,
which renames every cell) is the change under test, named in each cell's note. Not judged, and
said why: another CPU model or interpreter build (every cell), another server, backend or CPU
layout (the cell), a cell on one side only, fewer than two ok repeats a side, and a cell whose
Locust was saturated or near its limit in this run (its figures are partly Locust's, and on a noisy
runner they alarm).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.judge.compare import ALPHA, change_pct, welch_p
from bench.results.baseline import Baseline
from bench.results.stats import PARAMS, CellStats
from bench.scenario import keys

# the smallest threshold at which 380 ordered A/A pairs of the ci preset (20 runs, 2-vCPU VM) raised
# no false alarm; 20 % raised 2 (docs/ci.md)
DEFAULT_THRESHOLD_PCT = 25.0
FIGURES: tuple[str, ...] = ("rps", "p50_ms", "p99_ms")  # shown
GATED: tuple[str, ...] = ("rps", "p50_ms")  # judged
HIGHER_IS_WORSE = {"rps": False, "p50_ms": True, "p99_ms": True}
# a cell that differs from its baseline in one of these measured another setup, not a change of code
SETUP: tuple[str, ...] = ("backend", "server", "target_cpuset", "loadgen_cpuset", "loadgen_processes",
                          "loadgen_workers")
IGNORED: tuple[str, ...] = ("port",)  # where the target listened changes no figure
# Locust's headroom (its cores' request rate at its measured cost over the rate achieved) under
# which a cell is not judged: Locust then used over two thirds of its CPU, and its own scheduling
# sets part of the figures. In 20 A/A runs of the ci preset on a 2-vCPU VM every false alarm came
# from cells under 1.3x (the no-op cells: one Locust core against one target core); the CPU and
# sleep cells, at 6.9x and more, raised none (docs/ci.md).
NEAR_LIMIT_HEADROOM = 1.5

PASS, REGRESSION, NOT_JUDGED = "pass", "regression", "not judged"


@dataclass(frozen=True)
class Figure:
    name: str
    baseline: float
    current: float
    change_pct: float | None  # None: the baseline's mean is 0
    p: float  # Welch's two-sided p; nan with n < 2 on a side
    gated: bool
    regressed: bool


@dataclass(frozen=True)
class Judgement:
    cell_id: str  # this run's id; the baseline's for a cell this run lacks
    baseline_id: str  # "" for a cell the baseline lacks
    verdict: str  # pass | regression | not judged
    reason: str  # what regressed, or why it was not judged; "" for a pass
    note: str  # the parameters that changed, a saturated baseline
    n_baseline: int
    n_current: int
    figures: tuple[Figure, ...]


def worse(name: str, pct: float | None, threshold: float) -> bool:
    if pct is None:
        return False
    return pct > threshold if HIGHER_IS_WORSE[name] else pct < -threshold


def figure(name: str, base: CellStats, cur: CellStats, threshold: float) -> Figure:
    mean_b, mean_c = getattr(base, f"{name}_mean"), getattr(cur, f"{name}_mean")
    pct = change_pct(mean_b, mean_c)
    p = welch_p(mean_b, getattr(base, f"{name}_sd"), base.n, mean_c, getattr(cur, f"{name}_sd"), cur.n)
    gated = name in GATED
    return Figure(name, mean_b, mean_c, pct, p, gated, gated and worse(name, pct, threshold) and p < ALPHA)


def machine_differs(baseline: Baseline, cpu_model: str, python_build: str) -> str:
    """Why no cell can be judged (another CPU, another interpreter build), else ""."""
    why = []
    if baseline.cpu_model and cpu_model and baseline.cpu_model != cpu_model:
        why.append(f"another CPU (baseline: {baseline.cpu_model}; this run: {cpu_model})")
    if baseline.python_build and python_build and baseline.python_build != python_build:
        why.append(f"another interpreter build (baseline: {baseline.python_build}; this run: {python_build})")
    return "; ".join(why)


def unchecked(baseline: Baseline) -> str:
    """A note when the baseline cannot say which machine made it."""
    if baseline.env:
        return ""
    return "no env.json beside the baseline: CPU and interpreter unchecked"


def axes(base: list[CellStats], cur: list[CellStats]) -> tuple[str, ...]:
    """The parameters that vary within either run (among the cells that read them): a cell's place
    in the matrix."""
    return tuple(p for p in PARAMS if p not in IGNORED and (keys.differs(base, p) or keys.differs(cur, p)))


def _place(s: CellStats, on: tuple[str, ...]) -> tuple[object, ...]:
    return tuple(getattr(s, p) for p in on)


def _changed(base: CellStats, cur: CellStats, on: tuple[str, ...]) -> list[str]:
    """The parameters (not axes) this run changed for the cell, among those it reads."""
    return [p for p in PARAMS if p not in on and p not in IGNORED and keys.reads(cur, p)
            and getattr(base, p) != getattr(cur, p)]


def _moves(base: CellStats, cur: CellStats, params: list[str]) -> str:
    return "; ".join(f"{p} {getattr(base, p)} -> {getattr(cur, p)}" for p in params)


def _not_judged(cur: CellStats | None, base: CellStats | None, reason: str, note: str = "") -> Judgement:
    """A cell of this run (cur) or, with cur None, a baseline cell this run lacks."""
    shown = cur if cur is not None else base
    assert shown is not None
    return Judgement(shown.cell_id, base.cell_id if base else "", NOT_JUDGED, reason, note,
                     base.n if base else 0, cur.n if cur else 0, ())


def judge_cell(base: CellStats, cur: CellStats, on: tuple[str, ...], threshold: float) -> Judgement:
    changed = _changed(base, cur, on)
    setup = [p for p in changed if p in SETUP]
    notes = [_moves(base, cur, changed)] if changed else []
    if base.any_saturated:
        notes.append("Locust saturated in the baseline: its figures are floors, so this judgement is lenient")
    note = "; ".join(notes)
    if setup:
        return _not_judged(cur, base, "another setup: " + _moves(base, cur, setup), note)
    if cur.n == 0 or base.n == 0:
        side = "this run" if cur.n == 0 else "the baseline"
        return _not_judged(cur, base, f"no ok repeat in {side}", note)
    if min(base.n, cur.n) < 2:
        return _not_judged(cur, base, f"n = {min(base.n, cur.n)}: Welch's test needs two ok repeats a side",
                           note)
    if cur.any_saturated:
        return _not_judged(cur, base, "Locust saturated in this run: its figures are Locust's, not the "
                           "target's", note)
    if 0 < cur.loadgen_headroom_min < NEAR_LIMIT_HEADROOM:  # 0: not sampled, nothing known
        return _not_judged(cur, base, f"Locust near its limit in this run (headroom "
                           f"{cur.loadgen_headroom_min:.2f}x, under {NEAR_LIMIT_HEADROOM:g}x): its own "
                           "scheduling sets part of the figures", note)
    figures = tuple(figure(name, base, cur, threshold) for name in FIGURES)
    worse = [f for f in figures if f.regressed]
    reason = "; ".join(f"{f.name} {f.baseline:.1f} -> {f.current:.1f} ({f.change_pct:+.1f} %, p = {f.p:.3f})"
                       for f in worse if f.change_pct is not None)
    return Judgement(cur.cell_id, base.cell_id, REGRESSION if worse else PASS, reason, note, base.n, cur.n,
                     figures)


def judge(baseline: Baseline, current: list[CellStats], cpu_model: str, python_build: str,
          threshold: float = DEFAULT_THRESHOLD_PCT) -> list[Judgement]:
    """One Judgement per cell of this run, then one per baseline cell this run lacks."""
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0 percent, got {threshold}")
    machine = machine_differs(baseline, cpu_model, python_build)
    on = axes(baseline.stats, current)
    by_place = {_place(s, on): s for s in baseline.stats}
    out: list[Judgement] = []
    for cur in current:
        base = by_place.pop(_place(cur, on), None)
        if base is None:
            out.append(_not_judged(cur, None, "not in the baseline"))
        elif machine:
            out.append(_not_judged(cur, base, machine))
        else:
            out.append(judge_cell(base, cur, on, threshold))
    out.extend(_not_judged(None, base, "in the baseline, not in this run") for base in by_place.values())
    return out


def rule(threshold: float) -> str:
    """The rule, as every output states it."""
    return (f"regression: rps falls or p50 rises by more than {threshold:g} % of the baseline's mean, and "
            f"Welch's t-test on the repeats gives p < {ALPHA:g} (p99 shown, not gated)")
