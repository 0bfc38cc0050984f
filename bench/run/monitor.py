"""CPU, memory and threads of the target's and Locust's processes, sampled in the background.

The measured window is only known afterwards (Locust reports when spawning
completed), so samples are kept as a time series and cut to the window later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

PidSource = Callable[[], list[int]]


@dataclass(frozen=True)
class Sample:
    t: float
    cpu_s: dict[int, float]  # pid -> user+system seconds so far
    rss_mb: float
    threads: int


@dataclass(frozen=True)
class Usage:
    cpu_pct: float  # 100 = one core busy for the whole window
    max_proc_cpu_pct: float  # the busiest single process
    rss_mb: float  # peak of the summed RSS
    threads: int  # peak of the summed thread counts
    cpu_s: float


def sample(pids: list[int], clock: Callable[[], float] = time.time) -> Sample:
    cpu: dict[int, float] = {}
    rss = 0.0
    threads = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                times = proc.cpu_times()
                cpu[pid] = times.user + times.system
                rss += proc.memory_info().rss / 1e6
                threads += proc.num_threads()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return Sample(clock(), cpu, rss, threads)


def usage(samples: list[Sample], t0: float, t1: float) -> Usage:
    """Usage over [t0, t1] from the samples inside it (pure: tested with made-up samples)."""
    inside = [s for s in samples if t0 <= s.t <= t1]
    if len(inside) < 2:
        # the sampler thread got no CPU for most of the window (the target and Locust saturating
        # every CPU the runner may use: seen for 2.5 s in a row with Docker on 2 CPUs); the nearest
        # samples around the window give the rate over a span a little wider, not nothing
        before = [s for s in samples if s.t < t0][-1:]
        after = [s for s in samples if s.t > t1][:1]
        inside = before + inside + after if before and after else inside
    if len(inside) < 2:
        return Usage(0.0, 0.0, 0.0, 0, 0.0)
    first, last = inside[0], inside[-1]
    span = last.t - first.t
    per_pid: dict[int, float] = {}
    for pid, end in last.cpu_s.items():
        # a process born inside the window counts from zero
        per_pid[pid] = max(0.0, end - first.cpu_s.get(pid, 0.0))
    total = sum(per_pid.values())
    busiest = max(per_pid.values(), default=0.0)
    return Usage(
        cpu_pct=100.0 * total / span,
        max_proc_cpu_pct=100.0 * busiest / span,
        rss_mb=max(s.rss_mb for s in inside),
        threads=max(s.threads for s in inside),
        cpu_s=total,
    )


@dataclass
class Monitor:
    """Samples named groups of processes every `interval` seconds on a daemon thread."""

    sources: dict[str, PidSource]
    interval: float = 0.25
    series: dict[str, list[Sample]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Monitor:
        self.series = {name: [] for name in self.sources}
        self._thread = threading.Thread(target=self._loop, daemon=True, name="bench-monitor")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, source in self.sources.items():
                try:
                    self.series[name].append(sample(source()))
                except Exception:  # a vanished process or container must not kill the run
                    continue
            self._stop.wait(self.interval)

    def usage(self, name: str, t0: float, t1: float) -> Usage:
        return usage(self.series.get(name, []), t0, t1)
