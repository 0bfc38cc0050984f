"""Which knobs a cell reads, and which vary across a run's cells: what the report's answer and its
figures may name. A closed-loop cell does not read the open loop's knobs (its max_inflight echoes
its users), a no-op does not read sleep_ms, and a knob resolved from others ("auto" Locust
processes) names nothing the others do not already say.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.results.stats import PARAMS, CellStats
from bench.scenario.keys import CLOSED_ONLY, OPEN_ONLY
from bench.scenario.keys import reads as scoped_reads

# the built-in app's workload knobs: only these workloads read them (bench/scenario/cells.py `path`)
WORKLOAD_KNOBS: dict[str, tuple[str, ...]] = {"sleep_ms": ("sleep", "blocking_sleep"),
                                              "cpu_iterations": ("cpu",)}
# resolved per cell from other knobs ("auto", "cores"): where the other varying knobs already
# determine them (Locust's processes from the users), a label naming them would only repeat those
DERIVED = ("max_inflight", "loadgen_processes", "loadgen_workers", "target_cpuset", "loadgen_cpuset",
           "db_cpuset")


def reads(s: Any, param: str) -> bool:
    """Whether this cell reads the knob: its load model's, its workload's and its server's only."""
    if param in OPEN_ONLY:
        return bool(s.load_model == "open")
    if param in CLOSED_ONLY:
        return bool(s.load_model == "closed")
    if param in WORKLOAD_KNOBS:
        return not s.endpoint and s.workload in WORKLOAD_KNOBS[param]
    return scoped_reads(s, param)


def differs(cells: Iterable[Any], param: str) -> bool:
    """Whether the cells that read the knob differ in it."""
    return len({getattr(c, param) for c in cells if reads(c, param)}) > 1


def _determined(cells: list[CellStats], param: str, by: list[str]) -> bool:
    seen: dict[tuple[Any, ...], Any] = {}
    for c in cells:
        if seen.setdefault(tuple(getattr(c, p) for p in by), getattr(c, param)) != getattr(c, param):
            return False
    return True


def varying(stats: list[CellStats], exclude: tuple[str, ...]) -> list[str]:
    """Knobs that differ between cells (so they must appear in labels), in PARAMS order."""
    found = [p for p in PARAMS if differs(stats, p)]
    free = [p for p in found if p not in DERIVED]
    return [p for p in found if p not in exclude and (p not in DERIVED or not _determined(stats, p, free))]
