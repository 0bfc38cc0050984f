"""Scenario parsing and validation; bad input is one line on stderr and exit 2, run through the
real CLI (as Locust's tests do), and nothing is created."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench.errors import BadInput
from bench.scenario import matrix as scenario
from bench.scenario.cpuset import format as fmt
from bench.scenario.cpuset import host_cpus, parse
from tests.runs import bench_cli, write

ROOT = Path(__file__).resolve().parents[2]


BAD = [
    ('[defaults]\nworkers = 0\n', "workers: 0 is below the minimum 1"),
    ('[defaults]\nusers = 0\n', "users: 0 is below the minimum 1"),
    ('[defaults]\nstyel = "def"\n', "unknown key 'styel'"),
    ('[defaults]\nstyle = "sync"\n', "style: 'sync' is not one of def, async"),
    ('[defaults]\nworkload = "io"\n', "workload: 'io' is not one of noop, cpu, sleep, blocking_sleep"),
    ('[defaults]\ntarget_cpuset = "999"\n', "target_cpuset: cpuset '999' names CPU 999 which this host lacks"),
    ('[defaults]\nloadgen_cpuset = "1-0"\n', "range 1-0 runs backwards"),
    ('[defaults]\nusers = "many"\n', "users: 'many' is not a whole number"),
    ('[defaults]\nsleep_ms = 60001\n', "sleep_ms: 60001 is above the maximum 60000"),
    ('[matrix]\nusers = []\n', "matrix.users: expected a non-empty list"),
    ('[matrix]\nusers = 5\n', "matrix.users: expected a non-empty list"),
    ('nmae = "x"\n', "unknown top-level key 'nmae'"),
    ('[defaults\nusers = 1\n', "malformed TOML"),
    ('[checks]\nmin_rsp = 1\n', "checks"),
    # the open load model's keys, and the closed one's
    ('[defaults]\nrate = 100\n', "rate is for load_model = open; the closed model has `users`"),
    ('[defaults]\nload_model = "open"\nrate = 10\nusers = 5\n', "users is for load_model = closed"),
    ('[defaults]\nload_model = "open"\n', "rate: 0: the open load model needs a rate > 0"),
    ('[defaults]\nload_model = "open"\nrate = -5\n', "rate: -5.0 is below the minimum 0"),
    ('[defaults]\nload_model = "open"\nrate = 10\nmax_inflight = 0\n', "max_inflight: 0 is below the minimum 1"),
    ('[defaults]\nload_model = "open"\nrate = 10\nmax_inflight = 2\nloadgen_processes = 3\n',
     "max_inflight 2 is below the 3 Locust processes"),
    ('[defaults]\nload_model = "shut"\n', "load_model: 'shut' is not one of closed, open"),
    ('[defaults]\narrivals = "poisson"\n', "arrivals is for load_model = open"),
    ('[matrix]\nload_model = ["closed", "open"]\nusers = [5]\nrate = [9]\n', "is for load_model"),
    ('[capacity]\nslo_p99_ms = 0\n', "[capacity] slo_p99_ms: 0 is out of range"),
    ('[capacity]\nslo_p99_ms = 10\nstart_rps = 500\nmax_rps = 100\n', "start_rps 500 is above max_rps 100"),
    ('capacity = 5\n', "[capacity] must be a table"),
    # a server asked for what it cannot run (tests/unit/test_server_cells.py has each reason whole)
    ('[matrix]\nserver = ["uvicorn", "granian"]\nhttp = ["httptools"]\n', "server = granian: http = 'httptools'"),
    ('[defaults]\nserver = "granian"\ngranian_blocking_threads = 2\n', "Granian refuses more than one blocking"),
    ('[defaults]\ngranian_runtime_threads = 4\n', "granian_runtime_threads is for server granian"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_scenario_exits_2_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    out = tmp_path / "results"
    proc = bench_cli("run", write(tmp_path, text), "--backend", "local", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), proc.stderr
    assert message in lines[0]
    assert not out.exists(), "bad input must not create a run directory"


@pytest.mark.parametrize(("args", "message"), [
    (["run", "no-such-scenario"], "scenario 'no-such-scenario': no such file"),
    (["plan", "smoke", "--set", "workers=-1"], "workers: -1 is below the minimum 1"),
    (["plan", "smoke", "--set", "users"], "--set 'users': expected key=value"),
    (["plan", "smoke", "--set", "colour=red"], "unknown key 'colour'"),
    (["run", "smoke", "--target-url", "ftp://x"], "--target-url 'ftp://x': expected http://HOST:PORT"),
    (["run", "--backend", "local"], "run needs a SCENARIO"),
    (["report", "/nonexistent"], "not a run directory"),
    (["capacity", "smoke"], "capacity: no objective: give --slo-p99 MS or slo_p99_ms in [capacity]"),
    (["capacity", "smoke", "--slo-p99", "0"], "[capacity] slo_p99_ms: 0 is out of range"),
    (["capacity", "smoke", "--slo-p99", "-1"], "[capacity] slo_p99_ms: -1 is out of range"),
    (["capacity", "smoke", "--slo-p99", "nan"], "[capacity] slo_p99_ms: nan is not a finite number"),
    (["capacity", "smoke", "--slo-p99", "100", "--set", "rate=5"], "bench capacity searches the rate itself"),
])
def test_bad_options_exit_2(args: list[str], message: str) -> None:
    proc = bench_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr


def test_port_already_in_use_exits_2_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = tmp_path / "results"
        proc = bench_cli("run", "smoke", "--backend", "local", "--out", str(out), "--set", f"port={port}")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and f"port {port} is already in use" in proc.stderr
    assert not out.exists()


def test_plan_prints_every_cell_and_an_estimate() -> None:
    proc = bench_cli("plan", "smoke", "--set", "users=3,7")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("GET /") == 8
    assert "estimated wall time" in proc.stdout


def test_defaults_and_auto_cpusets() -> None:
    scen = scenario.from_dict({"name": "t"}, {})
    cells = scen.cells()
    assert len(cells) == 1
    cell = cells[0]
    assert (cell.style, cell.workload, cell.users, cell.threadpool_tokens, cell.port) == ("async", "noop", 10, 40, 8000)
    cpus = sorted(host_cpus())
    target, loadgen = parse(cell.target_cpuset), parse(cell.loadgen_cpuset)
    assert target | loadgen == set(cpus)
    if len(cpus) > 1:
        assert not target & loadgen


def test_set_overrides_scalar_and_makes_axis() -> None:
    scen = scenario.from_dict({"defaults": {"users": 5}, "matrix": {"style": ["def", "async"]}},
                              scenario.parse_set(["users=1,2,3", "style=def", "sleep_ms=20"]))
    cells = scen.cells()
    assert [c.users for c in cells] == [1, 2, 3]
    assert {c.style for c in cells} == {"def"}
    assert all(c.sleep_ms == 20 for c in cells)


def test_matrix_is_the_product_and_ids_are_unique() -> None:
    scen = scenario.from_dict({"matrix": {"style": ["def", "async"], "workload": ["noop", "cpu", "sleep"],
                                          "users": [1, 10], "sleep_ms": [10, 20]}}, {})
    cells = scen.cells()
    assert len(cells) == 24
    assert len({c.cell_id for c in cells}) == 24
    assert "sleep_ms10" in cells[0].cell_id  # extra axes name the cell
    # the axes the id names anyway (users as u1, a rate as r100) are not appended again
    assert cells[0].cell_id == "def-noop-u1-uvicorn-w1-tp40-sleep_ms10"
    opened = scenario.from_dict({"defaults": {"load_model": "open"}, "matrix": {"rate": [100, 200]}}, {}).cells()
    assert [c.cell_id for c in opened] == ["async-noop-r100-uvicorn-w1-tp40", "async-noop-r200-uvicorn-w1-tp40"]
    ids = [c.cell_id for c in scenario.from_dict({"matrix": {
        "server": ["uvicorn", "granian"], "workers": [1, 2], "threadpool_tokens": [4]}}, {}).cells()]
    assert ids == ["async-noop-u10-uvicorn-w1-tp4", "async-noop-u10-uvicorn-w2-tp4", "async-noop-u10-granian-w1-tp4",
                   "async-noop-u10-granian-w2-tp4"]
    [model] = scenario.from_dict({"defaults": {"rate": 50}, "matrix": {"load_model": ["open"]}}, {}).cells()
    assert model.cell_id == "async-noop-r50-uvicorn-w1-tp40"
    deps = scenario.from_dict({"defaults": {"workload": "db"}, "matrix": {"db_dependency": [False, True]}}, {})
    assert [c.cell_id for c in deps.cells()] == ["async-db-u10-uvicorn-w1-tp40", "async-db_dep-u10-uvicorn-w1-tp40"]
    # what a file name cannot hold becomes "_" (":" of an IPv6 address)
    binds = scenario.from_dict({"matrix": {"bind": ["127.0.0.1", "::1"]}}, {}).cells()
    assert binds[1].cell_id == "async-noop-u10-uvicorn-w1-tp40-bind_1"


def test_workers_cores_resolves_to_the_target_cpuset_and_duplicates_collapse() -> None:
    first = fmt([min(host_cpus())])
    scen = scenario.from_dict({"defaults": {"target_cpuset": first}, "matrix": {"workers": [1, "cores"]}}, {})
    assert [c.workers for c in scen.cells()] == [1]


def test_cpuset_text_round_trips() -> None:
    assert fmt(parse("3,0-1,2")) == "0-3"
    assert fmt(parse("0,2,4-5")) == "0,2,4-5"
    with pytest.raises(BadInput):
        parse("a-b")


def test_every_shipped_scenario_parses_and_plans() -> None:
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        proc = bench_cli("plan", path.stem)
        assert proc.returncode == 0, f"{path.name}: {proc.stderr}"
        assert scenario.load(path.stem).cells()


def test_the_knobs_page_documents_every_key() -> None:
    table = (ROOT / "docs" / "knobs.md").read_text()
    missing = [key for key in scenario.KEYS if f"| `{key}` |" not in table]
    assert not missing, f"docs/knobs.md's knob table lacks {missing}"
