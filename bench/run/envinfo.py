"""Metadata on every run (pyperf style): the machine, the versions, the scenario, the backend."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import __version__
from bench.results.row import SCHEMA_VERSION
from bench.scenario import cpuset
from bench.scenario.matrix import ROOT
from benchagent.buildinfo import python_build

REQUIREMENT_FILES = ("app/requirements.txt", "loadgen/requirements.txt")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pinned_versions() -> dict[str, str]:
    """The versions the requirement files pin (what the images install)."""
    pins: dict[str, str] = {}
    for name in REQUIREMENT_FILES:
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                pkg, ver = line.split("==", 1)
                pins[pkg.strip()] = ver.strip()
    return pins


def installed_versions(names: list[str]) -> dict[str, str]:
    """What this host's environment has (what the local backend runs)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                               timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def collect(run_id: str, backend: str, backend_meta: dict[str, Any], scenario: dict[str, Any],
            target_url: str | None) -> dict[str, Any]:
    pins = pinned_versions()
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "bench_version": __version__,
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "host_cpus": cpuset.format(cpuset.host_cpus()),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        # the local backend runs the target and Locust with this interpreter; how it was built
        # matters (a pyenv build without PGO ran a pure-Python loop 29 % slower than Debian's here)
        "python_executable": sys.executable,
        "python_build": python_build(),
        "packages_pinned": pins,
        "packages": installed_versions(sorted(pins)),
        "git_commit": git_commit(),
        "backend": backend,
        "backend_meta": backend_meta,
        "target_url": target_url,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ended_at": None,
        "scenario": scenario,
    }
