"""Command line: a thin layer over scenario -> cells -> backend -> results -> report.

Exit codes live here alone: 2 for bad input (a BadInput, raised before anything starts: one line
on stderr, no run directory); 0 every cell ok and every check passed; 1 some cell or check failed;
3 the run directory could not be written (no space, read-only: one line naming the file, the rows
kept and how to finish the run); 130 interrupted. A failing cell is not bad input: the runner
records it and goes on.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from bench import ROOT
from bench.errors import BadInput, RunDirWriteError


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
    run.add_argument("--out", type=Path, default=ROOT / "results")
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
    _capacity_parser(sub)
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
    except RunDirWriteError as exc:
        print(f"bench: error: {exc}{_kept(exc)}", file=sys.stderr)
        return 3
    finally:
        signal.signal(signal.SIGTERM, previous)


def _kept(exc: RunDirWriteError) -> str:
    """What a failed write leaves: the rows kept, and the command that finishes the run."""
    if exc.run is None:
        return ""
    from bench.results.rundir import RunDir

    try:
        rows = len(RunDir(exc.run).rows())
    except (OSError, BadInput):
        return f"; the run is in {exc.run}"
    then = f"; when there is room again: bench run --resume {exc.run}" if exc.resumable else ""
    return f"; {rows} rows kept in {exc.run / 'summary.csv'}{then}"


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "plan":
        from bench.commands.plan import cmd_plan

        return cmd_plan(args)
    if args.command == "run":
        from bench.commands.run import cmd_run

        return cmd_run(args)
    if args.command == "serve":
        from bench.commands.serve import cmd_serve

        return cmd_serve(args)
    if args.command == "capacity":
        from bench.commands.capacity import cmd_capacity

        return cmd_capacity(args)
    if args.command == "report":
        from bench.commands.report import cmd_report

        return cmd_report(args)
    from bench.judge.compare import run_compare

    return run_compare(args.run_a, args.run_b, args.threshold)


def _capacity_parser(sub: Any) -> None:
    cap = sub.add_parser("capacity", help="per cell, the highest open-loop rate whose p99 meets an objective")
    with_scenario(cap)
    cap.add_argument("--slo-p99", type=float, metavar="MS", help="the p99 objective in milliseconds "
                     "(else [capacity] slo_p99_ms)")
    cap.add_argument("--backend", choices=("auto", "local", "docker"), default="auto")
    cap.add_argument("--out", type=Path, default=ROOT / "results")
    cap.add_argument("--no-report", action="store_true", help="skip report.html/report.md at the end")


if __name__ == "__main__":
    sys.exit(main())
