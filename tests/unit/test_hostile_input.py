"""The runner tried as a hostile or unlucky user would (issue 11): every bad input is one line on
stderr and exit 2 before anything starts, never a traceback and never a run directory; through
the real CLI, as Locust's own tests run theirs."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from bench.results.row import SCHEMA_VERSION
from tests.runs import bench_cli, write
from tests.servers import free_port


def refused(proc: object, message: str) -> None:
    code, err = proc.returncode, proc.stderr  # type: ignore[attr-defined]
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), err
    assert "Traceback" not in err and message in lines[0], err


SCENARIOS = [
    # nan passes `nan < lo` and `nan > hi`; it used to start a real target and Locust, then exit 2
    ('[defaults]\nduration = nan\n', "duration: nan is not a finite number"),
    ('[defaults]\nspawn_rate = nan\n', "spawn_rate: nan is not a finite number"),
    ('[defaults]\nwarmup = inf\n', "warmup: inf is not a finite number"),
    ('[matrix]\nspawn_rate = [1, nan]\n', "spawn_rate: nan is not a finite number"),
    # a billion-element range used to exhaust memory while parsing
    ('[defaults]\ntarget_cpuset = "0-999999999"\n', "CPU 999999999 is beyond any host"),
    ('matrix = []\n', "matrix = [] gives no cell to run"),
    ('[defaults]\nbind = ""\n', "bind: '' is not an IP address"),
    ('[defaults]\nbind = "no-such-host.invalid"\n', "bind: 'no-such-host.invalid' is not an IP address"),
    ('[defaults]\nport = 65500\nloadgen_workers = 2\n', "Locust's master would listen on port 66057"),
    ('[defaults]\nduration = "ten"\n', "duration: 'ten' is not a number of seconds (or 1m30s)"),
    ('[defaults]\nusers = 1979-05-27\n', "users: datetime.date(1979, 5, 27) is not a whole number"),
    ('[defaults]\nbind = ["127.0.0.1"]\n', "bind: ['127.0.0.1'] is not a string"),
    ('name = 5\n', "name: expected a string, got 5"),
    ('[checks]\nmin_rps = nan\n', "checks.min_rps: must be >= 0, got nan"),
]


@pytest.mark.parametrize(("text", "message"), SCENARIOS)
def test_bad_scenario_is_refused_before_anything_starts(tmp_path: Path, text: str, message: str) -> None:
    out = tmp_path / "results"
    refused(bench_cli("run", write(tmp_path, text), "--backend", "local", "--out", str(out)), message)
    assert not out.exists(), "bad input must not create a run directory"
    refused(bench_cli("plan", write(tmp_path, text)), message)


@pytest.mark.parametrize(("args", "message"), [
    (["plan", "smoke", "--set", "spawn_rate=inf"], "spawn_rate: inf is not a finite number"),
    (["plan", "smoke", "--set", "warmup=nan"], "warmup: nan is not a finite number"),
    (["plan", "smoke", "--set", "port=65000", "--set", "loadgen_workers=1"], "beyond 65535"),
    (["compare", "a", "b", "--threshold", "nan"], "argument --threshold: 'nan': expected a finite percentage"),
    (["compare", "a", "b", "--threshold", "-5"], "expected a finite percentage >= 0"),
    (["run", "smoke", "--retry-failed"], "--retry-failed goes with --resume RUN_DIR"),
    (["run", "smoke", "--target-url", "http://127.0.0.1:99999"], "expected http://HOST:PORT"),
    (["run", "smoke", "--target-url", "http://127.0.0.1:1", "--backend", "local"],
     "--target-url http://127.0.0.1:1: no HTTP answer"),
    (["compare", "/nonexistent-a", "/nonexistent-b"], "/nonexistent-a: not a run directory"),
    (["run", "--resume", "/nonexistent"], "/nonexistent: not a run directory"),
])
def test_bad_options_are_refused(args: list[str], message: str) -> None:
    refused(bench_cli(*args), message)


def test_out_pointing_at_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    refused(bench_cli("run", "smoke", "--backend", "local", "--out", str(tmp_path / "f"), "--set", f"port={free_port()}"),
            "exists and is not a directory")


def test_non_utf8_scenario_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    refused(bench_cli("plan", str(path)), f"{path}: not UTF-8 text")


@pytest.mark.parametrize(("env_text", "message"), [
    ('{"schema_version": 2, "run_', "env.json: unreadable"),  # cut by a crash
    ('[1, 2]', "env.json: expected a JSON object"),
    (json.dumps({"schema_version": SCHEMA_VERSION}), "env.json: no scenario stored"),
    (json.dumps({"schema_version": SCHEMA_VERSION, "scenario": "smoke"}), "env.json: no scenario stored"),
    (json.dumps({"schema_version": 1, "scenario": {}}), "schema_version 1; this bench reads only"),
])
def test_resume_of_a_damaged_run_directory(tmp_path: Path, env_text: str, message: str) -> None:
    (tmp_path / "env.json").write_text(env_text)
    refused(bench_cli("run", "--resume", str(tmp_path), "--backend", "local"), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env.json"], "nothing written into it"


def test_serve_on_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        refused(bench_cli("serve", "smoke", "--set", f"port={port}"), f"port {port} is already in use")


def test_bind_beyond_loopback_warns_in_one_line_and_ipv6_is_an_address() -> None:
    proc = bench_cli("plan", "smoke", "--set", "bind=0.0.0.0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "bench: warning: bind = 0.0.0.0: the target listens beyond loopback, reachable from other hosts"]
    proc = bench_cli("plan", "smoke", "--set", "bind=::1")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_plan_wall_time_does_not_wrap_at_24_hours() -> None:
    proc = bench_cli("plan", "smoke", "--set", "duration=86400", "--set", "warmup=0", "--set", "workload=noop",
                     "--set", "style=async")
    assert proc.returncode == 0, proc.stderr
    assert "estimated wall time: 24:00:" in proc.stdout, proc.stdout


def test_durations_in_locust_format() -> None:
    proc = bench_cli("plan", "smoke", "--set", "duration=1m30s", "--set", "warmup=5s", "--set", "workload=noop",
                     "--set", "style=async")
    assert proc.returncode == 0, proc.stderr
    assert "~" in proc.stdout and "estimated wall time: 0:01:" in proc.stdout, proc.stdout


def test_a_key_with_a_line_break_is_named_on_one_line(tmp_path: Path) -> None:
    # found by the property test: a matrix key "\n" made a two-line message
    refused(bench_cli("plan", write(tmp_path, '[matrix]\n"a\\nb" = []\n')), r"matrix.a\nb: expected")
