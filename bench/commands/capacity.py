"""`bench capacity`: for each cell of a scenario, the highest open-loop rate within a p99 objective.

Every step is an ordinary open-loop cell run by the Runner (its row goes to summary.csv, its
Locust files to cells/<id>/r1/), judged by bench.judge.capacity and written to capacity_steps.csv as
it ends; capacity.csv is rewritten after each search, so a crash keeps every finished search.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from typing import Any

from bench.judge import capacity
from bench.judge.capacity import Result, SearchSettings, Step, StepFigures
from bench.results.row import SummaryRow, to_text
from bench.results.rundir import RunDir, kept
from bench.run import envinfo
from bench.run.backends.base import Backend
from bench.run.headroom import at_cpu_limit
from bench.run.runner import Runner
from bench.scenario import matrix as scenario_mod
from bench.scenario.cells import Cell
from bench.scenario.search import load_for_search

STEP_COLUMNS: tuple[str, ...] = (
    "search_id", "step", "phase", "rate", "verdict", "reason", "offered_rps", "achieved_rps", "p50_ms",
    "p99_ms", "failure_ratio", "saturated", "cell_id")
RESULT_COLUMNS: tuple[str, ...] = (
    "search_id", "style", "workload", "server", "workers", "threadpool_tokens", "sleep_ms", "cpu_iterations",
    "arrivals", "slo_p99_ms", "capacity_rps", "p50_ms", "p99_ms", "first_fail_rps", "first_fail_reason",
    "stopped_by", "steps")


def outcome_of(row: SummaryRow, rate: float) -> StepFigures:
    if row.status != "ok":
        return StepFigures(rate, ran=False, error=row.error)
    ratio = row.failures / row.requests if row.requests else 0.0
    return StepFigures(rate, ran=True, p50_ms=row.p50_ms, p99_ms=row.p99_ms, offered_rps=row.offered_rps,
                   achieved_rps=row.achieved_rps, failure_ratio=ratio, saturated=row.loadgen_saturated,
                   own_delay_ms=own_delay(row))


def own_delay(row: SummaryRow) -> float | None:
    """How late Locust itself sent, when that can be told apart from a Locust at its CPU limit: not
    when its CPU was not sampled (headroom 0) or it used nearly all of it."""
    if row.loadgen_headroom <= 0 or at_cpu_limit(row):
        return None
    return max(row.late_p99_ms, row.loadgen_lag_ms)


def step_record(search_id: str, step: Step, cell_id: str) -> list[str]:
    o = step.outcome
    values = (search_id, step.step, step.phase, o.rate, step.verdict, step.reason, o.offered_rps,
              o.achieved_rps, o.p50_ms, o.p99_ms, o.failure_ratio, o.saturated, cell_id)
    return [to_text(v) for v in values]


def result_record(search_id: str, cell: Cell, settings: SearchSettings, result: Result) -> list[str]:
    at = result.at_capacity
    fail = result.first_fail
    values = (search_id, cell.style, cell.workload, cell.server, cell.workers, cell.threadpool_tokens,
              cell.sleep_ms, cell.cpu_iterations, cell.arrivals, settings.slo_p99_ms, result.capacity_rps,
              at.p50_ms if at else 0.0, at.p99_ms if at else 0.0, fail.outcome.rate if fail else 0.0,
              fail.reason if fail else "", result.stopped_by, len(result.steps))
    return [to_text(v) for v in values]


def cmd_capacity(args: argparse.Namespace) -> int:
    from bench.commands.run import (
        backend_metadata,
        check_ports,
        check_profile,
        load_backend,
        start_services,
        stop_services,
        warn_exposed,
    )

    scen, settings, notes = load_for_search(args.scenario, args.set, args.slo_p99)
    cells = scen.cells()
    check_profile(cells)
    from bench.run import appcheck

    backend = load_backend(args.backend, app=scen.app)
    app_meta = {} if scen.app.builtin else appcheck.check(scen.app, cells)  # it imports, in its interpreter
    warn_exposed(cells)
    check_ports(cells)
    meta = {**backend_metadata(backend), **({"app": app_meta} if app_meta else {})}
    endpoints = start_services(backend, cells, remote=False)
    try:
        run = RunDir.create(args.out, f"{scen.name}-capacity")
    except BaseException:
        stop_services(backend, None)
        raise
    try:
        with kept(run.path, resumable=False):
            return _search(run, scen, settings, notes, cells, backend, meta, endpoints.meta, args.no_report)
    finally:
        stop_services(backend, run)


def _search(run: RunDir, scen: scenario_mod.Scenario, settings: SearchSettings, notes: list[str],
            cells: list[Cell], backend: Backend, meta: dict[str, Any], services: dict[str, Any],
            no_report: bool) -> int:
    run.write_scenario(scen.source)
    env = envinfo.collect(run.name, backend.name, meta, scen.as_dict(), None)
    env.update(command="capacity", capacity=asdict(settings), **({"services": services} if services else {}))
    run.write_env(env)
    for note in notes:
        print(f"bench: note: {note}", file=sys.stderr)
    print(f"bench: capacity of {len(cells)} cells within p99 {settings.slo_p99_ms:g} ms on the "
          f"{backend.name} backend, at most {settings.worst_steps()} steps each -> {run.path}",
          file=sys.stderr)
    runner = Runner(backend, run)
    results: list[list[str]] = []
    with run.ending(env):
        try:
            for i, cell in enumerate(cells, 1):
                search_id = cell.named("cap")

                def measure(rate: float, cell: Cell = cell) -> StepFigures:
                    row = runner.run_cell(replace(cell, rate=rate), 1, 1)
                    run.append_row(row)
                    return outcome_of(row, rate)

                def on_step(step: Step, cell: Cell = cell, search_id: str = search_id, i: int = i) -> None:
                    o = step.outcome
                    run.append_record(run.steps_path, STEP_COLUMNS,
                                      step_record(search_id, step, replace(cell, rate=o.rate).cell_id))
                    print(f"[{i}/{len(cells)}] {search_id} step {step.step} ({step.phase}): {o.rate:g} req/s "
                          f"offered, {o.achieved_rps:.1f} achieved, p99 {o.p99_ms:.1f} ms: {step.verdict} "
                          f"({step.reason})", file=sys.stderr)

                result = capacity.search(settings, measure, time.monotonic, on_step)
                results.append(result_record(search_id, cell, settings, result))
                run.write_capacity(RESULT_COLUMNS, results)
        finally:
            runner.close()
    if env["interrupted"]:
        print(f"bench: interrupted; {len(results)} searches kept in {run.capacity_path}", file=sys.stderr)
        print(run.path)
        return 130
    return _finish(run, results, no_report)


def _finish(run: RunDir, results: list[list[str]], no_report: bool) -> int:
    from bench.results import stats

    rows = run.latest_rows()
    cell_stats = stats.summarize(rows)
    run.write_stats(cell_stats)
    if not no_report:
        from bench.report.pages import write_report

        write_report(run, rows, cell_stats, None)
    print("\ncapacity:", file=sys.stderr)
    for record in results:
        r = dict(zip(RESULT_COLUMNS, record, strict=True))
        print(f"  {r['search_id']}: {float(r['capacity_rps']):.1f} req/s within p99 {r['slo_p99_ms']} ms "
              f"(p99 there {float(r['p99_ms']):.1f} ms; stopped: {r['stopped_by']})", file=sys.stderr)
    print(run.path)
    return 1 if any(r.status != "ok" for r in rows) else 0

