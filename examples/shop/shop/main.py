"""A small FastAPI service written the way real ones are: sync and async routes, a blocking call
hidden in an `async def`, a `def` dependency, and a lifespan that loads its catalog. It knows
nothing of the benchmark; examples/shop/bench.toml measures it.

The delays stand for real work: SHOP_IO_MS is a blocking call (a sync database driver, a
`requests.get`), done right in `def export` and wrong in `async def report`. With a database
(SHOP_DATABASE_URL, a PostgreSQL made from schema.sql and seed.sql: examples/shop/db.toml), `def
stock` reads it through a sync psycopg pool and `async def stock_async` through an async one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

IO_MS = float(os.environ.get("SHOP_IO_MS", "20"))
DB_MS = float(os.environ.get("SHOP_DB_MS", "5"))  # the stock query's own time in the database
STOCK_SQL = "SELECT quantity, pg_sleep(%s) FROM stock WHERE item_id = %s"


@dataclass(frozen=True)
class Item:
    id: int
    name: str
    price_cents: int


class OrderIn(BaseModel):
    item_id: int
    quantity: int = 1


class OrderOut(BaseModel):
    order_id: str
    item_id: int
    quantity: int
    total_cents: int


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # the app's own start-up: the benchmark's agent runs it as the server would
    app.state.catalog = {i: Item(i, f"item-{i}", 100 + 7 * i) for i in range(1, 1001)}
    app.state.orders = 0
    url = os.environ.get("SHOP_DATABASE_URL")
    if not url:
        yield
        return
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

    with ConnectionPool(url, min_size=8, max_size=8, open=True) as pool:
        async with AsyncConnectionPool(url, min_size=8, max_size=8, open=False) as apool:
            app.state.pool, app.state.apool = pool, apool
            yield


app = FastAPI(title="shop", lifespan=lifespan)


def catalog(request: Request) -> dict[int, Item]:
    """A `def` dependency: FastAPI runs it in the threadpool, whatever the endpoint is."""
    return request.app.state.catalog


Catalog = Annotated[dict[int, Item], Depends(catalog)]


@app.get("/items/{item_id}")
def get_item(item_id: int, items: Catalog) -> dict[str, object]:
    item = items.get(item_id)
    if item is None:
        raise HTTPException(404, "no such item")
    return {"id": item.id, "name": item.name, "price_cents": item.price_cents}


@app.get("/search")
async def search(q: str, request: Request) -> dict[str, object]:
    found = [i.id for i in request.app.state.catalog.values() if q in i.name][:20]
    return {"q": q, "ids": found}


@app.get("/export")
def export() -> dict[str, object]:
    time.sleep(IO_MS / 1000)  # blocking I/O in a def: the threadpool absorbs it
    return {"rows": 1000}


@app.get("/report")
async def report() -> dict[str, object]:
    time.sleep(IO_MS / 1000)  # the bug the articles warn of: blocking I/O inside async def
    return {"pages": 3}


@app.get("/quote")
async def quote() -> dict[str, object]:
    await asyncio.sleep(IO_MS / 1000)  # the same wait, done right
    return {"ok": True}


@app.post("/orders", status_code=201)
def create_order(order: OrderIn, items: Catalog) -> OrderOut:
    item = items.get(order.item_id)
    if item is None:
        raise HTTPException(404, "no such item")
    order_id = hashlib.sha1(f"{order.item_id}:{order.quantity}".encode()).hexdigest()[:12]
    return OrderOut(order_id=order_id, item_id=item.id, quantity=order.quantity,
                    total_cents=item.price_cents * order.quantity)


@app.get("/stock/{item_id}")
def stock(item_id: int, request: Request) -> dict[str, int]:
    """A sync driver in a `def`: each request holds a pooled connection and a worker thread."""
    with request.app.state.pool.connection() as conn:
        row = conn.execute(STOCK_SQL, (DB_MS / 1000, item_id)).fetchone()
    if row is None:
        raise HTTPException(404, "no such item")
    return {"item_id": item_id, "quantity": row[0]}


@app.get("/stock_async/{item_id}")
async def stock_async(item_id: int, request: Request) -> dict[str, int]:
    """The same query through the async pool: the loop waits without blocking."""
    async with request.app.state.apool.connection() as conn:
        cur = await conn.execute(STOCK_SQL, (DB_MS / 1000, item_id))
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, "no such item")
    return {"item_id": item_id, "quantity": row[0]}
