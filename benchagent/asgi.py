"""The ASGI app every server runs: BENCH_APP (default the built-in `app.main:app`) wrapped.

In each worker, before the app's own lifespan: the worker pins itself (BENCH_WORKER_PINNING, into
BENCH_PIN_DIR), sizes anyio's thread limiter (BENCH_THREADPOOL_TOKENS: it is per event loop, so it
is set inside the worker's loop) and starts the sampler (BENCH_STATS_DIR). Then the app's lifespan
runs as it would without us, its state and failures passed through. `/__bench/healthz` and
`/__bench/info` are answered here; every other request goes to the app untouched (one prefix test
per request: the agent's cost, measured against the bare app in docs/own-app.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from benchagent import PREFIX, hooks, info, loader, onloop, pinning

Message = dict[str, Any]


class _Lifespan:
    """The app's own lifespan, driven by the agent: startup() and shutdown() each return None, or
    the failure message the app sent. An app that does not speak lifespan (it raises, or returns,
    before it answers the startup) runs without one, as the servers' "auto" mode does."""

    def __init__(self, app: Any, scope: dict[str, Any]) -> None:
        self.app, self.scope = app, scope
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self.inbox.get, self.outbox.put)
        except Exception:  # after its own .failed message, or an app without lifespan
            pass
        finally:
            self.outbox.put_nowait(None)  # the app returned: no more answers

    async def _ask(self, kind: str) -> str | None:
        if self.task is None or self.task.done():
            return None
        await self.inbox.put({"type": f"lifespan.{kind}"})
        answer = await self.outbox.get()
        if answer is None:  # the app does not speak lifespan
            return None
        if answer.get("type", "").endswith(".failed"):
            return str(answer.get("message", ""))
        return None

    async def startup(self) -> str | None:
        self.task = asyncio.ensure_future(self._run())
        return await self._ask("startup")

    async def shutdown(self) -> str | None:
        failed = await self._ask("shutdown")
        if self.task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.task, 5)
        return failed


class Agent:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.pin_dir = Path(os.environ["BENCH_PIN_DIR"]) if os.environ.get("BENCH_PIN_DIR") else None
        self._sampler: asyncio.Task[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await self._own(scope, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _lifespan(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # lifespan.startup
        try:
            self._start()
        except Exception as exc:
            await send({"type": "lifespan.startup.failed", "message": f"bench agent: {exc}"})
            return
        inner = _Lifespan(self.app, scope)
        failed = await inner.startup()
        if failed is not None:
            await self._stop()
            await send({"type": "lifespan.startup.failed", "message": failed})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        failed = await inner.shutdown()
        await self._stop()
        await send({"type": "lifespan.shutdown.failed", "message": failed} if failed is not None
                   else {"type": "lifespan.shutdown.complete"})

    def _start(self) -> None:
        # before anything else in this worker: its first request must already run where it is pinned
        if self.pin_dir is not None:
            pinning.apply(os.environ.get("BENCH_WORKER_PINNING", "set"), self.pin_dir)
        tokens = os.environ.get("BENCH_THREADPOOL_TOKENS")
        if tokens:
            from anyio.to_thread import current_default_thread_limiter

            current_default_thread_limiter().total_tokens = int(tokens)
        stats_dir = os.environ.get("BENCH_STATS_DIR")
        if stats_dir:
            from benchagent.sampler import sample_forever

            self._sampler = asyncio.ensure_future(sample_forever(Path(stats_dir), hooks.probe))

    async def _stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None

    async def _own(self, scope: dict[str, Any], send: Any) -> None:
        path = scope["path"][len(PREFIX):]
        status, body = (200, {"status": "ok"}) if path == "healthz" else \
            (200, info.collect(self.pin_dir)) if path == "info" else (404, {"detail": "Not Found"})
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else data})


def build(spec: str, on_loop: bool) -> Agent:
    loader.export_db_url()
    inner = loader.load(spec)
    if on_loop:  # every FastAPI app of this process: the app's own, or one it mounts or wraps
        onloop.apply()
    return Agent(inner)


app = build(os.environ.get("BENCH_APP", "app.main:app"), os.environ.get("BENCH_ON_LOOP") == "true")
