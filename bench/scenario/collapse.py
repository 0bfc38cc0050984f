"""Axis values that mean the same thing on this host, so that their cells merge.

`workers = [1, "cores"]` on a host whose target gets one CPU gives two identical cells, which run
once (cells.expand): the matrix silently halves, and the workers half of the question is not
tested. `bench plan`, the run's first line and the report say so, with the host that would test it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.scenario import cpuset
from bench.scenario.cells import expand

if TYPE_CHECKING:
    from bench.scenario.matrix import Scenario

MAX_HOST = 256  # the largest host the "what would test it" search considers


def merged_axes(scen: Scenario) -> list[str]:
    """One sentence per axis of a [matrix] block whose values resolve alike here; [] when none."""
    from bench.scenario.matrix import resolve_cell, resolve_with_services

    resolve = resolve_cell if not scen.app.services else resolve_with_services
    out = []
    planned = sum(_product(block) for block in scen.matrix)
    for block in scen.matrix:
        for key, values in block.items():
            seen: dict[tuple[Any, ...], list[Any]] = {}
            for value in values:
                cells = expand(scen.defaults, {**block, key: [value]}, resolve)
                seen.setdefault(tuple(sorted({str(getattr(c, key)) for c in cells})), []).append(value)
            for resolved, same in seen.items():
                if len(same) > 1:
                    out.append(_sentence(key, same, resolved, scen, planned))
    return out


def _product(block: dict[str, list[Any]]) -> int:
    n = 1
    for values in block.values():
        n *= len(values)
    return n


def _sentence(key: str, same: list[Any], resolved: tuple[Any, ...], scen: Scenario, planned: int) -> str:
    shown = ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in same)
    alike = "both" if len(same) == 2 else "all"
    text = (f"{key} = [{shown}] {alike} mean {' / '.join(resolved)} on this host, so their cells merged "
            f"({planned} planned, {len(scen.cells())} run): the {key} question was not tested here")
    if key == "workers" and "cores" in same:
        if {str(v) for v in raw_values(scen, "target_cpuset")} == {"auto"}:
            text += (f"; a host with {smallest_host(2)} or more CPUs gives the target 2 or more (or set "
                     "target_cpuset to 2 CPUs or more)")
        else:
            text += "; a target_cpuset of 2 CPUs or more would test it"
    return text + "."


def raw_values(scen: Scenario, key: str) -> list[Any]:
    """The key's values as the scenario gives them: every block's axis, else the default (the
    scenario's defaults hold every key)."""
    found = [v for block in scen.matrix for v in block.get(key, [])]
    return found or [scen.defaults[key]]


def smallest_host(target_cpus: int) -> int:
    """The fewest CPUs for which the automatic split gives the target `target_cpus` of them."""
    for n in range(2, MAX_HOST + 1):
        target, _ = cpuset.split(list(range(n)))
        if len(cpuset.parse(target)) >= target_cpus:
            return n
    return MAX_HOST
