"""write_report on synthetic run directories: files exist, PNGs decode, HTML is self-contained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.image import imread

from bench.errors import BadInput
from bench.report.pages import report_run
from bench.results.row import SCHEMA_VERSION, SummaryRow
from bench.results.rundir import RunDir
from tests.rows import make_row
from tests.rows import make_run as make_rundir


def write_report(run: Path) -> list[Path]:
    return report_run(RunDir(run))


def row(**kw: object) -> SummaryRow:
    return make_row(**{"run_id": "r1", **kw})


def matrix_rows() -> list[SummaryRow]:
    """def/async x noop/sleep x 10/50 users x 1/2 workers, 2 repeats; one saturated, one failed cell."""
    rows = []
    for style in ("def", "async"):
        for workload in ("noop", "sleep"):
            for users in (10, 50):
                for workers in (1, 2):
                    cell = f"{style}-{workload}-u{users}-uvicorn-w{workers}-tp40"
                    for rep in (1, 2):
                        base = 100.0 * workers * (3 if style == "async" else 1) + rep
                        rows.append(row(cell_id=cell, repeat=rep, style=style, workload=workload,
                                        users=users, workers=workers, rps=base, requests=int(base * 5),
                                        p50_ms=users / 10 + rep, p99_ms=users / 2 + rep,
                                        cpu_ms_per_request=0.4 + rep / 10, latency_source="hdr",
                                        loadgen_saturated=cell == "async-noop-u50-uvicorn-w2-tp40",
                                        threadpool_busy_max=min(users, 40) if style == "def" else 0,
                                        threadpool_waiting_max=10 * rep if users == 50 and style == "def" else 0,
                                        loop_lag_p99_ms=1.25 * rep))
    rows.append(row(cell_id="def-blocking_sleep-u50-uvicorn-w1-tp40", workload="blocking_sleep", users=50,
                    status="failed", error="target exited with code 3"))
    return rows


def make_run(tmp_path: Path, rows: list[SummaryRow], env: dict[str, object] | None = None) -> Path:
    if env is None:
        env = {"schema_version": SCHEMA_VERSION, "run_id": "r1", "cpu_model": "Test CPU", "cores": 4,
               "packages": {"fastapi": "0.1"}, "scenario": {"name": "synthetic", "checks": {}}}
    return make_rundir(tmp_path / "run", rows, env).path


def check_outputs(run: Path, written: list[Path]) -> str:
    pngs = sorted((run / "report").glob("*.png"))
    assert all(p.exists() for p in written)
    assert set(pngs) <= set(written) and run / "report.md" in written and run / "report.html" in written
    for png in pngs:
        assert imread(png).ndim == 3  # decodes as an RGB(A) image
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(pngs)
    md = (run / "report.md").read_text()
    assert all(f"report/{p.name}" in md for p in pngs)
    assert (run / "summary_stats.csv").exists()
    return html


def test_full_matrix(tmp_path: Path) -> None:
    run = make_run(tmp_path, matrix_rows())
    locust = run / "cells" / "def-noop-u10-uvicorn-w1-tp40" / "r2"
    locust.mkdir(parents=True)
    (locust / "measure.html").write_text("<html></html>")
    written = write_report(run)
    html = check_outputs(run, written)
    assert {p.name for p in (run / "report").glob("*.png")} == {"rps.png", "latency.png", "cpu.png"}
    assert "async-noop-u50-uvicorn-w2-tp40" in html and "SATURATED" in html
    assert "target exited with code 3" in html and "def-blocking_sleep-u50-uvicorn-w1-tp40" in html
    assert "href='cells/def-noop-u10-uvicorn-w1-tp40/r2/measure.html'" in html
    md = (run / "report.md").read_text()
    assert "(cells/def-noop-u10-uvicorn-w1-tp40/r2/measure.html)" in md and "Test CPU" in md
    assert "SATURATED" in md
    # inside the target: worst repeat per cell
    assert "| def-noop-u50-uvicorn-w1-tp40 | 40 | 20 | 0 | 0 | 2.5 |" in md
    assert "| async-sleep-u10-uvicorn-w2-tp40 | 0 | 0 | 0 | 0 | 2.5 |" in md
    assert "<h2>Inside the target</h2>" in html and "<td>def-noop-u50-uvicorn-w1-tp40</td><td>40</td>" in html


def test_checks_from_env_are_reported(tmp_path: Path) -> None:
    env = {"schema_version": SCHEMA_VERSION, "scenario": {"name": "s", "checks": {"min_rps": 1000}}}
    run = make_run(tmp_path, matrix_rows(), env)
    write_report(run)
    md = (run / "report.md").read_text()
    assert "FAIL: def-noop-u10-uvicorn-w1-tp40: 101.5 requests/s (mean of 2) < min_rps 1000" in md


@pytest.mark.parametrize("rows", [
    pytest.param([row(cell_id="only", rps=50.0, p50_ms=1.0, p99_ms=2.0)], id="single-cell-zero-optionals"),
    pytest.param([row(cell_id=f"def-u{u}", users=u, rps=10.0 * u, p99_ms=u, loadgen_saturated=u == 200)
                  for u in (10, 100, 200)], id="one-style"),
    pytest.param([row(cell_id="z", rps=0.0)], id="all-zero-figures"),
])
def test_small_runs(tmp_path: Path, rows: list[SummaryRow]) -> None:
    run = make_run(tmp_path, rows)
    written = write_report(run)
    check_outputs(run, written)
    assert len(list((run / "report").glob("*.png"))) == 3


def test_only_failed_rows(tmp_path: Path) -> None:
    run = make_run(tmp_path, [row(cell_id="a", status="failed", error="no request completed"),
                              row(cell_id="b", status="failed", error="HTTP <503> & reset")], env={})
    written = write_report(run)
    html = check_outputs(run, written)
    assert list((run / "report").glob("*.png")) == []
    assert "no request completed" in html and "No ok cell to plot" in html and "FAILED" in html
    assert "HTTP &lt;503&gt; &amp; reset" in html  # escaped exactly once


def test_only_failed_rows_and_no_env_at_all(tmp_path: Path) -> None:
    run = make_run(tmp_path, [row(cell_id="a", status="failed", error="boom")], env={})
    assert json.loads((run / "env.json").read_text()) == {}, "the empty env is what is reported on"
    check_outputs(run, write_report(run))
    assert "Benchmark report: run" in (run / "report.md").read_text()  # no run_id: the folder's name


def test_no_env_is_refused_by_open_and_no_rows_reports_nothing_ran(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"not a run directory \(no env\.json\)"):
        RunDir.open(tmp_path)
    run = make_run(tmp_path, [])
    assert not (run / "summary.csv").exists()
    write_report(run)
    assert "No cell ran." in (run / "report.md").read_text()
