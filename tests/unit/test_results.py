"""summary.csv round trip, Locust CSV parsing by header, resource usage over a window (fake clock)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.results.row import COLUMNS, IDENTITY, latest
from bench.results.rundir import RunDir, RunDirError, slug
from bench.run.locust_csv import LocustStats, most_frequent_failure, read_aggregated
from bench.run.monitor import Sample, usage
from bench.run.runner import identity_row
from bench.scenario.cells import PARAM_COLUMNS, Cell
from bench.scenario.matrix import from_dict
from tests.fakes import CSV_MAX, CSV_MEAN, CSV_PCT, write_locust_failures, write_locust_stats
from tests.rows import make_row

DATA = Path(__file__).resolve().parents[1] / "data"


row = make_row


def test_append_then_read_round_trips_types(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    first = row(rps=1234.5678, loadgen_saturated=True, p50_ms=0.123)
    second = row(cell_id="d", status="failed", error="target died,\nbadly")
    run.append_row(first)
    run.append_row(second)
    lines = run.summary_path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 3, "one physical line per row"
    back = run.rows()
    assert back[0].rps == pytest.approx(1234.568) and back[0].loadgen_saturated is True
    assert back[1].error == "target died, badly" and back[1].requests == 0


def test_read_refuses_other_columns_and_damaged_lines(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.summary_path.write_text("run_id,rps\nx,1\n")
    with pytest.raises(RunDirError, match="columns differ"):
        run.rows()
    run.summary_path.write_text(",".join(COLUMNS) + "\nx,1\n")
    with pytest.raises(RunDirError, match="line 2 is damaged"):
        run.rows()


@pytest.mark.parametrize("cut", ["inside cell_id", "after cell_id", "inside the header"])
def test_a_torn_last_line_is_skipped_set_aside_and_never_merged(tmp_path: Path, cut: str) -> None:
    """A crash while appending: the torn line is not a row, and the next row is not glued onto it."""
    run = RunDir(tmp_path)
    run.append_row(row(cell_id="done"))
    whole = run.summary_path.read_bytes()
    header_len = whole.index(b"\n") + 1
    torn_row = b",".join(field.encode() for field in ["r", "lost-cell", "1", "1", "local"])
    tail = {"inside cell_id": torn_row[:5], "after cell_id": torn_row,
            "inside the header": None}[cut]
    if tail is None:
        run.summary_path.write_bytes(whole[:header_len - 9])  # even the header is cut
        expect_rows: list[str] = []
    else:
        run.summary_path.write_bytes(whole + tail)
        expect_rows = ["done"]
    assert [r.cell_id for r in run.rows()] == expect_rows, "readers (report, compare) skip it"
    assert run.torn_tail()
    torn = run.set_aside_torn()
    assert torn and (tmp_path / "summary.csv.torn").read_bytes() == torn + b"\n"
    run.append_row(row(cell_id="new"))
    assert [r.cell_id for r in run.rows()] == [*expect_rows, "new"]
    assert not run.torn_tail()


def test_latest_attempt_wins_and_keeps_first_seen_order() -> None:
    rows = [row(cell_id="a", status="failed", error="x"), row(cell_id="b"),
            row(cell_id="a", attempt=2), row(cell_id="b", repeat=2, status="failed", error="y")]
    assert [(r.cell_id, r.repeat, r.attempt, r.status) for r in latest(rows)] == [
        ("a", 1, 2, "ok"), ("b", 1, 1, "ok"), ("b", 2, 1, "failed")]


def test_every_cell_parameter_is_a_column_in_cell_order() -> None:
    """One source: a matrix over loop or http gives rows that say so (schema 2)."""
    assert COLUMNS[len(IDENTITY):len(IDENTITY) + len(PARAM_COLUMNS)] == PARAM_COLUMNS
    assert {"loop", "http", "port", "bind"} <= set(PARAM_COLUMNS)
    scen = from_dict({"matrix": {"loop": ["asyncio", "uvloop"]}}, {})
    a, b = (identity_row(c, 1, 1, "r", "local") for c in scen.cells())
    assert (a["loop"], b["loop"]) == ("asyncio", "uvloop") and a["cell_id"] != b["cell_id"]
    assert set(Cell.__dataclass_fields__) - {"repeats", "axes", "request", "services", "db_sql", "duration", "warmup"} <= set(COLUMNS)


def test_run_directory_names_stay_inside_out(tmp_path: Path) -> None:
    assert slug("../../x") == "x" and slug("my scenario/1") == "my-scenario-1" and slug("..") == "scenario"
    run = RunDir.create(tmp_path / "out", "../../x")
    assert run.path.parent == tmp_path / "out" and run.path.name.endswith("-x")
    again = RunDir.create(tmp_path / "out", "../../x")
    assert again.path != run.path and again.path.parent == tmp_path / "out"
    (tmp_path / "file").write_text("")
    with pytest.raises(RunDirError, match="is not a directory"):
        RunDir.create(tmp_path / "file", "x")


def test_new_target_dirs_skip_used_numbers(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.new_target_dir().name == "01" and run.new_target_dir().name == "02"
    assert RunDir(tmp_path).new_target_dir().name == "03", "a resumed run does not reuse 01"
    assert run.cell_dir("c", 2, 3) == tmp_path / "cells" / "c" / "r2.a3" and run.cell_dir("c", 1, 1).name == "r1"


def test_locust_aggregated_row_by_header(tmp_path: Path) -> None:
    path = tmp_path / "measure_stats.csv"
    write_locust_stats(path, requests=500, rps=99.5, failures=6)
    agg = read_aggregated(path)
    # each figure from its own column (the fake's columns all differ)
    assert agg == LocustStats(requests=500, failures=6, rps=99.5, mean_ms=CSV_MEAN, p50_ms=CSV_PCT["50%"],
                              p90_ms=CSV_PCT["90%"], p95_ms=CSV_PCT["95%"], p99_ms=CSV_PCT["99%"],
                              p999_ms=CSV_PCT["99.9%"], max_ms=CSV_MAX)


@pytest.mark.parametrize("column", ["Request Count", "Failure Count", "Requests/s", "99%", "Max Response Time"])
def test_a_locust_csv_without_a_column_is_an_error_not_a_zero(tmp_path: Path, column: str) -> None:
    path = tmp_path / "measure_stats.csv"
    write_locust_stats(path, requests=500, rps=99.5, failures=6)
    header, rest = path.read_text().split("\n", 1)
    path.write_text(header.replace(f",{column},", f",{column} (renamed),") + "\n" + rest)
    with pytest.raises(ValueError, match=re.escape(f"no {column!r} column")):
        read_aggregated(path)


def test_na_and_empty_fields_read_as_zero(tmp_path: Path) -> None:
    path = tmp_path / "measure_stats.csv"
    write_locust_stats(path, requests=0, rps=0.0)
    path.write_text(path.read_text().replace(",11.0,", ",N/A,").replace(",12.0,", ",,"))
    agg = read_aggregated(path)
    assert agg.p50_ms == 0.0 and agg.requests == 0


def test_most_frequent_failure(tmp_path: Path) -> None:
    path = tmp_path / "measure_failures.csv"
    assert most_frequent_failure(path) == ""
    write_locust_failures(path, 12)
    assert most_frequent_failure(path) == "HTTPError('503 Server Error') (x11)"
    path.write_text("Method,Name,Error,Occurrences\n")
    assert most_frequent_failure(path) == ""


def test_locust_csv_written_by_real_locust() -> None:
    """A file Locust 2.47 wrote (see tests/data/README): the headers we read are really there."""
    agg = read_aggregated(DATA / "locust_2.47_stats.csv")
    assert agg == LocustStats(requests=438, failures=0, rps=220.2368653971823, mean_ms=2.9846342191770097,
                              p50_ms=3, p90_ms=4, p95_ms=4, p99_ms=6, p999_ms=29, max_ms=29.494830000203365)


def test_usage_over_window_with_a_fake_clock() -> None:
    samples = [
        Sample(t=0.0, cpu_s={1: 10.0}, rss_mb=50, threads=3),
        Sample(t=1.0, cpu_s={1: 10.5, 2: 0.1}, rss_mb=60, threads=5),  # pid 2 born in the window
        Sample(t=3.0, cpu_s={1: 11.5, 2: 1.1}, rss_mb=55, threads=4),
        Sample(t=9.0, cpu_s={1: 20.0, 2: 5.0}, rss_mb=500, threads=50),  # outside
    ]
    use = usage(samples, 0.5, 3.5)
    # window samples at t=1 and t=3: pid1 +1.0 s, pid2 +1.0 s over 2 s
    assert use.cpu_pct == pytest.approx(100.0)
    assert use.max_proc_cpu_pct == pytest.approx(50.0)
    assert (use.rss_mb, use.threads) == (60, 5)
    assert usage(samples, 100, 200).cpu_pct == 0.0
    # a starved sampler: no sample inside [4, 8], so the two around it (t=3 and t=9) give the rate
    starved = usage(samples, 4.0, 8.0)
    assert starved.cpu_pct == pytest.approx(100.0 * (8.5 + 3.9) / 6.0)
    assert (starved.rss_mb, starved.threads) == (500, 50)
    assert usage(samples[:3], 4.0, 8.0).cpu_pct == 0.0, "nothing after the window: no rate to tell"


