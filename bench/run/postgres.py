"""A PostgreSQL server of the run's own, from the host's Debian package: initdb into a scratch
folder, listening on 127.0.0.1 only, pinned, filled with the table the `pk` query reads, and
stopped (fast shutdown) at the end of the run. The Docker backend runs the same configuration in
the `db` service (db/Dockerfile); `fill` is shared."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.run import procs

INSTALL_HINT = ("PostgreSQL is not installed (no initdb and postgres on PATH or in "
                "/usr/lib/postgresql/*/bin), and the db workloads start their own server: "
                "apt-get install postgresql")
ROLE = "bench"
DATABASE = "postgres"
READY_DEADLINE_S = 30.0
STOP_GRACE_S = 10.0
TABLE_SQL = """
DROP TABLE IF EXISTS bench_items;
CREATE TABLE bench_items (id integer PRIMARY KEY, name text NOT NULL, value integer NOT NULL);
INSERT INTO bench_items SELECT g, 'item ' || g, g * 7 FROM generate_series(1, {rows}) AS g;
ANALYZE bench_items;
"""


class ServiceError(RuntimeError):
    """A service that cannot start: one line that says why."""


DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"


def bindir(which: Callable[[str], str | None] = shutil.which, pattern: str = DEBIAN_BINDIRS) -> Path:
    """Where initdb and postgres are: BENCH_POSTGRES_BIN alone when set (another version, say),
    else PATH, then Debian's versioned folders (newest first)."""
    chosen = os.environ.get("BENCH_POSTGRES_BIN")
    if chosen:
        if _has_server(Path(chosen)):
            return Path(chosen)
        raise ServiceError(f"BENCH_POSTGRES_BIN={chosen}: no initdb and postgres there")
    found = which("initdb")
    if found and which("postgres"):
        return Path(os.path.realpath(found)).parent
    for folder in sorted(glob.glob(pattern), key=_major, reverse=True):
        if _has_server(Path(folder)):
            return Path(folder)
    raise ServiceError(INSTALL_HINT)


def _has_server(folder: Path) -> bool:
    return (folder / "initdb").is_file() and (folder / "postgres").is_file()


def _major(folder: str) -> int:
    name = Path(folder).parent.name
    return int(name) if name.isdigit() else 0


def dsn(port: int) -> str:
    return f"host=127.0.0.1 port={port} user={ROLE} dbname={DATABASE}"


def url(port: int) -> str:
    """The same server as a URL, the form an app's settings usually take (psycopg, asyncpg and
    SQLAlchemy's `postgresql+<driver>://` after the scheme is changed)."""
    return f"postgresql://{ROLE}@127.0.0.1:{port}/{DATABASE}"


def initdb_argv(bin_dir: Path, data: Path) -> list[str]:
    # trust on loopback: a throw-away cluster that listens on 127.0.0.1 only, for one run
    return [str(bin_dir / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "--encoding=UTF8",
            "--no-sync", "--no-instructions"]


def server_argv(bin_dir: Path, data: Path, port: int, max_connections: int) -> list[str]:
    """postgres in the foreground: TCP on loopback only (no Unix socket), enough connections for
    every worker's two pools, and no fsync (the data is thrown away; the queries only read)."""
    return [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=", "-c", f"max_connections={max_connections}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]


def as_user(argv: list[str], user: str | None) -> list[str]:
    """PostgreSQL refuses to run as root: root runs it as `user` (setpriv, as execve: same pid)."""
    if user is None:
        return argv
    gid = pwd.getpwnam(user).pw_gid
    return ["setpriv", f"--reuid={user}", f"--regid={gid}", "--init-groups", "--", *argv]


def run_user() -> str | None:
    """None unless root; then Debian's `postgres` user, or `nobody` where the package made none."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ServiceError("running as root and neither a postgres nor a nobody user exists to run PostgreSQL")


def fill(conninfo: str, rows: int, deadline_s: float = READY_DEADLINE_S,
         alive: Callable[[], bool] = lambda: True, sql: tuple[str, ...] = ()) -> str:
    """Wait until the server takes connections, create and fill the `pk` table, then run an
    app's SQL files (db_init, db_seed) in order; the server's version."""
    import psycopg

    end = time.monotonic() + deadline_s
    last = ""
    while time.monotonic() < end:
        if not alive():
            raise ServiceError("exited before taking connections")
        try:
            with psycopg.connect(conninfo, connect_timeout=2, autocommit=True) as conn:
                conn.execute(TABLE_SQL.format(rows=int(rows)))  # type: ignore[arg-type]
                run_sql(conn, sql)
                return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        except psycopg.OperationalError as exc:
            last = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            time.sleep(0.2)
    raise ServiceError(f"took no connection within {deadline_s:.0f} s ({last})")


def run_sql(conn: object, files: tuple[str, ...]) -> None:
    """Each file's statements in one go (the simple query protocol: plain SQL, no psql backslash
    commands), in autocommit: a file fails as a whole at its first error, named with its line."""
    import psycopg

    for path in files:
        text = Path(path).read_text(encoding="utf-8")
        try:
            conn.execute(text)  # type: ignore[attr-defined]
        except psycopg.Error as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            where = next((line for line in lines if line.startswith("LINE ")), "")
            first = (lines or [type(exc).__name__])[0]
            raise SqlError(f"the run's PostgreSQL could not run {Path(path).name}: {first}"
                           + (f" ({where.split(':')[0]})" if where else "")) from None


class SqlError(ServiceError):
    """An app's SQL file that failed: not a server that is not ready yet, so never retried."""


@dataclass
class Postgres:
    """One local server: `start` returns when the table is filled, `stop` always cleans up."""

    port: int
    cpus: str
    max_connections: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    data: Path | None = None
    version: str = ""

    @property
    def dsn(self) -> str:
        return dsn(self.port)

    @property
    def url(self) -> str:
        return url(self.port)

    def start(self, rows: int, sql: tuple[str, ...] = ()) -> None:
        bin_dir = bindir()
        user = run_user()
        self.data = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        init = subprocess.run(as_user(initdb_argv(bin_dir, self.data), user), capture_output=True, text=True,
                              timeout=120, env=_env())
        if init.returncode != 0:
            raise ServiceError(f"PostgreSQL initdb failed: {_last_line(init.stderr or init.stdout)}")
        argv = as_user(server_argv(bin_dir, self.data, self.port, self.max_connections), user)
        self.proc = procs.spawn(procs.pinned(argv, self.cpus), self.log, _env(), Path(tempfile.gettempdir()))
        try:
            self.version = fill(self.dsn, rows, alive=self.alive, sql=sql)
        except SqlError:
            self.stop()
            raise
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"PostgreSQL on 127.0.0.1:{self.port} {exc}: {why(procs.tail(self.log, 20))}"
                               ) from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        return procs.tree_pids(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)  # fast shutdown: clients cut, no waiting
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_GRACE_S)
        if self.proc is not None:
            procs.kill_tree(self.proc, grace=2.0)
        if self.data is not None:
            shutil.rmtree(self.data, ignore_errors=True)
            self.data = None


def _env() -> dict[str, str]:
    # C locale: initdb needs no locale the host may lack, and messages stay in one language
    return {**os.environ, "LC_ALL": "C", "LANG": "C"}


def why(log: str) -> str:
    """The line of a server log that says why it stopped: its last error, else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if any(word in line for word in ("FATAL:", "ERROR:", "PANIC:"))]
    return (errors or lines or ["(no output)"])[-1][:300]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
