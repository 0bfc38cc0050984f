"""The presets reproduce the articles' shapes: the accelerated threadpool-saturation variant
(100 ms instead of 2 s) runs for real and must show the queueing the second article measured,
the knee moving with the thread limiter's size, and the stalled event loop.

Margins from theory, not from a run: in the closed loop, a def request either gets a thread at
once (latency ~1 sleep) or waits for whole sleeps (users = 2 x tokens: every request waits one,
so ~2 sleeps; 3 x tokens: ~3). The thresholds sit halfway between those outcomes (1.5, 2.5
sleeps), so only a change of mechanism crosses them, not a slow or noisy machine (overheads
here are a few ms against 100 ms sleeps)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.results.row import SummaryRow
from bench.results.rundir import RunDir
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
SLEEP = 100


@pytest.fixture(scope="module")
def saturation_rows(tmp_path_factory: pytest.TempPathFactory) -> list[SummaryRow]:
    out = tmp_path_factory.mktemp("presets")
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "threadpool-saturation", "--backend", "local",
                           "--out", str(out), "--no-report", "--set", f"sleep_ms={SLEEP}", "--set", "duration=1",
                           "--set", "warmup=0.5", "--set", f"port={free_port()}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return RunDir(Path(proc.stdout.strip().splitlines()[-1])).rows()


def p50(rows: list[SummaryRow], style: str, users: int, tokens: int = 40, workload: str = "sleep") -> float:
    [row] = [r for r in rows if (r.style, r.users, r.threadpool_tokens, r.workload) == (style, users, tokens, workload)]
    assert row.status == "ok", row.error
    return row.p50_ms


@pytest.mark.e2e
def test_def_queues_in_whole_sleeps_past_the_threadpool(saturation_rows: list[SummaryRow]) -> None:
    assert p50(saturation_rows, "def", 20) < 1.5 * SLEEP  # under the 40 tokens: no queue
    assert p50(saturation_rows, "def", 80) >= 1.5 * SLEEP  # 2 x tokens: one sleep waiting
    assert p50(saturation_rows, "def", 120) >= 2.5 * SLEEP  # 3 x tokens: two sleeps waiting


@pytest.mark.e2e
def test_async_does_not_queue(saturation_rows: list[SummaryRow]) -> None:
    for users in (20, 40, 80, 120):
        assert p50(saturation_rows, "async", users) < 1.5 * SLEEP


@pytest.mark.e2e
def test_the_knee_follows_the_thread_limiter(saturation_rows: list[SummaryRow]) -> None:
    assert p50(saturation_rows, "def", 20, tokens=10) >= 1.5 * SLEEP  # 2 x 10 tokens
    assert p50(saturation_rows, "def", 80, tokens=100) < 1.5 * SLEEP  # 100 tokens: 80 users never wait
    busy = {r.threadpool_tokens: r.threadpool_busy_max for r in saturation_rows
            if r.style == "def" and r.users == 120}
    assert busy == {10: 10, 40: 40, 100: 100}, "the limiter really had that many threads busy"


@pytest.mark.e2e
def test_blocking_sleep_in_async_serves_one_request_per_sleep(saturation_rows: list[SummaryRow]) -> None:
    [row] = [r for r in saturation_rows if r.workload == "blocking_sleep"]
    assert row.status == "ok"
    assert row.rps <= 1.1 * 1000 / SLEEP  # one worker, one request per sleep, whatever the users
    assert row.loop_lag_p99_ms >= 0.5 * SLEEP, "the sampler saw the event loop stall"
