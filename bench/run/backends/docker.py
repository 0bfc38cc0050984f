"""Docker backend: the same target and Locust, as Compose services pinned with `cpuset`.

The target container is recreated only when the server config changes (the runner decides);
each cell's Locust run is a `docker compose run` of the loadgen service (plus, for distributed load,
the profile's workers) whose /out is the cell's folder, so the CSVs land exactly where the local
backend puts them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import TargetError
from bench.run import procs
from bench.run.backends.compose import PROJECT, Compose, PidCache, build_failed, give_dir
from bench.run.loadspec import LoadSpec, env_for, master_argv, users_env, worker_argv
from bench.run.services import Endpoints, Needs
from bench.scenario.appspec import AppSpec
from bench.scenario.cells import ServerConfig
from benchagent import HEALTHZ

LOCUSTFILE = "/loadgen/locustfile.py"
READY_DEADLINE_S = 60.0
PIDS_FLOOR = 4096


def target_pids_limit(cfg: ServerConfig) -> int:
    # a bound on runaway processes that no legitimate cell reaches: every worker may start a thread
    # per threadpool token, plus its loop, sampler and interpreter threads, and under Granian its
    # runtime threads
    return max(PIDS_FLOOR, cfg.workers * (cfg.threadpool_tokens + cfg.granian_runtime_threads + 32))


@dataclass
class DockerTarget:
    url: str
    compose: Compose
    env: dict[str, str]
    container: str
    cache: PidCache = field(default_factory=PidCache)
    managed: bool = True

    def alive(self) -> bool:
        out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", self.container],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() == "true"

    def pids(self) -> list[int]:
        return self.cache.tree(self.container)

    def logs(self) -> str:
        return self.compose.run(["logs", "--no-color", "target"], self.env, timeout=30, check=False).stdout

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def save_log(self, dest: Path) -> None:
        dest.write_text(self.logs())

    def stop(self) -> None:
        self.compose.run(["rm", "-sf", "target"], self.env, timeout=60, check=False)


@dataclass
class DockerLoad:
    master: subprocess.Popen[bytes]
    container: str
    compose: Compose
    env: dict[str, str]
    distributed: bool
    workers_log: Path
    cache: PidCache = field(default_factory=PidCache)
    workers: list[str] = field(default_factory=list)
    _workers_stopped: bool = False

    def pids(self) -> list[int]:
        if self.distributed and not self.workers:
            ids = self.compose.run(["--profile", "distributed", "ps", "-q", "locust-worker"], self.env,
                                   timeout=10, check=False).stdout
            self.workers = ids.split()
        return [p for c in (self.container, *self.workers) for p in self.cache.tree(c)]

    def poll(self) -> int | None:
        return self.master.poll()

    def wait(self, timeout: float) -> int:
        try:
            return self.master.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"Locust still running after {timeout:.0f} s") from None
        finally:
            self._stop_workers()

    def kill(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.container], capture_output=True, timeout=30)
        procs.kill_tree(self.master, grace=2.0)
        self._stop_workers()

    def _stop_workers(self) -> None:
        if self.distributed and not self._workers_stopped:
            self._workers_stopped = True
            logs = self.compose.run(["--profile", "distributed", "logs", "--no-color", "locust-worker"],
                                    self.env, timeout=60, check=False)
            self.workers_log.write_text(logs.stdout)
            self.compose.run(["--profile", "distributed", "rm", "-sf", "locust-worker"], self.env,
                             timeout=60, check=False)


class DockerBackend:
    name = "docker"

    def __init__(self, app: AppSpec | None = None) -> None:
        from bench.run.backends.compose_services import ComposeServices

        self.compose = Compose()
        self.app = app or AppSpec()  # the built-in app's image, or a team's (target_image)
        self.image = ""  # the team's image with the agent's layer (bench/run/backends/app_image.py)
        self._built = False
        self.services = ComposeServices(self.compose)
        self.endpoints = Endpoints()

    def start_services(self, want: Needs) -> Endpoints:
        self.endpoints = self.services.start(want)
        return self.endpoints

    def _build(self) -> None:
        # cached layers make this quick; it guarantees the images match the checkout
        if not self._built:
            # a team's image is theirs: never built here, only the agent's layer on it
            services = ["loadgen"] if self.app.target_image else ["target", "loadgen"]
            proc = self.compose.run(["build", *services], timeout=1200, check=False)
            why = build_failed(proc)
            if why:
                raise TargetError(f"docker compose build failed: {why}")
            if self.app.target_image:
                from bench.run.backends import app_image

                self.image = app_image.layer(self.app)
            self._built = True

    def start_target(self, cfg: ServerConfig, stats_dir: Path) -> DockerTarget:
        self._build()
        url = procs.free_url(cfg.bind, cfg.port)
        give_dir(stats_dir)
        env = {**cfg.env(), "TARGET_PIDS_LIMIT": str(target_pids_limit(cfg)),
               "TARGET_CPUSET": cfg.target_cpuset,
               "DB_DSN": self.endpoints.db_dsn, "UPSTREAM_URL": self.endpoints.upstream_url,
               "DB_URL": self.endpoints.db_url if self.app.needs_db else "",
               "STATS_DIR": str(stats_dir.resolve())}  # compose reads a bare relative path as a volume name
        if self.image:
            env["TARGET_IMAGE"] = self.image
        up = self.compose.run(["up", "-d", "--force-recreate", "--no-deps", "target"], env, timeout=120)
        container = self.compose.run(["ps", "-aq", "target"], env, timeout=30).stdout.strip()
        if not container:  # Compose 2.40 exits 0 on some project errors (an undefined volume)
            raise TargetError(f"docker compose up created no target container: {up.stderr.strip()[-400:]}")
        target = DockerTarget(url, self.compose, env, container)
        try:
            procs.wait_ready(f"{url}{HEALTHZ}", target.alive, READY_DEADLINE_S)
        except RuntimeError as exc:
            tail = target.log_tail(8)
            target.stop()
            raise TargetError(f"target container {exc}: {tail}") from None
        return target

    def start_load(self, spec: LoadSpec, out_dir: Path) -> DockerLoad:
        give_dir(out_dir)
        env = {"LOADGEN_CPUSET": spec.cpuset, "OUT_DIR": str(out_dir.resolve()), **users_env(spec),
               "MASTER_PORT": str(spec.master_port), "LOCUST_WORKER_ARGS": shlex.join(
                   worker_argv(spec, "127.0.0.1", LOCUSTFILE))}
        container = f"{PROJECT}-locust"
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=30)  # a leftover
        if spec.workers:
            self.compose.run(["--profile", "distributed", "up", "-d", "--no-deps", "--scale",
                              f"locust-worker={spec.workers}", "locust-worker"], env, timeout=120)
        result_env = {**env_for(spec, "/out"), "BENCH_WAIT_READY_S": "0"}  # the runner waited
        argv = ["run", "--rm", "-T", "--no-deps", "--name", container,
                *(x for k, v in result_env.items() for x in ("-e", f"{k}={v}")),
                "loadgen", *master_argv(spec, "/out", LOCUSTFILE)]
        master = self.compose.popen(argv, env, out_dir / f"{spec.prefix}_locust.log")
        return DockerLoad(master, container, self.compose, env, distributed=bool(spec.workers),
                          workers_log=out_dir / f"{spec.prefix}_workers.log")

    def metadata(self) -> dict[str, Any]:
        def out(argv: list[str]) -> str:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
            return ""

        self._build()
        names = {"target": self.image or "fastapi-bench-target:local",
                 "loadgen": "fastapi-bench-loadgen:local"}
        if self.app.target_image:
            names["app"] = self.app.target_image  # the team's, under the agent's layer (target)
        images = {name: out(["docker", "image", "inspect", "-f", "{{.Id}}", image])
                  for name, image in names.items()}  # db and upstream: env.json services.images
        version = out(["docker", "version", "--format", "{{json .}}"])
        try:
            engine = json.loads(version).get("Server", {}).get("Version", "")
        except json.JSONDecodeError:
            engine = version
        base = {"target_image": self.app.target_image, "target_layer": self.image} if self.image else {
            "base_image": os.environ.get("BASE_IMAGE", "python:3.12-slim")}
        return {"docker_engine": engine, "compose": out(["docker", "compose", "version", "--short"]),
                "images": images, **base}

    def close(self) -> None:
        if self.services.wanted:  # the run's db and upstream stay until run_cmd stops them (logs kept)
            self.compose.run(["--profile", "distributed", "rm", "-sf", "target", "loadgen", "locust-worker",
                              "volumes"], timeout=120, check=False)
            return
        self.compose.run(["--profile", "distributed", "down", "--remove-orphans", "-t", "5"], timeout=120,
                         check=False)
