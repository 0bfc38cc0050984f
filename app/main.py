"""The built-in target: GET /{def|async}/{noop|cpu|sleep|blocking_sleep|db|db_blocking|db_dep|http}
and /healthz. The agent (benchagent/asgi.py) wraps it as it wraps a team's own app, and answers
/__bench/info with what this module registers (its pools).

A `def` handler runs in anyio's worker threads (Starlette's run_in_threadpool ->
anyio.to_thread.run_sync, limited by the default thread limiter: 40 tokens per process unless
BENCH_THREADPOOL_TOKENS says otherwise); an `async def` handler runs on the event loop itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Query

from app import db, upstream
from benchagent import hooks

# bounded so that a typo cannot hang the server for hours
Iterations = Annotated[int, Query(ge=0, le=50_000_000)]
Millis = Annotated[int, Query(ge=0, le=60_000)]
DbQuery = Annotated[str, Query(pattern="^(pk|sleep)$")]

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # the agent (benchagent/asgi.py) has pinned this worker, sized its threadpool and started its
    # sampler before this runs; here only what this app itself needs
    await db.open_pools()
    await upstream.open_clients()
    hooks.set_probe(db.stats if db.enabled() else None)
    yield
    hooks.set_probe(None)
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


def pools() -> dict[str, Any]:
    """/__bench/info's fields for this app: the pools in force in this worker (0: none opened), and
    the database they reach; the runner checks them against the cell."""
    return {
        "db_pool_size": db.POOLS.sync.max_size if db.POOLS.sync else 0,
        "db_pool_timeout_s": db.POOLS.sync.timeout if db.POOLS.sync else 0,
        "http_pool_size": upstream.POOL_SIZE if upstream.CLIENTS.aio else 0,
        "postgresql": db.POOLS.server_version or None,
    }


hooks.add_info(pools)
