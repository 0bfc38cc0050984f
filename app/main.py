"""The target: GET /{def|async}/{noop|cpu|sleep|blocking_sleep}, /healthz and /info.

A `def` handler runs in anyio's worker threads (Starlette's run_in_threadpool ->
anyio.to_thread.run_sync, limited by the default thread limiter: 40 tokens per process unless
THREADPOOL_TOKENS says otherwise); an `async def` handler runs on the event loop itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import platform
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from anyio.to_thread import current_default_thread_limiter
from fastapi import FastAPI, Query

from app.sampler import sample_forever

# bounded so that a typo cannot hang the server for hours
Iterations = Annotated[int, Query(ge=0, le=50_000_000)]
Millis = Annotated[int, Query(ge=0, le=60_000)]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    tokens = os.environ.get("THREADPOOL_TOKENS")
    if tokens:
        current_default_thread_limiter().total_tokens = int(tokens)
    sampler = None
    stats_dir = os.environ.get("BENCH_STATS_DIR")
    if stats_dir:
        sampler = asyncio.create_task(sample_forever(Path(stats_dir)))
    yield
    if sampler:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler


app = FastAPI(title="def vs async target", lifespan=lifespan)


def spin(iterations: int) -> int:
    # the seed article's CPU task: a pure-Python loop that holds the GIL throughout
    c = 0
    for _ in range(iterations):
        c += 1
    return c


@app.get("/def/noop")
def def_noop() -> dict[str, bool]:
    return {"ok": True}


@app.get("/async/noop")
async def async_noop() -> dict[str, bool]:
    return {"ok": True}


@app.get("/def/cpu")
def def_cpu(iterations: Iterations = 1_000_000) -> dict[str, int]:
    return {"count": spin(iterations)}


@app.get("/async/cpu")
async def async_cpu(iterations: Iterations = 1_000_000) -> dict[str, int]:
    return {"count": spin(iterations)}


@app.get("/def/sleep")
def def_sleep(ms: Millis = 100) -> dict[str, int]:
    time.sleep(ms / 1000)
    return {"slept_ms": ms}


@app.get("/async/sleep")
async def async_sleep(ms: Millis = 100) -> dict[str, int]:
    await asyncio.sleep(ms / 1000)
    return {"slept_ms": ms}


@app.get("/def/blocking_sleep")
def def_blocking_sleep(ms: Millis = 100) -> dict[str, int]:
    time.sleep(ms / 1000)  # in def this only holds a pool thread, like /def/sleep
    return {"slept_ms": ms}


@app.get("/async/blocking_sleep")
async def async_blocking_sleep(ms: Millis = 100) -> dict[str, int]:
    time.sleep(ms / 1000)  # the anti-pattern: the whole event loop stops for ms
    return {"slept_ms": ms}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@app.get("/info")
async def info() -> dict[str, Any]:
    return {
        "versions": {"python": platform.python_version(),
                     **{n: _version(n) for n in ("fastapi", "starlette", "anyio", "uvicorn", "gunicorn",
                                                   "uvicorn-worker", "uvloop", "httptools")}},
        "server": os.environ.get("BENCH_SERVER", "unknown"),
        "workers": int(os.environ.get("BENCH_WORKERS", "1")),
        "pid": os.getpid(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "threadpool_tokens": current_default_thread_limiter().total_tokens,
        "loop": type(asyncio.get_running_loop()).__module__ + "." + type(asyncio.get_running_loop()).__name__,
        "http": os.environ.get("BENCH_HTTP", "auto"),
    }
