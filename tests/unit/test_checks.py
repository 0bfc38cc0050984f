"""Scenario [checks]: validation messages name the key; evaluation names cell and values."""

from __future__ import annotations

import pytest

from bench.judge.checks import KNOWN_KEYS, effective, evaluate, validate
from bench.results.row import SummaryRow
from tests.rows import make_row


def row(**kw: object) -> SummaryRow:
    return make_row(**{"requests": 1000, "rps": 100.0, "p99_ms": 50.0, **kw})


@pytest.mark.parametrize(("checks", "message"), [
    ({"min_rsp": 1}, "checks.min_rsp: unknown check or workload"),
    ({"min_rps": "ten"}, "checks.min_rps: expected a number"),
    ({"min_rps": True}, "checks.min_rps: expected a number"),
    ({"max_p99_ms": -1}, "checks.max_p99_ms: must be >= 0"),
    ({"max_failure_ratio": 5}, "checks.max_failure_ratio: must be between 0 and 1"),
    ({"fail_on_saturation": "yes"}, "checks.fail_on_saturation: expected true or false"),
    ({"sleep": 5}, "checks.sleep: expected a table"),
    ({"sleep": {"p99": 1}}, "checks.sleep.p99: unknown check"),
    ({"cpu": {"min_rps": "x"}}, "checks.cpu.min_rps: expected a number"),
])
def test_validate_names_the_key(checks: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        validate(checks)


def test_validate_accepts_every_known_key_and_workload_tables() -> None:
    assert set(KNOWN_KEYS) == {"max_failure_ratio", "min_rps", "max_p99_ms", "fail_on_saturation"}
    validate({"max_failure_ratio": 0.01, "min_rps": 10, "max_p99_ms": 250.5, "fail_on_saturation": True,
              "noop": {}, "cpu": {"min_rps": 1}, "sleep": {"max_p99_ms": 500},
              "blocking_sleep": {"fail_on_saturation": False}})
    validate({})


def test_workload_table_overrides_globals() -> None:
    checks = {"min_rps": 10, "max_p99_ms": 100, "sleep": {"max_p99_ms": 500}}
    assert effective(checks, "sleep") == {"min_rps": 10, "max_p99_ms": 500}
    assert effective(checks, "noop") == {"min_rps": 10, "max_p99_ms": 100}


def test_empty_checks_pass_and_passing_rows_pass() -> None:
    assert evaluate([row()], {}) == []
    assert evaluate([row()], {"min_rps": 100, "max_p99_ms": 50, "max_failure_ratio": 0}) == []


def test_each_failed_check_is_one_message_with_cell_and_values() -> None:
    rows = [
        row(cell_id="slow-noop", p99_ms=300.0),
        row(cell_id="slow-sleep", workload="sleep", p99_ms=300.0),  # allowed 500 by its table
        row(cell_id="few", rps=5.0),
        row(cell_id="errs", failures=20),  # 20 / 1000 = 0.02
        row(cell_id="sat", loadgen_saturated=True),
        row(cell_id="dead", status="failed", error="target exited with 1"),
    ]
    checks = {"min_rps": 10, "max_p99_ms": 100, "max_failure_ratio": 0.01, "fail_on_saturation": True,
              "sleep": {"max_p99_ms": 500}}
    messages = evaluate(rows, checks)
    assert messages == [
        "dead repeat 1: failed: target exited with 1",
        "slow-noop: p99 300.000 ms (mean of 1) > max_p99_ms 100",
        "few: 5.0 requests/s (mean of 1) < min_rps 10",
        "errs: failure ratio 0.0200 (20/1000 requests) > max_failure_ratio 0.01",
        "sat: load generator saturated (fail_on_saturation), so 100.0 requests/s is a floor, not a measurement",
    ]


def test_thresholds_use_the_cell_mean_over_ok_repeats() -> None:
    rows = [row(repeat=1, rps=8.0), row(repeat=2, rps=14.0), row(repeat=3, status="failed", error="x")]
    # mean of the ok repeats is 11 >= 10: only the failed repeat is reported
    assert evaluate(rows, {"min_rps": 10}) == ["c repeat 3: failed: x"]


def test_saturation_passes_unless_asked() -> None:
    assert evaluate([row(loadgen_saturated=True)], {"min_rps": 1}) == []


def test_evaluate_refuses_invalid_checks() -> None:
    with pytest.raises(ValueError, match=r"checks\.nope"):
        evaluate([row()], {"nope": 1})
