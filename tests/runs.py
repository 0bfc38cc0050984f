"""`bench run` through the real CLI in-process, for the tests that use the fake executor (the
`fake` fixture in conftest.py): a scenario file, a run, its one row."""

from __future__ import annotations

from pathlib import Path

from bench import cli
from bench.results import SummaryRow
from bench.rundir import RunDir
from tests.test_app import free_port

ONE = '[matrix]\nworkload = ["sleep"]\nstyle = ["def"]\n'


def scen_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "scen.toml"
    # a free port: the runner refuses a port something listens on, and 8000 may be taken here
    path.write_text(f'name = "t"\n[defaults]\nport = {free_port()}\nduration = 1\nwarmup = 1\nspawn_rate = 1000\n'
                    + body)
    return str(path)


def run(tmp_path: Path, *args: str) -> tuple[int, Path]:
    """Exit code and run directory of `bench run ARGS` (--no-report)."""
    out = tmp_path / "results"
    code = cli.main(["run", *args, "--out", str(out), "--no-report"])
    dirs = sorted(out.iterdir()) if out.exists() else []
    return code, dirs[-1] if dirs else out


def one_row(tmp_path: Path, *args: str, body: str = ONE) -> tuple[int, SummaryRow]:
    """Exit code and the single row of a one-cell run."""
    code, run_dir = run(tmp_path, scen_file(tmp_path, body), *args)
    [row] = RunDir(run_dir).rows()
    return code, row
