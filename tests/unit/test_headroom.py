"""The many-core arithmetic as pure functions of a host's CPU list: the automatic split, Locust's
"auto" process count, where `worker_pinning` puts each worker, and the load generator's headroom,
its saturation signals and the CPUs a saturated cell needed. No big machine needed: the hosts are
CPU lists (2, 4, 16 and 64 CPUs, and odd sets)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

import pytest

from bench.run import headroom
from bench.scenario import cpuset
from bench.scenario import matrix as scenario
from bench.scenario.cells import Cell
from benchagent import pinning
from tests.rows import make_row


def cell(**kw) -> Cell:
    base = scenario.from_dict({}, {}).cells()[0]
    return dataclasses.replace(base, **{"loadgen_cpuset": "0-3", "loadgen_processes": 1, "loadgen_workers": 0,
                                        "users": 100, **kw})


@pytest.mark.parametrize(("cpus", "target", "loadgen"), [
    ([0], "0", "0"),  # one CPU: shared (the plan warns)
    ([0, 1], "0", "1"),
    ([0, 1, 2], "0", "1-2"),
    ([0, 1, 2, 3], "0", "1-3"),
    (list(range(8)), "0-1", "2-7"),
    (list(range(16)), "0-4", "5-15"),  # 5 target cores, 11 for Locust: at least two per target core
    (list(range(64)), "0-20", "21-63"),
    ([0, 2, 4, 5, 6, 7], "0,2", "4-7"),  # an odd set (a container's cpuset): split in its own order
    ([7, 3, 5, 1], "1", "3,5,7"),  # unsorted in, sorted out
])
def test_the_automatic_split_gives_locust_two_thirds(cpus, target, loadgen) -> None:
    assert cpuset.split(cpus) == (target, loadgen)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64, 96])
def test_the_split_never_gives_locust_less_than_twice_the_target_beyond_three_cpus(n: int) -> None:
    target, loadgen = (len(cpuset.parse(s)) for s in cpuset.split(list(range(n))))
    assert target + loadgen == n and target >= 1
    assert loadgen >= 2 * target or n < 3, (n, target, loadgen)
    assert target == max(1, n // 3)


@pytest.mark.parametrize(("workers", "processes", "cpus", "users", "want"), [
    ("0", "auto", 1, 10, (0, 1)),
    (0, "auto", 11, 100, (0, 11)),  # one process per Locust CPU
    (0, "auto", 43, 10, (0, 10)),  # never more processes than users
    (0, "auto", 4, 1, (0, 1)),
    (0, 3, 11, 100, (0, 3)),  # a number wins
    ("auto", "auto", 11, 100, (11, 1)),  # distributed: a worker per CPU, no --processes
    ("auto", "auto", 11, 5, (5, 1)),
    (2, "auto", 11, 100, (2, 1)),
    (2, 4, 11, 100, (2, 4)),  # kept as written (the distributed run ignores it)
])
def test_auto_locust_counts(workers, processes, cpus, users, want) -> None:
    assert scenario.loadgen_counts(int(workers) if workers == "0" else workers, processes, cpus, users) == want


def test_auto_processes_follow_each_cells_own_cpuset_and_users() -> None:
    scen = scenario.from_dict({"defaults": {"loadgen_cpuset": "0-1", "target_cpuset": "0"},
                               "matrix": {"users": [1, 10], "loadgen_cpuset": ["0", "0-1"]}}, {})
    got = {(c.users, c.loadgen_cpuset): c.loadgen_processes for c in scen.cells()}
    assert got == {(1, "0"): 1, (1, "0-1"): 1, (10, "0"): 1, (10, "0-1"): 2}
    assert scenario.from_dict({"defaults": {"loadgen_processes": 3, "loadgen_cpuset": "0"}}, {}).cells()[0] \
        .loadgen_processes == 3


def test_workers_cores_follow_each_cells_own_target_cpuset() -> None:
    scen = scenario.from_dict({"defaults": {"workers": "cores"}, "matrix": {"target_cpuset": ["0", "0-1"]}}, {})
    assert [(c.target_cpuset, c.workers) for c in scen.cells()] == [("0", 1), ("0-1", 2)]


@pytest.mark.parametrize(("cpus", "workers", "mode", "want"), [
    ([0, 1], 2, "core", [[0], [1]]),
    ([0, 1], 2, "set", [[0, 1], [0, 1]]),
    ([4, 5, 6, 7], 2, "core", [[4], [5]]),  # the first CPUs of the set
    ([0, 2, 5], 5, "core", [[0], [2], [5], [0], [2]]),  # more workers than CPUs: round again
    (list(range(16, 21)), 5, "core", [[16], [17], [18], [19], [20]]),
    ([3], 1, "core", [[3]]),
])
def test_where_pinning_puts_each_worker(cpus, workers, mode, want) -> None:
    assert pinning.expected(cpus, workers, mode) == want


@pytest.mark.parametrize(("per_worker", "text"), [
    ([[0, 1, 2, 3]] * 4, "0-3"),  # floating: the set once
    ([[0], [1], [2]], "0/1/2"),
    ([[0], [0]], "0"),
    ([[5], [2, 3]], "5/2-3"),  # in slot order, as they differ
    ([], ""),
])
def test_affinity_text(per_worker, text) -> None:
    assert pinning.describe(per_worker) == text


def test_slots_are_claimed_lowest_first_and_freed_by_death(tmp_path) -> None:
    dead: set[int] = set()
    alive = lambda pid: pid not in dead  # noqa: E731
    assert [pinning.claim_slot(tmp_path, pid, alive) for pid in (101, 102, 103)] == [0, 1, 2]
    dead.add(102)  # Gunicorn replaces it
    assert pinning.claim_slot(tmp_path, 104, alive) == 1, "the dead worker's slot goes to its successor"
    assert pinning.claim_slot(tmp_path, 101, alive) == 0, "a worker asking again keeps its own slot"
    assert pinning.claim_slot(tmp_path, 105, alive) == 3


def test_workers_lists_the_live_ones_in_slot_order(tmp_path) -> None:
    for pid, slot, cpus in ((30, 1, [1]), (20, 0, [0]), (40, 2, [2])):
        (tmp_path / f"affinity-{pid}.json").write_text(f'{{"pid": {pid}, "slot": {slot}, "cpus": {cpus}}}')
    (tmp_path / "affinity-50.json").write_text("{not json")
    assert [w["pid"] for w in pinning.workers(tmp_path, alive=lambda pid: pid != 40)] == [20, 30]


@pytest.mark.parametrize(("kw", "total", "busiest", "saturated"), [
    ({}, 50.0, 50.0, False),
    ({}, 50.0, 90.0, True),  # one process at 90 % of a core
    ({}, 50.0, 89.9, False),
    ({"loadgen_processes": 4}, 359.0, 89.0, False),  # 4 processes on 4 CPUs: 90 % of 400
    ({"loadgen_processes": 4}, 360.0, 89.0, True),
    ({"loadgen_workers": 2}, 179.0, 89.0, False),  # 2 distributed workers: capacity 200 %
    ({"loadgen_workers": 2}, 180.0, 89.0, True),
    ({"loadgen_processes": 8}, 360.0, 50.0, True),  # more processes than CPUs: the CPUs bound
    ({"loadgen_processes": 8, "loadgen_cpuset": "0-1"}, 180.0, 50.0, True),
    ({"loadgen_processes": 8, "loadgen_cpuset": "0-1"}, 179.0, 50.0, False),
    ({"loadgen_processes": 4, "users": 1}, 90.0, 50.0, True),  # one user: one process runs
])
def test_cpu_saturation(kw, total, busiest, saturated) -> None:
    assert headroom.is_saturated(cell(**kw), total, busiest, lag_ms=0.0, p50_ms=1.0) is saturated


@pytest.mark.parametrize(("lag", "p50", "flagged"), [
    (0.40, 0.97, False),  # Locust alone on its core (measured: mean lag, median latency)
    (3.33, 3.33, True),  # beside two busy loops on the same core (measured): a third of the requests/s
    (3.88, 1.07, True),
    (3.33, 103.6, False),  # the same neighbours, 100 ms requests (measured): 2 % fewer requests/s
    (7.16, 108.0, True),  # four neighbours, 100 ms requests (measured): 10 % fewer requests/s
    (2.23, 1.03, True),  # three busy loops (measured, the end-to-end test's least starved run)
    (1.0, 20.0, True),  # both limits reached exactly
    (0.99, 0.5, False),
    (4.99, 100.0, False),  # under 5 % of the latency
])
def test_lag_saturation(lag, p50, flagged) -> None:
    assert headroom.is_saturated(cell(), 10.0, 10.0, lag, p50) is flagged


@pytest.mark.parametrize(("kw", "cpu_pct", "want"), [
    ({}, 50.0, 2.0),  # one process at half a core: twice the rate would fit
    ({}, 100.0, 1.0),
    ({"loadgen_processes": 4}, 100.0, 4.0),
    ({"loadgen_processes": 8}, 200.0, 2.0),  # 8 processes on 4 CPUs: 4 cores usable
    ({"loadgen_workers": 2, "loadgen_processes": 4}, 100.0, 2.0),  # workers, not --processes
    ({"loadgen_processes": 4, "users": 2}, 100.0, 2.0),  # 2 users: two processes have one
    ({}, 0.5, 200.0),  # a whiff of CPU: a lot of headroom, not "unknown"
    ({}, 0.0, 0.0),  # nothing sampled: unknown
])
def test_headroom(kw, cpu_pct, want) -> None:
    assert headroom.headroom(cell(**kw), cpu_pct) == pytest.approx(want)


def test_cpu_ms_per_request_is_a_ratio_of_rates() -> None:
    assert headroom.cpu_ms_per_request(50.0, 250.0) == 2.0  # half a core at 250 req/s
    assert headroom.cpu_ms_per_request(100.0, 0.0) == 0.0
    assert headroom.cpu_ms_per_request(50.0, 0.5) == 1000.0  # one request every 2 s


@pytest.mark.parametrize(("rps", "cost", "need"), [
    (4300.0, 0.23, 2),  # 989 ms of CPU per second: one core would be at 99 %
    (3800.0, 0.23, 1),  # 874 ms: under 90 % of one core
    (37_817.0, 0.23, 10),
    (0.0, 0.23, 0),
    (100.0, 0.0, 0),
    (0.5, 1000.0, 1),  # a slow trickle still needs a process
])
def test_cpus_needed(rps, cost, need) -> None:
    assert headroom.cpus_needed(rps, cost) == need


def test_cpus_to_load_fully_scales_a_cpu_bound_target_to_all_its_cores() -> None:
    # 8 workers on 8 target CPUs at 200 % (2 of 8 cores): 4x the rate, at Locust's cost
    row = make_row(workload="noop", workers=8, target_cpuset="0-7", rps=5_000.0, target_cpu_pct=200.0,
                   loadgen_cpu_ms_per_request=0.2)
    assert headroom.cpus_to_load_fully(row) == headroom.cpus_needed(20_000.0, 0.2) == 5
    # one worker uses one core at most, whatever the set
    one = dataclasses.replace(row, workers=1, target_cpu_pct=50.0)
    assert headroom.cpus_to_load_fully(one) == headroom.cpus_needed(10_000.0, 0.2)
    # a busy target, or one that waits: the rate it reached
    busy = dataclasses.replace(row, target_cpu_pct=790.0)
    assert headroom.cpus_to_load_fully(busy) == headroom.cpus_needed(5_000.0, 0.2)
    sleeping = dataclasses.replace(row, workload="sleep", target_cpu_pct=10.0)
    assert headroom.cpus_to_load_fully(sleeping) == headroom.cpus_needed(5_000.0, 0.2)
    # the cpu workload scales too; 20,000 req/s x 0.225 ms is exactly 5 CPUs at 90 %
    cpu = dataclasses.replace(row, workload="cpu", loadgen_cpu_ms_per_request=0.225)
    assert headroom.cpus_to_load_fully(cpu) == 5
    # the boundaries: a whiff of target CPU scales (by a lot), none or a full 90 % does not
    whiff = dataclasses.replace(row, target_cpu_pct=0.5)
    assert headroom.cpus_to_load_fully(whiff) == headroom.cpus_needed(5_000.0 * 800 / 0.5, 0.2)
    for pct in (0.0, 720.0):
        assert headroom.cpus_to_load_fully(dataclasses.replace(row, target_cpu_pct=pct)) == \
            headroom.cpus_needed(5_000.0, 0.2)


def test_advice_names_what_locust_had_and_needed() -> None:
    row = make_row(cell_id="c1", workload="noop", workers=8, target_cpuset="0-7", rps=5_000.0,
                   target_cpu_pct=200.0, loadgen_cpu_ms_per_request=0.2, loadgen_processes=1,
                   loadgen_cpuset="8-15", loadgen_lag_ms=0.3, p50_ms=1.0)
    assert headroom.advice(row) == (
        "c1: Locust had 1 CPU(s), 0.200 ms of Locust CPU per request; loading this target fully takes "
        "about 5 (loadgen_cpuset / loadgen_processes, or Locust on a second VM with --target-url)")
    # at its limit, the estimate under what it had (a busy target): at least one CPU more
    busy = dataclasses.replace(row, target_cpu_pct=790.0, rps=2_000.0)
    assert headroom.advice(busy).endswith("takes about 2 (loadgen_cpuset / loadgen_processes, or Locust on a "
                                          "second VM with --target-url)")
    # a Locust at its own CPU limit lags too: the CPU is what it lacked
    busy_and_late = dataclasses.replace(row, loadgen_headroom=1.0, loadgen_lag_ms=2.1, p50_ms=7.9)
    assert "loading this target fully takes about 5" in headroom.advice(busy_and_late)
    starved = dataclasses.replace(row, workload="sleep", rps=1_000.0, loadgen_lag_ms=3.95, p50_ms=1.0,
                                  loadgen_headroom=1.9)
    assert headroom.advice(starved) == (
        "c1: Locust had 1 CPU(s), 0.200 ms of Locust CPU per request, and its event loop woke 4.0 ms "
        "late on average: it waited for its CPUs, so give it CPUs nothing else runs on")
    # just under its limit (1.115 > 1/0.9), or its CPU not sampled: the lag is what the row says
    for room in (1.115, 0.0):
        assert "its event loop woke" in headroom.advice(dataclasses.replace(starved, loadgen_headroom=room))


@pytest.mark.parametrize(("n", "target", "loadgen", "processes_u100"), [
    (2, "0", "1", 1),
    (4, "0", "1-3", 3),
    (16, "0-4", "5-15", 11),
    (64, "0-20", "21-63", 43),
])
def test_the_default_scenario_on_a_host_of_n_cpus(monkeypatch, n, target, loadgen, processes_u100) -> None:
    monkeypatch.setattr(cpuset, "host_cpus", lambda: frozenset(range(n)))
    cells = scenario.load("default").cells()
    assert {(c.target_cpuset, c.loadgen_cpuset) for c in cells} == {(target, loadgen)}
    assert {c.workers for c in cells} == {1, len(cpuset.parse(target))}  # workers = [1, "cores"]
    by_users = {(c.users, c.loadgen_processes) for c in cells}
    assert by_users == {(10, min(10, n - len(cpuset.parse(target)))), (100, processes_u100)}
    assert {c.worker_pinning for c in cells} == {"set"}


def test_plan_says_the_split_and_why() -> None:
    from bench.commands.plan import split_reason

    assert split_reason(list(range(16))).startswith("host CPUs 0-15: 'auto' gives the target 0-4 and Locust 5-15")
    assert "two cores per target core" in split_reason([0, 1])
    assert split_reason([3]) == ("host CPUs 3: one CPU, so 'auto' puts the target and Locust on it together "
                                 "(their figures cannot be told apart)")


@pytest.mark.parametrize(("text", "message"), [
    ("0,,1", "cpuset '0,,1': empty element"),
    ("a-1", "cpuset 'a-1': expected CPU numbers like 0, 0-3 or 0,2-3"),
    ("3-1", "cpuset '3-1': range 3-1 runs backwards"),
    ("0-8192", "cpuset '0-8192': CPU 8192 is beyond any host (at most 8191)"),
])
def test_a_bad_cpuset_is_named_whole(text, message) -> None:
    from bench.errors import BadInput

    with pytest.raises(BadInput) as err:
        cpuset.parse(text)
    assert str(err.value) == message


def test_the_last_cpu_linux_allows_parses() -> None:
    assert cpuset.parse("8191") == {8191} and cpuset.parse("0-2,5") == {0, 1, 2, 5}


@pytest.mark.parametrize(("target", "loadgen", "want"), [
    ("auto", "auto", ("0-4", "5-15")),
    ("0-7", "auto", ("0-7", "8-15")),  # auto takes what the given set leaves
    ("auto", "12-15", ("0-11", "12-15")),
    ("all", "auto", ("0-15", "0-15")),  # nothing left: shared (the plan warns)
    ("auto", "all", ("0-15", "0-15")),
    ("all", "all", ("0-15", "0-15")),
    ("3,1", "8-9", ("1,3", "8-9")),  # given sets in canonical text
])
def test_cpuset_pairs_on_16_cpus(target, loadgen, want) -> None:
    assert cpuset.resolve_pair(target, loadgen, frozenset(range(16))) == want


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_host_cpus_in_this_process() -> None:
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {max(before)})
        assert cpuset.host_cpus() == {max(before)}
    finally:
        os.sched_setaffinity(0, before)


def test_host_cpus_are_this_process_own() -> None:
    import subprocess
    import sys

    code = "from bench.scenario import cpuset; print(cpuset.format(cpuset.host_cpus()))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    assert proc.stdout.strip() == "0", proc.stderr


PIN_CHILD = """
import json, os, sys, threading, time
from pathlib import Path
from benchagent import pinning

early = threading.Thread(target=time.sleep, args=(5,), daemon=True)  # started before the pinning
early.start()
cpus = pinning.apply(sys.argv[1], Path(sys.argv[2]))
threads = {tid: sorted(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")}
print(json.dumps({"cpus": cpus, "threads": threads, "workers": pinning.workers(Path(sys.argv[2]))}))
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
@pytest.mark.parametrize("mode", ["core", "set"])
def test_apply_pins_every_thread_of_the_worker_and_records_it(tmp_path, mode) -> None:
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", PIN_CHILD, mode, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, preexec_fn=lambda: os.sched_setaffinity(0, {0, 1}))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    want = [0] if mode == "core" else [0, 1]  # slot 0: the first CPU of the set
    assert out["cpus"] == want and len(out["threads"]) >= 2
    assert all(cpus == want for cpus in out["threads"].values()), out["threads"]
    [worker] = out["workers"]
    assert worker["slot"] == 0 and worker["cpus"] == want and worker["pid"] > 0
    assert json.loads(next(tmp_path.glob("affinity-*.json")).read_text()) == worker
    assert not list(tmp_path.glob(".affinity-*")), "written whole, then renamed"


def test_claim_slot_makes_its_folder_and_reads_empty_or_odd_slot_files(tmp_path) -> None:
    nested = tmp_path / "stats" / "pin-x"
    assert pinning.claim_slot(nested, 500, alive=lambda pid: True) == 0 and nested.is_dir()
    (tmp_path / "slot-0").write_text("")  # a claim torn before its pid was written: free
    assert pinning.claim_slot(tmp_path, 501, alive=lambda pid: True) == 0
    (tmp_path / "slot-0").write_text("1")  # pid 1 (a container's server) is a live owner
    assert pinning.claim_slot(tmp_path, 502, alive=lambda pid: True) == 1


def test_pid_alive_asks_without_signalling() -> None:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pinning.pid_alive(child.pid)
        time.sleep(0.2)
        assert child.poll() is None, "signal 0 only asks"
    finally:
        child.kill()
        child.wait()
    assert not pinning.pid_alive(child.pid)


def test_workers_skips_records_without_a_pid_and_reads_past_broken_ones(tmp_path) -> None:
    for i in range(10):
        (tmp_path / f"affinity-{100 + i}.json").write_text("{torn")
        (tmp_path / f"affinity-{200 + i}.json").write_text(f'{{"pid": {200 + i}, "slot": {i}, "cpus": [{i}]}}')
    (tmp_path / "affinity-1.json").write_text('{"slot": 99, "cpus": [0]}')  # no pid: not a worker
    (tmp_path / "affinity-2.json").write_text('{"pid": 0, "slot": 98, "cpus": [0]}')
    (tmp_path / "affinity-3.json").write_text('{"pid": 1, "slot": 97, "cpus": [0]}')  # pid 1: a worker
    got = pinning.workers(tmp_path, alive=lambda pid: True)
    assert [w["pid"] for w in got] == [*range(200, 210), 1]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_apply_in_this_process_then_put_back(tmp_path) -> None:
    """apply() where mutation testing can see it (it traces this process, not children): every
    thread of this process is pinned, then each gets its own affinity back."""
    import threading

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)  # a thread started before the pinning
    other.start()
    before = {int(tid): os.sched_getaffinity(int(tid)) for tid in os.listdir("/proc/self/task")}
    want = max(os.sched_getaffinity(0))  # not the host's first CPU: pinned from this thread's own set
    try:
        assert len(before) >= 2
        everything = os.sched_getaffinity(0)
        os.sched_setaffinity(other.native_id, {want})  # threads differ: the record is their union
        assert pinning._all_threads_affinity() == sorted(everything)
        os.sched_setaffinity(other.native_id, everything)  # the other thread floats: apply pins it
        os.sched_setaffinity(0, {want})  # the set this worker inherited (its first CPU is `want`)
        assert pinning.apply("core", tmp_path) == [want]
        assert (tmp_path / "slot-0").read_text() == str(os.getpid())
        assert {tid: os.sched_getaffinity(tid) for tid in before} == {tid: {want} for tid in before}
        [worker] = pinning.workers(tmp_path)
        assert worker == {"pid": os.getpid(), "slot": 0, "cpus": [want]}
    finally:
        for tid, cpus in before.items():
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(tid, cpus)
        stop.set()
    assert pinning.apply("set", tmp_path) == sorted(before[os.getpid()]), "set: left as it is, slot kept"
    assert [w["slot"] for w in pinning.workers(tmp_path)] == [0]
