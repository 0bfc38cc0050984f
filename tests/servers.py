"""Real target processes for the tests: a free port, `python -m benchagent.serve` started and stopped
as one process group, and urllib/http.client to ask it."""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.scenario.keys import by_hand_env

READY_S = 30.0  # a cold start on a busy 2-core box takes a few seconds; this is only a deadline


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to, drawn at random below the kernel's ephemeral range (32768 and up
    by default): no outgoing connection (Locust's, say) can take it between this choice and the
    server's bind, and two suites at once rarely draw the same. OSError if `host` cannot be bound."""
    for _ in range(200):
        port = random.randint(20_000, 32_000)
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return port
    raise OSError(f"no free port on {host} in 20000-32000")


def has_ipv6_loopback() -> bool:
    try:
        free_port("::1")
    except OSError:
        return False
    return True


def http_get(url: str, timeout: float = 30.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def get(self, path: str, timeout: float = 30.0) -> tuple[int, Any]:
        return http_get(self.url + path, timeout)

    def request(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        """status, headers (lower-case names) and the raw body, which http.client reads as sent."""
        conn = http.client.HTTPConnection(self.url.removeprefix("http://"), timeout=30)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


def start_server(env: dict[str, str], log: Path, preexec: Callable[[], None] | None = None,
                 host: str = "127.0.0.1") -> Server:
    port = free_port(host)
    # every setting as .env.example has it (the launcher has no defaults), then the test's own
    full = {**os.environ, **by_hand_env(), "BENCH_PORT": str(port), "BENCH_BIND": host, **env}
    with log.open("wb") as fh:
        # own session: the whole tree (uvicorn/gunicorn master + workers) is one group to kill
        proc = subprocess.Popen([sys.executable, "-m", "benchagent.serve"], cwd=ROOT, env=full, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec)
    server = Server(proc, f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}", log)
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if server.get("/healthz", timeout=2)[0] == 200:
                return server
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server not ready in {READY_S} s: {log.read_text()[-2000:]}")


def stop_server(server: Server) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(10)
    # whatever is left of the group (a worker that outlived its master, a hung master) goes now
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
