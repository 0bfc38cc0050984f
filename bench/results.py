"""The one result type: a summary row per cell x repeat, and its CSV file.

The CSV header is derived from the dataclass fields, so columns cannot drift
from the code that fills them (hyperfine keeps a warning comment for that; we
don't need one).
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

# History of the on-disk format (env.json "schema_version", summary.csv columns):
#   1 - first version.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SummaryRow:
    # identity: the spec travels with its results
    run_id: str
    cell_id: str
    repeat: int
    backend: str
    server: str
    workers: int
    style: str
    workload: str
    users: int
    spawn_rate: float
    duration_s: float
    warmup_s: float
    sleep_ms: int
    cpu_iterations: int
    threadpool_tokens: int
    target_cpuset: str
    loadgen_cpuset: str
    loadgen_processes: int
    loadgen_workers: int
    target_affinity: str
    # outcome
    status: str  # ok | failed
    error: str
    # Locust's aggregated figures (rps, failures) and precise HDR percentiles
    requests: int = 0
    failures: int = 0
    rps: float = 0.0
    mean_ms: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    max_ms: float = 0.0
    latency_source: str = ""  # hdr (microsecond resolution) | locust (rounded)
    # resources over the measured window
    loadgen_cpu_pct: float = 0.0
    loadgen_saturated: bool = False
    target_cpu_pct: float = 0.0
    target_rss_mb: float = 0.0
    target_threads: int = 0
    cpu_ms_per_request: float = 0.0
    # sampled inside the target's workers
    threadpool_busy_max: int = 0
    threadpool_waiting_max: int = 0
    loop_lag_p99_ms: float = 0.0
    started_at: str = ""
    ended_at: str = ""


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SummaryRow))
_TYPES = {f.name: f.type for f in fields(SummaryRow)}


def _to_csv(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _from_csv(name: str, text: str) -> Any:
    kind = _TYPES[name]
    if kind == "int":
        return int(float(text)) if text else 0
    if kind == "float":
        return float(text) if text else 0.0
    if kind == "bool":
        return text == "true"
    return text


def append_row(path: Path, row: SummaryRow) -> None:
    """Append one row (header first if the file is new), flushed at once so a crash keeps it."""
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(COLUMNS)
        writer.writerow([_to_csv(getattr(row, c)) for c in COLUMNS])
        fh.flush()


def write_rows(path: Path, rows: list[SummaryRow]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_to_csv(getattr(row, c)) for c in COLUMNS])
    tmp.replace(path)


def read_rows(path: Path) -> list[SummaryRow]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(
                f"{path}: columns differ from this version's summary.csv (schema {SCHEMA_VERSION})"
            )
        return [SummaryRow(**{k: _from_csv(k, v) for k, v in rec.items()}) for rec in reader]


def replace(row: SummaryRow, **changes: Any) -> SummaryRow:
    return dataclasses.replace(row, **changes)
