"""`profile = "cpu"`: one `py-spy record` per worker of the target, over the measured window only.

The window opens when Locust says so (it writes `measure_window.json` with its start and length,
loadgen/window.py), not when the runner started Locust: the warmup and the ramp are not sampled.
Each sampler stops with SIGINT (py-spy then writes what it has) when the window's length is over,
or at once when the cell ends first. py-spy runs on this host against the workers' host pids; for
the Docker backend too, where it reads the containers' processes from outside (root, or
CAP_SYS_PTRACE, is all it needs: docs/profiling.md), and nothing is added to the images.

`--gil`: only the thread that holds the GIL is sampled, so a sample is a moment the interpreter
ran Python, idle threads never show, and the samples against window x rate say how busy the
interpreter was. Blocking sampling (py-spy's default) at 20 Hz: its cost is measured in
docs/profiling.md.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.run import attribution
from bench.run.attribution import Stacks

POLL_S = 0.02  # how often the window file is looked for
STOP_GRACE_S = 10.0  # py-spy writes its output after SIGINT: a large profile takes a while
PROBE_S = 10.0
_TOTALS = re.compile(r"Samples: (\d+) Errors: (\d+)")


def pyspy_path() -> str | None:
    """The venv's py-spy (requirements-dev.txt pins it), else one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def refusal(exe: str | None = None) -> str:
    """Why py-spy cannot profile here, in one line that names the fix; "" when it can. It is
    asked to read a Python process of ours, as it will read the target's workers."""
    exe = exe if exe is not None else pyspy_path()
    if not exe:
        return ('profile = "cpu" needs py-spy, which is not installed: `make venv` (it pins py-spy==0.4.3) '
                "or `pip install py-spy==0.4.3`")
    probe = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + PROBE_S
        while True:  # an interpreter still starting up is not found yet: ask again
            try:
                done = subprocess.run([exe, "dump", "--pid", str(probe.pid)], capture_output=True, text=True,
                                      timeout=PROBE_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f'profile = "cpu": py-spy could not run ({exc})'
            if done.returncode == 0 or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    finally:
        probe.kill()
        probe.wait()
    if done.returncode == 0:
        return ""
    said = (done.stderr or done.stdout).strip().splitlines()
    why = said[-1] if said else f"exit {done.returncode}"
    return (f'profile = "cpu": py-spy may not read other processes here ({why}): '
            "run as root, or allow ptrace (sysctl kernel.yama.ptrace_scope=0, or CAP_SYS_PTRACE "
            "for this user or container)")


@dataclass
class Outcome:
    stacks: Stacks
    errors: int = 0  # what py-spy counted as failed samples, all workers
    seconds: float = 0.0  # how long the samplers ran
    window_s: float = 0.0  # the measured window's length, as Locust said when it opened
    workers: int = 0  # samplers started
    notes: list[str] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return sum(self.stacks.values())


@dataclass
class CpuProfile:
    """Samplers for `pids` (host pids of the workers, keyed by what to call each) from the moment
    `window_file` appears, for its duration; `finish()` stops them and reads what they wrote."""

    pids: dict[str, int]
    rate: int
    window_file: Path
    out_dir: Path
    exe: str
    clock: Callable[[], float] = time.time
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _started: float = 0.0
    _window_s: float = 0.0
    _stopped: float = 0.0
    _early: dict[str, int] = field(default_factory=dict)  # samplers that ended before we stopped them

    def start(self) -> CpuProfile:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="cpu-profile", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        window = self._wait_window()
        if window is None or self._stop.is_set():
            return
        t_start, duration = window
        self._window_s = duration
        self._stop.wait(max(0.0, t_start - self.clock()))  # written as it opens: at most a moment ahead
        if self._stop.is_set():
            return
        self._started = self.clock()
        for name, pid in self.pids.items():
            log = (self.out_dir / f"{name}.log").open("wb")
            self._procs[name] = subprocess.Popen(
                [self.exe, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw",
                 "--full-filenames", "--gil", "--output", str(self.out_dir / f"{name}.folded")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()  # the child holds its own copy
        # until the window is over (Locust stops then), or the cell ends first
        self._stop.wait(max(0.0, t_start + duration - self.clock()))
        for name, proc in self._procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            else:
                self._early[name] = proc.returncode
        self._stopped = self.clock()
        for proc in self._procs.values():
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _wait_window(self) -> tuple[float, float] | None:
        while not self._stop.is_set():
            try:
                window = json.loads(self.window_file.read_text())
                return float(window["t_start"]), float(window["duration_s"])
            except (OSError, ValueError, KeyError, TypeError):
                self._stop.wait(POLL_S)  # not written yet (it is written whole: os.replace)
        return None

    def finish(self) -> Outcome:
        """Stop every sampler still running and read what each wrote."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        out = Outcome(attribution.parse(""), workers=len(self._procs))
        if not self._procs:
            out.notes.append("profile: the measured window never opened, nothing was sampled")
            return out
        out.seconds, out.window_s = max(0.0, self._stopped - self._started), self._window_s
        stacks = []
        for name in self._procs:
            folded, log = self.out_dir / f"{name}.folded", self.out_dir / f"{name}.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            totals = _TOTALS.findall(text)
            out.errors += int(totals[-1][1]) if totals else 0
            if folded.exists():
                stacks.append(attribution.parse(folded.read_text(errors="replace")))
            if name in self._early:
                last = [line for line in text.splitlines() if line.strip()]
                out.notes.append(f"profile: py-spy for {name} ended before the window did "
                                 f"(exit {self._early[name]}: {last[-1][:160] if last else 'no output'})")
        out.stacks = attribution.merge(stacks)
        return out
