"""Small pieces whose exact output someone reads: error messages (one line that names the file
and the problem), defaults, boundaries. Each assertion pins a behaviour a mutant could change
without any figure test noticing."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path

import pytest

from bench.judge import checks
from bench.results import stats
from bench.results.row import COLUMNS, from_record, latest, to_record, to_text
from bench.results.rundir import RunDir, RunDirError, slug
from bench.run import hdr, runner
from bench.run.locust_csv import most_frequent_failure, read_aggregated
from tests.fakes import CSV_PCT, write_locust_stats
from tests.rows import make_row, make_run


def test_rundir_messages(tmp_path: Path) -> None:
    with pytest.raises(RunDirError) as err:
        RunDir.open(tmp_path / "nope")
    assert str(err.value) == f"{tmp_path / 'nope'}: not a run directory (no such directory)"
    run = make_run(tmp_path / "r", [])
    run.env_path.write_text("[1, 2]")
    with pytest.raises(RunDirError) as err:
        run.env()
    assert str(err.value) == f"{run.env_path}: expected a JSON object"
    run.env_path.write_text("{}")
    with pytest.raises(RunDirError) as err:
        run.stored_scenario()
    assert str(err.value) == f"{run.env_path}: no scenario stored, so there is nothing to resume"


def test_torn_warning_is_empty_for_a_whole_file(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [make_row()])
    assert run.torn_warning() == ""
    run.summary_path.write_bytes(run.summary_path.read_bytes() + b"r,c,1")
    assert run.torn_warning().startswith(f"bench: warning: {run.summary_path}: the last line (5 bytes) was cut")


def test_python_build_prefers_the_targets_own_report(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [], env={"schema_version": 2, "python_build": "runner's"})
    assert run.python_build() == "runner's"
    first = run.path / "cells" / "a" / "r1"
    first.mkdir(parents=True)
    (first / "target_info.json").write_text("not json")  # skipped, the next one counts
    second = run.path / "cells" / "b" / "r1"
    second.mkdir(parents=True)
    (second / "target_info.json").write_text(json.dumps({"python_build": "target's"}))
    assert run.python_build() == "target's"
    (run.path / "env.json").write_text("{}")
    (second / "target_info.json").write_text("{}")
    assert run.python_build() == ""
    (run.path / "env.json").unlink()
    assert run.python_build() == ""


def test_stats_interval_and_t975() -> None:
    [s] = stats.summarize([make_row(repeat=1, rps=98.0), make_row(repeat=2, rps=102.0)])
    low, high = s.interval("rps")
    assert (low, high) == (pytest.approx(100.0 - s.rps_ci95), pytest.approx(100.0 + s.rps_ci95)) and s.rps_ci95 > 0
    with pytest.raises(ValueError, match=r"^degrees of freedom must be >= 1, got 0$"):
        stats.t975(0)


def test_checks_ratio_bounds_and_a_failed_row_without_a_reason() -> None:
    checks.validate({"max_failure_ratio": 1})  # 1 is a ratio: "any share of failures"
    checks.validate({"max_failure_ratio": 0})
    with pytest.raises(ValueError, match=r"must be between 0 and 1, got 1\.01"):
        checks.validate({"max_failure_ratio": 1.01})
    rows = [make_row(cell_id="c", status="failed", error="")]
    assert checks.evaluate(rows, {"min_rps": 1}) == ["c repeat 1: failed: no error recorded"]


def test_empty_and_na_csv_fields_read_as_zero(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    write_locust_stats(path, requests=3, rps=1.0)
    header, endpoint, aggregated = path.read_text().splitlines()
    aggregated = aggregated.replace(f",{CSV_PCT['90%']},", ",,").replace(f",{CSV_PCT['99%']},", ",N/A,")
    path.write_text("\n".join([header, endpoint, aggregated]) + "\n")
    agg = read_aggregated(path)
    assert (agg.p90_ms, agg.p99_ms, agg.p95_ms) == (0.0, 0.0, CSV_PCT["95%"])


def test_a_failures_csv_without_an_error_column(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("Method,Name,Occurrences\nGET,/x,3\n")
    assert most_frequent_failure(path) == " (x3)"


def test_hdr_mean_keeps_microseconds_and_errors_name_the_file(tmp_path: Path) -> None:
    hist = hdr.new_histogram()
    for us in (1, 2, 2, 2):  # mean 1.75 µs
        hist.record_value(us)
    assert hdr.percentiles_ms(hist)["mean_ms"] == 0.002  # rounded to the microsecond
    assert hdr.percentiles_ms(hdr.new_histogram()) == {k: 0.0 for k in
                                                       ("mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms")}
    path = tmp_path / "measure_result.json"
    path.write_text("{")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: not JSON \("):
        hdr.load_result(path)
    path.write_text("[]")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: expected a JSON object$"):
        hdr.load_result(path)
    path.write_text("{}")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: measure_result.json has no 'hdr' key$"):
        hdr.load_result(path)


def test_one_line_joins_and_caps_at_500() -> None:
    assert runner._one_line("a\n\n  b  \r\nc") == "a | b | c"
    assert len(runner._one_line("x" * 600)) == 500


def test_iso_times_have_milliseconds() -> None:
    assert runner._iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert runner._iso(86_400 + 3661.25) == "1970-01-02T01:01:01.250Z"
    assert runner._iso(0.9995) == "1970-01-01T00:00:00.999Z", "milliseconds truncated, never 1000"


def test_text_fields_of_a_row() -> None:
    assert [to_text(v) for v in (True, False, 1.23456, 7, "a\r\nb")] == ["true", "false", "1.235", "7", "a  b"]
    record = dict(zip(COLUMNS, to_record(make_row()), strict=True))
    empty = {**record, "requests": "", "rps": "", "loadgen_saturated": ""}
    row = from_record(empty)
    assert (row.requests, row.rps, row.loadgen_saturated) == (0, 0.0, False)


def test_latest_takes_the_last_of_equal_attempts() -> None:
    first, second = make_row(rps=1.0), make_row(rps=2.0)
    assert [r.rps for r in latest([first, second])] == [2.0]
    assert [r.rps for r in latest([make_row(attempt=2, rps=3.0), first])] == [3.0]


def test_summary_stats_text(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [make_row()])
    run.write_stats(stats.summarize(run.rows()))
    text = run.stats_path.read_bytes()
    assert b"\r" not in text and text.endswith(b",false\n")  # any_saturated of an unsaturated cell


def test_run_directory_names_and_collisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = time.gmtime(1_800_000_000)  # 2027-01-15 08:00:00 UTC
    monkeypatch.setattr(time, "gmtime", lambda *args: frozen)
    out = tmp_path / "a" / "b"  # parents made as needed
    names = [RunDir.create(out, "My Scenario").path.name for _ in range(3)]
    assert names == ["20270115-080000-My-Scenario", "20270115-080000-My-Scenario-2", "20270115-080000-My-Scenario-3"]
    assert slug("X-y.X") == "X-y.X" and slug("-.x.-") == "x"


def test_run_directory_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir(mode=0o500)
    if os.access(tmp_path / "ro", os.W_OK):  # root writes anywhere: make the parent a file instead
        out = tmp_path / "file" / "x"
        (tmp_path / "file").write_text("")
        reason = "Not a directory"
    else:
        out, reason = tmp_path / "ro" / "x", "Permission denied"
    with pytest.raises(RunDirError) as err:
        RunDir.create(out, "s")
    assert str(err.value) == f"--out {out}: cannot create a run directory there ({reason})"


def test_run_directory_files(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [])
    assert run.rows() == [] and run.torn_warning() == "", "no summary.csv yet: nothing torn"
    run.write_scenario('name = "x"\n')
    assert (run.path / "scenario.toml").read_text() == 'name = "x"\n'
    assert run.new_target_dir() == run.path / "targets" / "01" and (run.path / "targets" / "01").is_dir()
    run.append_row(make_row())
    assert stat.S_IMODE(os.stat(run.summary_path).st_mode) == 0o644 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_damaged_line_is_named(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [make_row()])
    with run.summary_path.open("ab") as fh:
        fh.write(b"a,b,c\n")
    with pytest.raises(RunDirError) as err:
        run.rows()
    assert str(err.value) == f"{run.summary_path}: line 3 is damaged (3 fields, expected {len(COLUMNS)})"


def test_bytes_that_are_not_utf8_do_not_cost_the_rows(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [make_row(error="x")])
    data = run.summary_path.read_bytes()
    run.summary_path.write_bytes(data.replace(b",x,", b",\xff,"))
    [row] = run.rows()
    assert row.error == "\ufffd"


@pytest.mark.parametrize(("checks_", "message"), [
    ([], "checks: expected a table, got []"),
    ({"sleep": {"p99": 1}}, "checks.sleep.p99: unknown check (known: max_failure_ratio, min_rps, max_p99_ms, "
                             "fail_on_saturation)"),
    ({"p99": 1}, "checks.p99: unknown check or workload (known checks: max_failure_ratio, min_rps, max_p99_ms, "
                 "fail_on_saturation; workload tables: noop, cpu, sleep, blocking_sleep, db, db_blocking, http)"),
])
def test_checks_messages(checks_: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        checks.validate(checks_)  # type: ignore[arg-type]
    assert str(err.value) == message
