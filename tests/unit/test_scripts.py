"""scripts/*.sh on a fresh clone, with stand-ins for `docker` and `debootstrap` on PATH: what the
scripts do around those commands (folders, exit codes) is ours to get right, and runs anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fresh_clone(tmp_path: Path) -> Path:
    """The scripts as a fresh clone has them: no build/ folder, nothing made."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    return repo


def stub(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


def run(repo: Path, bin_dir: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(repo / "scripts" / script), *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)


def test_base_image_on_a_fresh_clone_with_an_engine_already_running(tmp_path: Path) -> None:
    # an engine that already runs means no scripts/docker-up.sh, so nothing made build/ before
    repo, bin_dir = fresh_clone(tmp_path), tmp_path / "bin"
    stub(bin_dir, "docker", 'case "$1" in image) exit 1;; import) cat >/dev/null;; run) echo "Python 3.11.2";; esac')
    stub(bin_dir, "debootstrap", 'mkdir -p "$4/usr/bin" && echo "I: Base system installed successfully."')
    proc = run(repo, bin_dir, "base-image.sh", "base:test")
    assert proc.returncode == 0, proc.stderr
    assert "base-image: base:test (Python 3.11.2)" in proc.stdout
    assert "installed successfully" in (repo / "build" / "debootstrap.log").read_text()
    assert not (repo / "build" / "rootfs").exists()


def test_images_fails_when_buildkit_fails_though_compose_exits_0(tmp_path: Path) -> None:
    repo, bin_dir = fresh_clone(tmp_path), tmp_path / "bin"
    stub(bin_dir, "docker", 'echo "#3 ERROR: failed to do request"; '
                            'echo "failed to solve: rpc error: lookup registry-1.docker.io: no such host"; exit 0')
    proc = run(repo, bin_dir, "images.sh")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("images: the build failed: failed to solve: rpc error")


def test_images_passes_a_good_build_and_a_failing_exit_code_on(tmp_path: Path) -> None:
    repo, bin_dir = fresh_clone(tmp_path), tmp_path / "bin"
    stub(bin_dir, "docker", 'echo " target  Built"')
    assert run(repo, bin_dir, "images.sh").returncode == 0
    stub(bin_dir, "docker", 'echo "no such service: x" >&2; exit 3')
    assert run(repo, bin_dir, "images.sh", "x").returncode == 3
