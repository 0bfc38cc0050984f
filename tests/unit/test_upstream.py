"""The upstream stub (upstream/server.py): its argv, then the real server in a subprocess on loopback."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import pytest

from upstream.server import command

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start(argv: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start the stub and wait (5 s at most) for its one `listening` line on stderr."""
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], 5.0)
    line = proc.stderr.readline().decode() if ready else ""
    if not line.startswith("upstream: listening on "):
        proc.kill()
        pytest.fail(f"stub did not start: {line!r} {proc.communicate(timeout=5)}")
    return proc, line


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=5)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = free_port()
    proc, line = start(command(sys.executable, HOST, port))
    try:
        assert line == f"upstream: listening on http://{HOST}:{port}\n"
        yield port
    finally:
        stop(proc)


def get(port: int, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def read_response(f: BinaryIO) -> tuple[int, bytes]:
    """One response from a raw socket's buffered reader: (status, body)."""
    status = int(f.readline().split()[1])
    length = 0
    while (line := f.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, f.read(length)


def test_command_argv() -> None:
    assert command("/usr/bin/python3", "0.0.0.0", 8100) == [
        "/usr/bin/python3", "-m", "upstream.server", "--bind", "0.0.0.0", "--port", "8100",
    ]  # fmt: skip


def test_healthz(port: int) -> None:
    status, headers, body = get(port, "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    status, headers, body = get(port, "/healthz", "HEAD")
    assert (status, headers["content-length"], body) == (200, "15", b"")


@pytest.mark.parametrize("ms", [0, 50])
def test_delay(port: int, ms: int) -> None:
    t0 = time.monotonic()
    status, headers, body = get(port, f"/delay?ms={ms}")
    elapsed = time.monotonic() - t0
    assert (status, body) == (200, b'{"ok":true,"ms":%d}' % ms)
    assert json.loads(body) == {"ok": True, "ms": ms}
    assert headers["content-length"] == str(len(body))
    assert ms / 1000 - 0.005 <= elapsed < ms / 1000 + 1.0


@pytest.mark.parametrize("query", ["ms=-1", "ms=abc", "ms=60001", "ms=1.5", "ms=", "", "x=5"])
def test_delay_bad_ms_is_400(port: int, query: str) -> None:
    status, _, body = get(port, f"/delay?{query}")
    assert status == 400
    assert "error" in json.loads(body)


def test_a_client_gone_during_the_longest_delay_leaves_the_stub_answering(port: int) -> None:
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(b"GET /delay?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert get(port, "/healthz")[0] == 200  # the pending timer neither blocks nor breaks the stub


def test_unknown_path_is_404_and_other_methods_405(port: int) -> None:
    assert get(port, "/nope")[0] == 404
    status, headers, _ = get(port, "/delay?ms=0", "POST", b"{}")
    assert (status, headers["allow"]) == (405, "GET")
    assert get(port, "/healthz", "DELETE")[0] == 405


def test_keep_alive_reuses_the_socket_and_skips_a_body(port: int) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", "/delay?ms=0")
        assert conn.getresponse().read() == b'{"ok":true,"ms":0}'
        sock = conn.sock
        conn.request("POST", "/healthz", body=b"x" * 1000)  # 405, its body skipped
        resp = conn.getresponse()
        assert (resp.status, json.loads(resp.read())) == (405, {"error": "method not allowed"})
        conn.request("GET", "/delay?ms=1")
        assert conn.getresponse().read() == b'{"ok":true,"ms":1}'
        assert conn.sock is sock
    finally:
        conn.close()


def test_pipelined_requests_answer_in_order_from_split_reads(port: int) -> None:
    reqs = b"".join(b"GET /delay?ms=%d HTTP/1.1\r\nHost: x\r\n\r\n" % ms for ms in (80, 0, 30, 0))
    with socket.create_connection((HOST, port), timeout=5) as s, s.makefile("rb") as f:
        s.sendall(reqs[:7])
        time.sleep(0.02)
        s.sendall(reqs[7:50])
        time.sleep(0.02)
        s.sendall(reqs[50:])
        got = [read_response(f) for _ in range(4)]
    assert got == [(200, b'{"ok":true,"ms":%d}' % ms) for ms in (80, 0, 30, 0)]


@pytest.mark.parametrize(
    ("request_head", "closes"),
    [
        (b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", True),
        (b"GET /healthz HTTP/1.0\r\n\r\n", True),
        (b"GET /healthz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", False),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ],
)
def test_connection_close_and_http10(port: int, request_head: bytes, closes: bool) -> None:
    with socket.create_connection((HOST, port), timeout=5) as s, s.makefile("rb") as f:
        s.sendall(request_head)
        assert read_response(f) == (200, b'{"status":"ok"}')
        s.settimeout(0.2)
        try:
            closed = s.recv(1) == b""
        except TimeoutError:
            closed = False
        assert closed is closes


@pytest.mark.parametrize("line", [b"GARBAGE", b"GET /healthz", b"GET /healthz HTTP/2.0", b"GET healthz HTTP/1.1"])
def test_malformed_request_line_is_400_and_closes(port: int, line: bytes) -> None:
    with socket.create_connection((HOST, port), timeout=5) as s, s.makefile("rb") as f:
        s.sendall(line + b"\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n")
        assert read_response(f)[0] == 400
        assert f.read() == b""  # closed, the next request unanswered


def test_concurrent_delays_overlap(port: int) -> None:
    n, ms = 50, 200
    with ThreadPoolExecutor(n) as pool:
        t0 = time.monotonic()
        statuses = list(pool.map(lambda _: get(port, f"/delay?ms={ms}")[0], range(n)))
        total = time.monotonic() - t0
    assert statuses == [200] * n
    assert ms / 1000 <= total < 2.0  # serial would be n * 0.2 s = 10 s


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--port", "0"], {}),
        (["--port", "65536"], {}),
        (["--port", "http"], {}),
        (["--bind", "not-an-ip"], {}),
        (["--bind", "localhost"], {}),
        ([], {"UPSTREAM_PORT": "abc"}),
        ([], {"UPSTREAM_BIND": "0.0.0.0.0"}),
    ],
)
def test_bad_settings_exit_2_with_one_line(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "upstream.server", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, timeout=10,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("upstream: ")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_env_settings_and_clean_stop(sig: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "UPSTREAM_BIND": HOST, "UPSTREAM_PORT": str(port)}
    proc, line = start([sys.executable, "-m", "upstream.server"], env)
    try:
        assert line == f"upstream: listening on http://{HOST}:{port}\n"
        with socket.create_connection((HOST, port), timeout=5) as s:  # an open keep-alive, a pending delay
            s.sendall(b"GET /delay?ms=30000 HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.05)
            t0 = time.monotonic()
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=5)
        assert time.monotonic() - t0 < 1.0
        assert (proc.returncode, out, err) == (0, b"", b"")
    finally:
        stop(proc)
