"""Per-cell mean, sample SD and t-interval over repeats, checked against hand arithmetic."""

from __future__ import annotations

import csv
from dataclasses import fields
from pathlib import Path

import pytest

from bench.results.row import SummaryRow
from bench.results.rundir import RunDir
from bench.results.stats import PARAMS, STATS_COLUMNS, CellStats, mean_sd_ci, summarize, t975
from bench.scenario.cells import PARAM_COLUMNS
from tests.rows import make_row


def row(**kw: object) -> SummaryRow:
    return make_row(**{"cell_id": "a", **kw})


ROWS = [
    row(repeat=1, rps=100.0, p50_ms=2.0, p99_ms=10.0, requests=1000, failures=0, cpu_ms_per_request=0.5),
    row(repeat=2, rps=110.0, p50_ms=3.0, p99_ms=14.0, requests=1100, failures=2, cpu_ms_per_request=0.7,
        loadgen_saturated=True),
    row(repeat=3, rps=120.0, p50_ms=4.0, p99_ms=12.0, requests=1200, failures=1, cpu_ms_per_request=0.6),
    row(repeat=4, status="failed", error="target died", rps=999.0, loadgen_saturated=True),
    row(cell_id="b", style="async", users=50, rps=500.0, p50_ms=1.0, p99_ms=5.0, requests=5000),
    row(cell_id="c", style="async", status="failed", error="boom"),
]


# Two-sided 95 % (one-sided 0.975) quantiles of Student's t for df = 1..30, from the NIST/SEMATECH
# e-Handbook of Statistical Methods, 1.3.6.7.2, https://www.itl.nist.gov/div898/handbook/eda/section3/eda3672.htm
NIST_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
             2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
             2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def test_t_quantiles_match_the_printed_table() -> None:
    for df, printed in enumerate(NIST_T975, start=1):
        assert t975(df) == pytest.approx(printed, abs=5e-4), df
    # past the table t keeps falling towards the normal 1.96 (the old code jumped to it at df 31)
    assert t975(40) == pytest.approx(2.021, abs=5e-4) and 1.96 < t975(1000) < 1.963
    with pytest.raises(ValueError):
        t975(0)


def test_mean_sd_ci_by_hand() -> None:
    # 100, 110, 120: mean 110; sd = sqrt((100 + 0 + 100) / 2) = 10; ci = 4.3027 * 10 / sqrt(3) = 24.8414
    mean, sd, ci = mean_sd_ci([100.0, 110.0, 120.0])
    assert (mean, sd) == (110.0, 10.0) and ci == pytest.approx(24.8414, abs=1e-4)
    assert mean_sd_ci([7.0]) == (7.0, 0.0, 0.0)
    assert mean_sd_ci([]) == (0.0, 0.0, 0.0)


def test_summarize_ok_rows_only() -> None:
    a, b, c = summarize(ROWS)
    assert [s.cell_id for s in (a, b, c)] == ["a", "b", "c"]
    assert (a.n, a.n_failed) == (3, 1)
    assert (a.rps_mean, a.rps_sd) == (110.0, 10.0) and a.rps_ci95 == pytest.approx(24.8414, abs=1e-4)
    # p50 2, 3, 4: mean 3, sd 1, ci 4.3027 / sqrt(3) = 2.48414
    assert (a.p50_ms_mean, a.p50_ms_sd) == (3.0, 1.0) and a.p50_ms_ci95 == pytest.approx(2.48414, abs=1e-5)
    # p99 10, 14, 12: mean 12, sd 2, ci 4.3027 * 2 / sqrt(3) = 4.96828
    assert (a.p99_ms_mean, a.p99_ms_sd) == (12.0, 2.0) and a.p99_ms_ci95 == pytest.approx(4.96828, abs=1e-5)
    assert a.cpu_ms_per_request_mean == pytest.approx(0.6)
    assert (a.requests, a.failures) == (3300, 3)
    assert a.any_saturated  # repeat 2; the failed repeat 4 does not count either way
    assert (a.style, a.users, a.threadpool_tokens) == ("def", 10, 40)


def test_single_and_no_repeat() -> None:
    _, b, c = summarize(ROWS)
    assert (b.n, b.rps_mean, b.rps_sd, b.rps_ci95) == (1, 500.0, 0.0, 0.0)
    assert not b.any_saturated and b.style == "async" and b.users == 50
    assert (c.n, c.n_failed, c.rps_mean, c.rps_ci95) == (0, 1, 0.0, 0.0)


def test_params_are_summary_columns() -> None:
    names = {f.name for f in fields(SummaryRow)}
    assert set(PARAMS) <= names
    assert STATS_COLUMNS[: len(PARAMS) + 1] == ("cell_id", *PARAMS)
    # every Cell parameter, the ones a matrix over loop or http varies included
    assert ("backend", *PARAM_COLUMNS) == PARAMS and {"loop", "http", "port", "bind"} <= set(PARAMS)


def test_write_stats_columns_from_dataclass(tmp_path: Path) -> None:
    path = tmp_path / "summary_stats.csv"
    RunDir(tmp_path).write_stats(summarize(ROWS))
    with path.open(newline="") as fh:
        records = list(csv.DictReader(fh))
    assert tuple(records[0]) == STATS_COLUMNS == tuple(f.name for f in fields(CellStats))
    assert records[0]["cell_id"] == "a" and records[0]["rps_mean"] == "110.000"
    assert records[0]["rps_ci95"] == "24.841" and records[0]["any_saturated"] == "true"
    assert records[1]["rps_sd"] == "0.000" and records[2]["n"] == "0"


def test_the_tightest_sampled_headroom_is_kept() -> None:
    rows = [row(repeat=1, loadgen_headroom=2.0), row(repeat=2, loadgen_headroom=0.8),
            row(repeat=3, loadgen_headroom=0.0),  # not sampled: not "no headroom"
            row(repeat=4, loadgen_headroom=0.5, status="failed")]  # failed rows carry no figure
    [cell] = summarize(rows)
    assert cell.loadgen_headroom_min == 0.8
    [unsampled] = summarize([row(repeat=1, loadgen_headroom=0.0)])
    assert unsampled.loadgen_headroom_min == 0.0
