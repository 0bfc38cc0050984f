"""Run comparison: change %, non-overlapping intervals, the regression gate and its exit code."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from bench.errors import BadInput
from bench.judge.compare import (
    COMPARE_COLUMNS,
    Change,
    build_warning,
    compare,
    format_table,
    run_compare,
    welch_p,
    write_compare,
)
from bench.results.row import SCHEMA_VERSION, SummaryRow
from tests.rows import make_row
from tests.rows import make_run as make_rundir


def row(**kw: object) -> SummaryRow:
    return make_row(**{"cell_id": "x", **kw})


def repeats(rps: list[float], p99: list[float], **kw: object) -> list[SummaryRow]:
    return [row(repeat=i, rps=r, p99_ms=p, **kw) for i, (r, p) in enumerate(zip(rps, p99, strict=True), 1)]


# A: rps 98, 100, 102 -> mean 100, sd 2, ci 4.303 * 2 / sqrt(3) = 4.969 -> [95.03, 104.97]
BASE = repeats([98.0, 100.0, 102.0], [10.0, 10.0, 10.0])
# B: rps 78, 80, 82 -> mean 80 (-20 %), interval [75.03, 84.97]: disjoint from A's
SLOWER = repeats([78.0, 80.0, 82.0], [10.0, 11.0, 12.0])


def make_run(path: Path, rows: list[SummaryRow], schema: object = SCHEMA_VERSION, build: str = "") -> Path:
    env = {"schema_version": schema, "run_id": path.name, "python_build": build}
    return make_rundir(path, rows, env).path


def test_change_and_significance_by_hand() -> None:
    (c,) = compare(BASE, SLOWER, threshold_pct=10)
    assert (c.n_a, c.n_b, c.rps_a, c.rps_b) == (3, 3, 100.0, 80.0)
    assert c.rps_change_pct == pytest.approx(-20.0) and c.rps_significant
    # p99 10 -> 11 (+10 %): A's sd 0, B's sd 1, n 3: Welch t = 1 / (1 / sqrt 3) = 1.732 on df 2,
    # p = 0.225: not significant
    assert c.p99_change_pct == pytest.approx(10.0) and not c.p99_significant
    assert c.regression and c.note == ""


def test_welch_p_by_hand_and_scipy() -> None:
    # the p99 case above: t = 1.732 on Welch's df = 2, where Student's t has a closed form:
    # two-sided p = 1 - t / sqrt(2 + t^2) = 1 - 1.732 / 2.2361 = 0.2254
    assert welch_p(10.0, 0.0, 3, 11.0, 1.0, 3) == pytest.approx(0.2254, abs=1e-4)
    # rps 100 ± 2 vs 80 ± 2, n 3 each: t = 20 / sqrt(8/3) = 12.247, df 4 -> p = 0.00025
    assert welch_p(100.0, 2.0, 3, 80.0, 2.0, 3) == pytest.approx(2.5e-4, rel=0.05)
    assert math.isnan(welch_p(1.0, 1.0, 1, 2.0, 1.0, 3)) and math.isnan(welch_p(1.0, 1.0, 3, 2.0, 1.0, 1))  # untestable
    assert welch_p(5.0, 0.0, 2, 5.0, 0.0, 2) == 1.0 and welch_p(5.0, 0.0, 2, 6.0, 0.0, 2) == 0.0


def test_threshold_decides_regression() -> None:
    assert not compare(BASE, SLOWER, threshold_pct=25)[0].regression  # -20 % is within 25 %
    assert not compare(BASE, SLOWER, threshold_pct=None)[0].regression  # no gate at all
    # p99 rising 10 -> 11 ms is +10 %: beyond a 5 % threshold even with rps unchanged
    assert compare(BASE, repeats([98.0, 100.0, 102.0], [11.0] * 3), 5)[0].regression
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            compare(BASE, SLOWER, threshold_pct=bad)


def test_single_repeat_is_never_significant() -> None:
    (c,) = compare(BASE[:1], repeats([10.0], [100.0]), threshold_pct=None)
    assert not c.rps_significant and not c.p99_significant
    assert "n=1: significance not testable" in c.note
    assert "not testable" in format_table([c])


def test_unmatched_and_failed_cells() -> None:
    a = [*BASE, *repeats([50.0], [1.0], cell_id="gone")]
    b = [row(cell_id="x", status="failed", error="boom"), *repeats([5.0], [1.0], cell_id="new")]
    by_id = {c.cell_id: c for c in compare(a, b, threshold_pct=10)}
    assert by_id["x"].regression and by_id["x"].note == "no ok repeat in B"
    assert by_id["gone"].note == "only in A" and not by_id["gone"].regression
    assert by_id["new"].note == "only in B" and by_id["new"].rps_change_pct is None


def test_run_compare_regression_exits_1(tmp_path: Path) -> None:
    a, b = make_run(tmp_path / "a", BASE), make_run(tmp_path / "b", SLOWER)
    out = io.StringIO()
    assert run_compare(a, b, threshold=10, stream=out) == 1
    assert "REGRESSION" in out.getvalue() and "-20.0%*" in out.getvalue()
    with (b / "compare.csv").open(newline="") as fh:
        records = list(csv.DictReader(fh))
    assert tuple(records[0]) == COMPARE_COLUMNS
    assert records[0]["rps_change_pct"] == "-20.000" and records[0]["regression"] == "true"


def test_run_compare_no_regression_exits_0(tmp_path: Path) -> None:
    a, b = make_run(tmp_path / "a", BASE), make_run(tmp_path / "b", BASE)
    assert run_compare(a, b, threshold=5, out=tmp_path / "c.csv", stream=io.StringIO()) == 0
    assert (tmp_path / "c.csv").exists() and not (b / "compare.csv").exists()


def test_unknown_schema_and_missing_files_refused(tmp_path: Path) -> None:
    good = make_run(tmp_path / "a", BASE)
    future = make_run(tmp_path / "b", BASE, schema=SCHEMA_VERSION + 1)
    with pytest.raises(BadInput, match=f"schema_version {SCHEMA_VERSION + 1}; this bench reads only {SCHEMA_VERSION}"):
        run_compare(good, future, threshold=5, stream=io.StringIO())
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match=r"no env\.json"):
        run_compare(tmp_path / "empty", good, threshold=5)
    (future / "env.json").write_text('{"schema_version": 2, "run_')  # cut by a crash
    with pytest.raises(BadInput, match=r"b/env\.json: unreadable"):
        run_compare(good, future, threshold=5)


def test_different_interpreter_builds_are_called_out(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", BASE, build="CPython 3.11.7 (main) GCC 12")
    b = make_run(tmp_path / "b", BASE, build="CPython 3.11.2 (main) GCC 12.2 PGO")
    out = io.StringIO()
    assert run_compare(a, b, threshold=5, stream=out) == 0
    assert out.getvalue().startswith("warning: interpreter builds differ (A: CPython 3.11.7")
    with (b / "compare.csv").open(newline="") as fh:
        assert "interpreter builds differ" in next(csv.DictReader(fh))["note"]
    same = make_run(tmp_path / "c", BASE, build="CPython 3.11.7 (main) GCC 12")
    out = io.StringIO()
    run_compare(a, same, threshold=5, stream=out)
    assert "interpreter" not in out.getvalue()
    assert build_warning("x", "") == "" and build_warning("x", "y")


def test_every_field_of_a_change() -> None:
    (c,) = compare(BASE, SLOWER, threshold_pct=10)
    assert c == Change("x", 3, 3, 100.0, 80.0, pytest.approx(-20.0), True, 10.0, 11.0, pytest.approx(10.0), False,
                       regression=True, note="")
    # mirrored: faster and lower p99 is no regression, and the change is relative to A
    (d,) = compare(SLOWER, BASE, threshold_pct=10)
    assert (d.rps_change_pct, d.p99_change_pct, d.regression) == (pytest.approx(25.0), pytest.approx(-100 / 11), False)


@pytest.mark.parametrize(("rps_b", "p99_b", "threshold", "regression"), [
    ([90.0] * 3, [10.0] * 3, 10, False),  # exactly -10 %: not beyond 10 %
    ([89.9] * 3, [10.0] * 3, 10, True),
    ([100.0] * 3, [11.0] * 3, 10, False),  # exactly +10 %
    ([100.0] * 3, [11.01] * 3, 10, True),
    ([200.0] * 3, [5.0] * 3, 0, False),  # better on both counts: never a regression
    ([99.0] * 3, [10.0] * 3, 0, True),  # threshold 0: any drop
])
def test_regression_boundaries(rps_b: list[float], p99_b: list[float], threshold: float, regression: bool) -> None:
    base = repeats([100.0] * 3, [10.0] * 3)
    assert compare(base, repeats(rps_b, p99_b), threshold)[0].regression is regression


def test_zero_baseline_has_no_change_pct() -> None:
    (c,) = compare(repeats([0.0] * 2, [0.0] * 2), repeats([5.0] * 2, [1.0] * 2), threshold_pct=0)
    assert (c.rps_change_pct, c.p99_change_pct, c.regression) == (None, None, False)
    assert format_table([c]).splitlines()[1].split()[4] == "n/a"


@pytest.mark.parametrize(("sat_a", "sat_b", "note"), [
    (True, False, "load generator saturated in A"),
    (False, True, "load generator saturated in B"),
    (True, True, "load generator saturated in A and B"),
])
def test_saturation_is_noted(sat_a: bool, sat_b: bool, note: str) -> None:
    (c,) = compare(repeats([1.0] * 2, [1.0] * 2, loadgen_saturated=sat_a),
                   repeats([1.0] * 2, [1.0] * 2, loadgen_saturated=sat_b), None)
    assert c.note == note


def test_missing_and_failed_sides_field_by_field() -> None:
    failed = [row(status="failed", error="boom")]
    both_failed = compare(failed, failed, threshold_pct=5)[0]
    assert both_failed == Change("x", 0, 0, 0.0, 0.0, None, False, 0.0, 0.0, None, False, False, "no ok repeat in A and B")
    fixed = compare(failed, BASE, threshold_pct=5)[0]
    assert (fixed.n_a, fixed.n_b, fixed.rps_b, fixed.p99_ms_b, fixed.regression, fixed.note) == (
        0, 3, 100.0, 10.0, False, "no ok repeat in A")
    lost = compare(BASE, failed, threshold_pct=5)[0]
    assert (lost.n_a, lost.rps_a, lost.p99_ms_a, lost.regression, lost.note) == (3, 100.0, 10.0, True, "no ok repeat in B")
    assert not compare(BASE, failed, threshold_pct=None)[0].regression, "no threshold, no gate"
    gone = compare(BASE, [], threshold_pct=5)[0]
    assert (gone.n_a, gone.n_b, gone.rps_a, gone.regression, gone.note) == (3, 0, 100.0, False, "only in A")
    new = compare([], BASE, threshold_pct=5)[0]
    assert (new.n_a, new.n_b, new.rps_b, new.p99_ms_b, new.regression, new.note) == (0, 3, 100.0, 10.0, False, "only in B")


def test_order_and_build_note() -> None:
    a = [*repeats([1.0], [1.0], cell_id="b"), *repeats([1.0], [1.0], cell_id="a")]
    b = [*repeats([1.0], [1.0], cell_id="c"), *repeats([1.0], [1.0], cell_id="a")]
    changes = compare(a, b, None, build_note="interpreter builds differ")
    assert [c.cell_id for c in changes] == ["b", "a", "c"], "A's order, then what only B has"
    assert [c.note for c in changes] == ["only in A; interpreter builds differ",
                                         "n=1: significance not testable; interpreter builds differ",
                                         "only in B; interpreter builds differ"]
    assert compare(BASE, BASE, None, build_note="x")[0].note == "x"


def test_the_table_whole() -> None:
    assert format_table(compare(BASE, SLOWER, threshold_pct=10)).splitlines() == [
        "cell  n A/B  rps A  rps B  rps Δ    p99 A ms  p99 B ms  p99 Δ               note",
        "x     3/3    100.0  80.0   -20.0%*  10.00     11.00     +10.0%  REGRESSION",
        "* = significant: Welch's t-test p < 0.05 (needs n >= 2 on both sides)"]


def test_the_csv_whole(tmp_path: Path) -> None:
    write_compare(tmp_path / "c.csv", compare(BASE, SLOWER, threshold_pct=10) + compare(BASE, [], None))
    assert (tmp_path / "c.csv").read_text().splitlines() == [
        ",".join(COMPARE_COLUMNS),
        "x,3,3,100.000,80.000,-20.000,true,10.000,11.000,10.000,false,true,",
        "x,3,0,100.000,0.000,,false,10.000,0.000,,false,false,only in A",
    ]


def test_build_warning() -> None:
    assert build_warning("", "b") == build_warning("a", "") == build_warning("a", "a") == ""
    assert build_warning("a", "b") == "interpreter builds differ (A: a; B: b): the change includes the build"


def test_one_sided_n1_is_untestable_and_its_notes_join() -> None:
    (c,) = compare(BASE, repeats([80.0], [10.0], loadgen_saturated=True), threshold_pct=None)
    assert c.note == "n=1: significance not testable; load generator saturated in B"
    assert not c.rps_significant
    lost = compare(BASE[:1], [row(status="failed", error="boom")], threshold_pct=5)[0]
    assert lost.regression, "one ok repeat before, none now: lost"
    new = compare([], BASE, threshold_pct=5)[0]
    assert (new.rps_a, new.p99_ms_a) == (0.0, 0.0)


def test_a_significant_p99_change_is_starred_and_a_quiet_row_says_nothing(tmp_path: Path) -> None:
    a, b = repeats([100.0] * 3, [10.0, 10.1, 9.9]), repeats([100.0] * 3, [20.0, 20.1, 19.9])
    (c,) = compare(a, b, threshold_pct=None)
    assert c.p99_significant
    assert format_table([c]).splitlines()[1].split()[7:] == ["+100.0%*"], "no REGRESSION without a threshold"


def test_the_threshold_message() -> None:
    with pytest.raises(ValueError, match=r"^threshold must be a finite number >= 0 percent, got -1$"):
        compare(BASE, SLOWER, threshold_pct=-1)


def test_compare_warns_of_a_torn_summary_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = make_run(tmp_path / "a", BASE), make_run(tmp_path / "b", BASE)
    (b / "summary.csv").write_bytes((b / "summary.csv").read_bytes() + b"x,1")
    assert run_compare(a, b, threshold=5, stream=io.StringIO()) == 0
    assert capsys.readouterr().err.startswith(f"bench: warning: {b / 'summary.csv'}: the last line (3 bytes)")


def test_the_build_note_exactly(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", BASE, build="one")
    b = make_run(tmp_path / "b", BASE, build="two")
    same = make_run(tmp_path / "c", BASE, build="one")
    run_compare(a, b, threshold=5, stream=io.StringIO())
    run_compare(a, same, threshold=5, stream=io.StringIO())
    for run, note in ((b, "interpreter builds differ"), (same, "")):
        with (run / "compare.csv").open(newline="") as fh:
            assert next(csv.DictReader(fh))["note"] == note
