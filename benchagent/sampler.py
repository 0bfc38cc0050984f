"""Why it is fast or slow, seen from inside each worker process.

A background task samples, every 10 ms, the anyio thread limiter (tokens borrowed = threads busy
with def endpoints, tasks waiting = def requests queued for a thread) and the event loop's lag
(how late a 10 ms sleep wakes up: a blocking call in async def shows here) and, when the worker
has database pools, their connections in use and the requests waiting for one. Every 0.2 s it
appends one JSON line per worker to BENCH_STATS_DIR/worker-<pid>.jsonl:

    {"t": unix time, "pid": int, "busy_max": int, "waiting_max": int, "lag_ms": [float, ...],
     "db_busy_max": int, "db_waiting_max": int}

The runner cuts the lines to the measured window afterwards (read_dir / aggregate).

Stdlib only at module level: the runner imports `aggregate` and `read_dir` without FastAPI.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

TICK_S = 0.01
# the runner waits for a line written after each cell's load (its drain): short lines, short waits
FLUSH_S = 0.2


Probe = Callable[[], tuple[int, int]]  # (connections in use, requests waiting), app/db.py stats


async def sample_forever(stats_dir: Path, probe: Probe | None = None) -> None:
    from anyio.to_thread import current_default_thread_limiter

    limiter = current_default_thread_limiter()
    stats_dir.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    path = stats_dir / f"worker-{pid}.jsonl"
    busy = waiting = db_busy = db_waiting = 0
    lags: list[float] = []
    flushed = time.perf_counter()
    while True:
        # perf_counter, not loop.time(): uvloop's clock has millisecond steps
        before = time.perf_counter()
        await asyncio.sleep(TICK_S)
        now = time.perf_counter()
        lags.append(round(max(0.0, (now - before - TICK_S) * 1000), 2))
        stats = limiter.statistics()
        busy = max(busy, stats.borrowed_tokens)
        waiting = max(waiting, stats.tasks_waiting)
        if probe is not None:
            in_use, queued = probe()
            db_busy, db_waiting = max(db_busy, in_use), max(db_waiting, queued)
        if now - flushed >= FLUSH_S:
            line = {"t": time.time(), "pid": pid, "busy_max": busy, "waiting_max": waiting, "lag_ms": lags,
                    "db_busy_max": db_busy, "db_waiting_max": db_waiting}
            # one small synchronous append every 0.2 s: cheaper than a thread hop, and a thread hop
            # would itself show up in the busy count being measured
            with path.open("a") as fh:
                fh.write(json.dumps(line, separators=(",", ":")) + "\n")
            busy = waiting = db_busy = db_waiting = 0
            lags = []
            flushed = now


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (the smallest value with at least pct % of values <= it); 0 if none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])


def aggregate(lines: Iterable[dict[str, Any]], t0: float, t1: float) -> dict[str, Any]:
    """Max threads busy and requests waiting, max pool connections in use and requests waiting for
    one (max over lines of all workers: per worker, as the sizes are), p99 loop lag, in [t0, t1]."""
    busy = waiting = db_busy = db_waiting = 0
    lags: list[float] = []
    for line in lines:
        if t0 <= line["t"] <= t1:
            busy = max(busy, int(line["busy_max"]))
            waiting = max(waiting, int(line["waiting_max"]))
            db_busy = max(db_busy, int(line.get("db_busy_max", 0)))
            db_waiting = max(db_waiting, int(line.get("db_waiting_max", 0)))
            lags.extend(line["lag_ms"])
    return {"threadpool_busy_max": busy, "threadpool_waiting_max": waiting,
            "db_pool_busy_max": db_busy, "db_pool_waiting_max": db_waiting,
            "loop_lag_p99_ms": percentile(lags, 99)}


def read_dir(stats_dir: Path, t0: float, t1: float) -> dict[str, Any]:
    """aggregate() over every worker file in stats_dir (zeros when there is none)."""
    lines: list[dict[str, Any]] = []
    for path in sorted(Path(stats_dir).glob("worker-*.jsonl")):
        for text in path.read_text().splitlines():
            try:
                line = json.loads(text)
            except json.JSONDecodeError:  # the last line of a killed worker may be cut short
                continue
            if isinstance(line, dict) and "t" in line:
                lines.append(line)
    return aggregate(lines, t0, t1)


def idle_after(stats_dir: Path, t: float, pids: set[int], max_lag_ms: float = 50.0) -> bool:
    """True when every live worker (pids: as the workers see themselves) has written a line after
    time t showing no thread busy, nobody waiting and a loop that wakes on time: the requests Locust
    abandoned when it stopped are done, so they cannot leak into the next measurement. Files of
    other pids belong to workers that are gone (killed, replaced by Gunicorn) and never write again.
    A blocked loop writes nothing at all, which reads as "not idle yet", as it should."""
    for path in sorted(stats_dir.glob("worker-*.jsonl")):
        try:
            if int(path.stem.removeprefix("worker-")) not in pids:
                continue
        except ValueError:
            continue
        last = None
        for text in path.read_text().splitlines()[-3:]:
            try:
                last = json.loads(text)
            except json.JSONDecodeError:
                continue
        if last is None or last["t"] <= t:
            return False
        if (last["busy_max"] or last["waiting_max"] or last.get("db_busy_max") or last.get("db_waiting_max")
                or max(last["lag_ms"], default=0) > max_lag_ms):
            return False
    return True
