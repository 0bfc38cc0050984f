"""The lag of this Locust process's own event loop: how late a 20 ms gevent sleep wakes up.

CPU alone misses a starved load generator: beside a CPU-hungry process, Locust's CPU use stays
low while its loop waits for the core, requests leave late and the target looks slower than it
is. A greenlet that sleeps TICK_S and notes how much later it woke sees both that and a Locust
busy at its own limit. The samples go into an HDR histogram (microseconds, the locustfile's
new_histogram(), the latencies' settings), which a worker ships to its master as it ships the
latencies.
"""

from __future__ import annotations

import time

import gevent
from hdrh.histogram import HdrHistogram

TICK_S = 0.02


class LoopLag:
    def __init__(self, hist: HdrHistogram) -> None:
        self.hist = hist
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            before = time.perf_counter()
            gevent.sleep(TICK_S)
            late_s = time.perf_counter() - before - TICK_S
            self.hist.record_value(max(1, round(late_s * 1e6)))
