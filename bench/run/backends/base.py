"""The swappable executor: start a target, run a Locust, stop them.

The runner only talks to these protocols; `local` runs processes pinned with
sched_setaffinity, `docker` runs the same commands in Compose services, `remote`
loads a target someone else runs (asv's "existing environment"), and the tests
use a fake one for the matrix, resume and failure paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from bench.run.loadspec import LoadSpec
from bench.run.services import Endpoints, Needs, Services
from bench.scenario.cells import ServerConfig


class Target(Protocol):
    url: str  # base URL the load generator uses, e.g. http://127.0.0.1:8000
    # True when this bench started it: its placement and threadpool are checked against the cell,
    # its processes sampled, and its abandoned requests drained; False for a remote target.
    managed: bool

    def alive(self) -> bool: ...

    def pids(self) -> list[int]:
        """Host pids of every target process (master and workers), for resource sampling."""
        ...

    def log_tail(self, lines: int = 20) -> str: ...

    def save_log(self, dest: Path) -> None:
        """Copy the target's log so far into a cell folder."""
        ...

    def stop(self) -> None:
        """Stop it (and forget it in its backend); a no-op for a target this bench did not start."""
        ...


class LoadRun(Protocol):
    def pids(self) -> list[int]:
        """Host pids of every Locust process (master, workers, forked --processes)."""
        ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float) -> int:
        """Exit code; raises TimeoutError past the deadline."""
        ...

    def kill(self) -> None: ...


class Backend(Protocol):
    name: str
    # PostgreSQL and the upstream stub for the I/O workloads, once per run (bench/run/services.py)
    services: Services

    def start_services(self, want: Needs) -> Endpoints:
        """Start the services the run's cells need; every target started later is given where
        they are. ServiceError (one line) when one cannot start."""
        ...

    def start_target(self, cfg: ServerConfig, stats_dir: Path) -> Target:
        """Start the target and return once /__bench/healthz answers; TargetError otherwise.

        stats_dir receives the workers' in-target samples (BENCH_STATS_DIR).
        """
        ...

    def start_load(self, spec: LoadSpec, out_dir: Path) -> LoadRun:
        """Start Locust writing its CSVs, HTML, log and result JSON under out_dir."""
        ...

    def metadata(self) -> dict[str, Any]:
        """What env.json records about this backend (engine versions, image ids...)."""
        ...

    def close(self) -> None:
        """Stop everything still running (also on Ctrl-C)."""
        ...
