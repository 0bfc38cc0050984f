"""Before anything starts, a team's app is imported once in its own interpreter (benchagent/check.py):
an app that cannot be imported, an `app_python` that is not an interpreter, a server or a loop the
app's environment lacks, or an on_loop its FastAPI cannot take, is one line and exit 2, not a cell
that fails after a minute of start-ups. What it found (the app's Python and versions) goes into
env.json, since the target runs on the app's packages, not the stack's pins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench import ROOT
from bench.errors import BadInput
from bench.run import postgres
from bench.scenario.appspec import AppSpec
from bench.scenario.cells import Cell

CHECK_TIMEOUT_S = 60.0
CHECK_DB_PORT = 9  # discard: refused on loopback
MARK = "BENCH_CHECK "  # benchagent/check.py's
# what each server needs in the app's environment (distribution names, as pip takes them)
SERVER_DISTS = {"uvicorn": ("uvicorn",), "gunicorn": ("gunicorn", "uvicorn-worker", "uvicorn"),
                "granian": ("granian",), "hypercorn": ("hypercorn",)}
# /__bench/info's package keys (benchagent/info.py PACKAGES) by distribution name
_KEY = {"uvicorn-worker": "uvicorn_worker"}


def pins() -> dict[str, str]:
    """The stack's pinned versions (app/requirements.txt): what to install where one is missing."""
    out = {}
    for line in (ROOT / "app" / "requirements.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            out[name.lower()] = version
    return out


def run_check(app: AppSpec, on_loop: bool) -> dict[str, Any]:
    python = app.app_python or sys.executable
    # the database's URL as the target will get it, on a port nothing listens on: an app whose
    # settings read it at import finds it, and one that connects at import fails here, saying so
    no_db = postgres.url(CHECK_DB_PORT)
    env = {**os.environ, **app.target_env(), **app.db_url_env(no_db)}
    env.pop("BENCH_ON_LOOP", None)
    if on_loop:
        env["BENCH_ON_LOOP"] = "true"
    argv, cwd = [python, "-m", "benchagent.check"], app.app_dir
    if app.target_image:  # in the agent's layer on their image, with no network, as the target runs
        from bench.run.backends import app_image

        python = f"{python} in {app.target_image}"
        given = {"BENCH_DB_URL": no_db if app.needs_db else "", "BENCH_ON_LOOP": "true" if on_loop else ""}
        flags = [x for k, v in given.items() if v for x in ("-e", f"{k}={v}")]
        argv = ["docker", "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
                "--user", str(app_image.IMAGE_UID), *flags, app_image.layer(app), *argv]
        cwd, env = str(ROOT), dict(os.environ)
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, text=True,
                              capture_output=True, timeout=CHECK_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise BadInput(f"app_python {python!r}: no such file or command") from None
    except PermissionError:
        raise BadInput(f"app_python {python!r}: not executable") from None
    except OSError as exc:
        raise BadInput(f"app_python {python!r}: cannot run it ({exc.strerror or exc})") from None
    except subprocess.TimeoutExpired:
        raise BadInput(f"app {app.app!r}: importing it in {python} took over {CHECK_TIMEOUT_S:g} s "
                       "(does it connect to something at import?)") from None
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if not lines:
        said = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])[:300]
        raise BadInput(f"app_python {python!r} is not a Python interpreter that runs the agent (exit "
                       f"{proc.returncode}{': ' + said if said else ''})")
    found: dict[str, Any] = json.loads(lines[-1][len(MARK):])
    return found


def check(app: AppSpec, cells: list[Cell]) -> dict[str, Any]:
    """The app's own interpreter imports it; BadInput (one line) for whatever would fail every cell.
    Returns what env.json records about the app."""
    on_loop = any(c.style == "on_loop" for c in cells)
    found = run_check(app, on_loop)
    python = app.app_python or sys.executable
    origin = f"{app.app_dir or 'the WORKDIR'} of {app.target_image}" if app.target_image else app.app_dir
    where = f"(in {found.get('executable') or python}, from {origin})"
    if found["error"]:
        raise BadInput(f"{found['error']} {where}")
    if found["on_loop_error"]:
        raise BadInput(f"{found['on_loop_error']} {where}")
    packages = found["packages"]  # benchagent/check.py always lists them
    missing_line = missing(cells, packages)
    if missing_line:
        raise BadInput(f"{missing_line} {where}")
    image = {"target_image": app.target_image} if app.target_image else {}
    return {"app": app.app, "app_dir": app.app_dir, **image, "app_python": found.get("executable") or python,
            "python": found.get("python"), "python_build": found.get("python_build"),
            "fastapi_app": found.get("fastapi_app"), "packages": packages}


def missing(cells: list[Cell], packages: dict[str, Any]) -> str:
    """'' or one line naming what the cells need that the app's environment lacks, and its install."""
    if not packages.get("anyio"):
        return "the agent needs anyio in the app's environment (FastAPI and Starlette bring it)"
    need: dict[str, str] = {}
    for cell in cells:
        for dist in SERVER_DISTS[cell.server]:
            need.setdefault(dist, f"server {cell.server}")
        if cell.loop == "uvloop":
            need.setdefault("uvloop", "loop = uvloop")
        if cell.http == "httptools":
            need.setdefault("httptools", "http = httptools")
    lacking = [(dist, why) for dist, why in need.items() if not packages.get(_KEY.get(dist, dist))]
    if not lacking:
        return ""
    pinned = pins()
    install = " ".join(f"{d}=={pinned[d]}" if d in pinned else d for d, _ in lacking)
    return (f"{lacking[0][1]} needs {', '.join(d for d, _ in lacking)}, which the app's environment lacks: "
            f"pip install {install} (the versions this stack pins)")
