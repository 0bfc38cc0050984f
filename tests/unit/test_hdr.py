"""HDR histograms: merge two into one, percentiles checked against values computed by hand; the
locustfile (which records) and bench/run/hdr.py (which reads) build them with the same settings."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import hdr
from loadgen import hdr_config

ROOT = Path(__file__).resolve().parents[2]

# Loads the locustfile with Locust's own loader (the one `locust -f` uses), builds a histogram with
# its new_histogram(), records a few values and prints its settings and encoding.
LOAD_LOCUSTFILE = """
import json, sys
from locust.util.load_locustfile import load_locustfile
users, _ = load_locustfile(sys.argv[1])
assert "EndpointUser" in users, users
h = sys.modules["locustfile"].new_histogram()
for v in (10, 1234, 987_654):
    h.record_value(v)
print(json.dumps({"lowest": h.lowest_trackable_value, "highest": h.highest_trackable_value,
                  "digits": h.significant_figures, "hdr": h.encode().decode("ascii")}))
"""


def settings(h) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    return h.lowest_trackable_value, h.highest_trackable_value, h.significant_figures


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


def test_reader_uses_the_shared_settings() -> None:
    assert settings(hdr.new_histogram()) == (hdr_config.LOWEST_US, hdr_config.HIGHEST_US,
                                             hdr_config.SIGNIFICANT_DIGITS) == (1, 3_600_000_000, 3)


def test_locustfile_builds_the_same_histograms(tmp_path: Path) -> None:
    # from another folder, by absolute path: hdr_config is found beside the locustfile (Locust puts
    # that folder on sys.path), not through the repository root or the installed package
    proc = subprocess.run([sys.executable, "-c", LOAD_LOCUSTFILE, str(ROOT / "loadgen" / "locustfile.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (got["lowest"], got["highest"], got["digits"]) == settings(hdr.new_histogram())
    # and what it encodes, the reader decodes and merges as its own
    merged = hdr.merge([hdr.decode(got["hdr"]), hist_of([1234])])
    assert settings(merged) == settings(hdr.new_histogram())
    assert merged.get_total_count() == 4 and hdr.percentiles_ms(merged)["p50_ms"] == 1.234


def test_lag_mean_of_a_result() -> None:
    from bench.run.hdr import encode, lag_mean_ms, new_histogram

    hist = new_histogram()
    for us in (500, 1500):  # under 2.048 ms every microsecond has its own bucket: exact
        hist.record_value(us)
    assert lag_mean_ms({"lag_hdr": encode(hist)}) == 1.0
    assert lag_mean_ms({"lag_hdr": ""}) == lag_mean_ms({}) == 0.0
    fine = new_histogram()
    for us in (1, 2):  # 1.5 µs: three decimals of a millisecond, no more
        fine.record_value(us)
    assert lag_mean_ms({"lag_hdr": encode(fine)}) == round(0.0015, 3)


@pytest.mark.parametrize("size", [0, 1, 3, 200, 5000])
def test_mean_and_percentiles_equal_hdrhs_own_walk(size: int) -> None:
    """The numpy walk (bench/run/hdr.py) gives hdrh's own figures bit for bit, on a fresh and on
    a decoded histogram, at both ends, between and at the reported percentiles."""
    rng = random.Random(size)
    # microseconds to minutes: both the exact buckets below 2 ms and the coarse ones far above
    fresh = hist_of([int(rng.lognormvariate(8, 2)) % hdr_config.HIGHEST_US + 1 for _ in range(size)])
    # hdrh walks all 23,552 buckets per percentile, so a sample of them: both ends, the steps between
    pcts = [0.0, 0.1, 1.0, 10.0, 25.0, 33.3, 66.7, 75.0, 100.0] + [pct for _, pct in hdr.PERCENTILES] + [99.99]
    for hist in (fresh, hdr.decode(hdr.encode(fresh))):
        assert hdr.mean_us(hist) == hist.get_mean_value()
        assert hdr.values_at_percentiles_us(hist, pcts) == [hist.get_value_at_percentile(p) for p in pcts]
        assert hdr.value_at_percentile_us(hist, 99.0) == hist.get_value_at_percentile(99.0)


def test_a_total_beyond_the_counts_gives_zero_as_hdrh_does() -> None:
    # a total_count the buckets do not hold (hdrh keeps the two apart): no bucket reaches the
    # target count, and hdrh's walk falls through to 0
    hist = hist_of([500])
    hist.total_count = 3
    assert hdr.values_at_percentiles_us(hist, [100.0, 30.0]) == [0, 500]  # and the next one still counts
    assert [hist.get_value_at_percentile(p) for p in (100.0, 30.0)] == [0, 500]
