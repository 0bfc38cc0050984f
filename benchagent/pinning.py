"""Where each worker runs: BENCH_WORKER_PINNING = set | core, applied inside the worker at start-up.

`set` (the default) leaves every worker free to float over the target's CPU set (what taskset or
the container's cpuset gave the server). `core` pins worker i to the i-th CPU of that set (round
again when there are more workers than CPUs). Pinning changes the answer: a def handler's GIL
hand-offs between threads cost more when the threads may run on other cores (38 ms of CPU per
1,000,000-step request pinned, 54 ms floating over 8 cores, measured on a 16-vCPU Xeon).

No server tells a worker its index, so a worker claims the lowest free slot in BENCH_PIN_DIR under
a lock: slot-<i> holds its owner's pid, and a slot whose owner is gone (a worker its server
replaced) is free again. Each worker then writes affinity-<pid>.json
with the CPUs its threads run on, which /info reports for every live worker and the runner checks.

Stdlib only: the runner imports `expected` and `describe` without FastAPI.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

MODES = ("set", "core")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def expected(cpus: list[int], workers: int, mode: str) -> list[list[int]]:
    """Each worker's CPUs, in slot order, for `workers` workers on the CPU set `cpus`."""
    ordered = sorted(set(cpus))
    if mode == "core":
        return [[ordered[i % len(ordered)]] for i in range(workers)]
    return [ordered for _ in range(workers)]


def describe(per_worker: list[list[int]]) -> str:
    """One text for summary.csv: the set when every worker shares it, else each worker's CPUs in
    slot order joined by '/' (e.g. "0/1/2/3")."""
    if not per_worker:
        return ""
    texts = [format_cpus(cpus) for cpus in per_worker]
    return texts[0] if len(set(texts)) == 1 else "/".join(texts)


def format_cpus(cpus: Iterable[int]) -> str:
    """Canonical text of a CPU set as Linux writes it: sorted, ranges collapsed ("0-3,6"), so
    "1,0" and "0-1" compare equal as strings (bench.scenario.cpuset.format is this one)."""
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


@contextlib.contextmanager
def _locked(pin_dir: Path) -> Iterator[None]:
    with (pin_dir / "pin.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def claim_slot(pin_dir: Path, pid: int, alive: Callable[[int], bool] = pid_alive) -> int:
    """The lowest slot no live process holds, now held by `pid`."""
    pin_dir.mkdir(parents=True, exist_ok=True)
    with _locked(pin_dir):
        slot = 0
        while True:
            path = pin_dir / f"slot-{slot}"
            try:
                owner = int(path.read_text() or 0)
            except (FileNotFoundError, ValueError):
                owner = 0
            if owner <= 0 or owner == pid or not alive(owner):  # (os.kill(0, 0) would ask the group)
                path.write_text(str(pid))
                return slot
            slot += 1


def apply(mode: str, pin_dir: Path) -> list[int]:
    """Pin this process as `mode` says and record where it runs; returns its CPUs."""
    pid = os.getpid()
    slot = claim_slot(pin_dir, pid)
    if mode == "core":
        cpus = sorted(os.sched_getaffinity(0))  # the set it inherited: taskset's or the cpuset's
        for tid in _threads():
            # per thread on Linux: the threads the server started before the app (Uvicorn's
            # supervisor pong thread) need it too; threads started later inherit it
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(tid, {cpus[slot % len(cpus)]})
    mine = _all_threads_affinity()
    tmp = pin_dir / f".affinity-{pid}.tmp"
    tmp.write_text(json.dumps({"pid": pid, "slot": slot, "cpus": mine}))
    tmp.replace(pin_dir / f"affinity-{pid}.json")
    return mine


def _threads() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: this thread at least
        return [0]


def _all_threads_affinity() -> list[int]:
    """Every CPU any thread of this process may run on: what the runner checks is the process."""
    cpus: set[int] = set()
    for tid in _threads():
        with contextlib.suppress(ProcessLookupError):
            cpus |= os.sched_getaffinity(tid)
    return sorted(cpus)


def workers(pin_dir: Path, alive: Callable[[int], bool] = pid_alive) -> list[dict[str, object]]:
    """Every live worker's record, in slot order (what /info reports as worker_affinity)."""
    out = []
    for path in pin_dir.glob("affinity-*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and int(record.get("pid", 0)) > 0 and alive(int(record["pid"])):
            out.append(record)
    return sorted(out, key=lambda r: (int(r["slot"]), int(r["pid"])))
