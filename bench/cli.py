"""Command line: a thin layer over scenario -> cells -> backend -> results -> report.

Exit codes live here alone: 2 for bad input (a BadInput, raised before anything starts: one line
on stderr, no run directory); 0 every cell ok and every check passed; 1 some cell or check failed;
3 the run directory could not be written (no space, read-only: one line naming the file, the rows
kept and how to finish the run); 130 interrupted; 141 the reader of the output went away
(`bench plan default | head`): quietly, as a command killed by SIGPIPE. A failing cell is not bad
input: the runner records it and goes on.
"""

from __future__ import annotations

import argparse
import math
import os
import select
import signal
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any, NoReturn, TextIO

from bench import ROOT
from bench.errors import BadInput, RunDirWriteError

PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for `yes | head`'s yes

# one example per command: `bench --help` lists them all, each command's --help its own
EXAMPLES = {
    "plan": ("bench plan default --set users=10,100", "the cells and the estimated wall time, nothing run"),
    "run": ("bench run smoke --backend local --set duration=5", "run a preset, results/<run_id>/"),
    "capacity": ("bench capacity capacity --slo-p99 250", "the highest rate within a p99 of 250 ms"),
    "serve": ("bench serve default --set port=8001", "the target alone, to look at by hand"),
    "report": ("bench report results/<run_id>", "write the report of a run again"),
    "compare": ("bench compare results/<a> results/<b> --threshold 5", "B against A, per cell"),
}
BACKENDS = ("auto", "local", "docker")
BACKEND_HELP = "where the target and Locust run: local processes, Docker Compose, or auto (Docker when " \
               "an engine answers, else local)"


def _signal_to_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, like every other refusal (no usage dump)
        if message.startswith("unrecognized arguments:") and "=" in message:
            message += " (each --set takes one KEY=VALUE: --set users=10 --set workers=2)"
        self.exit(2, f"bench: error: {message} (see {self.prog} --help)\n")


class TopParser(Parser):
    def format_help(self) -> str:
        # the presets are read when help is asked for, not on every command: a broken file in
        # scenarios/ must not stop `bench run` of another one
        self.epilog = f"{_presets()}\n\n{_examples()}"
        return super().format_help()


def _first_line(text: str, width: int) -> str:
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return textwrap.shorten(line, width, placeholder=" …")


def _presets() -> str:
    """The scenarios in scenarios/, each with the first line of its description."""
    files = sorted((ROOT / "scenarios").glob("*.toml"))
    pad = max((len(p.stem) for p in files), default=0) + 2
    lines = ["presets (scenarios/*.toml; any other TOML file by its path):"]
    for path in files:
        try:
            description = tomllib.loads(path.read_text(encoding="utf-8")).get("description", "")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            description = "(unreadable: `bench plan` says why)"
        text = _first_line(description, 96 - pad) if isinstance(description, str) else ""
        lines.append(f"  {path.stem:<{pad}}{text}".rstrip())
    return "\n".join(lines)


def _examples() -> str:
    pad = max(len(line) for line, _ in EXAMPLES.values()) + 2
    return "\n".join(["examples:", *(f"  {line:<{pad}}{what}" for line, what in EXAMPLES.values()),
                      "", "each --set takes one KEY=VALUE; repeat it for more (the keys: docs/knobs.md)"])


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
    # one KEY=VALUE per flag: with several (nargs) the flag swallowed the scenario after it
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key (repeat the flag for more); a comma list makes it a matrix axis "
                        "(';' for cpusets)")


def with_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    p.add_argument("--out", type=Path, default=ROOT / "results", metavar="DIR",
                   help="where the run directory <run_id>/ is made (default: results/)")


def _command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    example, what = EXAMPLES[name]
    return sub.add_parser(name, help=help, description=help, epilog=f"example ({what}):\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = TopParser(prog="bench", description="FastAPI def vs async benchmark matrix",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser,
                                help="one of these; `bench COMMAND --help` for its options")

    with_scenario(_command(sub, "plan", "print the cells and the estimated wall time"))
    run = _command(sub, "run", "run the matrix and write results/<run_id>/")
    with_scenario(run, optional=True)
    with_output(run)
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
    serve = _command(sub, "serve", "run the target alone in the foreground (Ctrl-C stops it)")
    with_scenario(serve, optional=True)
    rep = _command(sub, "report", "(re)write report.html, report.md and plots of a run")
    rep.add_argument("run_dir", type=Path, help="a run directory (results/<run_id>)")
    cmp_ = _command(sub, "compare", "per-cell change of rps and p99 between two runs")
    cmp_.add_argument("run_a", type=Path, help="the baseline run directory (A)")
    cmp_.add_argument("run_b", type=Path,
                      help="the run directory compared with it (B); compare.csv is written into it")
    cmp_.add_argument("--threshold", type=percent, metavar="PCT",
                      help="exit 1 when rps drops or p99 rises by more than PCT percent")
    return parser


def _capacity_parser(sub: Any) -> None:
    cap = _command(sub, "capacity", "per cell, the highest open-loop rate whose p99 meets an objective")
    with_scenario(cap)
    cap.add_argument("--slo-p99", type=float, metavar="MS", help="the p99 objective in milliseconds "
                     "(else [capacity] slo_p99_ms)")
    with_output(cap)
    cap.add_argument("--no-report", action="store_true", help="skip report.html/report.md at the end")


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            # flushed here, where a closed pipe can still be caught, not at exit, where Python
            # prints "Exception ignored ... BrokenPipeError" (also after --help's SystemExit)
            sys.stdout.flush()
    except BrokenPipeError:
        gone = [s for s in (sys.stdout, sys.stderr) if _gone(s)]
        if not gone:
            raise  # a pipe or socket of the run's own (a target, a child), not our output
        _to_devnull(gone)
        return PIPE_CLOSED


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "scenario", None) and "=" in args.scenario and not Path(args.scenario).exists():
        parser.error(f"scenario {args.scenario!r} looks like a KEY=VALUE: give each its own --set "
                     "(--set users=10 --set workers=2)")
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


def _gone(stream: TextIO | None) -> bool:
    """Whether the pipe or socket behind a stream lost its reader (poll: POLLERR or POLLHUP)."""
    try:
        fd = stream.fileno() if stream is not None else -1
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # no file behind it (a test's capture), no poll
        return False


def _to_devnull(streams: list[TextIO]) -> None:
    """Point the streams at /dev/null: what they still buffer goes there at exit, quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in streams:
        os.dup2(devnull, stream.fileno())  # _gone() found its file
    os.close(devnull)


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


if __name__ == "__main__":
    sys.exit(main())
