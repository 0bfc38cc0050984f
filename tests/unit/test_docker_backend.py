"""The Docker backend's pure parts, without an engine: the build verdict, the pids bound, who the
containers run as and who owns the folders they write."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from bench.run.backends import compose, docker
from bench.scenario.cells import ServerConfig


def done(rc: int, out: str = "", err: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["docker", "compose", "build"], rc, out, err)


def test_build_failed_reads_the_output_since_compose_exits_0_on_a_failed_solve() -> None:
    err = "#3 ERROR: failed to do request\nfailed to solve: rpc error: lookup registry-1.docker.io: no such host\n"
    assert compose.build_failed(done(0, err=err)) == "failed to solve: rpc error: lookup registry-1.docker.io: no such host"
    assert compose.build_failed(done(0, out=" target  Built\n loadgen  Built\n")) == ""
    assert compose.build_failed(done(17, err="no such service: x")) == "exit 17: no such service: x"


def cfg(workers: int, tokens: int) -> ServerConfig:
    return ServerConfig(server="uvicorn", workers=workers, threadpool_tokens=tokens, target_cpuset="0",
                        worker_pinning="set", port=8000, bind="127.0.0.1", loop="auto", http="auto")


def test_pids_limit_bounds_runaways_but_never_a_legitimate_cell() -> None:
    assert docker.target_pids_limit(cfg(1, 40)) == docker.PIDS_FLOOR
    # 64 workers, each able to start a thread per token: the bound stays above what they may use
    assert docker.target_pids_limit(cfg(64, 1000)) > 64 * (1000 + 2)


def test_containers_never_run_as_root_and_folders_are_not_world_writable(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    chowned: list[tuple[Path, int, int]] = []
    monkeypatch.setattr(os, "chown", lambda p, u, g: chowned.append((Path(p), u, g)))
    for euid in (0, 1234):
        monkeypatch.setattr(os, "geteuid", lambda euid=euid: euid)
        monkeypatch.setattr(os, "getuid", lambda euid=euid: euid)
        monkeypatch.setattr(os, "getgid", lambda: 99)
        ids = compose.user_env()
        assert ids["BENCH_UID"] != "0" and ids["BENCH_GID"] != "0"
        assert ids == ({"BENCH_UID": "10001", "BENCH_GID": "10001"} if euid == 0
                       else {"BENCH_UID": "1234", "BENCH_GID": "99"})
        folder = tmp_path / str(euid) / "cells" / "c" / "r1"
        compose.give_dir(folder)
        assert folder.is_dir() and not folder.stat().st_mode & stat.S_IWOTH
    # root gives the folder itself (not what is above it) to the images' user; others own theirs
    assert chowned == [(tmp_path / "0" / "cells" / "c" / "r1", compose.IMAGE_UID, compose.IMAGE_UID)]
