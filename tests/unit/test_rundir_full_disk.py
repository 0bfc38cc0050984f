"""A run directory that cannot be written (no space, read-only) ends the run with one line, not a
traceback: the file and the error named, the rows already written kept, no .tmp file left, and
the command that finishes the run. Through the real CLI with the fake executor, the disk filled
by a fault-injected writer (ENOSPC) at the moment the issue saw it: the second row's append."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from bench import cli
from bench.errors import RunDirWriteError
from bench.results import rundir
from bench.results.rundir import RunDir, atomic_write
from tests.fakes import FakeBackend
from tests.runs import scen_file

FOUR = '[matrix]\nworkload = ["sleep", "noop"]\nstyle = ["def", "async"]\n'


def full_after(n: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """os.write into summary.csv fails with ENOSPC after n whole rows; every other write passes."""
    real, writes = rundir._write_all, [0]

    def write_all(fd: int, data: bytes) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("summary.csv"):
            writes[0] += 1
            if writes[0] > n:
                os.write(fd, data[:7])  # a short write first, as a filling disk does
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(rundir, "_write_all", write_all)
    return writes


def test_a_full_disk_ends_the_run_in_one_line_and_resume_finishes_it(
        tmp_path: Path, fake: FakeBackend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    full_after(1, monkeypatch)
    out = tmp_path / "results"
    code = cli.main(["run", scen_file(tmp_path, FOUR), "--out", str(out), "--no-report"])
    err = capsys.readouterr().err
    [run_dir] = list(out.iterdir())
    assert code == 3
    [line] = [x for x in err.splitlines() if x.startswith("bench: error")]
    assert line == (f"bench: error: cannot write {run_dir / 'summary.csv'}: No space left on device; 1 rows kept in "
                    f"{run_dir / 'summary.csv'}; when there is room again: bench run --resume {run_dir}")
    assert "Traceback" not in err
    assert not list(run_dir.rglob("*.tmp"))
    assert len(RunDir(run_dir).rows()) == 1  # the torn second row is skipped, the first kept

    monkeypatch.undo()  # room again
    monkeypatch.setattr("bench.commands.run.load_backend", lambda choice, app=None: fake)
    assert cli.main(["run", "--resume", str(run_dir), "--no-report"]) == 0
    rows = RunDir(run_dir).rows()
    assert len(rows) == 4 and all(r.status == "ok" for r in rows)
    assert (run_dir / "summary.csv.torn").exists(), "the cut line was set aside, not merged"


def test_a_read_only_run_directory_is_one_line_too(tmp_path: Path, fake: FakeBackend,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    real = rundir.RunDir.cell_dir

    def cell_dir(self: RunDir, cell_id: str, repeat: int, attempt: int) -> Path:
        if repeat == 1 and "async" in cell_id:
            with rundir.writing(self.path / "cells" / cell_id):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(self, cell_id, repeat, attempt)

    monkeypatch.setattr(rundir.RunDir, "cell_dir", cell_dir)
    code = cli.main(["run", scen_file(tmp_path, FOUR), "--out", str(tmp_path / "r"), "--no-report"])
    err = capsys.readouterr().err
    assert code == 3 and "Read-only file system" in err and "Traceback" not in err
    assert "rows kept" in err and "--resume" in err


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_tmp(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.json"
    path.write_text("old")

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(rundir.os, "fsync", fsync)
    with pytest.raises(RunDirWriteError) as err:
        atomic_write(path, b"new")
    assert str(err.value) == f"cannot write {path}: No space left on device"
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]


def test_bench_capacity_names_the_file_and_keeps_its_rows(tmp_path: Path, fake: FakeBackend,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("bench.commands.capacity.load_backend", lambda choice, app=None: fake, raising=False)
    full_after(2, monkeypatch)
    body = '[matrix]\nworkload = ["noop"]\n[capacity]\nslo_p99_ms = 100\nstart_rps = 10\nmax_rps = 40\nstep_s = 1\nstep_warmup_s = 0\n'
    code = cli.main(["capacity", scen_file(tmp_path, body), "--out", str(tmp_path / "c"), "--no-report"])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err, err
    [line] = [x for x in err.splitlines() if x.startswith("bench: error")]
    assert line.startswith("bench: error: cannot write ") and "summary.csv: No space left on device; 2 rows kept" in line
    assert "--resume" not in line  # bench capacity has none
