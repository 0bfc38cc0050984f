"""The example pipelines in docs/ci/ cannot run here (no GitHub, no GitLab), so their commands do:
each YAML file is parsed, its `make gate` line expanded by make itself (-n) in a job directory,
the bench command it prints run through the real CLI with the fake executor, then the pipeline's
keep-the-baseline line run in bash, and a second gate judged against the baseline it kept."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import cli
from bench.scenario.matrix import ROOT
from tests.fakes import HDR_VALUES_US, FakeBackend
from tests.servers import free_port

DOCS = ROOT / "docs" / "ci"


def github_baseline(step: str, job: Path) -> str:
    """The BASELINE the step puts into $GITHUB_ENV for the steps after it."""
    env_file = job / "github_env"
    subprocess.run(["bash", "-c", step], cwd=job, check=True, env={"PATH": "/usr/bin:/bin", "GITHUB_ENV": str(env_file)})
    [line] = env_file.read_text().splitlines()
    return line.removeprefix("BASELINE=")


def github() -> tuple[dict[str, Any], str, str, str]:
    """The workflow, the step that picks the baseline, the gate's and the keep-the-baseline lines."""
    doc = yaml.safe_load((DOCS / "github-actions.yml").read_text())
    steps = doc["jobs"]["gate"]["steps"]
    pick = next(s["run"] for s in steps if "GITHUB_ENV" in s.get("run", ""))
    gate = next(s["run"] for s in steps if "make gate" in s.get("run", ""))
    keep = next(s for s in steps if "cp -r" in s.get("run", ""))
    return doc, pick, gate, keep["run"]


def gitlab() -> tuple[dict[str, Any], str, str, str]:
    doc = yaml.safe_load((DOCS / "gitlab-ci.yml").read_text())
    script = doc["bench-gate"]["script"]
    pick = next(line for line in script if line.startswith("export BASELINE="))
    gate = next(line for line in script if "make gate" in line)
    keep = next(line for line in script if "cp -r" in line)
    return doc, pick, gate, keep.replace('"$CI_COMMIT_BRANCH" = "$CI_DEFAULT_BRANCH"', "true")


def picked(pipeline: Any, pick: str, job: Path) -> str:
    if pipeline is github:
        return github_baseline(pick, job)
    return subprocess.run(["bash", "-c", f'{pick} && echo "$BASELINE"'], cwd=job, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_github_restores_keeps_and_publishes_the_baseline() -> None:
    doc, _pick, _gate, _keep = github()
    # `on` is YAML 1.1's true to PyYAML
    assert doc["permissions"]["checks"] == "write" and doc[True]["push"]["branches"] == ["main"]
    steps = doc["jobs"]["gate"]["steps"]
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    restore, save = uses["actions/cache/restore"], uses["actions/cache/save"]
    assert restore["with"]["path"] == save["with"]["path"] == "baseline"
    assert restore["with"]["restore-keys"] in save["with"]["key"]  # the prefix finds the last one saved
    keep = next(s for s in steps if "cp -r" in s.get("run", ""))
    assert keep["if"] == save["if"] == "github.ref == 'refs/heads/main'"  # and only when the gate passed
    assert uses["mikepenz/action-junit-report"]["with"]["report_paths"] == "results/ci/junit.xml"
    assert uses["actions/upload-artifact"]["with"]["path"] == "results/ci"
    assert uses["mikepenz/action-junit-report"]["if"] == uses["actions/upload-artifact"]["if"] == "always()"
    assert uses["mikepenz/action-junit-report"]["continue-on-error"] is True  # forks get no checks: write


def test_gitlab_pulls_on_merge_requests_and_pushes_on_the_default_branch() -> None:
    doc, _pick, _gate, _keep = gitlab()
    job = doc["bench-gate"]
    policies = {r["if"]: r["variables"]["BASELINE_POLICY"] for r in job["rules"]}
    assert policies == {"$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH": "pull-push",
                        '$CI_PIPELINE_SOURCE == "merge_request_event"': "pull"}
    assert job["cache"] == {"key": "bench-baseline", "paths": ["baseline/"], "policy": "$BASELINE_POLICY",
                            "unprotect": True}
    assert job["artifacts"]["reports"]["junit"] == "results/ci/junit.xml"
    assert "results/ci/" in job["artifacts"]["paths"] and job["artifacts"]["when"] == "always"


def make_gate(gate_line: str, job: Path, env: dict[str, str]) -> list[str]:
    """What `make gate` does, as make itself prints it from the job's directory: its shell lines run
    here (emptying results/ci), its bench command returned as the CLI's arguments."""
    line = gate_line.replace("make gate", f"make -s -n -f {ROOT / 'Makefile'} -o .venv/.installed gate", 1)
    out = subprocess.run(["bash", "-c", line], cwd=job, capture_output=True, text=True, check=True,
                         env=env).stdout
    lines = out.replace("\\\n", " ").splitlines()
    [command] = [x for x in lines if " -m bench run " in x]
    for shell in lines:
        if shell != command:
            subprocess.run(["bash", "-c", shell], cwd=job, check=True, env=env)
    return shlex.split(command)[3:]  # after `.venv/bin/python -m bench`


@pytest.mark.parametrize("pipeline", [github, gitlab])
def test_the_pipeline_gates_keeps_a_baseline_and_gates_against_it(pipeline, tmp_path, fake: FakeBackend,
                                                                  monkeypatch) -> None:
    _doc, pick, gate_line, keep_line = pipeline()
    job = tmp_path / "job"
    job.mkdir()
    monkeypatch.chdir(job)
    kept = picked(pipeline, pick, job)
    assert kept.startswith("baseline/") and len(kept) == len("baseline/") + 8  # a hash of the CPU model
    env = {**os.environ, "BASELINE": kept}
    fake.rps_per_user = 20.0  # the ci preset's sleep checks ask for 160 req/s of 10 users
    fake.hdr_values = [v // 2 for v in HDR_VALUES_US]  # and a p99 under 100 ms
    port = ["--set", f"port={free_port()}"]  # 8000 may be taken on this machine
    first = make_gate(gate_line, job, env)
    assert first[:2] == ["run", "ci"] and "--baseline" not in first  # no baseline kept yet
    assert first[first.index("--junit") + 1] == "results/ci/junit.xml"
    assert "target_cpuset=0" in first and any(a.startswith("loadgen_cpuset=1-") for a in first)
    assert cli.main([*first, *port]) == 0
    assert (job / "results" / "ci" / "junit.xml").is_file()
    subprocess.run(["bash", "-c", keep_line], cwd=job, check=True, env=env)
    assert (job / kept / "summary.csv").is_file() and (job / kept / "env.json").is_file()

    second = make_gate(gate_line, job, env)
    assert second[second.index("--baseline") + 1] == kept
    fake.hdr_values = [v * 2 for v in fake.hdr_values]  # every cell twice as slow
    assert cli.main([*second, *port]) == 1
    junit = (job / "results" / "ci" / "junit.xml").read_text()
    assert junit.count('type="regression"') == 6  # p50 of each cell; the fake's rps did not move


def gate_dry_run(*assignments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "-n", "-o", ".venv/.installed", "gate", *assignments], cwd=ROOT,
                          capture_output=True, text=True)


def test_make_gate_without_a_baseline_yet_drops_the_threshold_too(tmp_path) -> None:
    proc = gate_dry_run(f"BASELINE={tmp_path / 'none'}", "THRESHOLD=30")
    assert proc.returncode == 0, proc.stderr
    assert "--baseline" not in proc.stdout and "--threshold" not in proc.stdout
    assert "no baseline at" in proc.stdout
    proc = gate_dry_run(f"BASELINE={tmp_path}", "THRESHOLD=30")
    assert f"--baseline {tmp_path} --threshold 30" in proc.stdout


def test_make_gate_refuses_a_baseline_inside_the_folder_it_empties(tmp_path) -> None:
    kept = tmp_path / "out" / "20260101-000000-ci"
    kept.mkdir(parents=True)
    proc = gate_dry_run(f"GATE_OUT={tmp_path / 'out'}", f"BASELINE={kept}")
    assert proc.returncode != 0 and "which make gate empties" in proc.stderr
    assert gate_dry_run(f"GATE_OUT={tmp_path / 'out'}", f"BASELINE={tmp_path / 'outside'}").returncode == 0


def test_make_gate_judges_a_teams_app_scenario_as_it_judges_the_ci_preset(tmp_path, fake: FakeBackend,
                                                                          monkeypatch) -> None:
    """GATE_SCENARIO=examples/shop/ci.toml: the app is imported for real (in its own interpreter),
    its endpoints answered by the fake target; the checks per endpoint, a baseline kept by the
    pipelines' own line, and every endpoint's slowdown judged by the same rule as the ci preset's."""
    job = tmp_path / "job"
    job.mkdir()
    monkeypatch.chdir(job)
    fake.routes = {"/items/42": 200, "/export": 200, "/quote": 200, "/orders": 201}
    fake.rps_per_user = 50.0  # 10 users: 500 req/s, over [checks.export] and [checks.quote]'s 400
    fake.hdr_values = [v // 2 for v in HDR_VALUES_US]  # a p99 under their 60 ms
    env = {**os.environ, "BASELINE": "baseline/shop"}
    line = f'make gate GATE_SCENARIO={ROOT / "examples" / "shop" / "ci.toml"} BASELINE="$BASELINE"'
    port = ["--set", f"port={free_port()}"]
    first = make_gate(line, job, env)
    assert first[:2] == ["run", str(ROOT / "examples" / "shop" / "ci.toml")] and "--baseline" not in first
    assert cli.main([*first, *port]) == 0
    subprocess.run(["bash", "-c", 'mkdir -p baseline && cp -r results/ci/*-shop-ci "$BASELINE"'], cwd=job,
                   check=True, env=env)
    second = make_gate(line, job, env)
    assert second[second.index("--baseline") + 1] == "baseline/shop"
    fake.hdr_values = [v * 2 for v in fake.hdr_values]  # every endpoint twice as slow
    assert cli.main([*second, *port]) == 1
    junit = (job / "results" / "ci" / "junit.xml").read_text()
    assert junit.count('type="regression"') == 4  # the p50 of each endpoint
    for name in ("item", "export", "quote", "order"):
        assert f"{name}-as_written" in junit
    # the per-endpoint checks judge too: export's p99 is now over its 60 ms
    assert "export" in junit and "max_p99_ms" in junit
