"""How often the CI gate cries wolf, and how often it catches a real slowdown, from repeated runs
of one preset with nothing changed (A/A): the evidence behind gate.DEFAULT_THRESHOLD_PCT.

    .venv/bin/python scripts/gate_aa.py results/aa/*            # runs made before
    .venv/bin/python scripts/gate_aa.py --runs 20 --out /tmp/aa  # make them first (ci preset)
    .venv/bin/python scripts/gate_aa.py results/aa/* --ab RUN    # a changed run against each of them

For each threshold it judges the disjoint pairs (run 1 vs 2, 3 vs 4, ...) and every ordered pair
(each run as the baseline of each other), as `bench run --baseline` would, and counts the pairs
with a regression: a false alarm, since nothing changed. Broken down by figure (each alone as the
gate, p99 included) and without the rule that leaves cells whose Locust was saturated or near its
limit unjudged. Then
the power: the CPU cells of the second run of each pair made 2x slower (rps halved, p50 doubled,
repeat by repeat, so the spread scales too) and how often the gate names them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace
from itertools import permutations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.judge import gate
from bench.judge.compare import ALPHA
from bench.results import baseline
from bench.results.stats import CellStats

THRESHOLDS = (10.0, 15.0, 20.0, 25.0, 30.0)


def make_runs(n: int, out: Path, scenario: str) -> list[Path]:
    for i in range(n):
        print(f"run {i + 1}/{n}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "bench", "run", scenario, "--backend", "local", "--out",
                        str(out), "--no-report"], check=False, stdout=subprocess.DEVNULL)
    return sorted(p for p in out.iterdir() if p.is_dir())


def alarms(a: baseline.Baseline, b: baseline.Baseline, threshold: float, saturation_rule: bool = True
           ) -> dict[str, set[str]]:
    """Cells each figure alone would call regressed, and the gate's own verdicts ("gate")."""
    cur = b.stats if saturation_rule else [replace(s, any_saturated=False, loadgen_headroom_min=0.0)
                                           for s in b.stats]
    out: dict[str, set[str]] = {name: set() for name in (*gate.FIGURES, "gate")}
    for j in gate.judge(a, cur, b.cpu_model, b.python_build, threshold):
        for f in j.figures:
            if gate.worse(f.name, f.change_pct, threshold) and f.p < ALPHA:
                out[f.name].add(j.cell_id)
        if j.verdict == gate.REGRESSION:
            out["gate"].add(j.cell_id)
    return out


def slower(s: CellStats, factor: float = 2.0) -> CellStats:
    if s.workload != "cpu":
        return s
    return replace(s, rps_mean=s.rps_mean / factor, rps_sd=s.rps_sd / factor,
                   p50_ms_mean=s.p50_ms_mean * factor, p50_ms_sd=s.p50_ms_sd * factor)


def against(changed: baseline.Baseline, runs: list[baseline.Baseline]) -> int:
    """A real A/B: how many of the A/A runs, each taken as the baseline, fail the changed run, and
    which cells each time."""
    named: dict[str, int] = {}
    failed = 0
    for a in runs:
        hit = alarms(a, changed, gate.DEFAULT_THRESHOLD_PCT)["gate"]
        failed += bool(hit)
        for name in hit:
            named[name] = named.get(name, 0) + 1
    print(f"{changed.source.parent.name} against each of {len(runs)} runs at "
          f"{gate.DEFAULT_THRESHOLD_PCT:g} %: exit 1 against {failed}; cells named: {named or 'none'}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", type=Path, help="run directories of one preset, nothing changed")
    p.add_argument("--runs", dest="make", type=int, default=0, help="make this many runs first")
    p.add_argument("--out", type=Path, default=Path("results/aa"))
    p.add_argument("--scenario", default="ci")
    p.add_argument("--ab", type=Path, metavar="RUN", help="judge this run against each of the runs instead")
    args = p.parse_args()
    dirs = make_runs(args.make, args.out, args.scenario) if args.make else args.runs
    runs = [baseline.load(d) for d in dirs]
    if args.ab:
        return against(baseline.load(args.ab), runs)
    if len(runs) < 2:
        p.error("need two runs or more")
    disjoint = list(zip(runs[0::2], runs[1::2], strict=False))
    ordered = list(permutations(runs, 2))
    print(f"{len(runs)} runs: {len(disjoint)} disjoint pairs, {len(ordered)} ordered pairs")
    print("\nfalse alarms (pairs with a regression), disjoint / ordered:")
    print("| threshold | gate (rps, p50) | rps alone | p50 alone | p99 alone | Locust-bound judged |")
    print("|---|---|---|---|---|---|")
    for t in THRESHOLDS:
        d = [alarms(a, b, t) for a, b in disjoint]
        o = [alarms(a, b, t) for a, b in ordered]
        nosat_d = sum(bool(alarms(a, b, t, False)["gate"]) for a, b in disjoint)
        nosat_o = sum(bool(alarms(a, b, t, False)["gate"]) for a, b in ordered)
        cols = [f"{sum(bool(x[k]) for x in d)}/{len(d)}, {sum(bool(x[k]) for x in o)}/{len(o)}"
                for k in ("gate", "rps", "p50_ms", "p99_ms")]
        print(f"| {t:g} % | " + " | ".join(cols) + f" | {nosat_d}/{len(d)}, {nosat_o}/{len(o)} |")
    cells: dict[str, int] = {}
    for a, b in ordered:
        for name in alarms(a, b, gate.DEFAULT_THRESHOLD_PCT)["gate"]:
            cells[name] = cells.get(name, 0) + 1
    print(f"\ncells that alarmed at {gate.DEFAULT_THRESHOLD_PCT:g} % (ordered pairs): {cells or 'none'}")
    both = one = 0
    cpu_cells = {s.cell_id for s in runs[0].stats if s.workload == "cpu"}
    for a, b in ordered:
        hit = alarms(a, replace(b, stats=[slower(s) for s in b.stats]), gate.DEFAULT_THRESHOLD_PCT)["gate"]
        both += cpu_cells <= hit
        one += bool(cpu_cells & hit)
    print(f"power at {gate.DEFAULT_THRESHOLD_PCT:g} %, CPU cells 2x slower in the second run: both caught "
          f"in {both}/{len(ordered)}, at least one in {one}/{len(ordered)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
