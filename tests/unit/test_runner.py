"""The matrix loop with the fake executor: target reuse, failures recorded and the matrix going
on, rows written after every cell, Ctrl-C then --resume running only what is missing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench import cli
from bench.results.row import COLUMNS, SCHEMA_VERSION
from bench.results.rundir import RunDir
from bench.scenario import matrix as scenario
from bench.scenario.cells import work_order
from tests.fakes import FakeBackend
from tests.runs import run, scen_file
from tests.servers import free_port

MATRIX = '[matrix]\nserver = ["uvicorn", "gunicorn"]\nworkload = ["noop", "sleep"]\nstyle = ["def", "async"]\n'


def test_all_cells_ok_and_target_started_once_per_server_config(tmp_path: Path, fake: FakeBackend,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, run_dir = run(tmp_path, scen_file(tmp_path, MATRIX))
    assert code == 0
    rows = RunDir(run_dir).rows()
    assert len(rows) == 8 and {r.status for r in rows} == {"ok"}
    assert [c.server for c in fake.starts] == ["uvicorn", "gunicorn"], "restart only when the config changes"
    assert len(fake.loads) == 8, "one Locust run per cell: warmup and window in one"
    assert {s.warmup_s for s in fake.loads} == {1.0}
    # the spec travels with its results, the header comes from the one result type
    with (run_dir / "summary.csv").open() as fh:
        assert tuple(next(csv.reader(fh))) == COLUMNS
    # Locust's final totals (result JSON), not its stats CSV's (which lag)
    assert rows[0].users == 10 and rows[0].requests == 1007 and rows[0].rps == pytest.approx(100.5)
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(run_dir), "last stdout line: the run dir"
    env = json.loads((run_dir / "env.json").read_text())
    assert env["schema_version"] == SCHEMA_VERSION and env["backend"] == "fake" and env["ended_at"]
    assert env["packages"]["fastapi"] and env["scenario"]["matrix"]["server"] == ["uvicorn", "gunicorn"]
    assert (run_dir / "cells" / rows[0].cell_id / "r1" / "measure_stats.csv").exists()
    assert fake.closed


def test_failing_target_fails_its_cells_and_the_matrix_goes_on(tmp_path: Path, fake: FakeBackend) -> None:
    fake.fail_server = "gunicorn"
    code, run_dir = run(tmp_path, scen_file(tmp_path, MATRIX))
    assert code == 1
    rows = RunDir(run_dir).rows()
    assert len(rows) == 8
    failed = [r for r in rows if r.status == "failed"]
    assert {r.server for r in failed} == {"gunicorn"} and len(failed) == 4
    assert "cannot start gunicorn" in failed[0].error


def test_wrong_affinity_fails_the_cell_with_the_reason(tmp_path: Path, fake: FakeBackend) -> None:
    fake.wrong_affinity = True
    code, run_dir = run(tmp_path, scen_file(tmp_path, ""), "--set", "target_cpuset=0")
    rows = RunDir(run_dir).rows()
    assert code == 1 and rows[0].status == "failed"
    assert rows[0].error == "target workers run on CPUs 7, not the requested 0 (worker_pinning = set)"
    assert rows[0].target_affinity == "7"


def test_target_dying_mid_cell_fails_that_cell_and_the_next_gets_a_fresh_target(
        tmp_path: Path, fake: FakeBackend) -> None:
    fake.die_on_path = "/def/sleep"
    code, run_dir = run(tmp_path, scen_file(tmp_path, '[matrix]\nworkload = ["sleep", "noop"]\nstyle = ["def"]\n'))
    rows = RunDir(run_dir).rows()
    assert code == 1
    assert [r.status for r in rows] == ["failed", "ok"]
    assert "target died during the load" in rows[0].error
    assert len(fake.starts) == 2


def test_interrupt_keeps_rows_and_resume_runs_only_what_is_missing(tmp_path: Path, fake: FakeBackend) -> None:
    fake.interrupt_after = 3
    code, run_dir = run(tmp_path, scen_file(tmp_path, MATRIX))
    assert code == 130
    assert len(RunDir(run_dir).rows()) == 2
    assert json.loads((run_dir / "env.json").read_text())["interrupted"] is True
    assert fake.closed and not fake.live, "servers stop on Ctrl-C"

    fake.interrupt_after = None
    fake.loads.clear()
    code = cli.main(["run", "--resume", str(run_dir), "--no-report"])
    assert code == 0
    rows = RunDir(run_dir).rows()
    assert len(rows) == 8 and len({(r.cell_id, r.repeat) for r in rows}) == 8
    assert len(fake.loads) == 6


def test_resume_refuses_a_directory_that_is_not_a_run(tmp_path: Path, fake: FakeBackend,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--resume", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_repeats_are_interleaved_and_grouped_by_server() -> None:
    scen = scenario.from_dict({"defaults": {"repeats": 2}, "matrix": {"server": ["uvicorn", "gunicorn"],
                                                                     "style": ["def", "async"]}}, {})
    order = [(c.server, c.style, r) for c, r in work_order(scen.cells())]
    assert order == [("uvicorn", "def", 1), ("uvicorn", "async", 1), ("gunicorn", "def", 1),
                     ("gunicorn", "async", 1), ("uvicorn", "def", 2), ("uvicorn", "async", 2),
                     ("gunicorn", "def", 2), ("gunicorn", "async", 2)]


def test_a_cells_own_errors_fail_that_cell_not_the_run(tmp_path: Path, fake: FakeBackend) -> None:
    """A ValueError from a Locust CSV without its Aggregated row, or from a histogram that does not
    decode, is that cell's failure (exit 1, the matrix goes on), not bad input (exit 2)."""
    fake.no_aggregated_on_path = "/def/noop"
    fake.bad_hdr_on_path = "/def/sleep"
    code, run_dir = run(tmp_path, scen_file(tmp_path, '[matrix]\nworkload = ["noop", "sleep", "cpu"]\nstyle = ["def"]\n'))
    assert code == 1
    rows = {r.workload: r for r in RunDir(run_dir).rows()}
    assert rows["noop"].status == "failed" and "no Aggregated row" in rows["noop"].error
    assert rows["sleep"].status == "failed" and "ValueError" in rows["sleep"].error
    assert "not an encoded HdrHistogram" in rows["sleep"].error
    assert rows["cpu"].status == "ok"


def test_resume_sets_a_torn_row_aside_and_runs_its_cell_again(tmp_path: Path, fake: FakeBackend,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    fake.interrupt_after = 2
    code, run_dir = run(tmp_path, scen_file(tmp_path, '[matrix]\nstyle = ["def", "async"]\n'))
    assert code == 130
    summary = run_dir / "summary.csv"
    whole = summary.read_bytes()
    # the process died while writing the second row: only its first bytes reached the disk
    summary.write_bytes(whole + b"t,async-noop-u10-uvi")
    assert cli.main(["report", str(run_dir)]) == 0
    assert "the last line (20 bytes) was cut by a crash and is ignored" in capsys.readouterr().err
    fake.interrupt_after = None
    assert cli.main(["run", "--resume", str(run_dir), "--no-report"]) == 0
    assert "cut by a crash; set aside in summary.csv.torn" in capsys.readouterr().err
    rows = RunDir(run_dir).rows()
    assert [(r.style, r.status) for r in rows] == [("def", "ok"), ("async", "ok")]
    assert (run_dir / "summary.csv.torn").read_bytes() == b"t,async-noop-u10-uvi\n"
    assert cli.main(["report", str(run_dir)]) == 0 and cli.main(["compare", str(run_dir), str(run_dir)]) == 0


def test_retry_failed_appends_a_new_attempt_and_keeps_the_failed_row(tmp_path: Path, fake: FakeBackend) -> None:
    fake.fail_server = "gunicorn"
    code, run_dir = run(tmp_path, scen_file(tmp_path, MATRIX))
    assert code == 1
    assert cli.main(["run", "--resume", str(run_dir), "--no-report"]) == 1, "plain resume: failed rows stay done"
    fake.fail_server = None
    fake.loads.clear()
    assert cli.main(["run", "--resume", str(run_dir), "--retry-failed", "--no-report"]) == 0
    assert len(fake.loads) == 4, "only the 4 failed cells ran again"
    rows = RunDir(run_dir).rows()
    assert len(rows) == 12
    retried = [r for r in rows if r.attempt == 2]
    assert {r.server for r in retried} == {"gunicorn"} and {r.status for r in retried} == {"ok"}
    assert (run_dir / "cells" / retried[0].cell_id / "r1.a2" / "measure_stats.csv").exists()
    assert {r.status for r in RunDir(run_dir).latest_rows()} == {"ok"}
    with (run_dir / "summary_stats.csv").open(newline="") as fh:
        stats = list(csv.DictReader(fh))
    assert len(stats) == 8 and all(s["n"] == "1" and s["n_failed"] == "0" for s in stats), stats


def test_a_remote_target_is_a_backend_loaded_as_it_is(tmp_path: Path, fake: FakeBackend) -> None:
    """--target-url: nothing started or stopped, /info recorded, placement not held against it."""
    from tests.fakes import FakeTarget

    cfg = scenario.from_dict({}, {}).cells()[0].server_config
    remote = FakeTarget(cfg, affinity=[7])  # runs where its owner put it
    try:
        code, run_dir = run(tmp_path, scen_file(tmp_path, ""), "--target-url", remote.url + "/")
    finally:
        remote.stop()
    assert code == 0
    [row] = RunDir(run_dir).rows()
    assert row.status == "ok" and row.target_affinity == "7" and row.backend == "remote"
    assert fake.starts == [] and fake.closed, "the load backend ran Locust and was closed"
    env = json.loads((run_dir / "env.json").read_text())
    assert env["target_url"] == remote.url + "/" and env["backend_meta"]["loadgen_backend"] == "fake"
    assert (run_dir / "cells" / row.cell_id / "r1" / "target_info.json").exists()


def test_a_remote_target_without_a_worker_list_is_recorded_by_what_answered(tmp_path: Path,
                                                                            fake: FakeBackend) -> None:
    """An older app (or another server) lists no workers in /info: its own affinity is recorded."""
    from tests.fakes import FakeTarget

    cfg = scenario.from_dict({}, {}).cells()[0].server_config
    remote = FakeTarget(cfg, affinity=[5, 6, 3], worker_list=False)
    try:
        code, run_dir = run(tmp_path, scen_file(tmp_path, ""), "--target-url", remote.url)
    finally:
        remote.stop()
    [row] = RunDir(run_dir).rows()
    assert code == 0 and row.status == "ok" and row.target_affinity == "3,5-6"


def test_scenario_name_cannot_leave_out(tmp_path: Path, fake: FakeBackend) -> None:
    path = tmp_path / "evil.toml"
    path.write_text(f'name = "../../x"\n[defaults]\nport = {free_port()}\nduration = 1\nwarmup = 0\n')
    code, run_dir = run(tmp_path, str(path))
    assert code == 0 and run_dir.parent == tmp_path / "results" and run_dir.name.endswith("-x")
    assert not (tmp_path.parent / "x").exists()


def test_a_backend_that_cannot_prepare_is_one_line_exit_2_and_no_run_directory(
        tmp_path: Path, fake: FakeBackend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # the Docker backend builds its images in metadata(): a build that fails stops the run there
    from bench.errors import TargetError

    def broken() -> None:
        raise TargetError("docker compose build failed: failed to solve: no such host")

    monkeypatch.setattr(fake, "metadata", broken)
    code, run_dir = run(tmp_path, scen_file(tmp_path, ""))
    assert code == 2 and not run_dir.exists() and not fake.starts
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("failed to solve: no such host")
