"""The upstream service for the http workload: one shared httpx client per worker and kind.

`def` endpoints use one `httpx.Client`, `async def` ones one `httpx.AsyncClient`, both created
in the lifespan (a client per request would measure TCP connects). Each keeps up to
BENCH_HTTP_POOL_SIZE connections, all of them kept alive (httpx keeps 20 by default and closes the
rest after use, which beyond 20 concurrent requests would measure reconnects too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx

URL = os.environ.get("BENCH_UPSTREAM_URL", "").rstrip("/")
POOL_SIZE = int(os.environ.get("BENCH_HTTP_POOL_SIZE") or 0)  # 0 or unset: no clients
# httpx's default of 5 s would fail a slow upstream that is the point of a cell: above the longest
# upstream_delay_ms (60 s)
TIMEOUT_S = 90.0


@dataclass
class Clients:
    sync: httpx.Client | None = None
    aio: httpx.AsyncClient | None = None


CLIENTS = Clients()


def enabled() -> bool:
    return bool(URL) and POOL_SIZE > 0


def _limits() -> httpx.Limits:
    return httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)


async def open_clients() -> None:
    if enabled():
        CLIENTS.sync = httpx.Client(limits=_limits(), timeout=TIMEOUT_S)
        CLIENTS.aio = httpx.AsyncClient(limits=_limits(), timeout=TIMEOUT_S)


async def close_clients() -> None:
    if CLIENTS.aio is not None:
        await CLIENTS.aio.aclose()
    if CLIENTS.sync is not None:
        CLIENTS.sync.close()
    CLIENTS.sync = CLIENTS.aio = None


def _missing() -> RuntimeError:
    return RuntimeError("no upstream: the target started without BENCH_UPSTREAM_URL and BENCH_HTTP_POOL_SIZE")


def get(ms: int) -> int:
    if CLIENTS.sync is None:
        raise _missing()
    response = CLIENTS.sync.get(f"{URL}/delay", params={"ms": ms})
    response.raise_for_status()
    return response.status_code


async def aget(ms: int) -> int:
    if CLIENTS.aio is None:
        raise _missing()
    response = await CLIENTS.aio.get(f"{URL}/delay", params={"ms": ms})
    response.raise_for_status()
    return response.status_code
