"""The real components the I/O workloads talk to: PostgreSQL (bench/run/postgres.py) and the upstream
stub (upstream/server.py), started once per run by the backend, before any cell, and stopped at
its end (Ctrl-C included). A cell that needs one checks it is still alive before it runs: a
database that died mid-run fails the cells that need it, with the reason, and the matrix goes on.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.run import procs
from bench.run.postgres import Postgres, ServiceError, why
from bench.scenario.cells import Cell

TABLE_ROWS = 1000  # app/db.py TABLE_ROWS: the ids `pk` picks from
CONNECTION_MARGIN = 20  # the runner's own connection, a replaced target's not yet closed, psql by hand
APP_CONNECTIONS_PER_WORKER = 20  # a team's app: its pools are its own, so room for two of ten each
READY_DEADLINE_S = 30.0

__all__ = ["Endpoints", "LocalServices", "Needs", "NoServices", "ServiceError", "Services", "needs"]


@dataclass(frozen=True)
class Needs:
    """What a run's cells need started: derived from the cells, never given."""

    db: bool = False
    upstream: bool = False
    cpus: str = ""  # db_cpuset (one per run)
    max_connections: int = 0  # the largest cell's workers x two pools x db_pool_size, and a margin
    sql: tuple[str, ...] = ()  # a team's app: its db_init and db_seed files, run once the table is filled

    @property
    def any(self) -> bool:
        return self.db or self.upstream


def needs(cells: Iterable[Cell]) -> Needs:
    cells = list(cells)
    io = [c for c in cells if c.db_cpuset]
    if not io:
        return Needs()
    # both pools of every worker are open while a cell runs (app/db.py), and one target at a time
    pools = max((c.workers * (2 * c.db_pool_size if c.workload else APP_CONNECTIONS_PER_WORKER)
                 for c in io if c.needs_db), default=0)
    return Needs(db=any(c.needs_db for c in io), upstream=any(c.needs_upstream for c in io),
                 cpus=io[0].db_cpuset, max_connections=max(100, pools + CONNECTION_MARGIN),
                 sql=next((c.db_sql for c in io if c.db_sql), ()))


@dataclass
class Endpoints:
    """Where the target finds the services, and what env.json records about them."""

    db_dsn: str = ""
    upstream_url: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    db_url: str = ""  # db_dsn as a URL: what a team's app gets in its db_env

    def target_env(self) -> dict[str, str]:
        return {"BENCH_DB_DSN": self.db_dsn, "BENCH_UPSTREAM_URL": self.upstream_url}


class Services(Protocol):
    def start(self, want: Needs) -> Endpoints:
        """Start what `want` says (nothing when it says nothing); ServiceError with one line."""
        ...

    def down(self, cell: Cell) -> str:
        """Why a service this cell needs is not running, or ""."""
        ...

    def pids(self) -> list[int]: ...

    def stop(self, keep_logs: Path | None = None) -> None:
        """Stop everything started; copy the logs into keep_logs when given."""
        ...


class NoServices:
    """A backend that starts none: a remote target brings its own database, and the fakes need none."""

    def start(self, want: Needs) -> Endpoints:
        return Endpoints()

    def down(self, cell: Cell) -> str:
        return ""

    def pids(self) -> list[int]:
        return []

    def stop(self, keep_logs: Path | None = None) -> None:
        return None


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """n distinct ports nothing listens on (all held while picked, so no two are the same)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class LocalServices:
    """Processes on this host, pinned to db_cpuset, logs in a scratch folder until the end."""

    python: str = sys.executable
    scratch: Path | None = None  # made by start(), removed by stop()
    db: Postgres | None = None
    upstream: Any = None  # subprocess.Popen of upstream/server.py
    db_port: int = 0  # 0: a free one

    def start(self, want: Needs) -> Endpoints:
        out = Endpoints()
        if not want.any:
            return out
        self.scratch = Path(tempfile.mkdtemp(prefix="bench-services-"))
        try:
            if want.db:
                self.db = Postgres(self.db_port or free_port(), want.cpus, want.max_connections,
                                   self.scratch / "postgres.log")
                self.db.start(TABLE_ROWS, want.sql)
                out.db_dsn, out.db_url = self.db.dsn, self.db.url
                out.meta["postgresql"] = self.db.version
                out.meta["db_max_connections"] = want.max_connections
            if want.upstream:
                out.upstream_url = self._start_upstream(want.cpus)
            if want.any:
                out.meta["services_cpuset"] = want.cpus
        except BaseException:  # Ctrl-C while PostgreSQL starts must not leave it running
            self.stop()
            raise
        return out

    def _start_upstream(self, cpus: str) -> str:
        from upstream.server import command

        assert self.scratch is not None
        port = free_port()
        url = procs.url_for("127.0.0.1", port)
        argv = procs.pinned(command(self.python, "127.0.0.1", port), cpus)
        from bench import ROOT as root
        self.upstream = procs.spawn(argv, self.scratch / "upstream.log", dict(os.environ), root)
        try:
            procs.wait_ready(f"{url}/healthz", lambda: self.upstream.poll() is None, READY_DEADLINE_S)
        except RuntimeError as exc:
            log = procs.tail(self.scratch / "upstream.log", 1)
            raise ServiceError(f"the upstream stub on {url} {exc}: {log}") from None
        return url

    def down(self, cell: Cell) -> str:
        if cell.needs_db and self.db is not None and not self.db.alive():
            return f"PostgreSQL is not running any more: {why(procs.tail(self.db.log, 20))}"
        if cell.needs_upstream and self.upstream is not None and self.upstream.poll() is not None:
            return f"the upstream stub is not running any more (exit {self.upstream.returncode})"
        return ""

    def pids(self) -> list[int]:
        out = self.db.pids() if self.db is not None else []
        if self.upstream is not None:
            out += procs.tree_pids(self.upstream.pid)
        return out

    def stop(self, keep_logs: Path | None = None) -> None:
        if self.db is not None:
            self.db.stop()
        if self.upstream is not None:
            procs.kill_tree(self.upstream, grace=2.0)
            self.upstream = None
        if self.scratch is None:  # nothing was started
            return
        logs = sorted(self.scratch.glob("*.log"))
        if keep_logs is not None and logs:
            keep_logs.mkdir(parents=True, exist_ok=True)
            for log in logs:
                shutil.copyfile(log, keep_logs / log.name)
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch = None
