"""The report's "Where the target's CPU went": per profiled cell, its samples over every ok repeat
(their profile.folded merged), each part's share, and a flame graph written beside the cell
(cells/<cell>/profile.svg) for a person to open from the report."""

from __future__ import annotations

from bench.report import flame
from bench.results.row import SummaryRow
from bench.results.rundir import RunDir, writing
from bench.run import attribution
from bench.run.attribution import PARTS, Stacks

Table = tuple[list[str], list[list[str]]]
HEADER = ["cell", "samples", "GIL held %", *(f"{part} %" for part in PARTS)]
NOTE = ("py-spy sampled every worker of the target during the measured window only (profile_rate per "
        "second, the thread holding the GIL each time). Each sample goes to one part by its innermost "
        "frame that says something: hop = anyio's worker threads, to_thread and its limiter, "
        "run_in_threadpool, threading and queue (and the loop code they call); loop = asyncio, uvloop, "
        "anyio's rest; server = Uvicorn, httptools, h11, Gunicorn, Granian, Hypercorn; framework = "
        "FastAPI, Starlette, pydantic; app = code outside the interpreter's libraries; agent = the "
        "bench's sampler in the workers; rest = other libraries. GIL held % = samples / (window x rate "
        "x workers): how busy the interpreters were (docs/profiling.md).")


def cell_stacks(run: RunDir, rows: list[SummaryRow]) -> dict[str, Stacks]:
    """Each profiled cell's stacks, its ok repeats' profile.folded merged, in run order."""
    out: dict[str, list[Stacks]] = {}
    for r in rows:
        if r.status != "ok" or r.profile != "cpu":
            continue
        folded = run.path / run.cell_rel(r.cell_id, r.repeat, r.attempt) / "profile.folded"
        text = folded.read_text(errors="replace") if folded.is_file() else ""
        out.setdefault(r.cell_id, []).append(attribution.parse(text))
    return {cell: attribution.merge(stacks) for cell, stacks in out.items()}


def profile_table(run: RunDir, rows: list[SummaryRow]) -> tuple[Table, dict[str, str]]:
    """The table, and the flame graph each row links to (relative to the run directory), written."""
    stacks = cell_stacks(run, rows)
    gil: dict[str, list[float]] = {}
    for r in rows:
        if r.cell_id in stacks and r.status == "ok":
            gil.setdefault(r.cell_id, []).append(r.profile_gil_pct)
    table, links = [], {}
    for cell, cell_stack in stacks.items():
        samples = sum(cell_stack.values())
        shares = attribution.shares(cell_stack)
        mean_gil = sum(gil[cell]) / len(gil[cell])
        table.append([cell, str(samples), f"{mean_gil:.0f}", *(f"{shares[p]:.1f}" for p in PARTS)])
        rel = f"cells/{cell}/profile.svg"
        with writing(run.path / rel):
            flame.write(run.path / rel, cell_stack, f"{cell}: {samples} samples")
        links[cell] = rel
    stale(run, set(links))
    return (HEADER, table), links


def stale(run: RunDir, keep: set[str]) -> None:
    """A flame graph of a cell this report no longer profiles would contradict it."""
    for svg in run.path.glob("cells/*/profile.svg"):
        if svg.parent.name not in keep:
            svg.unlink(missing_ok=True)

