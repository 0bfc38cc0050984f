"""The one result type: a summary row per cell x repeat x attempt, and its columns as text.

The CSV header is derived from the dataclass fields, so columns cannot drift from the code that
fills them; a cell's parameter columns are the key table's (cells.PARAM_COLUMNS), the dataclass
made from them, so a new scenario key is a column with nothing else to change.
The file itself (appending, torn lines, reading) belongs to bench.results.rundir.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import field, fields, make_dataclass
from typing import Any

from bench.scenario.cells import PARAM_COLUMNS, PARAM_TYPES  # noqa: F401  (PARAM_COLUMNS: row.X)

# History of the on-disk format (env.json "schema_version", summary.csv columns):
#   1 - first version.
#   2 - port, bind, loop and http columns (every Cell parameter is a column); `attempt` after
#       `repeat` (--retry-failed appends a new attempt and keeps the failed one).
#   3 - worker_pinning; loadgen_cpu_ms_per_request, loadgen_headroom and loadgen_lag_ms; one
#       Locust run per cell (warmup and measurement in one, so no warmup_* files); target_affinity
#       lists each worker's CPUs when they differ.
#   4 - the open load model: load_model, rate, arrivals, max_inflight parameters; offered_rps,
#       achieved_rps, late_sends, late_p99_ms, dropped and latency_from figures.
#   5 - real I/O: db_query, db_sleep_ms, db_pool_size, db_pool_timeout_s, db_dependency, upstream_delay_ms,
#       http_pool_size and db_cpuset parameters; db_pool_busy_max, db_pool_waiting_max and
#       services_cpu_pct figures.
#   6 - more servers: granian_runtime_threads and granian_blocking_threads parameters (0 for the
#       servers other than granian).
#   7 - a team's own app: the endpoint parameter (the [[endpoints]] name; "" for the built-in
#       app, whose style x workload are its endpoints) and the styles as_written / on_loop;
#       env.json's "app" (the app, its folder, interpreter and its own package versions).
#   8 - the CPU profile: profile and profile_rate parameters; profile_samples, profile_gil_pct and
#       cpu_{hop,loop,server,framework,app,agent,rest}_pct figures (0 where profile = "off").
SCHEMA_VERSION = 8


# identity: the spec travels with its results
IDENTITY_FIELDS: tuple[tuple[str, str], ...] = (
    ("run_id", "str"), ("cell_id", "str"), ("repeat", "int"), ("attempt", "int"), ("backend", "str"))
# after the cell's parameters (cells.PARAM_COLUMNS: the key table's, in its order): (name, type[, default])
OUTCOME_FIELDS: tuple[tuple[Any, ...], ...] = (
    # as /info reported: the set, or each worker's CPUs ("0/1/2") when they differ
    ("target_affinity", "str"),
    # outcome
    ("status", "str"),  # ok | failed
    ("error", "str"),
    # Locust's aggregated figures (rps, failures) and precise HDR percentiles
    ("requests", "int", 0),
    ("failures", "int", 0),
    ("rps", "float", 0.0),
    ("mean_ms", "float", 0.0),
    ("p50_ms", "float", 0.0),
    ("p90_ms", "float", 0.0),
    ("p95_ms", "float", 0.0),
    ("p99_ms", "float", 0.0),
    ("p999_ms", "float", 0.0),
    ("max_ms", "float", 0.0),
    ("latency_source", "str", ""),  # hdr (microsecond resolution) | locust (rounded)
    ("latency_from", "str", ""),  # sent (closed loop) | intended (open loop: from each request's due time)
    # the open loop's accounting over the window (loadgen/openloop.py); closed rows: achieved only
    ("offered_rps", "float", 0.0),  # requests due per second, sent or dropped
    ("achieved_rps", "float", 0.0),  # responses per second (= rps)
    ("late_sends", "int", 0),  # sent more than 1 ms after their due time
    ("late_p99_ms", "float", 0.0),  # p99 of every send's lateness
    ("dropped", "int", 0),  # due while max_inflight requests were outstanding: not sent
    # resources over the measured window; Locust's capacity (bench/run/headroom.py)
    ("loadgen_cpu_pct", "float", 0.0),
    ("loadgen_cpu_ms_per_request", "float", 0.0),
    ("loadgen_headroom", "float", 0.0),  # requests/s its cores allow at that cost / requests/s achieved
    ("loadgen_lag_ms", "float", 0.0),  # how late Locust's own event loop woke, mean (loadgen/lag.py)
    ("loadgen_saturated", "bool", False),
    ("target_cpu_pct", "float", 0.0),
    ("target_rss_mb", "float", 0.0),
    ("target_threads", "int", 0),
    ("cpu_ms_per_request", "float", 0.0),
    ("services_cpu_pct", "float", 0.0),  # PostgreSQL's and the upstream stub's processes (on db_cpuset)
    # sampled inside the target's workers
    ("threadpool_busy_max", "int", 0),
    ("threadpool_waiting_max", "int", 0),
    ("db_pool_busy_max", "int", 0),  # connections in use, most at once in one worker (app/db.py)
    ("db_pool_waiting_max", "int", 0),  # requests waiting for a connection, most at once in one worker
    ("loop_lag_p99_ms", "float", 0.0),
    # profile = "cpu" (bench/run/profiler.py): py-spy's samples of the GIL holder over the window,
    # those against window x rate x workers (how busy the interpreters were), and each part's share
    # of them (bench/run/attribution.py says which frame is whose)
    ("profile_samples", "int", 0),
    ("profile_gil_pct", "float", 0.0),
    ("cpu_hop_pct", "float", 0.0),
    ("cpu_loop_pct", "float", 0.0),
    ("cpu_server_pct", "float", 0.0),
    ("cpu_framework_pct", "float", 0.0),
    ("cpu_app_pct", "float", 0.0),
    ("cpu_agent_pct", "float", 0.0),
    ("cpu_rest_pct", "float", 0.0),
    ("started_at", "str", ""),
    ("ended_at", "str", ""),
)


def _field(spec: tuple[Any, ...]) -> tuple[Any, ...]:
    return (spec[0], spec[1], field(default=spec[2])) if len(spec) == 3 else spec


# The one result type, its fields from the three lists above: one row per cell x repeat x attempt.
SummaryRow = make_dataclass(
    "SummaryRow", [*IDENTITY_FIELDS, *PARAM_TYPES.items(), *map(_field, OUTCOME_FIELDS)], frozen=True)
SummaryRow.__module__ = __name__


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SummaryRow))
IDENTITY: tuple[str, ...] = tuple(name for name, _ in IDENTITY_FIELDS)
_TYPES = {f.name: f.type for f in fields(SummaryRow)}


def to_text(value: Any) -> str:
    """One CSV field: booleans as true/false, floats with 3 decimals (a microsecond, in ms columns)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    # one physical line per row: a torn last line is then always detectable (bench.results.rundir)
    return str(value).replace("\r", " ").replace("\n", " ")


def from_text(kind: str, text: str) -> Any:
    """One CSV field back to its type ("int", "float", "bool" or "str": a dataclass field's type
    as written); ValueError when a number does not parse."""
    if kind == "int":
        return int(float(text)) if text else 0
    if kind == "float":
        return float(text) if text else 0.0
    if kind == "bool":
        return text == "true"
    return text


def to_record(row: SummaryRow) -> list[str]:
    return [to_text(getattr(row, c)) for c in COLUMNS]


def from_record(record: dict[str, str]) -> SummaryRow:
    """A row from its CSV text; ValueError when a number does not parse."""
    return SummaryRow(**{k: from_text(_TYPES[k], v) for k, v in record.items()})


def latest(rows: Iterable[SummaryRow]) -> list[SummaryRow]:
    """The last attempt of each (cell, repeat), in first-seen order: what the figures rest on.
    Earlier (failed) attempts stay in summary.csv with their reasons."""
    out: dict[tuple[str, int], SummaryRow] = {}
    for row in rows:
        key = (row.cell_id, row.repeat)
        if key not in out or row.attempt >= out[key].attempt:
            out[key] = row
    return list(out.values())
