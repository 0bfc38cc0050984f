"""The report's environment: a few facts that change results first, the full env.json behind them.

The facts are what makes two runs' figures differ for reasons other than the code (the CPU and how
many cores, the kernel, the Python build, the server's and FastAPI's versions); the full list
follows folded, each package once (its installed version, with the pinned one only where they
differ), where env.json holds both maps.
"""

from __future__ import annotations

import json
from typing import Any

Table = tuple[list[str], list[list[str]]]  # header, rows

# the packages behind each server (the framework's are always shown)
SERVER_PACKAGES = {"uvicorn": ("uvicorn", "uvloop", "httptools"),
                   "gunicorn": ("gunicorn", "uvicorn-worker", "uvicorn"),
                   "granian": ("granian",), "hypercorn": ("hypercorn",)}
FRAMEWORK = ("fastapi", "starlette", "anyio", "pydantic")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def env_table(env: dict[str, Any]) -> Table:
    """env.json flattened one level (scenario.name, packages.fastapi, ...), values as text; a
    package pinned at the version installed is listed once, under packages."""
    rows: list[list[str]] = []
    installed = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    for key, value in env.items():
        if key == "packages_pinned" and installed:
            rows += [[f"{key}.{name}", _text(v)] for name, v in value.items() if installed.get(name) != v]
        elif isinstance(value, dict):
            rows += [[f"{key}.{sub}", _text(subvalue)] for sub, subvalue in value.items()]
        else:
            rows.append([key, str(value)])
    return ["key", "value"], rows


def measured(env: dict[str, Any], cells: int, repeats: int, window_s: float) -> str:
    """The line under the report's title: what was measured, where, how long."""
    cpu = f"{env.get('cpu_model') or 'an unknown CPU'}, {env.get('cores', '?')} cores"
    return (f"{cells} cells x {repeats} repeat{'s' if repeats != 1 else ''} of {window_s:g} s measured each, "
            f"on {cpu}, {env.get('backend') or 'the'} backend.")


def facts_table(env: dict[str, Any], servers: list[str]) -> Table:
    """The few facts that change results, for the first glance."""
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    cpu = str(env.get("cpu_model") or "unknown CPU")
    rows = [["CPU", f"{cpu}, {env.get('cores', '?')} cores (host CPUs {env.get('host_cpus', '?')})"],
            ["kernel", str(env.get("kernel", ""))],
            ["target's Python", str(env.get("target_python_build") or env.get("python_build", ""))],
            ["backend", str(env.get("backend", ""))]]
    names = [*FRAMEWORK, *(p for server in servers for p in SERVER_PACKAGES.get(server, (server,)))]
    versions = [f"{name} {packages[name]}" for name in dict.fromkeys(names) if name in packages]
    if versions:
        rows.append(["versions", ", ".join(versions)])
    return ["fact", "value"], [r for r in rows if r[1]]
