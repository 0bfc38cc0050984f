"""Real I/O without a database: the I/O knobs' validation, the cells they make, the command lines
of PostgreSQL and the upstream stub, what a run needs started, and the runner's paths when a
service is missing or dies (the fake executor). Real PostgreSQL: tests/e2e/test_real_io.py."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bench.errors import BadInput
from bench.results.rundir import RunDir
from bench.run import postgres, services
from bench.scenario import matrix as scenario
from tests.runs import run, scen_file
from upstream.server import command as upstream_command

ROOT = Path(__file__).resolve().parents[2]


def cells(body: dict, sets: dict | None = None) -> list:
    return scenario.from_dict(body, sets or {}).cells()


@pytest.mark.parametrize(("key", "value", "message"), [
    ("db_pool_size", 0, "db_pool_size: 0 is below the minimum 1"),
    ("db_sleep_ms", -1, "db_sleep_ms: -1 is below the minimum 0"),
    ("db_sleep_ms", 60_001, "db_sleep_ms: 60001 is above the maximum 60000"),
    ("upstream_delay_ms", -1, "upstream_delay_ms: -1 is below the minimum 0"),
    ("upstream_delay_ms", 60_001, "upstream_delay_ms: 60001 is above the maximum 60000"),
    ("http_pool_size", 0, "http_pool_size: 0 is below the minimum 1"),
    ("db_query", "select", "db_query: 'select' is not one of pk, sleep"),
    ("db_dependency", "maybe", "db_dependency: 'maybe' is not true or false"),
])
def test_each_io_knob_is_bounded(key, value, message) -> None:
    with pytest.raises(BadInput, match=re.escape(message)):
        cells({"defaults": {"workload": "db", "db_dependency": True}, "matrix": {key: [value]}})


@pytest.mark.parametrize(("body", "message"), [
    ({"defaults": {"db_pool_size": 20}}, "db_pool_size is for workload db or db_blocking, and only noop run"),
    ({"matrix": {"workload": ["http"], "db_sleep_ms": [5]}}, "db_sleep_ms is for workload db or db_blocking, "
                                                              "and only http run"),
    ({"matrix": {"workload": ["db_blocking"], "db_dependency": [True]}}, "db_dependency is for workload db, "
                                                                         "and only db_blocking run"),
    ({"matrix": {"workload": ["db"], "upstream_delay_ms": [10]}}, "upstream_delay_ms is for workload http"),
    ({"matrix": {"workload": ["cpu"], "http_pool_size": [10]}}, "http_pool_size is for workload http"),
    ({"matrix": {"workload": ["sleep"]}, "defaults": {"db_cpuset": "0"}}, "db_cpuset is for workload db or "
                                                                            "db_blocking or http"),
    ({"matrix": {"workload": ["db"], "db_cpuset": ["0", "all"]}}, "db_cpuset is one set per run"),
])
def test_an_io_knob_nothing_reads_is_refused(body, message) -> None:
    with pytest.raises(BadInput, match=re.escape(message)):
        cells(body)


def test_an_io_knob_in_defaults_applies_to_the_blocks_that_read_it() -> None:
    out = cells({"defaults": {"db_sleep_ms": 50, "upstream_delay_ms": 30, "db_pool_size": 40},
                 "matrix": [{"workload": ["db"]}, {"workload": ["http"]}, {"workload": ["noop"]}]})
    by = {c.workload: c for c in out}
    assert (by["db"].db_sleep_ms, by["db"].db_pool_size, by["db"].upstream_delay_ms) == (50, 40, 0)
    assert (by["http"].upstream_delay_ms, by["http"].http_pool_size, by["http"].db_pool_size) == (30, 100, 0)
    assert (by["noop"].db_query, by["noop"].db_pool_size, by["noop"].http_pool_size, by["noop"].db_cpuset) == (
        "", 0, 0, "")


def test_each_io_cell_loads_its_own_route_and_query() -> None:
    out = cells({"defaults": {"db_sleep_ms": 50},
                 "matrix": [{"workload": ["db"], "style": ["def", "async"], "db_query": ["pk", "sleep"],
                             "db_dependency": [False, True]},
                            {"workload": ["db_blocking"], "style": ["async"]},
                            {"workload": ["http"], "style": ["def"], "upstream_delay_ms": [7]}]})
    paths = [c.path for c in out]
    assert paths == [
        "/def/db?query=pk", "/def/db_dep?query=pk", "/def/db?query=sleep&ms=50", "/def/db_dep?query=sleep&ms=50",
        "/async/db?query=pk", "/async/db_dep?query=pk", "/async/db?query=sleep&ms=50",
        "/async/db_dep?query=sleep&ms=50", "/async/db_blocking?query=sleep&ms=50", "/def/http?ms=7"]
    # a dependency cell is named by the route it loads
    assert [c.cell_id.split("-")[1] for c in out[:4]] == ["db", "db_dep", "db", "db_dep"]
    # pk takes no sleep: the column says 0, not a time the query never spends
    assert [c.db_sleep_ms for c in out if c.db_query == "pk"] == [0] * 4
    # the pools are sized at the target's start: they are part of its config
    assert {(c.server_config.db_pool_size, c.server_config.http_pool_size) for c in out} == {(10, 0), (0, 100)}
    assert [c.needs_db for c in out] == [True] * 9 + [False]
    assert [c.needs_upstream for c in out] == [False] * 9 + [True]


def test_db_cpuset_auto_takes_spare_cpus_else_the_targets(monkeypatch) -> None:
    monkeypatch.setattr(scenario.cpuset, "host_cpus", lambda: frozenset(range(8)))
    [spare] = cells({"defaults": {"workload": "db", "target_cpuset": "0-1", "loadgen_cpuset": "2-5"}})
    assert spare.db_cpuset == "6-7"
    [shared] = cells({"defaults": {"workload": "db"}})  # auto split: target 0-1, Locust 2-7
    assert (shared.target_cpuset, shared.db_cpuset) == ("0-1", "0-1")
    [given] = cells({"defaults": {"workload": "http", "db_cpuset": "all"}})
    assert given.db_cpuset == "0-7"
    with pytest.raises(BadInput, match="db_cpuset is 0 and 0-1 for different cells"):
        cells({"defaults": {"workload": "db"}, "matrix": {"target_cpuset": ["0", "0-1"]}})


def test_a_run_needs_what_its_cells_read(monkeypatch) -> None:
    monkeypatch.setattr(scenario.cpuset, "host_cpus", lambda: frozenset(range(8)))  # auto: target 0-1
    assert services.needs(cells({})) == services.Needs()
    assert not services.needs(cells({})).any
    want = services.needs(cells({"matrix": [{"workload": ["db"], "workers": [1, 3], "db_pool_size": [10, 40]},
                                            {"workload": ["noop"]}]}))
    # both pools of the largest cell's every worker (3 x 2 x 40), and a margin
    assert (want.db, want.upstream, want.max_connections) == (True, False, 240 + services.CONNECTION_MARGIN)
    assert want.cpus == "0-1", "the target's CPUs: two CPUs of eight leave none spare beside Locust's"
    small = services.needs(cells({"defaults": {"workload": "http"}}))
    assert (small.db, small.upstream, small.max_connections) == (False, True, 100)


def test_postgres_command_lines_listen_on_loopback_only(tmp_path) -> None:
    bin_dir, data = Path("/pg/bin"), tmp_path / "data"
    assert postgres.initdb_argv(bin_dir, data) == [
        "/pg/bin/initdb", "-D", str(data), "-U", "bench", "--auth=trust", "--encoding=UTF8", "--no-sync",
        "--no-instructions"]
    argv = postgres.server_argv(bin_dir, data, 5999, 240)
    assert argv[:5] == ["/pg/bin/postgres", "-D", str(data), "-p", "5999"]
    settings = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-c")
    assert settings == {"listen_addresses": "127.0.0.1", "unix_socket_directories": "", "max_connections": "240",
                        "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    assert postgres.dsn(5999) == "host=127.0.0.1 port=5999 user=bench dbname=postgres"


def test_the_db_image_runs_postgres_with_the_local_servers_settings() -> None:
    """db/run.sh (the Docker backend) and server_argv (the local one) must not drift apart."""
    script = (ROOT / "db" / "run.sh").read_text().replace("\\\n", " ").replace('"$DATA"', "/var/lib/bench-pg/data")
    line = next(x for x in script.splitlines() if "exec /opt/pgbin/postgres" in x)
    words = shlex.split(line.replace("${DB_PORT:-5432}", "5999").replace("${DB_MAX_CONNECTIONS:-100}", "240"))
    flags = words[words.index("exec") + 1:]
    assert flags[1:] == postgres.server_argv(Path("/opt/pgbin"), Path("/var/lib/bench-pg/data"), 5999, 240)[1:]
    init = next(x for x in script.splitlines() if "/opt/pgbin/initdb" in x)
    assert shlex.split(init.split(">")[0])[1:] == postgres.initdb_argv(Path("/opt/pgbin"),
                                                                      Path("/var/lib/bench-pg/data"))[1:]


def test_root_runs_postgres_as_another_user() -> None:
    assert postgres.as_user(["postgres", "-D", "x"], None) == ["postgres", "-D", "x"]
    argv = postgres.as_user(["postgres"], "nobody")
    assert argv[0] == "setpriv" and argv[1] == "--reuid=nobody" and argv[-2:] == ["--", "postgres"]


def test_postgres_binaries_are_found_or_named_in_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BENCH_POSTGRES_BIN", raising=False)
    none = lambda name: None  # noqa: E731
    with pytest.raises(postgres.ServiceError) as err:
        postgres.bindir(which=none, pattern=str(tmp_path / "*" / "bin"))
    assert str(err.value) == postgres.INSTALL_HINT and "apt-get install postgresql" in str(err.value)
    for version in ("9", "15", "13"):
        folder = tmp_path / version / "bin"
        folder.mkdir(parents=True)
        for name in ("initdb", "postgres"):
            (folder / name).write_text("")
    assert postgres.bindir(which=none, pattern=str(tmp_path / "*" / "bin")) == tmp_path / "15" / "bin"
    monkeypatch.setenv("BENCH_POSTGRES_BIN", str(tmp_path / "13" / "bin"))
    assert postgres.bindir(which=none) == tmp_path / "13" / "bin"
    monkeypatch.setenv("BENCH_POSTGRES_BIN", str(tmp_path))
    with pytest.raises(postgres.ServiceError, match="no initdb and postgres there"):
        postgres.bindir()


def test_the_upstream_command_line() -> None:
    assert upstream_command("/py", "127.0.0.1", 8100) == ["/py", "-m", "upstream.server", "--bind", "127.0.0.1",
                                                          "--port", "8100"]


def test_a_run_without_postgresql_stops_before_anything_with_what_to_install(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("BENCH_POSTGRES_BIN", str(tmp_path))  # a folder without a server in it
    code, run_dir = run(tmp_path, scen_file(tmp_path, '[matrix]\nworkload = ["db"]\n'), "--backend", "local")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not run_dir.exists(), "refused before the run directory exists"
    assert err == [f"bench: error: BENCH_POSTGRES_BIN={tmp_path}: no initdb and postgres there"]


IO_MATRIX = '[[matrix]]\nworkload = ["db"]\nstyle = ["def"]\n[[matrix]]\nworkload = ["noop"]\n' \
            '[[matrix]]\nworkload = ["db"]\nstyle = ["async"]\n'


def test_the_services_start_once_with_what_the_run_needs_and_stop_with_its_logs(tmp_path, fake) -> None:
    code, run_dir = run(tmp_path, scen_file(tmp_path, IO_MATRIX))
    assert code == 0
    [want] = fake.services.started
    assert (want.db, want.upstream) == (True, False)
    assert fake.services.stopped == [run_dir / "services"]
    assert RunDir(run_dir).env()["services"] == {"postgresql": "fake"}


def test_a_database_that_dies_fails_the_cells_that_need_it_and_the_matrix_goes_on(tmp_path, fake) -> None:
    fake.services.db_dies_after = 1  # up for the first db cell, gone by the second
    code, run_dir = run(tmp_path, scen_file(tmp_path, IO_MATRIX))
    rows = {r.cell_id.split("-u")[0]: r for r in RunDir(run_dir).rows()}
    assert code == 1
    assert (rows["def-db"].status, rows["async-noop"].status) == ("ok", "ok")
    assert rows["async-db"].status == "failed"
    assert rows["async-db"].error == "PostgreSQL is not running any more: FATAL: terminating (fake)"


def test_a_pool_of_another_size_than_asked_fails_the_cell(tmp_path, fake) -> None:
    fake.pool_off_by = 1
    code, run_dir = run(tmp_path, scen_file(tmp_path, '[matrix]\nworkload = ["db"]\n'))
    [row] = RunDir(run_dir).rows()
    assert code == 1 and row.error == "target db_pool_size is 11, not the requested 10 (/info)"


def test_a_remote_target_brings_its_own_services(tmp_path, fake) -> None:
    from bench.commands.run import start_services

    out = start_services(fake, cells({"defaults": {"workload": "db"}}), remote=True)
    assert out == services.Endpoints() and fake.services.started == []


def test_postgres_on_path_is_found_where_the_links_lead(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BENCH_POSTGRES_BIN", raising=False)
    real = tmp_path / "lib" / "15" / "bin"
    real.mkdir(parents=True)
    (tmp_path / "initdb").symlink_to(real / "initdb")
    on_path = {"initdb": str(tmp_path / "initdb"), "postgres": str(real / "postgres")}
    assert postgres.bindir(which=on_path.get, pattern=str(tmp_path / "none")) == real
    # initdb alone on PATH (a client-only install, say) is not a server: the versioned folders are looked at
    only_initdb = {"initdb": str(tmp_path / "initdb")}
    with pytest.raises(postgres.ServiceError):
        postgres.bindir(which=only_initdb.get, pattern=str(tmp_path / "none"))
    # a folder with initdb and no postgres binary is skipped; a folder name that is no version sorts last
    half = tmp_path / "v" / "16" / "bin"
    half.mkdir(parents=True)
    (half / "initdb").write_text("")
    devel = tmp_path / "v" / "devel" / "bin"
    devel.mkdir(parents=True)
    for folder in (devel, tmp_path / "v" / "12" / "bin"):
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("initdb", "postgres"):
            (folder / name).write_text("")
    assert postgres.bindir(which=lambda name: None, pattern=str(tmp_path / "v" / "*" / "bin")) == \
        tmp_path / "v" / "12" / "bin"


def test_root_runs_postgres_with_that_users_group_and_groups() -> None:
    import pwd

    gid = pwd.getpwnam("nobody").pw_gid
    assert postgres.as_user(["postgres", "-D", "d"], "nobody") == [
        "setpriv", "--reuid=nobody", f"--regid={gid}", "--init-groups", "--", "postgres", "-D", "d"]


def test_a_free_port_is_an_unprivileged_one_nothing_listens_on() -> None:
    import socket

    port = services.free_port()
    assert port >= 1024
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_server_log_says_why_in_its_last_error_line() -> None:
    log = ("2026-11-27 LOG:  starting PostgreSQL 15.18\n"
           "2026-11-27 LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use\n"
           "2026-11-27 FATAL:  could not create any TCP/IP sockets\n"
           "2026-11-27 LOG:  database system is shut down\n\n")
    assert postgres.why(log) == "2026-11-27 FATAL:  could not create any TCP/IP sockets"
    assert postgres.why("a\nERROR:  first\nPANIC:  last\nLOG: after") == "PANIC:  last"
    assert postgres.why("LOG: a\nERROR:  relation missing\nLOG: b") == "ERROR:  relation missing"
    assert postgres.why("LOG: one\n  LOG: two  \n") == "LOG: two", "no error: the last line"
    assert postgres.why("\n \n") == "(no output)"
    assert postgres.why("FATAL: " + "x" * 400) == ("FATAL: " + "x" * 400)[:300]
    assert postgres._last_line("initdb: error: one\n  initdb: error: two  \n\n") == "initdb: error: two"
    assert postgres._last_line("") == "(no output)"
    assert postgres._last_line("y" * 400) == "y" * 300


def test_only_root_hands_postgresql_to_another_user(monkeypatch) -> None:
    monkeypatch.setattr(postgres.os, "geteuid", lambda: 1000)
    assert postgres.run_user() is None
    monkeypatch.setattr(postgres.os, "geteuid", lambda: 0)
    users = {"postgres": True, "nobody": True}

    def getpwnam(name: str) -> object:
        if not users.get(name):
            raise KeyError(name)
        return object()

    monkeypatch.setattr(postgres.pwd, "getpwnam", getpwnam)
    assert postgres.run_user() == "postgres"
    users["postgres"] = False
    assert postgres.run_user() == "nobody", "where Debian's package made no postgres user"
    users["nobody"] = False
    with pytest.raises(postgres.ServiceError) as err:
        postgres.run_user()
    assert str(err.value) == "running as root and neither a postgres nor a nobody user exists to run PostgreSQL"


def test_the_services_cpu_is_measured_for_the_cells_that_use_them(tmp_path, fake) -> None:
    fake.services.burns = True  # a "PostgreSQL" busy on a core while the run lasts
    fake.run_s = 1.0  # a load long enough for the monitor's samples
    code, run_dir = run(tmp_path, scen_file(tmp_path, '[[matrix]]\nworkload = ["db"]\n[[matrix]]\nworkload = ["noop"]\n'))
    rows = {r.workload: r for r in RunDir(run_dir).rows()}
    assert code == 0
    # a core's worth alone; > 5 % still holds with the CPUs shared by pytest's workers and CI's image
    # build (9 % seen there with a burner still starting), and an unmeasured service reads 0
    assert rows["db"].services_cpu_pct > 5, rows["db"]
    assert rows["noop"].services_cpu_pct == 0.0, "a cell without I/O: the services are not its concern"
    assert fake.services.proc is not None and fake.services.proc.poll() is not None, "stopped with the run"
