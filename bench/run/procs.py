"""Processes the runner starts: pinned, in their own session, always killed on the way out."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil


def pinned(argv: list[str], cpus: str) -> list[str]:
    """Prefix taskset so the process and everything it forks (workers) inherit the CPU set."""
    return ["taskset", "-c", cpus, *argv] if shutil.which("taskset") else argv


def spawn(argv: list[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        # a new session so one killpg reaches uvicorn's or gunicorn's workers and Locust's children
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)


def kill_tree(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the session, wait up to `grace`, then SIGKILL whatever is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    # workers can outlive their master briefly; the session id still finds them
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)


def tree_pids(pid: int) -> list[int]:
    try:
        root = psutil.Process(pid)
        return [pid, *(c.pid for c in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def own_pids(pids: list[int]) -> set[int]:
    """Each process's pid as it sees itself: inside a container that is its pid in the container's
    namespace (the last NSpid field), which is what the target's workers write in their file names."""
    return {own for own in map(own_pid, pids) if own}


def own_pid(pid: int) -> int:
    """One host pid's pid as the process sees itself (own_pids); 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
        return pid
    except (OSError, ValueError):
        return 0


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def connect_host(bind: str) -> str:
    """Where the load goes for a target bound to `bind`: a wildcard is reached on loopback."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind, bind)


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def free_url(bind: str, port: int) -> str:
    """The URL the load goes to, for every backend; TargetError when something already answers
    there, since that other server would be measured instead of ours."""
    from bench.errors import TargetError

    host = connect_host(bind)
    try:
        taken = port_in_use(host, port)
    except OSError as exc:  # e.g. ::1 on a host without IPv6
        raise TargetError(f"bind {bind}: cannot reach {host} ({exc.strerror or exc})") from None
    if taken:
        raise TargetError(f"port {port} is already in use: stop what listens there or set port")
    return url_for(host, port)


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx is the endpoint's answer, to be compared with its expect_status


_OPENER = urllib.request.build_opener(_NoRedirect)


def request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of one request, whatever its status; OSError when nothing answers."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def wait_ready(url: str, alive: Callable[[], bool], deadline_s: float,
               clock: Callable[[], float] = time.monotonic) -> None:
    """Poll url until it answers 200; raise RuntimeError if the process dies or time runs out."""
    end = clock() + deadline_s
    while clock() < end:
        if not alive():
            raise RuntimeError("exited before answering")
        try:
            get(url, timeout=1.0)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {deadline_s:.0f} s")


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
