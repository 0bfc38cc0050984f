"""Open-loop load: requests leave at their intended times whatever the target does, and each
latency counts from its intended send time (no coordinated omission).

A closed loop (N users, each waiting for its answer before sending again) slows down with the
target, so it never sees the queue real traffic would build. Here a schedule fixes when each
request is due (constant spacing or Poisson arrivals at `rate`), one greenlet per request sends
it, and its latency runs from the due time: a sender that woke late, or a request that waited,
pays that wait in its latency (wrk2's correction, k6's constant-arrival-rate).

At most `max_inflight` requests are outstanding at once (the connections a client has); a
request due while all of them are busy is not sent and is counted as dropped, never skipped
silently. A send more than LATE_S after its due time is counted as late (the load generator
could not keep the schedule), and every send's lateness goes into a histogram.

Stdlib and gevent only, with the clock, sleep and spawn injected, so the schedule and the
accounting are tested with a fake clock (tests/unit/test_openloop.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

LATE_S = 0.001  # a send more than 1 ms after its due time is late


class Histogram(Protocol):
    def record_value(self, value: int) -> Any: ...
    def reset(self) -> None: ...


def schedule(rate: float, arrivals: str, rng: random.Random | None = None) -> Iterator[float]:
    """Due times in seconds from the start, for ever: every 1/rate for "constant", exponential
    gaps of mean 1/rate for "poisson" (the arrivals of many independent clients)."""
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    if arrivals == "constant":
        k = 0
        while True:  # k / rate, not a running sum: no drift from adding rounded intervals
            yield k / rate
            k += 1
    elif arrivals == "poisson":
        rng = rng or random.Random()
        t = 0.0
        while True:
            yield t
            t += rng.expovariate(rate)
    else:
        raise ValueError(f"arrivals must be 'constant' or 'poisson', got {arrivals!r}")


def split(total: float, parts: int) -> float:
    """Each of `parts` Locust processes sends total / parts: independent Poisson streams add up
    to one of the total rate, constant ones to the same mean rate."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    return total / parts


def latency_ms(due: float, done: float) -> float:
    """A request's latency from its due time (not from when it left): the wait for a late sender
    or a connection is part of what a client would have seen."""
    return max(0.0, done - due) * 1000.0


@dataclass
class Counters:
    """What one process sent since its last reset: the window's accounting."""

    late_hist: Histogram  # every send's lateness, microseconds
    offered: int = 0  # requests due (sent or dropped)
    sent: int = 0
    dropped: int = 0  # due while max_inflight requests were outstanding
    late: int = 0  # sent more than LATE_S after their due time

    def reset(self) -> None:
        self.offered = self.sent = self.dropped = self.late = 0
        self.late_hist.reset()

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTS}

    def add(self, counts: dict[str, int]) -> None:
        """A worker's counts since its last report, into the master's (the histogram travels apart)."""
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + int(counts.get(name, 0)))


COUNTS = ("offered", "sent", "dropped", "late")


@dataclass
class OpenLoop:
    """Drives `send(due)` along a schedule; `send` measures from `due` and reports the request."""

    due_times: Iterator[float]
    send: Callable[[float], None]
    max_inflight: int
    counters: Counters
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    spawn: Callable[..., Any]  # spawn(fn, *args) runs fn(*args) concurrently (gevent.spawn)
    inflight: int = 0
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        self._stopped = True

    def run(self, limit: int | None = None) -> None:
        """Send until stopped (or `limit` due times, for tests)."""
        start = self.clock()
        for n, offset in enumerate(self.due_times):
            if self._stopped or (limit is not None and n >= limit):
                return
            due = start + offset
            wait = due - self.clock()
            if wait > 0:
                self.sleep(wait)
            self.counters.offered += 1
            if self.inflight >= self.max_inflight:
                self.counters.dropped += 1
                continue
            late = self.clock() - due
            self.counters.late_hist.record_value(max(1, round(late * 1e6)))
            if late > LATE_S:
                self.counters.late += 1
            self.counters.sent += 1
            self.inflight += 1
            self.spawn(self._one, due)

    def _one(self, due: float) -> None:
        try:
            self.send(due)
        finally:
            self.inflight -= 1
