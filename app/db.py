"""PostgreSQL for the db workloads: psycopg 3 pools opened in the lifespan, one per driver kind.

Each worker opens a sync `ConnectionPool` (the `def` endpoints, the sync dependency and the
`async def` anti-pattern that calls the sync driver) and an `AsyncConnectionPool` (the `async def`
endpoints) of BENCH_DB_POOL_SIZE connections each, fixed (min = max) so that no connection is
opened inside a measured window. psycopg's async pool rather than asyncpg: the same driver, the
same protocol code and the same pool logic on both sides, so def vs async differs only in how
the endpoint waits, not in which driver parses the rows; and both pools report their state
(get_stats), which the sampler reads.

Connections are in autocommit: a SELECT is then one round trip, not three (BEGIN, the query, and
the pool's ROLLBACK when the connection comes back in an open transaction).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool

DSN = os.environ.get("BENCH_DB_DSN", "")
# 0 or unset: no pools (a workload without a database); the launcher (benchagent/serve.py) requires both
POOL_SIZE = int(os.environ.get("BENCH_DB_POOL_SIZE") or 0)
# how long a request waits for a connection before PoolTimeout (a 500)
POOL_TIMEOUT_S = float(os.environ.get("BENCH_DB_POOL_TIMEOUT_S") or 0)
TABLE = "bench_items"
TABLE_ROWS = 1000  # bench/run/services.py creates and fills it; `pk` reads one row at random
OPEN_TIMEOUT_S = 30.0


@dataclass
class Pools:
    sync: ConnectionPool[Any] | None = None
    aio: AsyncConnectionPool[Any] | None = None
    server_version: str = ""


POOLS = Pools()


def enabled() -> bool:
    return bool(DSN) and POOL_SIZE > 0


async def open_pools() -> None:
    """Both pools, full before the first request (open(wait=True) raises after the timeout: a
    worker that cannot reach its database fails to start rather than fail every request)."""
    if not enabled():
        return
    kwargs = {"autocommit": True}
    sync = ConnectionPool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, kwargs=kwargs, open=False,
                          name="sync", timeout=POOL_TIMEOUT_S)
    sync.open(wait=True, timeout=OPEN_TIMEOUT_S)
    aio = AsyncConnectionPool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, kwargs=kwargs, open=False,
                              name="async", timeout=POOL_TIMEOUT_S)
    await aio.open(wait=True, timeout=OPEN_TIMEOUT_S)
    with sync.connection() as conn:
        POOLS.server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    POOLS.sync, POOLS.aio = sync, aio


async def close_pools() -> None:
    if POOLS.aio is not None:
        await POOLS.aio.close()
    if POOLS.sync is not None:
        POOLS.sync.close()
    POOLS.sync = POOLS.aio = None


def stats() -> tuple[int, int]:
    """(connections in use, requests waiting for one), summed over both pools: a cell uses one."""
    busy = waiting = 0
    for pool in (POOLS.sync, POOLS.aio):
        if pool is not None:
            s = pool.get_stats()
            busy += s.get("pool_size", 0) - s.get("pool_available", 0)
            waiting += s.get("requests_waiting", 0)
    return busy, waiting


def statement(query: str, ms: int) -> tuple[str, tuple[Any, ...]]:
    """`pk`: one row by primary key; `sleep`: pg_sleep, so the database time is known."""
    if query == "pk":
        return f"SELECT id, name, value FROM {TABLE} WHERE id = %s", (random.randint(1, TABLE_ROWS),)
    return "SELECT pg_sleep(%s)", (ms / 1000,)


def run(conn: Connection[Any], query: str, ms: int) -> int:
    sql, args = statement(query, ms)
    return len(conn.execute(sql, args).fetchall())  # type: ignore[arg-type]


async def arun(conn: AsyncConnection[Any], query: str, ms: int) -> int:
    sql, args = statement(query, ms)
    cur = await conn.execute(sql, args)  # type: ignore[arg-type]
    return len(await cur.fetchall())


def sync_pool() -> ConnectionPool[Any]:
    if POOLS.sync is None:
        raise RuntimeError("no database: the target started without BENCH_DB_DSN and BENCH_DB_POOL_SIZE")
    return POOLS.sync


def async_pool() -> AsyncConnectionPool[Any]:
    if POOLS.aio is None:
        raise RuntimeError("no database: the target started without BENCH_DB_DSN and BENCH_DB_POOL_SIZE")
    return POOLS.aio


def sync_connection() -> Iterator[Connection[Any]]:
    """The dependency users write: a `def` generator that holds a pooled connection for the request.
    FastAPI runs its entry and its exit in the threadpool, beside the endpoint itself."""
    with sync_pool().connection() as conn:
        yield conn

