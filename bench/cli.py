"""Command line: a thin layer over scenario -> cells -> backend -> results -> report.

Exit codes live here alone: 2 for bad input (a BadInput, raised before anything starts: one line
on stderr, no run directory); 0 every cell ok and every check passed; 1 some cell or check failed;
130 interrupted. A failing cell is not bad input: the runner records it and goes on.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

from bench import cpuset
from bench import scenario as scenario_mod
from bench.cells import Cell
from bench.errors import BadInput
from bench.progress import hms


def _signal_to_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, like every other refusal (no usage dump)
        self.exit(2, f"bench: error: {message} (see {self.prog} --help)\n")


def _percentage(text: str, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        least = "> 0" if positive else ">= 0"
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite percentage {least}")
    return value


def percent(text: str) -> float:
    return _percentage(text, positive=False)


def threshold(text: str) -> float:
    """The gate's threshold: 0 % would call every wobble a regression."""
    return _percentage(text, positive=True)


def with_scenario(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument("scenario", nargs="?" if optional else None,
                   help="a name in scenarios/ (e.g. smoke) or a path to a TOML file")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override a key; a comma list makes it a matrix axis (';' for cpusets)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="bench", description="FastAPI def vs async benchmark matrix")
    sub = parser.add_subparsers(dest="command", required=True)

    with_scenario(sub.add_parser("plan", help="print the cells and the estimated wall time"))
    run = sub.add_parser("run", help="run the matrix and write results/<run_id>/")
    with_scenario(run, optional=True)
    run.add_argument("--backend", choices=("auto", "local", "docker"), default="auto")
    run.add_argument("--out", type=Path, default=scenario_mod.ROOT / "results")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="run only the cells RUN_DIR lacks")
    run.add_argument("--retry-failed", action="store_true",
                     help="with --resume: run failed cells again too (the failed rows are kept)")
    run.add_argument("--target-url", help="load an already-running target instead of starting one")
    run.add_argument("--no-report", action="store_true", help="skip report.html/report.md at the end")
    run.add_argument("--baseline", type=Path, metavar="PATH",
                     help="judge each cell against an earlier run (its directory, summary.csv or "
                          "summary_stats.csv): exit 1 on a regression (docs/ci.md)")
    run.add_argument("--threshold", type=threshold, metavar="PCT",
                     help="with --baseline: the change that counts, in percent of the baseline's mean "
                          "(default 25); it must also be significant over the repeats")
    run.add_argument("--junit", type=Path, metavar="FILE",
                     help="write a JUnit XML report: one test case per cell and check")
    from bench.capacity_cmd import add_parser

    add_parser(sub)
    serve = sub.add_parser("serve", help="run the target alone in the foreground (Ctrl-C stops it)")
    with_scenario(serve, optional=True)
    rep = sub.add_parser("report", help="(re)write report.html, report.md and plots of a run")
    rep.add_argument("run_dir", type=Path)
    cmp_ = sub.add_parser("compare", help="per-cell change of rps and p99 between two runs")
    cmp_.add_argument("run_a", type=Path)
    cmp_.add_argument("run_b", type=Path)
    cmp_.add_argument("--threshold", type=percent, metavar="PCT",
                      help="exit 1 when rps drops or p99 rises by more than PCT percent")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _signal_to_interrupt)
    try:
        return _dispatch(args)
    except BadInput as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "plan":
        return cmd_plan(args)
    if args.command == "run":
        from bench.run_cmd import cmd_run

        return cmd_run(args)
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "capacity":
        from bench.capacity_cmd import cmd_capacity

        return cmd_capacity(args)
    if args.command == "report":
        from bench.report import report_run
        from bench.rundir import RunDir

        run = RunDir.open(args.run_dir)
        if run.torn_warning():
            print(run.torn_warning(), file=sys.stderr)
        for path in report_run(run):
            print(path)
        return 0
    from bench.compare import run_compare

    return run_compare(args.run_a, args.run_b, args.threshold)


def cmd_plan(args: argparse.Namespace) -> int:
    scen = scenario_mod.load(args.scenario, args.set)
    from bench.cells import work_order
    from bench.run_cmd import warn_exposed
    from bench.services import needs

    items = work_order(scen.cells())
    warn_exposed(scen.cells())
    print(f"scenario {scen.name}: {len(scen.cells())} cells, {len(items)} runs with repeats")
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
        print(f"  {i:3d}. {cell.cell_id} r{repeat}  GET {cell.path}  {load}  "
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
    total = sum(c.estimated_s() for c, _ in items) + 3.0 * len(configs)
    print(f"estimated wall time: {hms(total)} ({len(configs)} target starts)")
    if scen.capacity:
        from bench.capacity_cmd import search_scenario

        searched, settings, _ = search_scenario(args.scenario, args.set, None)
        n = len(searched.cells())
        print(f"bench capacity: {n} searches within p99 {settings.slo_p99_ms:g} ms, at most "
              f"{settings.worst_steps()} steps of {settings.step_cost_s():g} s each (bounded at "
              f"{settings.max_search_s:g} s per search): worst case {hms(n * settings.worst_s())}")
    return 0


def split_reason(cpus: list[int]) -> str:
    """What `auto` CPU sets mean on this host, and why (bench plan's first line)."""
    target, loadgen = cpuset.split(cpus)
    if target == loadgen:
        return (f"host CPUs {cpuset.format(cpus)}: one CPU, so 'auto' puts the target and Locust on it "
                "together (their figures cannot be told apart)")
    return (f"host CPUs {cpuset.format(cpus)}: 'auto' gives the target {target} and Locust {loadgen} "
            "(a third for the target, at least one: Locust needs about two cores per target core to "
            "keep up with a no-op endpoint; README, On a cloud VM)")


def _generators(cell: Cell) -> str:
    if cell.loadgen_workers:
        return f"{cell.loadgen_workers} workers"
    return f"{cell.loadgen_processes} process{'es' if cell.loadgen_processes > 1 else ''}"


def cmd_serve(args: argparse.Namespace) -> int:
    from bench import procs
    from bench.backends.base import TargetError
    from bench.backends.local import LocalBackend
    from bench.run_cmd import start_services, warn_exposed

    scen = scenario_mod.load(args.scenario or "default", args.set)
    cfg = scen.cells()[0].server_config
    warn_exposed(scen.cells()[:1])
    try:
        procs.free_url(cfg.bind, cfg.port)
    except TargetError as exc:
        raise BadInput(str(exc)) from None
    backend = LocalBackend()
    run_dir = scenario_mod.ROOT / "results" / "serve"
    endpoints = start_services(backend, scen.cells()[:1], remote=False)  # the first cell's db, upstream
    try:
        target = backend.start_target(cfg, run_dir / "stats")
        print(f"serving {cfg.server} x{cfg.workers} on {target.url} (CPUs {cfg.target_cpuset}); "
              f"log {run_dir / 'target.log'}; Ctrl-C stops", flush=True)
        for what, where in (("PostgreSQL", endpoints.db_dsn), ("upstream", endpoints.upstream_url)):
            if where:
                print(f"  {what}: {where}", flush=True)
        while target.alive():
            time.sleep(0.5)
        print(f"bench: target exited: {target.log_tail(5)}", file=sys.stderr)
        return 1
    except TargetError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        backend.close()
        backend.services.stop(run_dir / "services")


if __name__ == "__main__":
    sys.exit(main())
