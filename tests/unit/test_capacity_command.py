"""`bench capacity` through the real CLI in-process with the fake executor: the steps it runs,
the files it writes, what the report says first, and what it refuses."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench import cli
from bench.commands.capacity import RESULT_COLUMNS, STEP_COLUMNS
from bench.results.rundir import RunDir
from tests.runs import scen_file

CAP = ('[matrix]\nstyle = ["def", "async"]\nusers = [10, 100]\nworkload = ["sleep"]\n'
       '[capacity]\nslo_p99_ms = 1000\nstart_rps = 50\nmax_rps = 1000\nstep_s = 1\nstep_warmup_s = 0\n')


def capacity(tmp_path: Path, body: str, *args: str) -> tuple[int, Path]:
    out = tmp_path / "results"
    code = cli.main(["capacity", scen_file(tmp_path, body), "--out", str(out), *args])
    dirs = sorted(out.iterdir()) if out.exists() else []
    return code, dirs[-1] if dirs else out


def records(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_capacity_searches_each_cell_and_writes_every_step(tmp_path, fake, capsys) -> None:
    fake.knee_rps = 130.0  # the fake serves 130 req/s; beyond, its p99 is 50 x 99 ms
    code, run_dir = capacity(tmp_path, CAP)
    assert code == 0
    err = capsys.readouterr().err
    assert "matrix users = [10, 100] ignored: each search sets the rate" in err
    results = records(run_dir / "capacity.csv")
    assert tuple(results[0]) == RESULT_COLUMNS
    # the users axis is gone: one search per style, named "cap" where the users were
    assert [r["search_id"] for r in results] == ["def-sleep-cap-uvicorn-w1-tp40", "async-sleep-cap-uvicorn-w1-tp40"]
    for r in results:
        assert float(r["capacity_rps"]) == 125.0 and r["stopped_by"] == "converged"
        assert float(r["first_fail_rps"]) == 200.0 and r["first_fail_reason"] == "p99 4952.1 ms > 1000 ms"
        assert float(r["p99_ms"]) == pytest.approx(99.0, abs=0.1)
    steps = records(run_dir / "capacity_steps.csv")
    assert tuple(steps[0]) == STEP_COLUMNS
    def_steps = [s for s in steps if s["search_id"].startswith("def")]
    assert [float(s["rate"]) for s in def_steps] == [50, 100, 200, 150, 125, 137.5, 131.25]
    assert [s["verdict"] for s in def_steps] == ["pass", "pass", "fail", "fail", "pass", "fail", "fail"]
    assert [s["phase"] for s in def_steps] == ["up", "up", "up", "bisect", "bisect", "bisect", "bisect"]
    # every step is an open-loop cell of summary.csv, its rate in its id
    rows = RunDir(run_dir).rows()
    assert len(rows) == len(steps) == 14
    assert {s["cell_id"] for s in steps} == {r.cell_id for r in rows}
    assert all(r.load_model == "open" and r.latency_from == "intended" and r.duration_s == 1.0 for r in rows)
    assert sorted({r.rate for r in rows}) == [50, 100, 125, 131.25, 137.5, 150, 200]
    env = RunDir(run_dir).env()
    assert env["command"] == "capacity" and env["capacity"]["slo_p99_ms"] == 1000.0
    # the report opens with the answer, then the capacity table and its plot
    report = (run_dir / "report.md").read_text()
    assert report.index("## The answer") < report.index("## Capacity at the objective") < report.index(
        "## Per-cell results")
    assert "sleep, capacity within p99 1000 ms: async / def 1.00x. def 125 req/s; at 200 req/s" in report
    assert (run_dir / "report" / "capacity.png").stat().st_size > 10_000


def test_capacity_stops_at_max_rps_and_says_the_figure_is_a_floor(tmp_path, fake) -> None:
    body = CAP.replace("max_rps = 1000", "max_rps = 150")
    code, run_dir = capacity(tmp_path, body, "--set", "style=async")
    assert code == 0
    [result] = records(run_dir / "capacity.csv")
    assert float(result["capacity_rps"]) == 150.0 and result["stopped_by"] == "max_rps"
    assert "max_rps reached" in (run_dir / "report.md").read_text()


def test_a_dead_target_stops_the_search_and_fails_the_command(tmp_path, fake) -> None:
    fake.die_on_path = "/def/sleep"
    code, run_dir = capacity(tmp_path, CAP, "--set", "style=def")
    assert code == 1
    [result] = records(run_dir / "capacity.csv")
    assert result["stopped_by"].startswith("the step failed: target died") and float(result["capacity_rps"]) == 0


def test_a_capacity_run_is_not_resumed(tmp_path, fake, capsys) -> None:
    code, run_dir = capacity(tmp_path, CAP.replace("max_rps = 1000", "max_rps = 50"), "--set", "style=def")
    assert code == 0
    assert cli.main(["run", "--resume", str(run_dir)]) == 2
    assert "a capacity search is not resumed" in capsys.readouterr().err


def test_a_rate_axis_is_refused_before_anything_starts(tmp_path, fake, capsys) -> None:
    body = 'load_model = "open"\n[matrix]\nrate = [10, 20]\n[capacity]\nslo_p99_ms = 5\n'  # in [defaults]
    code, run_dir = capacity(tmp_path, body)
    assert code == 2 and not run_dir.exists()
    assert "bench capacity searches the rate itself: drop the matrix's rate axis" in capsys.readouterr().err
    assert fake.starts == []


def test_offered_and_achieved_are_counts_over_the_same_window() -> None:
    from dataclasses import replace

    from bench.run.runner import open_accounting
    from tests.unit.test_command_lines import cell

    open_cell = replace(cell(), load_model="open", rate=200.0)
    meta = {"open": {"offered": 1008, "sent": 1008, "dropped": 3, "late": 148}, "late_hdr": ""}
    # Locust's own rate (199.4) divides by its span to the last response; the window is 5.0 s
    got = open_accounting(open_cell, meta, 5.0, 199.4, 1004)
    assert got == {"latency_from": "intended", "offered_rps": 201.6, "achieved_rps": 200.8, "late_sends": 148,
                   "late_p99_ms": 0.0, "dropped": 3}
    closed = open_accounting(cell(), {}, 5.0, 199.4, 1004)
    assert closed["achieved_rps"] == 199.4 and closed["offered_rps"] == 0.0 and closed["latency_from"] == "sent"
