"""Loading a baseline: which file of a run directory, the last attempt of each repeat, a torn last
line skipped, the machine from env.json, and the target's build from the run's own records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.errors import BadInput
from bench.results import baseline
from bench.results.stats import summarize
from tests.rows import make_row, make_run


def rows() -> list:
    return [make_row(cell_id="c", repeat=1, rps=100.0), make_row(cell_id="c", repeat=2, rps=110.0),
            make_row(cell_id="c", repeat=2, attempt=2, rps=120.0)]  # a retry of repeat 2


def test_a_run_directory_loads_its_summary_with_the_last_attempt_of_each_repeat(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", rows(), env={"schema_version": 7, "cpu_model": "X CPU",
                                                  "python_build": "runner build"})
    b = baseline.load(run.path)
    [s] = b.stats
    assert b.source == run.summary_path and s.n == 2 and s.rps_mean == pytest.approx(110.0)
    assert b.cpu_model == "X CPU" and b.python_build == "runner build"


def test_the_target_build_wins_over_the_runners(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", rows(), env={"python_build": "runner", "target_python_build": "target"})
    assert baseline.load(run.path).python_build == "target"
    info = run.path / "cells" / "c" / "r1"
    info.mkdir(parents=True)
    (info / "target_info.json").write_text(json.dumps({"python_build": "from /info"}))
    assert baseline.load(run.path).python_build == "from /info"


def test_summary_stats_alone_and_a_torn_last_line(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", rows())
    run.write_stats(summarize(rows()))
    run.summary_path.unlink()
    b = baseline.load(run.path)  # the directory falls back to summary_stats.csv
    assert b.source == run.stats_path and b.stats[0].rps_mean == pytest.approx(110.0)
    torn = tmp_path / "torn.csv"
    torn.write_bytes(run.stats_path.read_bytes() + b"c,local,uvic")  # a crash cut the last line
    assert baseline.load(torn).stats == b.stats
    assert baseline.load(torn).env == {} and baseline.load(torn).python_build == ""


def test_an_unreadable_env_json_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", rows())
    run.env_path.write_text("{not json")
    with pytest.raises(BadInput, match=r"env\.json is unreadable"):
        baseline.load(run.path)


@pytest.mark.parametrize("path, why", [
    ("/proc/self/mem", "cannot be read (Input/output error)"),  # a file whose read fails, even for root
    ("/tmp/" + "a" * 300, "cannot be read (File name too long)"),
])
def test_a_path_that_cannot_be_read_is_one_line(path: str, why: str) -> None:
    with pytest.raises(BadInput) as exc:
        baseline.load(Path(path))
    assert str(exc.value) == f"--baseline {path}: {why}"


def test_odd_bytes_a_figure_at_the_bound_and_an_env_that_is_no_object_still_load(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [make_row(cell_id="c", repeat=1, rps=1e12, error="caf\xe9"),
                                      make_row(cell_id="c", repeat=2, rps=1e12)])
    data = run.summary_path.read_bytes().replace("caf\xe9".encode(), b"caf\xff")  # not UTF-8
    run.summary_path.write_bytes(data)
    run.env_path.write_text("[1, 2]")
    b = baseline.load(run.path)
    assert b.stats[0].rps_mean == 1e12 and b.env == {} and b.cpu_model == ""
