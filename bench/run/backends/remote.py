"""A target someone else runs (--target-url): asv's "existing environment" as a backend.

It starts nothing and stops nothing: `start_target` returns the given URL's target once its
answers HTTP, the load runs on the wrapped backend (local processes or Compose), and the runner
records the target's /__bench/info in every cell (when it runs the agent: `make serve`, or
`python -m benchagent.serve` by hand) without checking its placement against the scenario, since
the scenario did not place it. A plain app without the agent is loaded all the same, on its own
[[endpoints]]: its figures, without the in-worker ones.
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
from benchagent import HEALTHZ


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


def answers(url: str) -> bool:
    """Whether an HTTP server answers there, whatever it says: the agent's /__bench/healthz when it
    runs the agent, a 404 from a plain app (it has no such path, and is up all the same)."""
    procs.request(f"{url}{HEALTHZ}", timeout=5)
    return True


def preflight(url: str) -> None:
    """BadInput (before anything starts) unless an HTTP server answers at the URL."""
    try:
        answers(url)
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise BadInput(f"--target-url {url}: no HTTP answer ({reason})") from None


@dataclass
class RemoteTarget:
    url: str
    managed: bool = False

    def alive(self) -> bool:
        try:
            return answers(self.url)
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
            raise TargetError(f"remote target {self.url} does not answer HTTP")
        return target

    def start_load(self, spec: LoadSpec, out_dir: Path) -> LoadRun:
        return self.load.start_load(spec, out_dir)

    def metadata(self) -> dict[str, Any]:
        return {"target_url": self.url, "loadgen_backend": self.load.name, **self.load.metadata()}

    def close(self) -> None:
        self.load.close()
