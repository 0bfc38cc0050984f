"""A target someone else runs (--target-url): asv's "existing environment" as a backend.

It starts nothing and stops nothing: `start_target` returns the given URL's target once its
/healthz answers, the load runs on the wrapped backend (local processes or Compose), and the
runner records the target's /info in every cell without checking its placement against the
scenario, since the scenario did not place it.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BadInput, TargetError
from bench.run import procs
from bench.run.backends.base import Backend, LoadRun
from bench.run.loadspec import LoadSpec
from bench.run.services import Endpoints, Needs, NoServices, Services
from bench.scenario.cells import ServerConfig


def check_url(url: str) -> str:
    """The URL without a trailing slash; BadInput unless it is http(s)://HOST[:PORT]."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.query:
        raise BadInput(f"--target-url {url!r}: expected http://HOST:PORT")
    return url.rstrip("/")


def preflight(url: str) -> None:
    """BadInput (before anything starts) unless the target's /healthz answers."""
    try:
        procs.get(f"{url}/healthz", timeout=5)
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise BadInput(f"--target-url {url}: no answer from /healthz ({reason})") from None


@dataclass
class RemoteTarget:
    url: str
    managed: bool = False

    def alive(self) -> bool:
        try:
            procs.get(f"{self.url}/healthz", timeout=5)
            return True
        except OSError:
            return False

    def pids(self) -> list[int]:
        return []  # not ours to sample: its resources are not in the rows

    def log_tail(self, lines: int = 20) -> str:
        return ""

    def save_log(self, dest: Path) -> None:
        return None

    def stop(self) -> None:
        return None


class RemoteBackend:
    name = "remote"

    def __init__(self, url: str, load: Backend) -> None:
        self.url = check_url(url)
        self.load = load  # where Locust runs
        self.services: Services = NoServices()  # the remote target has its own database, if any

    def start_services(self, want: Needs) -> Endpoints:
        return Endpoints()

    def start_target(self, cfg: ServerConfig, stats_dir: Path) -> RemoteTarget:
        target = RemoteTarget(self.url)
        if not target.alive():
            raise TargetError(f"remote target {self.url} does not answer /healthz")
        return target

    def start_load(self, spec: LoadSpec, out_dir: Path) -> LoadRun:
        return self.load.start_load(spec, out_dir)

    def metadata(self) -> dict[str, Any]:
        return {"target_url": self.url, "loadgen_backend": self.load.name, **self.load.metadata()}

    def close(self) -> None:
        self.load.close()
