"""summary.csv round trip, Locust CSV parsing by header, resource usage over a window (fake clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.locust_csv import read_aggregated
from bench.monitor import Sample, usage
from bench.results import COLUMNS, SummaryRow, append_row, read_rows
from bench.runner import is_saturated
from bench.scenario import from_dict
from tests.fakes import write_locust_stats

DATA = Path(__file__).parent / "data"


def row(**kw: object) -> SummaryRow:
    base = dict(run_id="r", cell_id="c", repeat=1, backend="local", server="uvicorn", workers=1,
                style="def", workload="noop", users=10, spawn_rate=10.0, duration_s=5.0, warmup_s=1.0,
                sleep_ms=100, cpu_iterations=1000, threadpool_tokens=40, target_cpuset="0",
                loadgen_cpuset="1", loadgen_processes=1, loadgen_workers=0, target_affinity="0",
                status="ok", error="")
    base.update(kw)
    return SummaryRow(**base)  # type: ignore[arg-type]


def test_append_then_read_round_trips_types(tmp_path: Path) -> None:
    path = tmp_path / "summary.csv"
    first = row(rps=1234.5678, loadgen_saturated=True, p50_ms=0.123)
    second = row(cell_id="d", status="failed", error="target died, badly")
    append_row(path, first)
    append_row(path, second)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 3
    back = read_rows(path)
    assert back[0].rps == pytest.approx(1234.568) and back[0].loadgen_saturated is True
    assert back[1].error == "target died, badly" and back[1].requests == 0


def test_read_refuses_other_columns(tmp_path: Path) -> None:
    path = tmp_path / "summary.csv"
    path.write_text("run_id,rps\nx,1\n")
    with pytest.raises(ValueError, match="columns differ"):
        read_rows(path)


def test_locust_aggregated_row_by_header(tmp_path: Path) -> None:
    path = tmp_path / "measure_stats.csv"
    write_locust_stats(path, requests=500, rps=99.5, p50=12.0)
    agg = read_aggregated(path)
    assert (agg.requests, agg.rps, agg.p50_ms, agg.p99_ms) == (500, 99.5, 12.0, 36.0)


def test_locust_csv_written_by_real_locust() -> None:
    """A file Locust 2.47 wrote (see tests/data/README): the headers we read are really there."""
    agg = read_aggregated(DATA / "locust_2.47_stats.csv")
    assert agg.requests > 0 and agg.rps > 0 and agg.p50_ms > 0 and agg.max_ms >= agg.p99_ms


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


def test_saturation_threshold() -> None:
    cell = from_dict({"defaults": {"loadgen_processes": 2, "loadgen_cpuset": "0-1"}}, {}).cells()[0]
    assert is_saturated(cell, total_pct=95, busiest_pct=95)  # one process near a full core
    assert is_saturated(cell, total_pct=185, busiest_pct=89)  # both near their cores
    assert not is_saturated(cell, total_pct=120, busiest_pct=60)
