"""The gate's judgement on known figures: the rule (beyond the threshold AND significant, the
worse way), pairing cells by their place in the matrix, and each reason a cell is not judged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.judge import gate
from bench.results.baseline import Baseline
from bench.results.stats import CellStats, summarize
from tests.rows import make_row

CPU, BUILD = "Test CPU @ 2.5GHz", "CPython 3.12.7 (PGO)"


def cell(rps: tuple[float, ...] = (200.0, 202.0, 198.0), p50: tuple[float, ...] = (50.0, 50.5, 49.5),
         p99: tuple[float, ...] = (90.0, 92.0, 88.0), saturated: bool = False, cell_id: str = "def-sleep",
         **params: Any) -> CellStats:
    rows = [make_row(cell_id=cell_id, repeat=i + 1, rps=r, p50_ms=a, p99_ms=b, loadgen_saturated=saturated,
                     **params) for i, (r, a, b) in enumerate(zip(rps, p50, p99, strict=True))]
    [stats] = summarize(rows)
    return stats


def base(*stats: CellStats, env: dict[str, Any] | None = None, build: str = BUILD) -> Baseline:
    return Baseline(Path("baseline"), list(stats), {"cpu_model": CPU} if env is None else env, build)


def one(baseline: Baseline, *current: CellStats, threshold: float = 25.0) -> gate.Judgement:
    [j] = gate.judge(baseline, list(current), CPU, BUILD, threshold)
    return j


def test_same_figures_pass() -> None:
    j = one(base(cell()), cell())
    assert j.verdict == gate.PASS and j.reason == "" and [f.name for f in j.figures] == ["rps", "p50_ms", "p99_ms"]
    assert all(f.p == 1.0 for f in j.figures)  # Welch on identical samples


def test_half_the_rps_with_tight_repeats_is_a_regression_named_with_its_figures() -> None:
    j = one(base(cell()), cell(rps=(100.0, 101.0, 99.0)))
    assert j.verdict == gate.REGRESSION
    rps = j.figures[0]
    assert rps.regressed and rps.change_pct == pytest.approx(-50.0) and rps.p < 0.001
    assert j.reason.startswith("rps 200.0 -> 100.0 (-50.0 %, p = 0.000")
    both = one(base(cell()), cell(rps=(100.0, 101.0, 99.0), p50=(100.0, 101.0, 99.0)))
    assert both.reason == ("rps 200.0 -> 100.0 (-50.0 %, p = 0.000); p50_ms 50.0 -> 100.0 (+100.0 %, p = 0.000)")
    pair = one(base(cell()), cell(rps=(100.0, 101.0), p50=(50.0, 50.5), p99=(90.0, 92.0)))
    assert (pair.verdict, pair.n_baseline, pair.n_current) == (gate.REGRESSION, 3, 2)


def test_beyond_the_threshold_but_within_the_noise_passes() -> None:
    j = one(base(cell()), cell(rps=(60.0, 250.0, 110.0)))  # -30 %, a wide spread
    assert j.figures[0].change_pct is not None and j.figures[0].change_pct < -25 and j.figures[0].p > 0.05
    assert j.verdict == gate.PASS


def test_significant_but_within_the_threshold_passes() -> None:
    j = one(base(cell()), cell(rps=(180.0, 181.0, 179.0)))  # -10 %, p tiny
    assert j.figures[0].p < 0.001 and j.verdict == gate.PASS
    assert one(base(cell()), cell(rps=(180.0, 181.0, 179.0)), threshold=5).verdict == gate.REGRESSION


def test_only_the_worse_way_counts() -> None:
    faster = cell(rps=(400.0, 401.0, 399.0), p50=(20.0, 20.5, 19.5))
    assert one(base(cell()), faster).verdict == gate.PASS
    slower_p50 = cell(p50=(100.0, 101.0, 99.0))
    j = one(base(cell()), slower_p50)
    assert j.verdict == gate.REGRESSION and [f.name for f in j.figures if f.regressed] == ["p50_ms"]


def test_p99_is_shown_not_gated() -> None:
    j = one(base(cell()), cell(p99=(300.0, 301.0, 299.0)))
    p99 = j.figures[2]
    assert p99.change_pct is not None and p99.change_pct > 200 and p99.p < 0.001
    assert not p99.gated and not p99.regressed and j.verdict == gate.PASS


def test_the_threshold_itself_is_not_beyond_it() -> None:
    exactly = cell(rps=(150.0, 151.5, 148.5))  # -25.0 %
    assert one(base(cell()), exactly).figures[0].change_pct == pytest.approx(-25.0)
    assert one(base(cell()), exactly).verdict == gate.PASS
    assert one(base(cell()), exactly, threshold=24.9).verdict == gate.REGRESSION


def test_cells_pair_by_their_place_and_a_whole_run_change_is_named() -> None:
    baseline = base(cell(cell_id="def-sleep-tp40", style="def"), cell(cell_id="async-sleep-tp40", style="async"))
    current = [cell(cell_id="async-sleep-tp5", style="async", threadpool_tokens=5),
               cell(cell_id="def-sleep-tp5", style="def", threadpool_tokens=5, rps=(100.0, 101.0, 99.0))]
    js = {j.cell_id: j for j in gate.judge(baseline, current, CPU, BUILD)}
    assert js["def-sleep-tp5"].baseline_id == "def-sleep-tp40" and js["def-sleep-tp5"].verdict == gate.REGRESSION
    assert js["async-sleep-tp5"].baseline_id == "async-sleep-tp40" and js["async-sleep-tp5"].verdict == gate.PASS
    assert js["def-sleep-tp5"].note == "threadpool_tokens 40 -> 5"


def test_an_axis_of_one_run_only_still_pairs_the_common_place() -> None:
    baseline = base(cell(cell_id="u10", users=10), cell(cell_id="u50", users=50))
    js = gate.judge(baseline, [cell(cell_id="u10-now", users=10)], CPU, BUILD)
    assert [(j.cell_id, j.baseline_id, j.verdict) for j in js] == [
        ("u10-now", "u10", gate.PASS), ("u50", "u50", gate.NOT_JUDGED)]
    assert js[1].reason == "in the baseline, not in this run"
    [only] = gate.judge(base(cell(users=10)), [cell(cell_id="new", users=20), cell(users=10)], CPU, BUILD)[:1]
    assert only.reason == "not in the baseline" and only.baseline_id == ""


def test_a_knob_only_some_cells_read_is_not_an_axis() -> None:
    # db_pool_size is 0 in the no-op cells and 10 in the db ones: a change of it for the whole run
    # must still pair the db cells, not leave them "not in the baseline"
    baseline = base(cell(cell_id="noop", workload="noop", db_pool_size=0),
                    cell(cell_id="db", workload="db", db_pool_size=10))
    current = [cell(cell_id="noop", workload="noop", db_pool_size=0),
               cell(cell_id="db5", workload="db", db_pool_size=5)]
    js = {j.cell_id: j for j in gate.judge(baseline, current, CPU, BUILD)}
    assert js["db5"].baseline_id == "db" and js["db5"].note == "db_pool_size 10 -> 5"
    assert js["noop"].note == ""


def test_another_setup_is_not_judged() -> None:
    j = one(base(cell()), cell(server="granian", rps=(10.0, 10.1, 9.9)))
    assert j.verdict == gate.NOT_JUDGED and j.reason == "another setup: server uvicorn -> granian"
    j = one(base(cell()), cell(loadgen_cpuset="0-1"))
    assert j.verdict == gate.NOT_JUDGED and j.reason == "another setup: loadgen_cpuset 1 -> 0-1"
    assert one(base(cell()), cell(port=9999)).note == ""  # where it listened changes nothing


def test_another_machine_judges_no_cell() -> None:
    slower = cell(rps=(10.0, 10.1, 9.9))
    j = one(base(cell(), env={"cpu_model": "Other CPU"}), slower)
    assert j.verdict == gate.NOT_JUDGED and j.reason.startswith("another CPU (baseline: Other CPU; this run: Test")
    assert (j.cell_id, j.baseline_id, j.n_baseline, j.n_current, j.note) == ("def-sleep", "def-sleep", 3, 3, "")
    j = one(base(cell(), build="CPython 3.11.2"), slower)
    assert j.verdict == gate.NOT_JUDGED and "another interpreter build (baseline: CPython 3.11.2;" in j.reason
    assert gate.machine_differs(base(cell(), env={}, build=""), CPU, BUILD) == ""  # unknown is not other
    assert one(base(cell(), env={}, build=""), slower).verdict == gate.REGRESSION
    assert gate.unchecked(base(cell(), env={})) == "no env.json beside the baseline: CPU and interpreter unchecked"
    assert gate.unchecked(base(cell())) == ""


def test_too_few_repeats_or_none_ok_are_not_judged() -> None:
    j = one(base(cell()), cell(rps=(10.0,), p50=(1.0,), p99=(2.0,)))
    assert j.verdict == gate.NOT_JUDGED and j.reason == "n = 1: Welch's test needs two ok repeats a side"
    failed = summarize([make_row(cell_id="def-sleep", status="failed", error="boom")])[0]
    j = one(base(cell()), failed)
    assert j.reason == "no ok repeat in this run" and (j.n_baseline, j.n_current) == (3, 0)
    assert one(base(failed), cell()).reason == "no ok repeat in the baseline"


def test_a_saturated_locust_in_this_run_is_not_judged_in_the_baseline_a_note() -> None:
    j = one(base(cell()), cell(saturated=True, rps=(10.0, 10.1, 9.9)))
    assert j.verdict == gate.NOT_JUDGED and j.reason.startswith("Locust saturated in this run")
    j = one(base(cell(saturated=True)), cell(rps=(10.0, 10.1, 9.9)))
    assert j.verdict == gate.REGRESSION and "Locust saturated in the baseline" in j.note


def test_a_locust_near_its_limit_in_this_run_is_not_judged() -> None:
    near = cell(rps=(10.0, 10.1, 9.9), loadgen_headroom=1.3)
    j = one(base(cell()), near)
    assert j.verdict == gate.NOT_JUDGED
    assert j.reason == ("Locust near its limit in this run (headroom 1.30x, under 1.5x): its own scheduling "
                        "sets part of the figures")
    assert one(base(cell()), cell(rps=(10.0, 10.1, 9.9), loadgen_headroom=1.5)).verdict == gate.REGRESSION
    assert one(base(cell()), cell(rps=(10.0, 10.1, 9.9), loadgen_headroom=0.0)).verdict == gate.REGRESSION
    assert one(base(cell(loadgen_headroom=1.1)), cell(rps=(10.0, 10.1, 9.9))).verdict == gate.REGRESSION


def test_the_threshold_must_be_positive_and_the_rule_states_it() -> None:
    with pytest.raises(ValueError, match="threshold must be > 0"):
        gate.judge(base(cell()), [cell()], CPU, BUILD, 0.0)
    with pytest.raises(ValueError):
        gate.judge(base(cell()), [cell()], CPU, BUILD, float("nan"))
    tight = cell(rps=(200.0, 200.1, 199.9))
    assert one(base(tight), cell(rps=(199.0, 199.1, 198.9)), threshold=0.4).verdict == gate.REGRESSION
    assert gate.rule(12.5) == ("regression: rps falls or p50 rises by more than 12.5 % of the baseline's mean, "
                               "and Welch's t-test on the repeats gives p < 0.05 (p99 shown, not gated)")


def test_a_change_from_a_zero_mean_is_undefined_not_a_regression() -> None:
    j = one(base(cell(p50=(0.0, 0.0, 0.0))), cell(p50=(5.0, 5.1, 4.9)))
    p50 = j.figures[1]
    assert p50.change_pct is None and p50.p < 0.05 and not p50.regressed and j.verdict == gate.PASS
    exactly = cell(p50=(62.5, 63.125, 61.875))  # +25.0 %: the threshold itself is not beyond it
    assert one(base(cell()), exactly).figures[1].change_pct == pytest.approx(25.0)
    assert one(base(cell()), exactly).verdict == gate.PASS


def test_notes_and_reasons_are_whole() -> None:
    both = gate.machine_differs(base(cell(), env={"cpu_model": "A"}, build="B"), "C", "D")
    assert both == "another CPU (baseline: A; this run: C); another interpreter build (baseline: B; this run: D)"
    j = one(base(cell(saturated=True)), cell(threadpool_tokens=5, cpu_iterations=7))
    assert j.note == ("cpu_iterations 1000 -> 7; threadpool_tokens 40 -> 5; Locust saturated in the baseline: its "
                      "figures are floors, so this judgement is lenient")
    assert one(base(cell(saturated=True)), cell()).note.startswith("Locust saturated in the baseline")
    setup = one(base(cell()), cell(server="hypercorn", threadpool_tokens=5))
    assert setup.reason == "another setup: server uvicorn -> hypercorn"
    assert setup.note == "server uvicorn -> hypercorn; threadpool_tokens 40 -> 5"
    # a knob the cell does not read names no change, whatever its value
    assert one(base(cell(workload="noop", db_pool_size=10)), cell(workload="noop", db_pool_size=0)).note == ""
    lacking = gate.judge(base(cell(cell_id="gone", users=50), cell(users=10)), [cell(users=10)], CPU, BUILD)[1]
    assert (lacking.cell_id, lacking.baseline_id, lacking.note, lacking.n_current) == ("gone", "gone", "", 0)
    new = gate.judge(base(cell(users=10)), [cell(cell_id="new", users=20), cell(users=10)], CPU, BUILD)[0]
    assert (new.note, new.n_baseline, new.n_current, new.figures) == ("", 0, 3, ())


def test_each_unjudged_cell_keeps_both_ids_its_counts_and_the_change() -> None:
    def whole(j: gate.Judgement) -> tuple[object, ...]:
        return j.cell_id, j.baseline_id, j.verdict, j.note, j.n_baseline, j.n_current, j.figures

    changed = {"cell_id": "now", "threadpool_tokens": 5}
    expected = ("now", "def-sleep", gate.NOT_JUDGED, "threadpool_tokens 40 -> 5", 3)
    cases = {
        "another setup: server uvicorn -> granian": cell(server="granian", **changed),
        "Locust saturated in this run: its figures are Locust's, not the target's": cell(saturated=True, **changed),
        "Locust near its limit in this run (headroom 0.90x, under 1.5x): its own scheduling sets part of the "
        "figures": cell(loadgen_headroom=0.9, **changed),
    }
    for reason, cur in cases.items():
        j = one(base(cell()), cur)
        if reason.startswith("another setup"):
            assert j.note == "server uvicorn -> granian; threadpool_tokens 40 -> 5"
            j = gate.Judgement(j.cell_id, j.baseline_id, j.verdict, j.reason, expected[3], j.n_baseline, j.n_current,
                               j.figures)
        assert (j.reason, *whole(j)) == (reason, *expected, 3, ()), reason
    few = one(base(cell()), cell(rps=(1.0,), p50=(1.0,), p99=(1.0,), **changed))
    assert whole(few) == (*expected, 1, ())
    failed = summarize([make_row(cell_id="now", threadpool_tokens=5, status="failed", error="boom")])[0]
    assert whole(one(base(cell()), failed)) == (*expected, 0, ())
