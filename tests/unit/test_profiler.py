"""The samplers' life against a fake py-spy: they start when the window file appears, stop at its
end or when the cell ends, and what they wrote (stacks, py-spy's totals, an early exit) comes back."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from bench.run import profiler
from bench.run.profiler import CpuProfile
from tests.fakes import fake_pyspy


@pytest.fixture
def fake(tmp_path: Path) -> str:
    return fake_pyspy(tmp_path)


def opened(path: Path, duration_s: float, t_start: float | None = None) -> None:
    path.write_text(json.dumps({"t_start": time.time() if t_start is None else t_start,
                                "duration_s": duration_s}))


def sampling(log: Path, said: str = "Sampling process") -> None:
    """Until the fake py-spy's log says it (bounded: a loaded machine starts an interpreter slowly)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (log.exists() and said in log.read_text()):
        time.sleep(0.05)
    assert said in log.read_text()


def test_samplers_start_when_the_window_opens_and_stop_when_it_is_over(fake: str, tmp_path: Path) -> None:
    window = tmp_path / "measure_window.json"
    prof = CpuProfile({"worker-11": 101, "worker-12": 102}, 20, window, tmp_path / "profile", fake).start()
    time.sleep(0.2)
    assert not (tmp_path / "profile" / "worker-11.log").exists()  # the warmup is not sampled
    opened(window, 1.0)
    # the samplers stop at the window's end on their own, before the cell calls finish() (the
    # window is long enough for a loaded machine to start the fake and its SIGINT handler first)
    sampling(tmp_path / "profile" / "worker-11.log", "Samples:")
    assert (tmp_path / "profile" / "worker-11.folded").exists()
    out = prof.finish()
    assert out.workers == 2 and out.window_s == 1.0
    assert 0.5 <= out.seconds < 1.5, out.seconds
    assert out.stacks == {("main (/srv/app/main.py:1)", "cpu (/srv/app/main.py:9)"): 101 + 102}
    assert out.samples == 203 and out.errors == 0 and out.notes == []


def test_a_cell_that_ends_first_stops_its_samplers_at_once(fake: str, tmp_path: Path) -> None:
    window = tmp_path / "w.json"
    opened(window, 60.0)
    prof = CpuProfile({"worker-5": 5}, 20, window, tmp_path / "p", fake).start()
    sampling(tmp_path / "p" / "worker-5.log")
    began = time.monotonic()
    out = prof.finish()
    assert time.monotonic() - began < 5
    assert out.samples == 5 and out.seconds < 5
    assert "Samples: 5 Errors: 0" in (tmp_path / "p" / "worker-5.log").read_text()


def test_a_window_that_never_opened_samples_nothing_and_says_so(fake: str, tmp_path: Path) -> None:
    prof = CpuProfile({"worker-5": 5}, 20, tmp_path / "never.json", tmp_path / "p", fake).start()
    time.sleep(0.1)
    out = prof.finish()
    assert out.samples == 0 and out.workers == 0
    assert out.notes == ["profile: the measured window never opened, nothing was sampled"]
    assert not list((tmp_path / "p").iterdir())


def test_errors_are_summed_over_the_workers(fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ERRORS", "7")
    window = tmp_path / "w.json"
    opened(window, 1.0)
    out = CpuProfile({"worker-1": 31, "worker-2": 32}, 20, window, tmp_path / "p", fake).start()
    for worker in ("worker-1", "worker-2"):  # stopped at the window's end
        sampling(tmp_path / "p" / f"{worker}.log", "Samples:")
    assert out.finish().errors == 14


def test_a_worker_that_exits_mid_profile_leaves_a_note(fake: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_EARLY", "1")
    window = tmp_path / "w.json"
    opened(window, 0.5)
    prof = CpuProfile({"worker-9": 9}, 20, window, tmp_path / "p", fake).start()
    time.sleep(0.9)
    out = prof.finish()
    assert out.samples == 0
    assert out.notes == ["profile: py-spy for worker-9 ended before the window did "
                         "(exit 0: py-spy> Stopped sampling because process exited)"]


def test_a_torn_window_file_is_waited_past(fake: str, tmp_path: Path) -> None:
    window = tmp_path / "w.json"
    window.write_text('{"t_start": ')
    prof = CpuProfile({"worker-3": 3}, 20, window, tmp_path / "p", fake).start()
    time.sleep(0.15)
    assert not (tmp_path / "p" / "worker-3.log").exists()
    opened(window, 1.0)
    sampling(tmp_path / "p" / "worker-3.log", "Samples:")
    assert prof.finish().samples == 3


def test_refusal_names_a_missing_py_spy_and_the_fix(tmp_path: Path) -> None:
    why = profiler.refusal("")
    assert why.startswith('profile = "cpu" needs py-spy, which is not installed') and "py-spy==0.4.3" in why


def test_refusal_names_ptrace_when_py_spy_may_not_read_a_process(fake: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiler, "PROBE_S", 0.5)
    monkeypatch.setenv("FAKE_DUMP_RC", "1")
    monkeypatch.setenv("FAKE_DUMP_SAYS", "Error: Operation not permitted (os error 1)")
    why = profiler.refusal(fake)
    assert why.startswith('profile = "cpu": py-spy may not read other processes here '
                          "(Error: Operation not permitted (os error 1))")
    assert "ptrace_scope" in why and "CAP_SYS_PTRACE" in why
    monkeypatch.setenv("FAKE_DUMP_RC", "0")
    assert profiler.refusal(fake) == ""


def test_the_real_py_spy_reads_a_python_process_here() -> None:
    exe = profiler.pyspy_path()
    assert exe is not None and os.access(exe, os.X_OK), "make venv installs py-spy (requirements-dev.txt)"
    assert Path(exe).parent == Path(sys.executable).parent or exe.endswith("py-spy")
    assert profiler.refusal(exe) == ""  # CI runs as root: py-spy may read the target's workers
