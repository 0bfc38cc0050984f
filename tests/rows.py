"""Summary rows and run directories for tests, built the way the runner builds them: from a Cell
(so a new scenario key is a column here too) and through RunDir (the one owner of the files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.results.row import SCHEMA_VERSION, SummaryRow
from bench.results.rundir import RunDir
from bench.run.runner import identity_row
from bench.scenario.matrix import from_dict

_CELL = from_dict({"defaults": {"target_cpuset": "0", "loadgen_cpuset": "1", "spawn_rate": 10,
                                "duration": 5, "warmup": 1, "cpu_iterations": 1000}}, {}).cells()[0]


def make_row(**kw: Any) -> SummaryRow:
    """An ok row of a def/noop cell (10 users, 40 tokens, CPUs 0 / 1); keywords override columns."""
    base = {**identity_row(_CELL, 1, 1, "r", "local"), "cell_id": "c", "style": "def",
            "target_affinity": "0", "status": "ok", "error": ""}
    return SummaryRow(**{**base, **kw})


def make_run(path: Path, rows: list[SummaryRow], env: dict[str, Any] | None = None) -> RunDir:
    """A run directory holding `rows` (appended as the runner does) and an env.json."""
    path.mkdir(parents=True)
    run = RunDir(path)
    for row in rows:
        run.append_row(row)
    env = env if env is not None else {"schema_version": SCHEMA_VERSION, "run_id": path.name}
    run.write_env(env)
    return run
