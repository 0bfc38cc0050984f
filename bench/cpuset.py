"""CPU sets as Linux writes them ("0", "0-3", "0,2-3"), and the host's own."""

from __future__ import annotations

import os

from bench.errors import BadInput

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
    """Canonical text: sorted, ranges collapsed, so '1,0' and '0-1' compare equal as strings."""
    nums = sorted(set(cpus))
    out: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ",".join(out)


def host_cpus() -> frozenset[int]:
    return frozenset(os.sched_getaffinity(0))


def split_host() -> tuple[str, str]:
    """Default placement: the target on the first half of the CPUs, Locust on the rest.

    On one CPU both share it (the report then can't separate them; the plan warns).
    """
    cpus = sorted(host_cpus())
    if len(cpus) == 1:
        return format(cpus), format(cpus)
    half = len(cpus) // 2
    return format(cpus[:half]), format(cpus[half:])
