"""The capacity search: the highest offered rate an endpoint sustains within a p99 objective.

Pure: settings and one measurement per step in, a verdict per step and a result out; the caller
(bench/commands/capacity.py) runs each step as an open-loop cell. The search is a geometric ramp
(x2 from `start_rps`), then a bisection between the last rate that passed and the first that
failed until they are within TOLERANCE of each other. A step passes when its p99 is within the
objective, its failure ratio within `max_failure_ratio`, and it achieved at least ACHIEVED_SHARE
of the rate it offered, less the requests still in flight at the window's end (a target that
falls behind builds a queue that a short window may not yet show in its p99). It stops at once
on a step that did not run (a dead target, a Locust
error), on errors beyond `max_failure_ratio`, on a failing step whose load generator was
saturated (its verdict would be Locust's), at `max_rps`, or when the next step would pass the
time bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.scenario.sections import (  # noqa: F401  (the search's settings, declared with the scenario)
    ACHIEVED_SHARE,
    FACTOR,
    STEP_OVERHEAD_S,
    TOLERANCE,
    SearchSettings,
    settings_from,
)


@dataclass(frozen=True)
class StepFigures:
    """What one step measured (from its summary row)."""

    rate: float
    ran: bool  # False: the step failed (its row's status), `error` says why
    error: str = ""
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    offered_rps: float = 0.0
    achieved_rps: float = 0.0
    failure_ratio: float = 0.0
    saturated: bool = False  # the load generator could not keep up
    # how late Locust itself sent (p99 of its sends' lateness, or its loop's mean lag) when that,
    # not its CPU, flagged it; None when unknown or when Locust was at its CPU limit
    own_delay_ms: float | None = None


def in_flight_rps(settings: SearchSettings, o: StepFigures) -> float:
    """The achieved rate a step lacks for the requests still in flight when its window closes
    (sent, not yet answered, so not counted): by Little's law offered x latency of them, over the
    window. The latency is the median, bounded by the objective, so that a queue that grows (and
    lengthens the median) cannot excuse itself. At 40 req/s, 50 ms and a 2 s window that is 1 req/s,
    2.5 %: the 99 % share alone failed such steps on the one request left in flight."""
    return o.offered_rps * min(o.p50_ms, settings.slo_p99_ms) / 1000 / settings.step_s


def judge(settings: SearchSettings, o: StepFigures) -> tuple[str, str]:
    """("pass" | "fail" | "stop", why) for one step."""
    if not o.ran:
        return "stop", f"the step failed: {o.error}"
    if o.failure_ratio > settings.max_failure_ratio:
        return "stop", (f"errors: {100 * o.failure_ratio:.2f} % of requests failed "
                        f"(max_failure_ratio {settings.max_failure_ratio:g})")
    misses = []
    if o.p99_ms > settings.slo_p99_ms:
        misses.append(f"p99 {o.p99_ms:.1f} ms > {settings.slo_p99_ms:g} ms")
    if o.achieved_rps < ACHIEVED_SHARE * o.offered_rps - in_flight_rps(settings, o):
        misses.append(f"achieved {o.achieved_rps:.1f} of {o.offered_rps:.1f} req/s offered "
                      f"(under {100 * ACHIEVED_SHARE:g} %)")
    if not misses:
        return "pass", f"p99 {o.p99_ms:.1f} ms within {settings.slo_p99_ms:g} ms"
    if o.saturated and o.own_delay_ms is not None and o.p99_ms - o.own_delay_ms > settings.slo_p99_ms:
        # Locust sent late, but by less than the miss: on a busy 2-core VM a step far over the
        # def threadpool's limit (p99 231 ms against 150) was flagged by 20-odd ms of late sends
        # and stopped the search as a "floor" that the target's own queue had set
        return "fail", "; ".join(misses) + (f" (Locust's own delay, {o.own_delay_ms:.1f} ms, does not "
                                            "explain it)")
    if o.saturated:
        return "stop", "load generator saturated (" + "; ".join(misses) + "): the capacity found is a floor"
    return "fail", "; ".join(misses)


@dataclass(frozen=True)
class Step:
    step: int
    phase: str  # up | down | bisect
    outcome: StepFigures
    verdict: str
    reason: str


@dataclass(frozen=True)
class Result:
    capacity_rps: float  # the highest rate that passed; 0.0 when none did
    at_capacity: StepFigures | None
    first_fail: Step | None  # the first step that did not pass
    stopped_by: str  # converged | max_rps | time bound | below 1 req/s | the stopping step's reason
    steps: list[Step]


def search(settings: SearchSettings, measure: Callable[[float], StepFigures], clock: Callable[[], float],
           on_step: Callable[[Step], None] = lambda step: None) -> Result:
    """Run the search, calling measure(rate) once per step and on_step with its verdict."""
    t0 = clock()
    steps: list[Step] = []
    passed: StepFigures | None = None
    failed_rate: float | None = None
    rate, phase = min(settings.start_rps, settings.max_rps), "up"
    while True:
        if steps and clock() - t0 + settings.step_cost_s() > settings.max_search_s:
            stopped = "time bound"
            break
        outcome = measure(rate)
        verdict, reason = judge(settings, outcome)
        steps.append(Step(len(steps) + 1, phase, outcome, verdict, reason))
        on_step(steps[-1])
        if verdict == "stop":
            stopped = reason
            break
        if verdict == "pass":
            passed = outcome
        else:
            failed_rate = rate
        if failed_rate is None:  # still ramping up
            if rate >= settings.max_rps:
                stopped = "max_rps"
                break
            rate = min(rate * FACTOR, settings.max_rps)
            continue
        if passed is None:  # nothing passed yet: ramp down
            if rate / FACTOR < 1.0:
                stopped = "below 1 req/s"
                break
            rate, phase = rate / FACTOR, "down"
            continue
        if (failed_rate - passed.rate) / passed.rate <= TOLERANCE:
            stopped = "converged"
            break
        rate, phase = (passed.rate + failed_rate) / 2, "bisect"
    first_fail = next((s for s in steps if s.verdict != "pass"), None)
    return Result(passed.rate if passed else 0.0, passed, first_fail, stopped, steps)
