"""`docker compose` with this project's file, the engine's presence and a container's pids: what
the Docker backend (the target, Locust) and its services (PostgreSQL, the upstream) share."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench import ROOT
from bench.errors import TargetError
from bench.run import procs

PROJECT = "fastapi-bench"
IMAGE_UID = 10001  # the images' USER, and compose.yaml's default BENCH_UID/BENCH_GID


def _compose_cmd() -> list[str]:
    return ["docker", "compose", "-f", str(ROOT / "compose.yaml"), "-p", PROJECT]


def docker_available() -> bool:
    """An engine answers and Compose v2 is there."""
    if not shutil.which("docker"):
        return False
    try:
        for argv in (["docker", "info"], ["docker", "compose", "version"]):
            subprocess.run(argv, capture_output=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def user_env() -> dict[str, str]:
    """Who the containers run as: the invoking user (files in the run directory stay theirs), or
    the images' unprivileged user when that is root (never root inside the containers)."""
    if os.geteuid() == 0:
        return {"BENCH_UID": str(IMAGE_UID), "BENCH_GID": str(IMAGE_UID)}
    return {"BENCH_UID": str(os.getuid()), "BENCH_GID": str(os.getgid())}


def give_dir(path: Path) -> None:
    """A folder the containers write into, owned by their user: never world-writable. Root gives
    it to the images' user; anyone else owns it already (the containers run as them)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, IMAGE_UID, IMAGE_UID)


def build_failed(proc: subprocess.CompletedProcess[str]) -> str:
    """Why `docker compose build` failed, or "": Compose 2.40 exits 0 when BuildKit fails to solve
    (a base image it cannot pull, say), so its output is read too."""
    text = f"{proc.stdout}\n{proc.stderr}".strip()
    solve = [line for line in text.splitlines() if line.startswith("failed to solve")]
    if solve:
        return solve[-1][-400:]
    return f"exit {proc.returncode}: {text[-400:]}" if proc.returncode != 0 else ""


def _main_pid(container: str) -> int:
    try:
        out = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 0
    return int(out.stdout.strip() or 0) if out.returncode == 0 else 0


@dataclass
class PidCache:
    """A container's host pid, asked of the engine once: the sampler calls pids() 4 times a second
    and a `docker inspect` each time would load the very CPUs being measured."""

    pids: dict[str, int] = field(default_factory=dict)

    def tree(self, container: str) -> list[int]:
        if not self.pids.get(container):
            self.pids[container] = _main_pid(container)
        pid = self.pids[container]
        return procs.tree_pids(pid) if pid > 0 else []


@dataclass
class Compose:
    """`docker compose` with this project's file and the per-call environment (the knobs)."""

    base_env: dict[str, str] = field(default_factory=lambda: {**os.environ, **user_env()})

    def run(self, args: list[str], env: dict[str, str] | None = None, timeout: float = 300,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*_compose_cmd(), *args], env={**self.base_env, **(env or {})}, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise TargetError(f"docker compose {' '.join(args[:2])} failed: {proc.stderr.strip()[-400:]}")
        return proc

    def popen(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        return procs.spawn([*_compose_cmd(), *args], log, {**self.base_env, **env}, ROOT)
