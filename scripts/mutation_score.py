"""The score of the last `mutmut run`, per module, and the survivors docs/testing.md does not
explain. Called by `make mutation` after mutmut; exit 1 below the goal or with an unexplained
survivor.

A mutant "no tests" reached counts as a survivor: a line no fast test runs is a line that may be
wrong. A time-out counts as killed (the mutant hung the suite, which notices that).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 85.0
KILLED = {"killed", "timeout"}
LINE = re.compile(r"^\s*(?P<name>[\w.]+__mutmut_\d+): (?P<status>.+)$")


def results() -> dict[str, str]:
    out = subprocess.run([str(Path(sys.executable).parent / "mutmut"), "results", "--all", "true"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {m["name"]: m["status"].strip() for line in out.splitlines() if (m := LINE.match(line))}


def module_of(name: str) -> str:
    # bench.run.runner.x_is_saturated__mutmut_3, bench.run.runner.xǁRunnerǁ_drain__mutmut_1: bench.run.runner
    return name.split(".x")[0] if ".x" in name else name.rsplit(".", 1)[0]


def main() -> int:
    found = results()
    if not found:
        print("no mutmut results: run `make mutation`")
        return 1
    if any(status == "not checked" for status in found.values()):
        print("warning: some mutants were not checked (an interrupted run?)")
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in found.items():
        per[module_of(name)][status] += 1
    explained = (ROOT / "docs" / "testing.md").read_text()
    print(f"{'module':<22} {'mutants':>7} {'killed':>7} {'score':>7}")
    total = killed = 0
    for module in sorted(per):
        counts = per[module]
        n, k = sum(counts.values()), sum(counts[s] for s in KILLED)
        total, killed = total + n, killed + k
        print(f"{module:<22} {n:>7} {k:>7} {100 * k / n:>6.1f}%")
    score = 100 * killed / total
    print(f"{'all':<22} {total:>7} {killed:>7} {score:>6.1f}%  (goal {GOAL:.0f} %)")
    unexplained = sorted(n for n, s in found.items() if s not in KILLED and n not in explained)
    for name in unexplained:
        print(f"unexplained survivor ({found[name]}): {name}   -> `mutmut show {name}`")
    return 1 if score < GOAL or unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
