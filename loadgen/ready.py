"""Wait for the target before loading it: `docker compose up` starts Locust beside a target that
is still starting (Docker 20.10's healthchecks cannot poll fast at start and slowly after, and a
check every second would run inside the measured target's CPUs), so the first requests would fail.

BENCH_WAIT_READY_S (0: do not wait; the runner waits itself before it starts Locust). Stdlib only.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

POLL_S = 0.25


def wait_ready(host: str, deadline_s: float, poll_s: float = POLL_S) -> None:
    """Return once GET {host}/__bench/healthz (the agent's, so any app) answers 200; SystemExit with
    one line after deadline_s."""
    url = f"{host.rstrip('/')}/__bench/healthz"
    end = time.monotonic() + deadline_s
    last = "no answer"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except (OSError, urllib.error.URLError) as exc:  # refused while the server starts
            last = str(exc)
        if time.monotonic() >= end:
            raise SystemExit(f"bench: {url} not ready after {deadline_s:.0f} s ({last})")
        time.sleep(poll_s)
