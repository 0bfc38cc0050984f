"""BENCH_APP = "package.module:attribute" -> the ASGI app, as Uvicorn takes it: the attribute may
be dotted (`main:api.app`), and a factory (a function that takes no argument, which no ASGI app
is: an ASGI callable takes three) is called to make the app."""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any


class LoadError(Exception):
    """Why the app cannot be loaded, in one line."""


def export_db_url() -> None:
    """A team's image names the variable its database URL goes in (BENCH_APP_DB_ENV, baked into the
    agent's layer); the run's server, started per run, comes in BENCH_DB_URL. Copied before the app
    is imported, since settings are often read at import."""
    name, url = os.environ.get("BENCH_APP_DB_ENV"), os.environ.get("BENCH_DB_URL")
    if name and url:
        os.environ[name] = url


def split(spec: str) -> tuple[str, str]:
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise LoadError(f"app {spec!r}: expected \"package.module:attribute\" (e.g. \"main:app\")")
    return module, attr


def is_factory(obj: Any) -> bool:
    if not inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        return False
    params = inspect.signature(obj).parameters.values()
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def load(spec: str) -> Any:
    module_name, attr = split(spec)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # its own ImportError, or whatever its import raised
        raise LoadError(f"app {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise LoadError(f"app {spec!r}: module {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if is_factory(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise LoadError(f"app {spec!r}: its factory raised {type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise LoadError(f"app {spec!r} is a {type(obj).__name__}, not an ASGI app or a factory of one")
    return obj


def is_fastapi(obj: Any) -> bool:
    """Whether obj is a FastAPI app (of any version; FastAPI itself is not imported for the test)."""
    names = {f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__}
    return "fastapi.applications.FastAPI" in names
