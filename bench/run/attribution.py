"""Where the target's CPU went: py-spy's folded stacks, each sample given to one part.

A sample is one stack of the thread that held the GIL when py-spy looked (`--gil`), root first,
as py-spy's raw format writes it: `frame;frame;... count`, each frame `function (path:line)`.
Its part is decided by the innermost frame that says something (docs/profiling.md has the table):

- the stdlib's helpers (json, typing, contextlib, functools, re, ...) say nothing: a frame of
  theirs takes the part of whoever called it (Starlette's JSON encoding is the framework's);
- `hop`: the thread hop of a `def` endpoint: anyio's worker threads and `to_thread`, its capacity
  limiter, Starlette's and FastAPI's `run_in_threadpool`, and `threading`, `queue` and
  `concurrent.futures` (the threads' own wake-ups);
- `loop`: asyncio, selectors, uvloop, sniffio and the rest of anyio; but loop code called by hop
  code (further out in the same stack) is the hop's: the worker thread's `call_soon_threadsafe`
  that wakes the loop, the coroutine that waits for the thread's result;
- `server`: Uvicorn, httptools, h11, Gunicorn, Granian, Hypercorn (with h2 and wsproto);
- `framework`: FastAPI, Starlette, pydantic;
- `agent`: this stack's own sampler inside the workers (benchagent), so that its cost shows;
- `app`: any file outside the interpreter's libraries (stdlib and site-packages): the built-in
  app's endpoints, or a team's own modules;
- `rest`: every other installed package (psycopg, httpx, ...) and a stack of stdlib alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

PARTS = ("hop", "loop", "server", "framework", "app", "agent", "rest")
FEW_SAMPLES = 50  # fewer than this in a cell: its shares are too rough to be read as figures
LOST_SHARE = 0.05  # py-spy's errors above this share of its samples: the profile says it lost some
SHORT_SHARE = 0.9  # a sampler that ran under 90 % of the window says so

SERVER = frozenset({"uvicorn", "uvicorn_worker", "httptools", "h11", "gunicorn", "granian", "_granian",
                    "hypercorn", "h2", "hpack", "hyperframe", "wsproto", "priority"})
FRAMEWORK = frozenset({"fastapi", "starlette", "pydantic", "pydantic_core", "annotated_types",
                       "typing_extensions", "typing_inspection"})
LOOP = frozenset({"asyncio", "selectors", "uvloop", "sniffio", "anyio"})
HOP_STDLIB = frozenset({"threading", "queue", "concurrent"})
# the hop's own functions inside packages that do more than the hop: (file's tail, functions)
HOP_FUNCTIONS: dict[str, frozenset[str]] = {
    "anyio/to_thread.py": frozenset(),  # all of it
    "anyio/_backends/_asyncio.py": frozenset({
        "run_sync_in_worker_thread", "_report_result", "acquire", "acquire_nowait", "acquire_on_behalf_of",
        "acquire_on_behalf_of_nowait", "release", "release_on_behalf_of", "current_default_thread_limiter"}),
    "starlette/concurrency.py": frozenset({"run_in_threadpool", "iterate_in_threadpool", "_next"}),
    "fastapi/concurrency.py": frozenset({"contextmanager_in_threadpool"}),
}
_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>.*?)(?::(?P<line>\d+))?\)$")
_LIBS = re.compile(r"/(?:site|dist)-packages/([^/]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+t?/([^/]+)")

Stacks = Counter[tuple[str, ...]]


def parse(text: str) -> Stacks:
    """py-spy's raw output: each line a stack, root first, and its count; a line that is not one
    (a torn last line of a killed sampler) is skipped."""
    out: Stacks = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out[tuple(stack.split(";"))] += int(count)
    return out


def merge(profiles: Iterable[Stacks]) -> Stacks:
    out: Stacks = Counter()
    for stacks in profiles:
        out.update(stacks)
    return out


def fold(stacks: Stacks) -> Stacks:
    """The same stacks without line numbers: one box per function in a flame graph."""
    out: Stacks = Counter()
    for stack, count in stacks.items():
        out[tuple(_without_line(frame) for frame in stack)] += count
    return out


def to_text(stacks: Stacks) -> str:
    """The folded format, most samples first (flamegraph.pl, speedscope and our own report read it)."""
    return "".join(f"{';'.join(stack)} {count}\n"
                   for stack, count in sorted(stacks.items(), key=lambda kv: (-kv[1], kv[0])))


def _without_line(frame: str) -> str:
    m = _FRAME.match(frame)
    return f"{m['func']} ({m['path']})" if m and m["line"] else frame


def module_of(frame: str) -> tuple[str, str, str]:
    """(where, top-level name, function): where is "lib" (an installed package), "stdlib", "agent"
    or "app"; the top-level name is the package or the stdlib module (without .py)."""
    m = _FRAME.match(frame)
    func, path = (m["func"], m["path"]) if m else (frame, "")
    if "/benchagent/" in path or path.startswith("benchagent/"):
        return "agent", "benchagent", func
    lib = _LIBS.search(path)
    if lib:
        return "lib", lib[1].removesuffix(".py"), func
    std = _STDLIB.search(path)
    if std:
        return "stdlib", std[1].removesuffix(".py"), func
    if path.startswith("<frozen ") or path in ("<string>", ""):
        return "stdlib", path, func  # the interpreter's own (importlib), or no file at all
    return "app", path, func


def is_hop(frame: str) -> bool:
    where, top, func = module_of(frame)
    if where == "stdlib":
        return top in HOP_STDLIB
    m = _FRAME.match(frame)
    path = m["path"] if m else ""
    for tail, funcs in HOP_FUNCTIONS.items():
        if path.endswith("/" + tail):
            return not funcs or func in funcs
    return False


def part_of_frame(frame: str) -> str | None:
    """The frame's own part; None for a stdlib helper, which takes its caller's."""
    if is_hop(frame):
        return "hop"
    where, top, _ = module_of(frame)
    if where == "agent":
        return "agent"
    if where == "app":
        return "app"
    if top in LOOP:
        return "loop"
    if where == "stdlib":
        return None
    if top in SERVER:
        return "server"
    if top in FRAMEWORK:
        return "framework"
    return "rest"


def part_of_stack(stack: tuple[str, ...]) -> str:
    """The part of one sample: its innermost frame that has one; loop code that hop code called
    (anyio's worker thread waking the loop, the coroutine awaiting a thread) is the hop's."""
    for i in range(len(stack) - 1, -1, -1):
        part = part_of_frame(stack[i])
        if part is None:
            continue
        if part == "loop" and any(is_hop(frame) for frame in stack[:i]):
            return "hop"
        return part
    return "rest"


def shares(stacks: Stacks) -> dict[str, float]:
    """Each part's share of the samples, in %, every part present (0 where none)."""
    total = sum(stacks.values())
    counts = Counter({part: 0 for part in PARTS})
    for stack, count in stacks.items():
        counts[part_of_stack(stack)] += count
    return {part: (100.0 * counts[part] / total if total else 0.0) for part in PARTS}


def figures(stacks: Stacks, window_s: float, rate: int, workers: int) -> dict[str, float | int]:
    """The row's profile columns: the samples against what the window allows (window x rate x
    workers): with --gil a worker is sampled only while one of its threads holds the GIL, so
    that ratio is how busy the interpreters were; and each part's share of those samples."""
    samples = sum(stacks.values())
    possible = window_s * rate * workers
    out: dict[str, float | int] = {
        "profile_samples": samples,
        "profile_gil_pct": 100.0 * samples / possible if possible > 0 else 0.0,
    }
    out.update({f"cpu_{part}_pct": share for part, share in shares(stacks).items()})
    return out


def notes(samples: int, errors: int, sampled_s: float, window_s: float) -> list[str]:
    """What the row should be read with: a profile too small, one that lost samples, one that
    ran for only part of the window."""
    out = []
    if samples < FEW_SAMPLES:
        out.append(f"profile has {samples} samples (under {FEW_SAMPLES}): its shares are rough")
    if errors > LOST_SHARE * max(samples, 1):
        out.append(f"py-spy lost {errors} samples against {samples} kept")
    if window_s > 0 and sampled_s < SHORT_SHARE * window_s:
        out.append(f"profile covers {sampled_s:.1f} s of the {window_s:.1f} s window")
    return out
