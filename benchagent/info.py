"""/__bench/info: what the runner checks a started target against (server, workers and where each
runs, threadpool size, loop, parser) and what it records (the versions in the app's own
environment, the interpreter's build), asked inside the worker that answers."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

from benchagent import hooks, pinning
from benchagent.buildinfo import python_build
from benchagent.serve import OWN_HTTP

# /__bench/info key -> distribution name: the app's environment, not the stack's pins
PACKAGES = {"fastapi": "fastapi", "starlette": "starlette", "anyio": "anyio", "pydantic": "pydantic",
            "uvicorn": "uvicorn", "gunicorn": "gunicorn", "uvicorn_worker": "uvicorn-worker",
            "uvloop": "uvloop", "httptools": "httptools", "granian": "granian", "hypercorn": "hypercorn",
            "h11": "h11", "psycopg": "psycopg", "psycopg_pool": "psycopg-pool", "httpx": "httpx"}


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    return {key: version(dist) for key, dist in PACKAGES.items()}


def running_server() -> str | None:
    """The server that loaded this worker, from the modules it imported (not from the setting, which
    the runner compares it with). Gunicorn's worker imports uvicorn too, so gunicorn is asked first."""
    servers = ("granian", "hypercorn", "gunicorn", "uvicorn")
    return next((name for name in servers if name in sys.modules), None)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"  # uvloop's class is plain "Loop"


def collect(pin_dir: Path | None) -> dict[str, Any]:
    from anyio.to_thread import current_default_thread_limiter

    server = running_server()
    return {
        "agent": True,
        "app": os.environ.get("BENCH_APP", ""),
        "style": "on_loop" if os.environ.get("BENCH_ON_LOOP") == "true" else "as_written",
        "python": platform.python_version(),
        "python_executable": sys.executable,
        # interpreter builds differ in speed (PGO/LTO): a pure-Python loop measures the build too
        "python_build": python_build(),
        **versions(),
        "server": server,
        "server_version": version(server) if server else None,
        "workers": int(os.environ.get("BENCH_WORKERS", "1")),
        "pid": os.getpid(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),  # this worker's
        "worker_pinning": os.environ.get("BENCH_WORKER_PINNING", ""),
        # every live worker's CPUs, in slot order (benchagent/pinning.py): the runner checks them all
        "worker_affinity": pinning.workers(pin_dir) if pin_dir else [],
        # the size in force in this worker's loop, not the one requested
        "threadpool_tokens": current_default_thread_limiter().total_tokens,
        "loop": _qualified(type(asyncio.get_running_loop())),
        # the HTTP parser: the setting under uvicorn and gunicorn, the server's own under the others
        "http": OWN_HTTP[server][0] if server in OWN_HTTP else os.environ.get("BENCH_HTTP", ""),
        # what the app itself registered (the built-in app: its pools and the database they reach)
        **hooks.extra_info(),
    }
