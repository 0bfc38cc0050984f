"""Locust's stats CSV, read by header name (its headers are display strings; Locust is pinned)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

AGGREGATED = "Aggregated"


@dataclass(frozen=True)
class LocustStats:
    requests: int
    failures: int
    rps: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


def _num(rec: dict[str, str], column: str) -> float:
    # a column missing from the header is an error, not a zero: a renamed "Failure Count" must
    # not turn every cell's failures into 0 without a word
    if column not in rec:
        raise ValueError(f"Locust's stats CSV has no {column!r} column")
    text = rec[column] or ""
    if text in ("", "N/A"):
        return 0.0
    return float(text)


def read_aggregated(stats_csv: Path) -> LocustStats:
    """The Aggregated row of Locust's *_stats.csv; ValueError when it is missing."""
    with stats_csv.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            if rec.get("Name") == AGGREGATED:
                return LocustStats(
                    requests=int(_num(rec, "Request Count")),
                    failures=int(_num(rec, "Failure Count")),
                    rps=_num(rec, "Requests/s"),
                    mean_ms=_num(rec, "Average Response Time"),
                    p50_ms=_num(rec, "50%"),
                    p90_ms=_num(rec, "90%"),
                    p95_ms=_num(rec, "95%"),
                    p99_ms=_num(rec, "99%"),
                    p999_ms=_num(rec, "99.9%"),
                    max_ms=_num(rec, "Max Response Time"),
                )
    raise ValueError(f"{stats_csv}: no {AGGREGATED} row")


def most_frequent_failure(failures_csv: Path) -> str:
    """The most frequent failure message, for the error column of a cell with failures."""
    if not failures_csv.exists():
        return ""
    with failures_csv.open(newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: -int(r.get("Occurrences") or 0))
    return f"{rows[0].get('Error', '')} (x{rows[0].get('Occurrences')})" if rows else ""
