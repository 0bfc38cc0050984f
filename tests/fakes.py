"""A fake executor for fast tests of the matrix, resume and failure paths (hyperfine's mock
executor): a real stdlib HTTP server stands in for the target, and the 'Locust' writes a stats
CSV in Locust's own format with figures derived from the cell."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.cells import ServerConfig
from bench.loadspec import LoadSpec

LOCUST_COLUMNS = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time",
                  "Average Response Time", "Min Response Time", "Max Response Time",
                  "Average Content Size", "Requests/s", "Failures/s", "50%", "66%", "75%", "80%",
                  "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]


def write_locust_stats(path: Path, requests: int, rps: float, p50: float) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LOCUST_COLUMNS)
        row = [requests, 0, p50, p50, 1, p50 * 3, 12, rps, 0, p50, p50, p50, p50,
               p50 * 2, p50 * 2, p50 * 2, p50 * 3, p50 * 3, p50 * 3, p50 * 3]
        w.writerow(["GET", "/x", *row])
        w.writerow(["", "Aggregated", *row])


class FakeTarget:
    managed = True

    def __init__(self, cfg: ServerConfig, affinity: list[int],
                 on_stop: Callable[[FakeTarget], None] = lambda target: None) -> None:
        self.on_stop = on_stop
        info = {"cpu_affinity": affinity, "threadpool_tokens": cfg.threadpool_tokens,
                "server": cfg.server, "workers": cfg.workers}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(info if self.path == "/info" else {"ok": True}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.dead = False

    def alive(self) -> bool:
        return not self.dead

    def pids(self) -> list[int]:
        return []

    def log_tail(self, lines: int = 20) -> str:
        return "fake target log"

    def save_log(self, dest: Path) -> None:
        dest.write_text("fake target log\n")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.on_stop(self)


@dataclass
class FakeLoad:
    code: int = 0

    def pids(self) -> list[int]:
        return []

    def poll(self) -> int | None:
        return self.code

    def wait(self, timeout: float) -> int:
        return self.code

    def kill(self) -> None:
        pass


@dataclass
class FakeBackend:
    name: str = "fake"
    fail_server: str | None = None  # start_target fails for this server name
    wrong_affinity: bool = False
    die_on_path: str | None = None  # the target 'dies' during the load of this path
    interrupt_after: int | None = None  # raise KeyboardInterrupt at this measured load
    no_aggregated_on_path: str | None = None  # a stats CSV without Locust's Aggregated row
    bad_hdr_on_path: str | None = None  # a measure_result.json whose histogram does not decode
    starts: list[ServerConfig] = field(default_factory=list)
    loads: list[LoadSpec] = field(default_factory=list)
    live: list[FakeTarget] = field(default_factory=list)
    closed: bool = False

    def start_target(self, cfg: ServerConfig, stats_dir: Path) -> FakeTarget:
        from bench.backends.base import TargetError
        from bench.cpuset import parse

        self.starts.append(cfg)
        if cfg.server == self.fail_server:
            raise TargetError(f"target exited before answering: cannot start {cfg.server}")
        affinity = [7] if self.wrong_affinity else sorted(parse(cfg.target_cpuset))
        target = FakeTarget(cfg, affinity, on_stop=self.live.remove)
        self.live.append(target)
        return target

    def start_load(self, spec: LoadSpec, out_dir: Path) -> FakeLoad:
        self.loads.append(spec)
        measured = [s for s in self.loads if s.phase == "measure"]
        if spec.phase == "measure" and self.interrupt_after == len(measured):
            raise KeyboardInterrupt
        if spec.path.split("?")[0] == self.die_on_path:
            self.live[-1].dead = True
        (out_dir / f"{spec.phase}_locust.log").write_text("fake locust\n")
        write_locust_stats(out_dir / f"{spec.phase}_stats.csv", requests=spec.users * 100,
                           rps=spec.users * 10.0, p50=float(spec.users))
        path = spec.path.split("?")[0]
        if path == self.no_aggregated_on_path:
            (out_dir / f"{spec.phase}_stats.csv").write_text(",".join(LOCUST_COLUMNS) + "\n")
        if path == self.bad_hdr_on_path and spec.phase == "measure":
            (out_dir / "measure_result.json").write_text('{"hdr": "not-a-histogram", "count": 3}')
        return FakeLoad()

    def metadata(self) -> dict[str, Any]:
        return {"fake": True}

    def close(self) -> None:
        for target in list(self.live):
            target.stop()
        self.closed = True
