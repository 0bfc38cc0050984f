"""What the agent costs: the built-in app's no-op endpoints under Uvicorn bare (`uvicorn
app.main:app`), wrapped by the agent (`benchagent.asgi:app`, as every run serves them), and wrapped
with the in-worker sampler on (BENCH_STATS_DIR, as in a measured cell); same flags, target on one
CPU, wrk on another, interleaved rounds. Needs wrk (Debian's package) and two CPUs.

    .venv/bin/python scripts/agent_cost.py [--rounds 3] [--seconds 6] [--connections 20]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORT = 18790
VARIANTS = {"bare": "app.main:app", "agent": "benchagent.asgi:app", "agent+sampler": "benchagent.asgi:app"}
PATHS = ("/async/noop", "/def/noop")


def serve(variant: str, stats: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_APP": "app.main:app", "BENCH_THREADPOOL_TOKENS": "40",
           "PYTHONPATH": str(ROOT)}
    env.pop("BENCH_STATS_DIR", None)
    if variant == "agent+sampler":
        env["BENCH_STATS_DIR"] = str(stats)
    argv = ["taskset", "-c", "0", sys.executable, "-m", "uvicorn", VARIANTS[variant], "--port", str(PORT),
            "--no-access-log", "--log-level", "warning", "--backlog", "2048"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/async/noop", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{variant}: the server did not answer")


def wrk(path: str, seconds: int, connections: int) -> float:
    argv = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{PORT}{path}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("agent_cost: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    got: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as stats:
        for _ in range(args.rounds):
            for variant in VARIANTS:
                proc = serve(variant, Path(stats))
                try:
                    for path in PATHS:
                        wrk(path, 1, args.connections)  # warm up
                        got.setdefault((variant, path), []).append(wrk(path, args.seconds, args.connections))
                finally:
                    proc.kill()
                    proc.wait()
    print(f"req/s, median of {args.rounds} interleaved rounds [min-max] (wrk -t1 -c{args.connections} "
          f"-d{args.seconds}s, uvicorn on CPU 0, wrk on CPU 1)")
    print(f"{'variant':<15}" + "".join(f"{p:>34}" for p in PATHS))
    for variant in VARIANTS:
        cells = []
        for path in PATHS:
            rps = statistics.median(got[variant, path])
            base = statistics.median(got["bare", path])
            spread = f"[{min(got[variant, path]):.0f}-{max(got[variant, path]):.0f}]"
            cells.append(f"{rps:>7.0f} {spread} ({rps / base:5.3f}x)")
        print(f"{variant:<15}" + "".join(f"{c:>34}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
