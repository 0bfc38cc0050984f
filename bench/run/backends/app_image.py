"""A team's own image as the target (`target_image`, Docker backend): a thin layer on it adds the
agent (benchagent/, stdlib and anyio only) and the app's settings, and runs the agent in place of
the image's own entrypoint. Their image is never pulled and never rebuilt: it must exist on this
engine, and the layer is built once per (image id, agent, settings), then reused by its tag.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import ROOT
from bench.errors import BadInput
from bench.run.backends.compose import IMAGE_UID
from bench.run.backends.compose_services import image_id
from bench.scenario.appspec import AGENT_DIR, AppSpec

LAYER_REPO = "fastapi-bench-app"
BUILD_TIMEOUT_S = 300.0
__all__ = ["IMAGE_UID", "dockerfile", "layer"]


def _quoted(value: str) -> str:
    # a Dockerfile ENV value: JSON's escapes for quotes and backslashes, and $ kept literal
    return json.dumps(value).replace("$", "\\$")


def dockerfile(app: AppSpec) -> str:
    """The layer: the agent on PYTHONPATH (after nothing of theirs is shadowed: the agent's one
    package is `benchagent`), the app and its variables, and the agent as the command."""
    env = app.target_env()
    # the agent's folder and the scenario's own PYTHONPATH (target_env's order), then the image's
    paths = _quoted(env.pop("PYTHONPATH"))[1:-1]
    if app.needs_db:
        env["BENCH_APP_DB_ENV"] = app.db_env  # the agent copies BENCH_DB_URL into it (benchagent/loader.py)
    lines = [f"FROM {app.target_image}",
             f"COPY benchagent/ {AGENT_DIR}/benchagent/",
             f'ENV PYTHONPATH="{paths}${{PYTHONPATH:+:$PYTHONPATH}}"',
             *(f"ENV {k}={_quoted(v)}" for k, v in env.items())]
    if app.app_dir:
        lines.append(f"WORKDIR {app.app_dir}")
    # the agent starts the server named per cell; the image's own entrypoint would start its own.
    # app_python is the image's `python` unless the scenario named one (appspec.parse_app)
    lines += ["ENTRYPOINT []", f"CMD {json.dumps([app.app_python, '-m', 'benchagent.serve'])}"]
    return "\n".join(lines) + "\n"


def agent_files() -> list[Path]:
    return sorted((ROOT / "benchagent").glob("*.py"))


def layer(app: AppSpec) -> str:
    """The layer's tag, built when this engine has none for these inputs; BadInput (one line) when
    the team's image is not here or the layer does not build."""
    base = image_id(app.target_image)
    if not base:
        raise BadInput(f"target_image {app.target_image!r}: no such image on this Docker engine (the stack "
                       "never pulls or builds it: `docker build -t <name> .` or `docker pull` it first)")
    text = dockerfile(app)
    digest = hashlib.sha256(base.encode() + text.encode())
    for path in agent_files():
        digest.update(path.name.encode() + path.read_bytes())
    tag = f"{LAYER_REPO}:{digest.hexdigest()[:16]}"
    if image_id(tag):
        return tag
    with tempfile.TemporaryDirectory() as ctx:
        (Path(ctx) / "benchagent").mkdir()
        for path in agent_files():
            shutil.copyfile(path, Path(ctx) / "benchagent" / path.name)
        (Path(ctx) / "Dockerfile").write_text(text)
        try:
            argv = ["docker", "build", "--pull=false", "--network", "none", "-q", "-t", tag, ctx]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise BadInput(f"target_image {app.target_image!r}: the agent's layer took over "
                           f"{BUILD_TIMEOUT_S:g} s to build") from None
    if proc.returncode != 0 or not image_id(tag):
        said = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise BadInput(f"target_image {app.target_image!r}: the agent's layer did not build: "
                       f"{said[0][-300:]}")
    return tag
