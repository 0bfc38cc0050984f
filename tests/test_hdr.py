"""HDR histograms: merge two into one, percentiles checked against values computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import hdr


def hist_of(values: list[int]):  # type: ignore[no-untyped-def]
    h = hdr.new_histogram()
    for v in values:
        h.record_value(v)
    return h


# 10, 20, ..., 1000 µs: below 2048 µs every microsecond has its own bucket, so HDR is exact here.
# The p-th percentile is the k-th smallest value with k = round(p/100 * 100 values):
# p50 -> 50th = 500 µs, p90 -> 900, p95 -> 950, p99 -> 990, p99.9 -> round(99.9) = 100th = 1000.
ODD = [10 * i for i in range(1, 101, 2)]
EVEN = [10 * i for i in range(2, 101, 2)]


def test_merge_two_histograms_then_percentiles_by_hand() -> None:
    a, b = hist_of(ODD), hist_of(EVEN)
    merged = hdr.merge([a, b])
    assert merged.get_total_count() == 100
    assert a.get_total_count() == 50 and b.get_total_count() == 50  # inputs untouched
    assert hdr.percentiles_ms(merged) == {
        "mean_ms": 0.505,  # (10 + 1000) / 2 µs
        "p50_ms": 0.5, "p90_ms": 0.9, "p95_ms": 0.95, "p99_ms": 0.99, "p999_ms": 1.0, "max_ms": 1.0,
    }


def test_microsecond_resolution_survives_encoding() -> None:
    h = hist_of([1234, 1234, 1235])  # 1.234 ms vs 1.235 ms: Locust's CSV would round both to 1
    back = hdr.decode(hdr.encode(h))
    assert hdr.percentiles_ms(back)["p50_ms"] == 1.234 and hdr.percentiles_ms(back)["max_ms"] == 1.235


def test_empty_histogram_gives_zeros() -> None:
    assert set(hdr.percentiles_ms(hdr.new_histogram()).values()) == {0.0}


def test_load_result_splits_histogram_and_meta(tmp_path: Path) -> None:
    path = tmp_path / "measure_result.json"
    path.write_text(json.dumps({"hdr": hdr.encode(hist_of(ODD)), "count": 50, "cpu_warning": True,
                                "role": "master"}))
    hist, meta = hdr.load_result(path)
    assert hist.get_total_count() == 50
    assert meta == {"count": 50, "cpu_warning": True, "role": "master"}


def test_load_result_merges_a_list_and_flags_lost_counts(tmp_path: Path) -> None:
    path = tmp_path / "measure_result.json"
    path.write_text(json.dumps({"hdr": [hdr.encode(hist_of(ODD)), hdr.encode(hist_of(EVEN))],
                                "count": 101, "cpu_warning": False, "role": "local"}))
    hist, meta = hdr.load_result(path)
    assert hdr.percentiles_ms(hist)["p99_ms"] == 0.99
    assert "101" in meta["count_mismatch"] and "100" in meta["count_mismatch"]


def test_garbage_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an encoded HdrHistogram"):
        hdr.decode("bm90IGEgaGlzdG9ncmFt")
    path = tmp_path / "measure_result.json"
    path.write_text('{"count": 3}')
    with pytest.raises(ValueError, match="no 'hdr' key"):
        hdr.load_result(path)
