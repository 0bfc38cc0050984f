"""The traps a new user fell into: a `make -n` that started a benchmark, a
traceback after `| head`, a --set that swallowed the scenario, a typo without a suggestion, a
--help without examples or presets, arguments without help, a file written without a word."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import ROOT, cli
from tests.rows import make_row, make_run

MAKE = shutil.which("make")
CLEAN_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}


def help_targets() -> list[str]:
    """The targets `make help` lists (the same grep as its recipe: make runs it only to print)."""
    text = (ROOT / "Makefile").read_text()
    return re.findall(r"^([a-z-]+):.*## ", text, flags=re.M)


def phony_targets() -> list[str]:
    [line] = re.findall(r"^\.PHONY: (.*)$", (ROOT / "Makefile").read_text(), flags=re.M)
    return line.split()


def test_every_listed_target_is_phony_and_make_help_lists_no_issue_number() -> None:
    assert set(help_targets()) <= set(phony_targets())
    assert "help" in help_targets() and "bench" in help_targets()
    if MAKE:
        out = subprocess.run([MAKE, "-s", "help"], cwd=ROOT, capture_output=True, text=True, env=CLEAN_ENV)
        assert out.returncode == 0 and out.stdout.split()[0] == "help"
        assert "issue" not in out.stdout.lower()


def test_no_recipe_line_calls_make() -> None:
    # make runs a line naming $(MAKE) even under -n, the rest of the line with it
    recipes = [line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("\t")]
    assert [line for line in recipes if "$(MAKE)" in line or "${MAKE}" in line] == []


@pytest.mark.skipif(MAKE is None, reason="no make on this host")
@pytest.mark.parametrize("backend", ["auto", "docker"])
@pytest.mark.parametrize("target", phony_targets())
def test_make_dry_run_of_every_target_starts_nothing(tmp_path: Path, target: str, backend: str) -> None:
    """Every line make would execute goes through SHELL: a recorder here, so `make -n` of a target
    that still runs a line (a $(MAKE) in it) leaves a trace instead of starting a benchmark; a
    venv that does not exist yet (a fresh clone) must not be made either."""
    log = tmp_path / "ran"
    shell = tmp_path / "record"
    shell.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n')
    shell.chmod(0o755)
    venv = tmp_path / "venv"
    proc = subprocess.run([MAKE, "-n", target, f"SHELL={shell}", f"BACKEND={backend}", f"VENV={venv}"],
                          cwd=ROOT, capture_output=True, text=True, env=CLEAN_ENV, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not log.exists(), f"make -n {target} ran: {log.read_text()}"
    assert not venv.exists()
    if target in ("bench", "smoke", "capacity", "gate"):
        assert f"{venv}/bin/python -m bench " in proc.stdout  # printed, not run
        assert ("bash scripts/images.sh" in proc.stdout) == (backend == "docker")


def dry(*args: str) -> str:
    return subprocess.run([str(MAKE), "-s", "-n", "-o", ".venv/.installed", *args], cwd=ROOT, capture_output=True,
                          text=True, env=CLEAN_ENV, check=True).stdout


@pytest.mark.skipif(MAKE is None, reason="no make on this host")
def test_smoke_runs_the_smoke_scenario_and_bench_the_one_asked() -> None:
    assert "-m bench run smoke --backend local --out results --set users=3 --set workers=2" in dry(
        "smoke", "BACKEND=local", "SCENARIO=ci", "SET=users=3 workers=2")
    assert "-m bench run ci --backend auto --out r " in dry("bench", "SCENARIO=ci", "OUT=r")
    # RUN is the report's run folder, never the bench run command (a macro of that name once was)
    assert dry("report", "RUN=results/x").strip().endswith("-m bench report results/x")
    assert "-m bench run default" in dry("bench", "RUN=results/x")


# --- a closed pipe ends quietly -------------------------------------------------------------

def closed_pipe_run(*args: str, stream: str = "stdout") -> subprocess.CompletedProcess[str]:
    """bench with stdout (or stderr) a pipe whose reader is gone, as after `| head -1` had read."""
    read, write = os.pipe()
    os.close(read)
    other = subprocess.PIPE
    try:
        pipes = {"stdout": write, "stderr": other} if stream == "stdout" else {"stdout": other, "stderr": write}
        return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, text=True, timeout=60,
                              env={**CLEAN_ENV, "PYTHONPATH": str(ROOT)}, **pipes)
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [["plan", "smoke"], ["--help"], ["plan", "--help"], ["compare", "--help"]])
def test_a_closed_stdout_ends_quietly_without_a_traceback(args: list[str]) -> None:
    proc = closed_pipe_run(*args)
    assert proc.stderr == "" and proc.returncode == cli.PIPE_CLOSED


def test_compare_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", [make_row(cell_id="x")]).path
    b = make_run(tmp_path / "b", [make_row(cell_id="x")]).path
    proc = closed_pipe_run("compare", str(a), str(b))
    assert proc.returncode == cli.PIPE_CLOSED and "Traceback" not in proc.stderr


def test_a_closed_stderr_ends_quietly_too() -> None:
    proc = closed_pipe_run("plan", "no-such-scenario", stream="stderr")
    assert proc.returncode == cli.PIPE_CLOSED and proc.stdout == ""


def test_a_broken_pipe_that_is_not_our_output_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise BrokenPipeError(32, "a target's socket")

    monkeypatch.setattr(cli, "_dispatch", broken)
    with pytest.raises(BrokenPipeError):
        cli.main(["plan", "smoke"])


# --- --set: one KEY=VALUE a flag -------------------------------------------------------------

def test_set_before_the_scenario_leaves_the_scenario_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--set", "users=7", "--set", "duration=2", "smoke"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("scenario smoke:") and "users=7" in out


@pytest.mark.parametrize("argv, expected", [
    (["plan", "--set", "users=10", "workers=2"], "scenario 'workers=2' looks like a KEY=VALUE: give each its own --set"),
    (["plan", "smoke", "--set", "users=10", "workers=2"], "unrecognized arguments: workers=2 (each --set takes one"),
])
def test_several_values_after_one_set_are_refused_with_the_way_out(
        capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and expected in err and err.count("\n") == 1


def test_a_scenario_file_with_an_equals_sign_is_still_a_scenario(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "users=3.toml"
    path.write_text('[defaults]\nduration = 2\n')
    assert cli.main(["plan", str(path)]) == 0


# --- unknown keys: a suggestion -------------------------------------------------------------

@pytest.mark.parametrize("argv, toml, expected", [
    (["--set", "user=10"], "", "unknown key 'user': did you mean 'users'? (known: server, "),
    ([], '[defaults]\nstyel = "def"\n', ": unknown key 'styel': did you mean 'style'? (known: "),
    ([], '[matrix]\nthreadpool_token = [5]\n', "unknown key 'threadpool_token': did you mean 'threadpool_tokens'?"),
    (["--set", "colour=red"], "", "unknown key 'colour' (known: server, "),
])
def test_an_unknown_key_is_one_line_with_the_closest_known_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], toml: str, expected: str) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(toml)
    assert cli.main(["plan", str(scen), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: ") and expected in err and err.count("\n") == 1


# --- help -----------------------------------------------------------------------------------

def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_argument_of_every_command_has_help() -> None:
    parser = cli.build_parser()
    missing = [f"bench {name} {a.dest}" for name, sub in {"": parser, **subparsers(parser)}.items()
               for a in sub._actions if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []


def test_help_lists_every_preset_and_an_example_per_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for path in (ROOT / "scenarios").glob("*.toml"):
        assert re.search(rf"^  {re.escape(path.stem)}  +\S", out, flags=re.M), path.stem
    assert "  smoke  " in out and "A quick end-to-end check of the whole chain" in out
    commands = set(subparsers(cli.build_parser()))
    assert set(cli.EXAMPLES) == commands
    for name in commands:
        assert f"\n  bench {name} " in out, name
    assert max(len(line) for line in out.splitlines()) <= 110


@pytest.mark.parametrize("command", ["plan", "run", "capacity", "serve", "report", "compare"])
def test_each_commands_help_shows_its_example(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert "example (" in capsys.readouterr().out


def test_presets_are_read_at_help_time_and_a_broken_one_does_not_break_help(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "good.toml").write_text('description = """\nFirst line.\nSecond line."""\n')
    (tmp_path / "scenarios" / "bad.toml").write_text('description = "never closed\n')
    (tmp_path / "scenarios" / "bare.toml").write_text('name = "bare"\n')
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    lines = cli._presets().splitlines()[1:]
    assert lines == ["  bad   (unreadable: `bench plan` says why)", "  bare", "  good  First line."]


# --- compare says where it wrote ------------------------------------------------------------

def test_compare_says_it_wrote_into_run_b(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run(tmp_path / "a", [make_row(cell_id="x")]).path
    b = make_run(tmp_path / "b", [make_row(cell_id="x")]).path
    assert cli.main(["compare", str(a), str(b)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"wrote {b / 'compare.csv'} (into run B)\n"
    assert (b / "compare.csv").is_file() and "wrote" not in captured.out
