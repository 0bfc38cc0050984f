"""The files a run's Outcome is published as: checks.json and ci-summary.md in the run directory
(written through it, like every file there), the job summary of a CI that asks for one, and the
JUnit file. One exporter per format: ci_summary.py and junit.py render, this writes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from bench.judge.outcome import CHECKS_JSON, CI_SUMMARY, Outcome, to_json
from bench.report import ci_summary
from bench.report import junit as junit_mod
from bench.results.rundir import RunDir, atomic_write


def publish(o: Outcome, run: RunDir, junit: Path | None = None) -> list[Path]:
    """checks.json and ci-summary.md in the run directory, the summary appended to
    $GITHUB_STEP_SUMMARY when set, and the JUnit file when asked; the paths written."""
    written = [run.path / CHECKS_JSON, run.path / CI_SUMMARY]
    atomic_write(written[0], json.dumps(to_json(o), indent=2, allow_nan=False).encode())
    markdown = ci_summary.render(o)
    atomic_write(written[1], markdown.encode())
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as fh:
                fh.write(markdown + "\n")
        except OSError as exc:  # the run's verdict stands; the job summary is a courtesy
            print(f"bench: warning: GITHUB_STEP_SUMMARY {step_summary}: {exc.strerror}", file=sys.stderr)
    if junit is not None:
        atomic_write(junit, junit_mod.render(o).encode())
        written.append(junit)
    return written
