"""profile = "cpu" through the real CLI in-process, with the fake executor and a fake py-spy: the
row's profile columns, profile.folded beside it, its notes, and what is refused before a run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import cli
from bench.results.rundir import RunDir
from bench.run import profiler, runner
from tests.fakes import FakeBackend, fake_pyspy
from tests.runs import run, scen_file

APP = "main (/srv/app/main.py:1);cpu (/srv/app/main.py:9)"
HOP = ("_bootstrap (/usr/lib/python3.12/threading.py:1002);"
       "run (/venv/lib/python3.12/site-packages/anyio/_backends/_asyncio.py:1113)")
PROFILED = 'profile = "cpu"\nprofile_rate = 50\n[matrix]\nstyle = ["def"]\n'
RUN_S = 1.3  # the fake's run, its window 0.2 s after its start to 0.1 s before its end: sampled


@pytest.fixture
def fake_run(fake: FakeBackend) -> FakeBackend:
    fake.run_s = RUN_S
    return fake


@pytest.fixture
def pyspy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    exe = fake_pyspy(tmp_path)
    monkeypatch.setattr(runner, "pyspy_path", lambda: exe)
    return exe


def test_a_profiled_cell_has_its_shares_its_samples_and_its_folded_stacks(
        tmp_path: Path, fake_run: FakeBackend, pyspy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SAMPLES", "40")
    monkeypatch.setenv("FAKE_STACK", APP)
    code, run_dir = run(tmp_path, scen_file(tmp_path, PROFILED))
    assert code == 0
    rows = RunDir(run_dir).rows()
    assert [r.status for r in rows] == ["ok"]
    row = rows[0]
    assert row.profile == "cpu" and row.profile_rate == 50
    assert row.profile_samples == 40 and row.cpu_app_pct == pytest.approx(100.0)
    assert row.cpu_hop_pct == row.cpu_loop_pct == row.cpu_framework_pct == 0.0
    # 40 samples against the window's length x 50 Hz x one worker
    assert row.profile_gil_pct == pytest.approx(100 * 40 / ((RUN_S - 0.3) * 50), rel=0.05)
    assert row.error == "profile has 40 samples (under 50): its shares are rough"
    cell = run_dir / "cells" / row.cell_id / "r1"
    assert (cell / "profile.folded").read_text() == f"{APP} 40\n"
    worker = next((cell / "profile").glob("worker-*.log"))
    assert "Samples: 40" in worker.read_text()


def test_a_hop_stack_and_enough_samples_leave_no_note(tmp_path: Path, fake_run: FakeBackend, pyspy: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SAMPLES", "60")
    monkeypatch.setenv("FAKE_STACK", HOP)
    code, run_dir = run(tmp_path, scen_file(tmp_path, PROFILED))
    row = RunDir(run_dir).rows()[0]
    assert code == 0 and row.error == ""
    assert row.cpu_hop_pct == pytest.approx(100.0) and row.cpu_app_pct == 0.0


def test_a_worker_that_exits_mid_profile_is_a_note_in_an_ok_row(tmp_path: Path, fake_run: FakeBackend, pyspy: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_EARLY", "1")
    code, run_dir = run(tmp_path, scen_file(tmp_path, PROFILED))
    row = RunDir(run_dir).rows()[0]
    assert code == 0 and row.status == "ok" and row.profile_samples == 0
    assert row.error.startswith("profile: py-spy for worker-")
    assert "ended before the window did (exit 0: py-spy> Stopped sampling because process exited)" in row.error


def test_an_unprofiled_cell_has_no_profile(tmp_path: Path, fake_run: FakeBackend, pyspy: str) -> None:
    code, run_dir = run(tmp_path, scen_file(tmp_path, '[matrix]\nstyle = ["def"]\n'))
    row = RunDir(run_dir).rows()[0]
    assert code == 0 and row.profile == "off" and row.profile_rate == 0 and row.profile_samples == 0
    assert not (run_dir / "cells" / row.cell_id / "r1" / "profile.folded").exists()


def test_a_profile_of_a_target_it_did_not_start_is_refused_before_anything(
        tmp_path: Path, fake: FakeBackend, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results"
    code = cli.main(["run", scen_file(tmp_path, PROFILED), "--out", str(out), "--target-url", "http://127.0.0.1:9"])
    assert code == 2 and not out.exists() and not fake.loads
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'profile = "cpu" samples the workers of a target this bench starts' in err[0]


@pytest.mark.parametrize("command", ["run", "capacity"])
def test_py_spy_missing_is_one_line_and_exit_2(tmp_path: Path, fake: FakeBackend, command: str,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(profiler, "pyspy_path", lambda: None)
    body = PROFILED + ('[capacity]\nslo_p99_ms = 100\nstart_rps = 50\nmax_rps = 100\n' if command == "capacity" else "")
    out = tmp_path / "results"
    code = cli.main([command, scen_file(tmp_path, body), "--out", str(out)])
    assert code == 2 and not out.exists() and not fake.loads
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'needs py-spy, which is not installed' in err[0] and "py-spy==0.4.3" in err[0]


def test_the_report_merges_a_cells_repeats_draws_its_flame_graph_and_drops_a_stale_one(
        tmp_path: Path, fake_run: FakeBackend, pyspy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SAMPLES", "30")
    monkeypatch.setenv("FAKE_STACK", HOP)
    code, run_dir = run(tmp_path, scen_file(tmp_path, "repeats = 2\n" + PROFILED))
    assert code == 0
    [cell] = {r.cell_id for r in RunDir(run_dir).rows()}
    stale = run_dir / "cells" / "other" / "profile.svg"
    stale.parent.mkdir(parents=True)
    stale.write_text("<svg/>")
    assert cli.main(["report", str(run_dir)]) == 0
    md = (run_dir / "report.md").read_text()
    # two repeats of 30 samples: one row of 60, every one of them the hop, and its flame graph
    assert re.search(rf"\| {cell} \| 60 \| \d+ \| 100\.0 \| 0\.0 \| 0\.0 \| 0\.0 \| 0\.0 \| 0\.0 \| 0\.0 "
                     rf"\| \[profile\.svg\]\(cells/{cell}/profile\.svg\) \|", md)
    assert "Its CPU: 100 % thread hop (60 samples)." in md
    svg = (run_dir / "cells" / cell / "profile.svg").read_text()
    assert svg.startswith("<svg") and "60 samples" in svg
    assert not stale.exists()
    assert "profile.svg" in (run_dir / "report.html").read_text()


def test_an_unprofiled_run_has_no_profile_section(tmp_path: Path, fake_run: FakeBackend) -> None:
    code, run_dir = run(tmp_path, scen_file(tmp_path, '[matrix]\nstyle = ["def"]\n'))
    assert code == 0 and cli.main(["report", str(run_dir)]) == 0
    md = (run_dir / "report.md").read_text()
    assert "## Per-cell results" in md
    assert "Where the target's CPU went" not in md and "Its CPU" not in md
    assert not list(run_dir.glob("cells/*/profile.svg"))
