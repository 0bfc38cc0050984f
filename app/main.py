"""The target: GET /{def|async}/{noop|cpu|sleep|blocking_sleep|db|db_blocking|db_dep|http}, /healthz
and /info.

A `def` handler runs in anyio's worker threads (Starlette's run_in_threadpool ->
anyio.to_thread.run_sync, limited by the default thread limiter: 40 tokens per process unless
BENCH_THREADPOOL_TOKENS says otherwise); an `async def` handler runs on the event loop itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import platform
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from anyio.to_thread import current_default_thread_limiter
from fastapi import Depends, FastAPI, Query

from app import db, pinning, upstream
from app.buildinfo import python_build
from app.sampler import sample_forever
from app.serve import OWN_HTTP

# bounded so that a typo cannot hang the server for hours
Iterations = Annotated[int, Query(ge=0, le=50_000_000)]
Millis = Annotated[int, Query(ge=0, le=60_000)]
DbQuery = Annotated[str, Query(pattern="^(pk|sleep)$")]

F = TypeVar("F", bound=Callable[..., Any])

# set by app/serve.py before the server starts (each start a fresh folder); unset, nothing is pinned
PIN_DIR = Path(os.environ["BENCH_PIN_DIR"]) if os.environ.get("BENCH_PIN_DIR") else None
WORKER_PINNING = os.environ.get("BENCH_WORKER_PINNING", "")  # the launcher requires it (with PIN_DIR)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # before anything else runs here: the worker's first request must already run where it is pinned
    if PIN_DIR:
        pinning.apply(WORKER_PINNING, PIN_DIR)
    # the limiter is per event loop (an anyio RunVar), so it is sized here, inside the worker's loop
    tokens = os.environ.get("BENCH_THREADPOOL_TOKENS")
    if tokens:
        current_default_thread_limiter().total_tokens = int(tokens)
    await db.open_pools()
    await upstream.open_clients()
    sampler = None
    stats_dir = os.environ.get("BENCH_STATS_DIR")
    if stats_dir:
        probe = db.stats if db.enabled() else None
        sampler = asyncio.create_task(sample_forever(Path(stats_dir), probe))
    yield
    if sampler:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    await upstream.close_clients()
    await db.close_pools()


app = FastAPI(title="def vs async target", lifespan=lifespan)


def get(path: str, head: bool = False) -> Callable[[F], F]:
    # response_model=None: with a response model inferred from the return annotation, FastAPI
    # validates a def endpoint's result in the threadpool too (a second thread hop per request,
    # fastapi/routing.py serialize_response). The article's handlers have no response model, so
    # def and async differ only in where the handler itself runs.
    get_route = app.get(path, response_model=None)
    if not head:
        return get_route
    # HEAD (health checks, `curl -I`): a route of its own rather than methods=["GET", "HEAD"] on
    # one route, which gives both the same OpenAPI operation id. The handler runs as for GET and
    # the server sends the headers only (uvicorn drops a HEAD response's body, h11 and httptools).
    head_route = app.head(path, response_model=None, include_in_schema=False)
    return lambda fn: get_route(head_route(fn))


def spin(iterations: int) -> int:
    # the article's CPU task: a pure-Python loop that holds the GIL throughout
    c = 0
    for _ in range(iterations):
        c += 1
    return c


@get("/def/noop")
def def_noop() -> dict[str, bool]:
    return {"ok": True}


@get("/async/noop")
async def async_noop() -> dict[str, bool]:
    return {"ok": True}


@get("/def/cpu")
def def_cpu(iterations: Iterations = 1_000_000) -> dict[str, int]:
    return {"count": spin(iterations)}


@get("/async/cpu")
async def async_cpu(iterations: Iterations = 1_000_000) -> dict[str, int]:
    return {"count": spin(iterations)}


@get("/def/sleep")
def def_sleep(ms: Millis = 100) -> dict[str, int]:
    time.sleep(ms / 1000)
    return {"slept_ms": ms}


@get("/async/sleep")
async def async_sleep(ms: Millis = 100) -> dict[str, int]:
    await asyncio.sleep(ms / 1000)
    return {"slept_ms": ms}


@get("/def/blocking_sleep")
def def_blocking_sleep(ms: Millis = 100) -> dict[str, int]:
    time.sleep(ms / 1000)  # in def this only holds a pool thread, like /def/sleep
    return {"slept_ms": ms}


@get("/async/blocking_sleep")
async def async_blocking_sleep(ms: Millis = 100) -> dict[str, int]:
    time.sleep(ms / 1000)  # the anti-pattern: the whole event loop stops for ms
    return {"slept_ms": ms}


# the db workloads (app/db.py): `query` pk reads one row by primary key, sleep runs pg_sleep(ms)
@get("/def/db")
def def_db(query: DbQuery = "sleep", ms: Millis = 20) -> dict[str, int]:
    with db.sync_pool().connection() as conn:
        return {"rows": db.run(conn, query, ms)}


@get("/async/db")
async def async_db(query: DbQuery = "sleep", ms: Millis = 20) -> dict[str, int]:
    async with db.async_pool().connection() as conn:
        return {"rows": await db.arun(conn, query, ms)}


@get("/def/db_blocking")
def def_db_blocking(query: DbQuery = "sleep", ms: Millis = 20) -> dict[str, int]:
    return def_db(query, ms)  # in def the sync driver only holds a pool thread, like /def/db


@get("/async/db_blocking")
async def async_db_blocking(query: DbQuery = "sleep", ms: Millis = 20) -> dict[str, int]:
    # the anti-pattern: the sync driver inside async def stops the event loop for the whole query
    with db.sync_pool().connection() as conn:
        return {"rows": db.run(conn, query, ms)}


SyncConnection = Annotated[Any, Depends(db.sync_connection)]


@get("/def/db_dep")
def def_db_dep(conn: SyncConnection, query: DbQuery = "sleep", ms: Millis = 20) -> dict[str, int]:
    # the connection comes from a `def` dependency: its entry and exit are thread hops of their own
    return {"rows": db.run(conn, query, ms)}


@get("/async/db_dep")
async def async_db_dep(conn: SyncConnection, query: DbQuery = "sleep", ms: Millis = 20) -> dict[str, int]:
    # what users write most: async def with the sync dependency's connection (a sync session), so
    # the query itself blocks the loop, after two thread hops for the dependency
    return {"rows": db.run(conn, query, ms)}


# the http workload (app/upstream.py): one GET to the upstream stub, which answers after ms
@get("/def/http")
def def_http(ms: Millis = 50) -> dict[str, int]:
    return {"status": upstream.get(ms)}


@get("/async/http")
async def async_http(ms: Millis = 50) -> dict[str, int]:
    return {"status": await upstream.aget(ms)}


@get("/healthz", head=True)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# /info key -> distribution name
PACKAGES = {"fastapi": "fastapi", "starlette": "starlette", "anyio": "anyio", "uvicorn": "uvicorn",
            "gunicorn": "gunicorn", "uvicorn_worker": "uvicorn-worker", "uvloop": "uvloop",
            "httptools": "httptools", "granian": "granian", "hypercorn": "hypercorn", "h11": "h11",
            "psycopg": "psycopg", "psycopg_pool": "psycopg-pool", "httpx": "httpx"}


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"  # uvloop's class is plain "Loop"


def running_server() -> str | None:
    """The server that loaded this worker, from the modules it imported (not from the setting, which
    the runner compares it with). Gunicorn's worker imports uvicorn too, so gunicorn is asked first."""
    servers = ("granian", "hypercorn", "gunicorn", "uvicorn")
    return next((name for name in servers if name in sys.modules), None)


@get("/info", head=True)
async def info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        # interpreter builds differ in speed (PGO/LTO): a pure-Python loop measures the build too
        "python_build": python_build(),
        **{key: _version(dist) for key, dist in PACKAGES.items()},
        "server": (server := running_server()),
        "server_version": _version(server) if server else None,
        "workers": int(os.environ["BENCH_WORKERS"]),
        "pid": os.getpid(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),  # this worker's
        "worker_pinning": WORKER_PINNING,
        # every live worker's CPUs, in slot order (app/pinning.py): the runner checks them all
        "worker_affinity": pinning.workers(PIN_DIR) if PIN_DIR else [],
        # the size in force in this worker's loop, not the one requested
        "threadpool_tokens": current_default_thread_limiter().total_tokens,
        "loop": _qualified(type(asyncio.get_running_loop())),
        # the HTTP parser: the setting under uvicorn and gunicorn, the server's own under the others
        "http": OWN_HTTP[server][0] if server in OWN_HTTP else os.environ["BENCH_HTTP"],
        # the pools in force in this worker (0: none opened), and the database they reach
        "db_pool_size": db.POOLS.sync.max_size if db.POOLS.sync else 0,
        "db_pool_timeout_s": db.POOLS.sync.timeout if db.POOLS.sync else 0,
        "http_pool_size": upstream.POOL_SIZE if upstream.CLIENTS.aio else 0,
        "postgresql": db.POOLS.server_version or None,
    }
