"""`bench report`: rewrite report.html, report.md and the plots of a kept run."""

from __future__ import annotations

import argparse
import sys

from bench.report.pages import report_run
from bench.results.rundir import RunDir


def cmd_report(args: argparse.Namespace) -> int:
    run = RunDir.open(args.run_dir)
    if run.torn_warning():
        print(run.torn_warning(), file=sys.stderr)
    for path in report_run(run):
        print(path)
    return 0
