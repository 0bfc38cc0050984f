"""CPU sets as Linux writes them ("0", "0-3", "0,2-3"), and the host's own."""

from __future__ import annotations

import os

from bench.errors import BadInput
from benchagent.pinning import format_cpus

# Linux's own ceiling (NR_CPUS up to 8192): a larger number is a typo, and "0-999999999" must not
# allocate a billion-element set before the host check refuses it.
MAX_CPUS = 8192


def parse(text: str) -> frozenset[int]:
    cpus: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            raise BadInput(f"cpuset {text!r}: empty element")
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise BadInput(f"cpuset {text!r}: expected CPU numbers like 0, 0-3 or 0,2-3")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise BadInput(f"cpuset {text!r}: range {part} runs backwards")
        if last >= MAX_CPUS:
            raise BadInput(f"cpuset {text!r}: CPU {last} is beyond any host (at most {MAX_CPUS - 1})")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def format(cpus: frozenset[int] | set[int] | list[int]) -> str:
    """Canonical text: sorted, ranges collapsed, so '1,0' and '0-1' compare equal as strings (one
    implementation, shared with the target's workers: benchagent/pinning.py is stdlib only)."""
    return format_cpus(cpus)


def host_cpus() -> frozenset[int]:
    return frozenset(os.sched_getaffinity(0))


def split(cpus: frozenset[int] | set[int] | list[int]) -> tuple[str, str]:
    """The automatic placement for a host with these CPUs: (target's set, Locust's set).

    Locust needs about two cores per target core to keep up with a no-op endpoint (measured on a
    16-vCPU Xeon: one FastHttpUser process peaks near 4,300 req/s per core, one Uvicorn worker
    serves async no-op at 8,300 req/s per core), so the target gets a third of the CPUs (rounded
    down, at least one) and Locust the rest. On two or three CPUs that is one for the target;
    on one CPU both share it (the plan then warns: the report cannot tell them apart).
    """
    ordered = sorted(set(cpus))
    if len(ordered) == 1:
        return format(ordered), format(ordered)
    n_target = max(1, len(ordered) // 3)
    return format(ordered[:n_target]), format(ordered[n_target:])


def resolve_pair(target: str, loadgen: str, host: list[int] | frozenset[int]) -> tuple[str, str]:
    """The two CPU sets of a cell as text, from what the scenario says: "all" is every CPU of the
    host (a target or a Locust alone on its VM); "auto" beside "auto" is the automatic split; "auto"
    beside a given set is the CPUs that set leaves (all of them when it leaves none)."""
    every = frozenset(host)
    if target == loadgen == "auto":
        return split(every)
    t = None if target == "auto" else every if target == "all" else parse(target)
    lg = None if loadgen == "auto" else every if loadgen == "all" else parse(loadgen)
    t = t if t is not None else (every - lg) or every  # lg is given here: both auto returned above
    lg = lg if lg is not None else (every - t) or every
    return format(t), format(lg)
