"""The agent's layer on a team's image (target_image, issue 25) against a fake `docker` on PATH: a
shell script that keeps the engine's images in a folder, records each build's argv and context, and
fails or hangs on request. The real engine builds the layer in tests/e2e/test_docker_own_app.py;
this one pins what is built, when it is reused and what a user reads when it cannot be built."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bench import ROOT
from bench.errors import BadInput
from bench.run.backends import app_image
from bench.scenario.appspec import parse_app

# images/<name with / and : as _> holds the image's id; builds.log one line per build's argv;
# context/ a copy of the last build's context. FAKE_BUILD=fail|hang|vanish changes the build.
# `docker run` (appcheck's import check in the layer) logs its argv to runs.log and its folder and
# whether the target's variables leaked into its environment to run.where, then prints $FAKE_RUN_OUT
# and exits with $FAKE_RUN_RC.
DOCKER = r"""#!/bin/sh
state="$FAKE_DOCKER_STATE"
key() { printf '%s' "$1" | tr '/:' '__'; }
if [ "$1 $2" = "image inspect" ]; then
    f="$state/images/$(key "$5")"
    [ -f "$f" ] && cat "$f" && exit 0
    echo "Error: No such image: $5" >&2; exit 1
fi
if [ "$1" = "build" ]; then
    echo "$*" >> "$state/builds.log"
    for last; do :; done
    rm -rf "$state/context"; cp -r "$last" "$state/context"
    case "$FAKE_BUILD" in
        fail) printf 'step 1/5\nstep 2/5\nfailed to solve: no python in the image\n' >&2; exit 1 ;;
        long) printf 'step 1/5\nfailed: %0400d\n' 7 >&2; exit 1 ;;
        hang) exec sleep 30 ;;
        vanish) exit 0 ;;
    esac
    while [ $# -gt 0 ]; do [ "$1" = "-t" ] && tag="$2"; shift; done
    echo "sha256:layer-$(key "$tag")" > "$state/images/$(key "$tag")"
    exit 0
fi
if [ "$1" = "run" ]; then
    echo "$*" >> "$state/runs.log"
    echo "$PWD ${BENCH_APP:-no-BENCH_APP}" > "$state/run.where"
    printf '%s' "$FAKE_RUN_OUT"
    exit "${FAKE_RUN_RC:-0}"
fi
echo "fake docker: unexpected $*" >&2; exit 3
"""


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "engine"
    (state / "images").mkdir(parents=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    docker = bindir / "docker"
    docker.write_text(DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_STATE", str(state))
    monkeypatch.delenv("FAKE_BUILD", raising=False)
    return state


def has_image(engine: Path, name: str, image_id: str) -> None:
    (engine / "images" / name.replace("/", "_").replace(":", "_")).write_text(image_id + "\n")


def builds(engine: Path) -> list[str]:
    log = engine / "builds.log"
    return log.read_text().splitlines() if log.exists() else []


def spec(tmp_path: Path, **extra: object):
    return parse_app({"app": "shop.main:app", "target_image": "shop:1.4", **extra}, tmp_path)


def test_the_teams_image_is_never_pulled_or_built_when_it_is_not_there(engine: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput) as refused:
        app_image.layer(spec(tmp_path))
    assert str(refused.value) == ("target_image 'shop:1.4': no such image on this Docker engine (the stack never "
                                  "pulls or builds it: `docker build -t <name> .` or `docker pull` it first)")
    assert builds(engine) == []


def test_the_layer_is_built_offline_from_the_agent_and_the_dockerfile_then_reused(engine: Path,
                                                                                   tmp_path: Path) -> None:
    has_image(engine, "shop:1.4", "sha256:base1")
    app = spec(tmp_path, app_env={"MODE": "bench"})
    tag = app_image.layer(app)
    repo, digest = tag.split(":")
    assert repo == "fastapi-bench-app" and len(digest) == 16 and int(digest, 16) >= 0
    [argv] = builds(engine)
    words = argv.split()
    assert words[:6] == ["build", "--pull=false", "--network", "none", "-q", "-t"] and words[6] == tag
    # the scenario's PYTHONPATH joins the agent's folder and the image's in one ENV line, not a
    # second that would replace it
    pythonpath = [line for line in app_image.dockerfile(spec(tmp_path, app_env={"PYTHONPATH": "/srv/$lib"}))
                  .splitlines() if line.startswith("ENV PYTHONPATH=")]
    assert pythonpath == ['ENV PYTHONPATH="/opt/benchagent:/srv/\\$lib${PYTHONPATH:+:$PYTHONPATH}"']
    context = engine / "context"
    assert (context / "Dockerfile").read_text() == app_image.dockerfile(app)
    agent = sorted(p.name for p in (ROOT / "benchagent").glob("*.py"))
    assert agent and sorted(p.name for p in (context / "benchagent").iterdir()) == agent
    for name in agent:
        assert (context / "benchagent" / name).read_bytes() == (ROOT / "benchagent" / name).read_bytes()
    # the same inputs: the layer this engine has is reused, nothing is built again
    assert app_image.layer(app) == tag and len(builds(engine)) == 1


def test_a_new_base_image_or_new_settings_give_a_new_layer(engine: Path, tmp_path: Path) -> None:
    has_image(engine, "shop:1.4", "sha256:base1")
    first = app_image.layer(spec(tmp_path))
    has_image(engine, "shop:1.4", "sha256:base2")  # the team rebuilt their image under the same tag
    second = app_image.layer(spec(tmp_path))
    third = app_image.layer(spec(tmp_path, app_env={"MODE": "bench"}))
    assert len({first, second, third}) == 3 and len(builds(engine)) == 3


@pytest.mark.parametrize(("mode", "said"), [
    ("fail", "the agent's layer did not build: failed to solve: no python in the image"),
    ("vanish", "the agent's layer did not build: (no output)"),
    ("long", "the agent's layer did not build: " + ("failed: " + "0" * 399 + "7")[-300:]),
])
def test_a_layer_that_does_not_build_is_one_line_with_the_engines_last_words(
        engine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, said: str) -> None:
    has_image(engine, "shop:1.4", "sha256:base1")
    monkeypatch.setenv("FAKE_BUILD", mode)
    with pytest.raises(BadInput) as refused:
        app_image.layer(spec(tmp_path))
    assert str(refused.value) == f"target_image 'shop:1.4': {said}"


def test_a_build_that_hangs_is_stopped_at_the_limit(engine: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    has_image(engine, "shop:1.4", "sha256:base1")
    monkeypatch.setenv("FAKE_BUILD", "hang")
    monkeypatch.setattr(app_image, "BUILD_TIMEOUT_S", 0.5)
    with pytest.raises(BadInput) as refused:
        app_image.layer(spec(tmp_path))
    assert str(refused.value) == "target_image 'shop:1.4': the agent's layer took over 0.5 s to build"
