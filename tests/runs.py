"""`bench` through the real CLI: in-process, for the tests that use the fake executor (the `fake`
fixture in conftest.py): a scenario file, a run, its one row; and as a subprocess (`python -m
bench`), for the end-to-end tests and the ones that read its stderr and exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench import ROOT, cli
from bench.results.row import SummaryRow
from bench.results.rundir import RunDir
from tests.servers import free_port

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


# ---------------------------------------------------------------- as a subprocess

def bench(*args: str, timeout: float = 300, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def scenario(tmp_path: Path, body: str, port: int) -> str:
    path = tmp_path / "e2e.toml"
    path.write_text(f'name = "e2e"\n[defaults]\nport = {port}\nspawn_rate = 500\n' + body)
    return str(path)


def run_dir_of(proc: subprocess.CompletedProcess[str]) -> Path:
    return Path(proc.stdout.strip().splitlines()[-1])


def bench_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return str(path)
