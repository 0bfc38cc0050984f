"""loadgen/locustfile.py without a load: where it is found, how it loads (from the repo root and
in the image's layout), and its pieces that run without Locust (report resets, wait_ready)."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.run.loadspec import LOCUSTFILE
from tests.servers import ROOT, free_port


def locust(argv: list[str]) -> list[str]:
    # as the local backend runs it: this interpreter's Locust
    return [sys.executable, "-m", "locust", *argv[1:]]


WINDOW_CHECK = """
import sys
sys.path.insert(0, "loadgen")
from locust.stats import RequestStats
from window import Window

cleared = []
w = Window(0.0, 0.0, on_reset=lambda: cleared.append(1))
stats = RequestStats()
w.pending = {"w1"}
data = {"stats": ["x"], "errors": {"e": 1}, "stats_total": {"num_requests": 5}, "bench_hdr": "h"}
assert not w.admit("w1", data, stats)
assert data["stats"] == [] and data["errors"] == {} and data["stats_total"]["num_requests"] == 0
kept = {"stats": ["x"], "errors": {}, "stats_total": {"num_requests": 5}}
assert w.admit("w2", kept, stats) and kept["stats"] == ["x"]
assert w.times() == {}


class Msg:
    node_id = "w1"


w._acked(environment=None, msg=Msg())  # the worker has reset: its reports count again
assert w.pending == set() and w.admit("w1", kept, stats)
w.t_begin, w.t_start, w.t_stop = 1.0, 3.0, 6.0
assert w.times() == {"t_begin": 1.0, "t_start": 3.0, "t_stop": 6.0}
print("ok")
"""


def test_a_report_sent_before_a_workers_reset_is_dropped_whole() -> None:
    # in a subprocess: importing Locust monkey-patches the interpreter for gevent
    proc = subprocess.run([sys.executable, "-c", WINDOW_CHECK], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_locustfile_path() -> None:
    assert (ROOT / LOCUSTFILE).is_file()


def locust_list(locustfile: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`locust -f LOCUSTFILE --list`: loads the locustfile as a run would, prints its User classes."""
    # no PYTHONPATH: only Locust's own sys.path handling may find the modules beside the locustfile
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "locust", "-f", str(locustfile), "--list"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_locustfile_loads_from_the_repo_root() -> None:
    # as the local backend runs it: an absolute path, the repository root as the working directory
    proc = locust_list(ROOT / "loadgen" / "locustfile.py", ROOT)
    assert proc.returncode == 0 and "EndpointUser" in proc.stdout, proc.stderr[-3000:]


def _dockerignore_lets_through(rel: str) -> bool:
    # the last pattern that matches decides; the file has no `**`, so fnmatch's `*` will do
    keep = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if fnmatch.fnmatch(rel, line.removeprefix("!").rstrip("/")):
            keep = line.startswith("!")
    return keep


def test_locustfile_loads_in_the_image_layout(tmp_path: Path) -> None:
    # what loadgen/Dockerfile copies to /loadgen/, past .dockerignore, run from its WORKDIR /out:
    # the locustfile's imports from beside it (hdr_config) must be among the copied files
    copies = [line.split()[1:] for line in (ROOT / "loadgen" / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY loadgen/") and not line.startswith("COPY loadgen/requirements")]
    assert copies == [["loadgen/*.py", "/loadgen/"]], copies
    image = tmp_path / "loadgen"
    image.mkdir()
    for path in sorted(ROOT.glob(copies[0][0])):
        rel = path.relative_to(ROOT).as_posix()
        assert _dockerignore_lets_through(rel), f".dockerignore keeps {rel} out of the build context"
        shutil.copy(path, image / path.name)
    assert {"locustfile.py", "hdr_config.py", "ready.py", "window.py", "lag.py"} <= {p.name for p in image.iterdir()}
    (tmp_path / "out").mkdir()
    proc = locust_list(image / "locustfile.py", tmp_path / "out")
    assert proc.returncode == 0 and "EndpointUser" in proc.stdout, proc.stderr[-3000:]


def test_wait_ready_waits_for_a_server_that_starts_late_and_gives_up_with_one_line() -> None:
    # by hand (`docker compose up`) Locust starts beside a target still starting: loadgen/ready.py
    import http.server
    import threading

    from loadgen.ready import wait_ready

    port = free_port()
    with pytest.raises(SystemExit, match=r"^bench: http://127\.0\.0\.1:\d+/__bench/healthz not ready after 0 s"):
        wait_ready(f"http://127.0.0.1:{port}", 0.3, poll_s=0.05)

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/__bench/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    def serve_later() -> None:
        time.sleep(0.5)
        server = http.server.HTTPServer(("127.0.0.1", port), Healthz)
        started.set()
        server.handle_request()
        server.server_close()

    started = threading.Event()
    thread = threading.Thread(target=serve_later, daemon=True)
    thread.start()
    wait_ready(f"http://127.0.0.1:{port}/", 30, poll_s=0.05)  # returns only on a 200 from /__bench/healthz
    assert started.is_set()
    thread.join(10)
