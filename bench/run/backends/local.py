"""Local backend: the target and Locust as processes on this host, pinned with taskset."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import TargetError
from bench.run import procs
from bench.run.loadspec import LoadSpec, env_for, master_argv, worker_argv
from bench.run.services import Endpoints, LocalServices, Needs
from bench.scenario.appspec import AppSpec
from bench.scenario.cells import ServerConfig
from bench.scenario.matrix import ROOT
from benchagent import HEALTHZ

READY_DEADLINE_S = 30.0


@dataclass
class LocalTarget:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    on_stop: Callable[[LocalTarget], None] = lambda target: None
    managed: bool = True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        return procs.tree_pids(self.proc.pid)

    def log_tail(self, lines: int = 20) -> str:
        return procs.tail(self.log, lines)

    def save_log(self, dest: Path) -> None:
        if self.log.exists():
            shutil.copyfile(self.log, dest)

    def stop(self) -> None:
        procs.kill_tree(self.proc)
        self.on_stop(self)


@dataclass
class LocalLoad:
    master: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def pids(self) -> list[int]:
        return [p for proc in (self.master, *self.workers) for p in procs.tree_pids(proc.pid)]

    def poll(self) -> int | None:
        return self.master.poll()

    def wait(self, timeout: float) -> int:
        try:
            code = self.master.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"Locust still running after {timeout:.0f} s") from None
        for worker in self.workers:  # they quit when the master does
            procs.kill_tree(worker, grace=5.0)
        return code

    def kill(self) -> None:
        for proc in (self.master, *self.workers):
            procs.kill_tree(proc, grace=2.0)


class LocalBackend:
    name = "local"

    def __init__(self, python: str = sys.executable, app: AppSpec | None = None) -> None:
        self.python = python  # the stack's: Locust and the upstream stub
        self.app = app or AppSpec()  # the target's: its interpreter, its folder, its module
        self._live: list[LocalTarget | LocalLoad] = []
        self.services = LocalServices(python)
        self.endpoints = Endpoints()

    def start_services(self, want: Needs) -> Endpoints:
        self.endpoints = self.services.start(want)
        return self.endpoints

    def start_target(self, cfg: ServerConfig, stats_dir: Path) -> LocalTarget:
        url = procs.free_url(cfg.bind, cfg.port)
        stats_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **cfg.env(), **self.endpoints.target_env(), **self.app.target_env(),
               # absolute: the target runs from the app's folder, and --out may be relative to ours
               **self.app.db_url_env(self.endpoints.db_url), "BENCH_STATS_DIR": str(stats_dir.resolve())}
        log = stats_dir.parent / "target.log"
        argv = [self.app.app_python or self.python, "-m", "benchagent.serve"]
        # from the app's folder, as its team starts it: its packages first on sys.path, its relative
        # paths where they expect them
        proc = procs.spawn(procs.pinned(argv, cfg.target_cpuset), log, env, Path(self.app.app_dir))
        target = LocalTarget(url, proc, log, on_stop=self._forget)
        self._live.append(target)
        try:
            procs.wait_ready(f"{url}{HEALTHZ}", target.alive, READY_DEADLINE_S)
        except RuntimeError as exc:
            target.stop()
            raise TargetError(f"target {exc}: {target.log_tail(8)}") from None
        return target

    def _forget(self, item: LocalTarget | LocalLoad) -> None:
        if item in self._live:
            self._live.remove(item)

    def start_load(self, spec: LoadSpec, out_dir: Path) -> LocalLoad:
        out_dir = out_dir.resolve()  # Locust runs from the stack's folder, --out may be relative to another
        out_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **env_for(spec, str(out_dir))}
        locustfile = str(ROOT / "loadgen" / "locustfile.py")

        def start(argv: list[str], name: str) -> subprocess.Popen[bytes]:
            argv = [self.python, "-m", "locust", *argv[1:]]
            return procs.spawn(procs.pinned(argv, spec.cpuset), out_dir / name, env, ROOT)

        load = LocalLoad(start(master_argv(spec, str(out_dir), locustfile), f"{spec.prefix}_locust.log"))
        for i in range(spec.workers):
            load.workers.append(start(worker_argv(spec, "127.0.0.1", locustfile),
                                      f"{spec.prefix}_worker{i}.log"))
        self._live.append(load)
        return load

    def metadata(self) -> dict[str, Any]:
        return {"python_executable": self.python, "target_python": self.app.app_python or self.python}

    def close(self) -> None:
        """The targets and Locust runs; the services stay up until the run ends (run_cmd stops them
        and keeps their logs)."""
        for item in reversed(self._live):
            if isinstance(item, LocalTarget):
                procs.kill_tree(item.proc)
            else:
                item.kill()
        self._live.clear()
