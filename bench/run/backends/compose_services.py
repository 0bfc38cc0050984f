"""PostgreSQL and the upstream stub as Compose services (`db`, `upstream`, profile `io`): the
Docker backend's counterpart of bench.run.services.LocalServices. Host network and loopback, as
everything else; the runner fills the table from the host, as it does for a local server."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.run import postgres, procs
from bench.run.services import READY_DEADLINE_S, TABLE_ROWS, Endpoints, Needs, ServiceError, free_ports
from bench.scenario.cells import Cell

if TYPE_CHECKING:
    from bench.run.backends.compose import Compose, PidCache


def _pid_cache() -> PidCache:
    from bench.run.backends.compose import PidCache

    return PidCache()


def image_id(image: str) -> str:
    try:
        out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", image], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()



def running(container: str) -> bool:
    try:
        out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.stdout.strip() == "true"


@dataclass
class ComposeServices:
    compose: Compose
    env: dict[str, str] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=dict)  # service -> container id
    wanted: list[str] = field(default_factory=list)  # what start() asked for, removed by stop() in any case
    cache: PidCache = field(default_factory=lambda: _pid_cache())

    def start(self, want: Needs) -> Endpoints:
        wanted = [name for name, on in (("db", want.db), ("upstream", want.upstream)) if on]
        if not wanted:
            return Endpoints()
        self.wanted = wanted
        out = Endpoints(meta={"services_cpuset": want.cpus})
        db_port, up_port = free_ports(2)
        self.env = {"DB_CPUSET": want.cpus, "DB_PORT": str(db_port), "UPSTREAM_PORT": str(up_port),
                    "DB_MAX_CONNECTIONS": str(want.max_connections),
                    "DB_PIDS_LIMIT": str(max(4096, want.max_connections + 64))}
        try:
            self._up(wanted)
            out.meta["images"] = {name: image_id(f"fastapi-bench-{name}:local") for name in wanted}
            if want.db:
                out.db_dsn, out.db_url = postgres.dsn(db_port), postgres.url(db_port)
                try:
                    out.meta["postgresql"] = postgres.fill(out.db_dsn, TABLE_ROWS, sql=want.sql,
                                                           alive=lambda: running(self.containers["db"]))
                except postgres.SqlError:
                    raise
                except ServiceError as exc:
                    raise ServiceError(f"PostgreSQL (db service) {exc}: {self._log_tail('db')}") from None
                out.meta["db_max_connections"] = want.max_connections
            if want.upstream:
                out.upstream_url = procs.url_for("127.0.0.1", up_port)
                alive = lambda: running(self.containers["upstream"])  # noqa: E731
                try:
                    procs.wait_ready(f"{out.upstream_url}/healthz", alive, READY_DEADLINE_S)
                except RuntimeError as exc:
                    raise ServiceError(f"the upstream service {exc}: {self._log_tail('upstream')}") from None
        except BaseException:
            self.stop()
            raise
        return out

    def _up(self, wanted: list[str]) -> None:
        from bench.errors import TargetError
        from bench.run.backends.compose import build_failed

        build = self._io(["build", *wanted], timeout=1200)
        why = build_failed(build)
        if why:
            raise ServiceError(f"docker compose build {' '.join(wanted)} failed: {why}")
        try:
            self._io(["up", "-d", "--force-recreate", "--no-deps", *wanted], timeout=120, check=True)
        except TargetError as exc:
            raise ServiceError(str(exc)) from None
        for name in wanted:
            ids = self._io(["ps", "-aq", name], timeout=30)
            if not ids.stdout.strip():
                raise ServiceError(f"docker compose up created no {name} container")
            self.containers[name] = ids.stdout.strip()

    def _log_tail(self, name: str) -> str:
        logs = self._io(["logs", "--no-color", name], timeout=30)
        lines = [line for line in logs.stdout.splitlines() if line.strip()]
        return lines[-1][-300:] if lines else "(no output)"

    def down(self, cell: Cell) -> str:
        for name, needed in (("db", cell.needs_db), ("upstream", cell.needs_upstream)):
            if needed and name in self.containers and not running(self.containers[name]):
                return f"the {name} service is not running any more: {self._log_tail(name)}"
        return ""

    def pids(self) -> list[int]:
        return [pid for c in self.containers.values() for pid in self.cache.tree(c)]

    def stop(self, keep_logs: Path | None = None) -> None:
        if not self.wanted:
            return
        names, self.wanted = self.wanted, []
        if keep_logs is not None and self.containers:
            keep_logs.mkdir(parents=True, exist_ok=True)
            for name in names:
                logs = self._io(["logs", "--no-color", name], timeout=60)
                (keep_logs / f"{'postgres' if name == 'db' else name}.log").write_text(logs.stdout)
        self._io(["rm", "-sf", *names], timeout=120)
        self.containers.clear()
        # what else the run left (target, Locust, the one-shot volumes service)
        self._io(["--profile", "distributed", "down", "--remove-orphans", "-t", "5"], timeout=120)

    def _io(self, args: list[str], timeout: float, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self.compose.run(["--profile", "io", *args], self.env, timeout=timeout, check=check)
