"""`bench plan`: the cells of a scenario, where each runs, and the estimated wall time; nothing starts."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.run import warn_exposed
from bench.run.progress import hms
from bench.run.services import needs
from bench.scenario import cpuset
from bench.scenario import matrix as scenario_mod
from bench.scenario.cells import Cell, work_order
from bench.scenario.collapse import merged_axes
from bench.scenario.search import load_for_search


def cmd_plan(args: argparse.Namespace) -> int:
    scen = scenario_mod.load(args.scenario, args.set)
    items = work_order(scen.cells())
    warn_exposed(scen.cells())
    print(f"scenario {scen.name}: {len(scen.cells())} cells, {repeats_text(scen.cells())}: {len(items)} runs")
    for sentence in merged_axes(scen):
        print(f"  note: {sentence}")
    print(split_reason(sorted(cpuset.host_cpus())))
    configs = []
    for i, (cell, repeat) in enumerate(items, 1):
        if not configs or configs[-1] != cell.server_config:
            configs.append(cell.server_config)
            cfg = cell.server_config
            print(f"  target: {cfg.server} x{cfg.workers} workers, {cfg.threadpool_tokens} tokens, "
                  f"CPUs {cfg.target_cpuset} (worker_pinning {cfg.worker_pinning}), port {cfg.port}")
        load = (f"rate={cell.rate:g}/s {cell.arrivals} max_inflight={cell.max_inflight}" if cell.is_open
                else f"users={cell.users}")
        print(f"  {i:3d}. {cell.cell_id} r{repeat}  {cell.sends.method} {cell.path}  {load}  "
              f"Locust CPUs {cell.loadgen_cpuset} x{_generators(cell)}  ~{cell.estimated_s():.0f} s")
    for cell in {c.server_config: c for c, _ in items}.values():
        if cpuset.parse(cell.target_cpuset) & cpuset.parse(cell.loadgen_cpuset):
            print(f"  warning: target CPUs {cell.target_cpuset} overlap Locust's {cell.loadgen_cpuset}: "
                  "they compete for the same cores")
    want = needs(scen.cells())
    if want.any:
        names = (("PostgreSQL", want.db), ("the upstream stub", want.upstream))
        started = " and ".join(name for name, on in names if on)
        print(f"  services: {started} once for the run, on CPUs {want.cpus}"
              + (f" (max_connections {want.max_connections})" if want.db else ""))
        if scen.app.needs_db:
            files = ", ".join(Path(f).name for f in scen.app.db_files())
            print(f"  the app gets its URL in {scen.app.db_env}" + (f", after {files}" if files else ""))
    total = sum(c.estimated_s() for c, _ in items) + 3.0 * len(configs)
    print(f"estimated wall time: {hms(total)} ({len(configs)} target starts)")
    if scen.capacity:
        searched, settings, _ = load_for_search(args.scenario, args.set, None)
        n = len(searched.cells())
        print(f"bench capacity: {n} searches within p99 {settings.slo_p99_ms:g} ms, at most "
              f"{settings.worst_steps()} steps of {settings.step_cost_s():g} s each (bounded at "
              f"{settings.max_search_s:g} s per search): worst case {hms(n * settings.worst_s())}")
    return 0


def repeats_text(cells: list[Cell]) -> str:
    """"1 repeat each", "3 interleaved repeats each" or "1-3 interleaved repeats"."""
    counts = sorted({c.repeats for c in cells}) or [0]
    span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    kind = "interleaved repeats" if counts[-1] > 1 else "repeat"
    return f"{span} {kind}" + (" each" if len(counts) == 1 else "")


def split_reason(cpus: list[int]) -> str:
    """What `auto` CPU sets mean on this host, and why (bench plan's first line)."""
    target, loadgen = cpuset.split(cpus)
    if target == loadgen:
        return (f"host CPUs {cpuset.format(cpus)}: one CPU, so 'auto' puts the target and Locust on it "
                "together (their figures cannot be told apart)")
    return (f"host CPUs {cpuset.format(cpus)}: 'auto' gives the target {target} and Locust {loadgen} "
            "(a third for the target, at least one: Locust needs about two cores per target core to "
            "keep up with a no-op endpoint; docs/cloud-vm.md)")


def _generators(cell: Cell) -> str:
    if cell.loadgen_workers:
        return f"{cell.loadgen_workers} workers"
    return f"{cell.loadgen_processes} process{'es' if cell.loadgen_processes > 1 else ''}"
