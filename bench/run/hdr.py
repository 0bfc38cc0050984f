"""HDR latency histograms as the locustfile records them, and the percentiles we report.

Locust's own CSV rounds response times (to 2 significant figures above 100 ms), which hides the
difference between two close cells; the locustfile therefore also records every response time in
an HdrHistogram and writes it into `measure_result.json`:

    {"hdr": base64 of HdrHistogram.encode(), "count": int, "lag_hdr": the same for Locust's
     event-loop lag, "cpu_warning": bool, "role": "local" | "master", ...}

Values are integer microseconds, 1 µs .. 1 h, 3 significant digits (loadgen/hdr_config.py, shared
with the locustfile): below 2.048 ms every microsecond has its own bucket, above that the relative
error stays under 0.1 %.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from loadgen.hdr_config import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS

# (key, percentile): the columns of SummaryRow that come from the histogram
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50_ms", 50.0),
    ("p90_ms", 90.0),
    ("p95_ms", 95.0),
    ("p99_ms", 99.0),
    ("p999_ms", 99.9),
)


def new_histogram() -> HdrHistogram:
    """An empty histogram with the one configuration both the locustfile and the reader use."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def encode(hist: HdrHistogram) -> str:
    """The text form stored in measure_result.json (hdrh's encode() is already base64)."""
    return hist.encode().decode("ascii")


def decode(b64: str | bytes) -> HdrHistogram:
    """A histogram back from encode()'s text; raises ValueError on anything else."""
    try:
        return HdrHistogram.decode(b64)
    except Exception as exc:  # hdrh raises TypeError, zlib.error or its own cookie errors
        raise ValueError(f"not an encoded HdrHistogram: {exc}") from exc


def merge(hists: Iterable[HdrHistogram]) -> HdrHistogram:
    """One histogram holding every value of the given ones (e.g. one per Locust process).

    Adds into a fresh histogram so none of the inputs is modified.
    """
    out = new_histogram()
    for hist in hists:
        out.add(hist)
    return out


def _counts(hist: HdrHistogram) -> np.ndarray:
    """The histogram's counts as a numpy view (no copy, uint64) of hdrh's ctypes array.

    hdrh walks its 23,552 buckets in Python for every mean and percentile (get_mean_value alone
    was 19 of the 31 s of the slowest unit test); one vectorised pass gives the same numbers. The
    array is the payload's own, so a decoded histogram with a shorter payload gives a shorter
    view: the buckets past it count as zero, as hdrh's get_count_at_index says.
    """
    return np.ctypeslib.as_array(hist.counts)


def mean_us(hist: HdrHistogram) -> float:
    """hdrh's get_mean_value: each bucket's count times the middle of its range, over the total."""
    total = hist.get_total_count()
    if not total:
        return 0.0
    counts = _counts(hist)
    acc = 0
    for i in np.flatnonzero(counts).tolist():  # exact integers, as hdrh sums them
        acc += int(counts[i]) * hist._hdr_median_equiv_value(hist.get_value_from_index(i))
    return float(acc) / total


def values_at_percentiles_us(hist: HdrHistogram, pcts: Iterable[float]) -> list[int]:
    """hdrh's get_value_at_percentile for each percentile, from one cumulative sum.

    The same rule as hdrh: the target count is round(p/100 × total), at least 1; the value is the
    first bucket whose running count reaches it, reported as the highest value of that bucket
    (the lowest for p = 0); 0 for an empty histogram.
    """
    pcts = list(pcts)
    if not hist.get_total_count():
        return [0] * len(pcts)
    running = np.cumsum(_counts(hist))  # uint64 in, uint64 out: exact counts
    out = []
    for pct in pcts:
        target = hist.get_target_count_at_percentile(pct)
        idx = int(np.searchsorted(running, target))  # the first index whose running count >= target
        if idx >= len(running):
            out.append(0)
            continue
        value = hist.get_value_from_index(idx)
        edge = hist.get_highest_equivalent_value if pct else hist.get_lowest_equivalent_value
        out.append(edge(value))
    return out


def value_at_percentile_us(hist: HdrHistogram, pct: float) -> int:
    """One percentile, as values_at_percentiles_us computes it."""
    return values_at_percentiles_us(hist, [pct])[0]


def percentiles_ms(hist: HdrHistogram) -> dict[str, float]:
    """mean, p50 .. p99.9 and max in milliseconds (microsecond resolution, so 3 decimals).

    An empty histogram gives zeros rather than raising: the caller decides whether a cell with
    no completed request failed (the runner does, from Locust's request count).
    """
    out = {"mean_ms": round(mean_us(hist) / 1000.0, 3)}
    values = values_at_percentiles_us(hist, [pct for _, pct in PERCENTILES])
    for i, (key, _) in enumerate(PERCENTILES):
        out[key] = values[i] / 1000.0
    out["max_ms"] = hist.get_max_value() / 1000.0
    return out


def parse_result(data: dict[str, Any]) -> tuple[HdrHistogram, dict[str, Any]]:
    """Split a measure_result.json object into its histogram and the rest (the metadata).

    "hdr" may also be a list of encodings (one per process); they are merged.
    """
    if "hdr" not in data:
        raise ValueError("measure_result.json has no 'hdr' key")
    raw = data["hdr"]
    encoded = raw if isinstance(raw, list) else [raw]
    hist = merge(decode(item) for item in encoded if item)
    meta = {k: v for k, v in data.items() if k != "hdr"}
    count = meta.get("count")
    if isinstance(count, int) and count != hist.get_total_count():
        # a mismatch means a process's histogram was lost on the way: say so, keep the data
        meta["count_mismatch"] = f"count says {count}, histogram holds {hist.get_total_count()}"
    return hist, meta


def load_result(path: Path) -> tuple[HdrHistogram, dict[str, Any]]:
    """Read one cell repeat's measure_result.json."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    try:
        return parse_result(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def lag_mean_ms(meta: dict[str, Any]) -> float:
    """The mean of Locust's event-loop lag (loadgen/lag.py) from a result's metadata; 0.0 when
    none was recorded."""
    encoded = meta.get("lag_hdr")
    if not encoded:
        return 0.0
    return round(mean_us(decode(encoded)) / 1000.0, 3)  # written only when it holds a value


def p99_ms(encoded: str) -> float:
    """The p99 in ms of an encoded histogram of microseconds (the open loop's lateness); 0.0 when
    empty."""
    if not encoded:
        return 0.0
    return value_at_percentile_us(decode(encoded), 99.0) / 1000.0
