"""The report's figures are legible at any matrix size: every figure is rendered for the default
matrix, a large one (144 cells), an open-loop one and one of knobs only some cells read, and its
texts are measured as matplotlib lays them out (the report shows each PNG at most 1200 px wide,
saved at dpi 100: a wider figure is shrunk, and its text with it). No two texts overlap, every
text lies inside the figure at 9 pt or more, each figure keeps one scale kind per axis, and a
label names only what varies across the cells and what they read."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from bench.report import plots
from bench.results.stats import CellStats, summarize
from bench.run.runner import identity_row
from bench.scenario.matrix import from_dict
from tests.rows import make_row

DPI = 100  # pages.write_report: fig.savefig(buf, format="png", dpi=100)
PAGE_PX = 1200  # pages.CSS: body max-width 1200px, img max-width 100 %
MIN_PT = 9.0

# Locust on CPU 1, the target on CPU 0 (tests/rows.py): "cores" is one worker
CPUS = {"target_cpuset": "0", "loadgen_cpuset": "1", "spawn_rate": 100, "duration": 10, "warmup": 3}
MATRICES: dict[str, tuple[dict[str, Any], dict[str, list[Any]]]] = {
    # scenarios/default.toml on a host whose target has one core: the user's 12 cells
    "default": ({"server": "uvicorn", "cpu_iterations": 100_000, "sleep_ms": 100, "threadpool_tokens": 40},
                {"workers": [1], "workload": ["noop", "cpu", "sleep"], "users": [10, 100], "style": ["def", "async"]}),
    # 144 cells: three servers, two worker counts, a threadpool axis
    "large": ({"cpu_iterations": 100_000, "sleep_ms": 100},
              {"server": ["uvicorn", "gunicorn", "granian"], "workers": [1, 2], "workload": ["noop", "cpu", "sleep"],
               "users": [10, 100], "threadpool_tokens": [40, 80], "style": ["def", "async"]}),
    # the open loop: the load is the offered rate
    "open": ({"load_model": "open", "server": "uvicorn", "workers": 1, "sleep_ms": 100},
             {"workload": ["noop", "sleep"], "rate": [250, 500, 1000, 2000], "style": ["def", "async"]}),
    # knobs only some cells read (sleep_ms: the sleep; Granian's threads: Granian), and long labels
    "knobs": ({"workers": 1, "users": 50},
              {"server": ["uvicorn", "granian"], "granian_runtime_threads": [1, 2], "workload": ["noop", "sleep"],
               "sleep_ms": [50, 100], "worker_pinning": ["set", "core"],
               "style": ["def", "async"]}),
}
# what a closed-loop run's figures must never name: the open loop's knobs (keys.OPEN_ONLY)
OPEN_WORDS = re.compile(r"max_inflight|inflight|\brate\b|arrivals|poisson|\bconstant\b|offered")
# ... and an open-loop run's: its users are Locust's processes, not a load (keys.CLOSED_ONLY)
CLOSED_WORDS = re.compile(r"\busers?\b|\bu1\b|concurrent")
# values every cell of the matrix shares: the figure's texts must not repeat them
CONSTANT_WORDS = {
    "default": re.compile(r"uvicorn|\btp ?40\b|\bw1\b|1 worker|threadpool_tokens|100000|max_inflight"),
    "large": re.compile(r"100000|cpu_iterations|sleep_ms|max_inflight|-tp\d+"),
    "open": re.compile(r"uvicorn|\bw1\b|1 worker|tp ?40|threadpool_tokens|max_inflight|arrivals|constant"),
    "knobs": re.compile(r"\btp ?40\b|1 worker|\b50 users|http_pool_size|cpu_iterations|max_inflight"),
}
FLOOR = "rps is a floor"


def figures(style: str, workload: str, load: float, server: str, workers: int, tokens: int,
            rep: int, is_open: bool = False) -> dict[str, Any]:
    """Plausible figures for one repeat: a no-op is fast, a CPU loop slow, a sleep bound by its
    users (def's by its threadpool too); async no-op at the most load saturates Locust."""
    capacity = {"noop": 3000.0 * workers * (1.6 if style == "async" else 1.0), "cpu": 120.0 * workers}
    per_user = {"noop": 1e9, "cpu": 1e9, "sleep": 10.0}[workload]
    threads = tokens * workers if style == "def" else 10**9
    # a closed loop's users send as fast as they are served; an open loop sends its rate at most
    rps = min(capacity.get(workload, 1e9), per_user * min(load, threads), load if is_open else load * 400)
    if server == "granian":
        rps *= 1.2
    rps *= 1 + rep / 50
    p50 = max(1000.0 * load / rps, 0.4) if workload != "sleep" else 100.0 * max(1.0, load / threads)
    # a queue's tail: at ten times the load p99 is far above p50 (a log axis for some workloads)
    tail = 2.5 if load <= 10 or load == 250 else 8.0
    return {"rps": rps, "requests": int(rps * 10), "p50_ms": p50 * (1 + rep / 40), "p99_ms": p50 * tail,
            "cpu_ms_per_request": {"noop": 0.35, "cpu": 8.0, "sleep": 0.45}[workload] * (1 + rep / 30),
            "latency_source": "hdr",
            "loadgen_saturated": style == "async" and workload == "noop" and load >= 100}


def stats_of(name: str) -> list[CellStats]:
    """Two repeats of every cell of a matrix, through the scenario's own resolution (max_inflight
    echoes users in a closed loop, "auto" words become numbers) and summarize()."""
    defaults, matrix = MATRICES[name]
    rows = []
    for cell in from_dict({"defaults": {**CPUS, **defaults}, "matrix": matrix}, {}).cells():
        load = cell.rate if cell.load_model == "open" else cell.users
        for rep in (1, 2):
            rows.append(make_row(**{**identity_row(cell, rep, 1, "r", "local"),
                                    **figures(cell.style, cell.workload, load, cell.server, cell.workers,
                                              cell.threadpool_tokens, rep, cell.load_model == "open")}))
    return summarize(rows)


def capacity_records() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """A capacity search of def and async on two workloads under two servers: four panels."""
    steps, results = [], []
    for style, workload, server in itertools.product(("def", "async"), ("sleep", "cpu"), ("uvicorn", "granian")):
        sid = f"{style}-{workload}-cap-{server}-w1-tp40"
        knee = 300.0 if workload == "sleep" else 100.0
        for i, rate in enumerate((50.0, 100.0, 200.0, 400.0, 300.0, 250.0)):
            p99 = 105.0 if rate <= knee else 105.0 * rate / knee * 20
            steps.append({"search_id": sid, "step": str(i + 1), "phase": "up" if i < 4 else "bisect",
                          "rate": str(rate), "verdict": "pass" if rate <= knee else "fail",
                          "p50_ms": str(p99 / 2), "p99_ms": str(p99), "saturated": "false"})
        results.append({"search_id": sid, "style": style, "workload": workload, "server": server,
                        "workers": "1", "threadpool_tokens": "40", "slo_p99_ms": "250",
                        "capacity_rps": str(knee)})
    return steps, results


# ---------------------------------------------------------------- measuring a figure's text


def drawn(fig: Figure) -> Any:
    """Lay the figure out as savefig would (constrained layout included); its renderer."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def all_axes(fig: Figure) -> list[Axes]:
    out: list[Axes] = []
    for ax in fig.axes:
        if ax.get_visible():
            out += [ax, *ax.child_axes]  # secondary axes live under their parent
    return out


def tick_labels(ax: Axes) -> list[Text]:
    """The tick labels matplotlib draws: visible, not empty, at a tick inside the view (a log
    locator's ticks beyond the limits keep labels that are never drawn)."""
    out = []
    for axis in (ax.xaxis, ax.yaxis):
        lo, hi = sorted(axis.get_view_interval())
        span = (hi - lo) or 1.0
        for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
            if not tick.get_visible() or not lo - span * 1e-9 <= tick.get_loc() <= hi + span * 1e-9:
                continue
            out += [t for t in (tick.label1, tick.label2) if t.get_visible() and t.get_text().strip()]
    return out


def texts(fig: Figure) -> list[Text]:
    """Every text the figure shows: titles, axis labels, legends, annotations and drawn tick labels."""
    every_tick = {id(t) for ax in all_axes(fig) for axis in (ax.xaxis, ax.yaxis)
                  for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()] for t in (tick.label1, tick.label2)}
    shown = [t for t in fig.findobj(Text)
             if id(t) not in every_tick and t.get_visible() and t.get_text().strip() and visible_parents(t)]
    return shown + [t for ax in all_axes(fig) for t in tick_labels(ax)]


def visible_parents(t: Text) -> bool:
    ax = t.axes
    return ax is None or ax.get_visible()


def overlap(a: Bbox, b: Bbox, slack: float = 0.5) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > slack) and (min(a.y1, b.y1) - max(a.y0, b.y0) > slack)


def words(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in texts(fig))


def check_legible(fig: Figure, renderer: Any = None) -> None:
    assert fig.get_figwidth() * DPI <= PAGE_PX, f"{fig.get_figwidth() * DPI:.0f} px wide: the page shrinks it"
    renderer = renderer or drawn(fig)
    width, height = fig.get_figwidth() * DPI, fig.get_figheight() * DPI
    boxes = []
    for t in texts(fig):
        assert t.get_fontsize() >= MIN_PT, f"{t.get_text()!r} at {t.get_fontsize():.1f} pt"
        box = t.get_window_extent(renderer)
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, (
            f"{t.get_text()!r} at {box.bounds} leaves the {width:.0f}x{height:.0f} figure")
        boxes.append((t.get_text(), box))
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not overlap(a, b), f"{ta!r} {a.bounds} overlaps {tb!r} {b.bounds}"
    for legend in [*fig.legends, *(ax.get_legend() for ax in all_axes(fig) if ax.get_legend())]:
        box = legend.get_window_extent(renderer)
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, "legend overflows"


def main_axes(fig: Figure) -> list[Axes]:
    return [ax for ax in fig.axes if ax.get_visible()]


BUILDERS: dict[str, Callable[[list[CellStats]], Figure | None]] = {
    name: build for name, (_, build) in plots.FIGURES.items()}
CASES = [pytest.param(m, f, id=f"{f}-{m}") for m in MATRICES for f in ("rps", "latency", "cpu")]
CLOSED = [m for m, (defaults, _) in MATRICES.items() if defaults.get("load_model") != "open"]


@pytest.fixture(scope="module")
def stats() -> dict[str, list[CellStats]]:
    return {name: stats_of(name) for name in MATRICES}


_BUILT: dict[tuple[str, str], tuple[Figure, Any]] = {}


def built(stats: dict[str, list[CellStats]], matrix: str, figure: str) -> tuple[Figure, Any]:
    """Each figure of each matrix built and laid out once per test process (a 144-cell figure takes
    seconds to lay out, and the tests below only read it): the figure and its renderer."""
    if (matrix, figure) not in _BUILT:
        fig = BUILDERS[figure](stats[matrix])
        assert fig is not None
        _BUILT[matrix, figure] = fig, drawn(fig)
    return _BUILT[matrix, figure]


@pytest.mark.parametrize(("matrix", "figure"), CASES)
def test_every_text_fits_the_page_at_its_size_and_overlaps_no_other(stats, matrix, figure) -> None:
    check_legible(*built(stats, matrix, figure))


@pytest.mark.parametrize(("matrix", "figure"), CASES)
def test_labels_name_only_what_varies_and_what_the_cells_read(stats, matrix, figure) -> None:
    fig, _ = built(stats, matrix, figure)
    text = words(fig)
    assert not CONSTANT_WORDS[matrix].search(text), CONSTANT_WORDS[matrix].search(text)
    if matrix in CLOSED:
        assert not OPEN_WORDS.search(text), OPEN_WORDS.search(text)
    else:
        assert not CLOSED_WORDS.search(text), CLOSED_WORDS.search(text)
    assert not any(s.cell_id in text for s in stats[matrix]), "a cell id repeats every constant"


@pytest.mark.parametrize(("matrix", "figure"), CASES)
def test_one_scale_kind_per_figure(stats, matrix, figure) -> None:
    fig, _ = built(stats, matrix, figure)
    axes = main_axes(fig)
    assert len({ax.get_xscale() for ax in axes}) == 1 and len({ax.get_yscale() for ax in axes}) == 1, (
        [(ax.get_title(), ax.get_xscale(), ax.get_yscale()) for ax in axes])


@pytest.mark.parametrize("matrix", ["default", "large"])
def test_the_saturation_marker_says_what_it_means_for_each_figure(stats, matrix) -> None:
    assert any(s.any_saturated for s in stats[matrix])
    rps, latency, cpu = (built(stats, matrix, f)[0] for f in ("rps", "latency", "cpu"))
    assert FLOOR in words(rps)
    # a saturated Locust sent less than asked: its cells' latency is at a lighter load
    assert FLOOR not in words(latency) and "Locust" in words(latency)
    # the CPU a request costs does not depend on who set the pace (docs/findings.md)
    assert FLOOR not in words(cpu) and "saturated" not in words(cpu)


def test_the_default_matrix_shows_every_cell_and_its_workloads(stats) -> None:
    rps = BUILDERS["rps"](stats["default"])
    assert rps is not None
    text = words(rps)
    for workload in ("noop", "cpu", "sleep"):
        assert workload in text
    assert "10" in text and "100" in text  # the users, which vary


def test_the_capacity_figure_fits_the_page() -> None:
    steps, results = capacity_records()
    fig = plots.capacity_figure(steps, results)
    assert fig is not None
    check_legible(fig)
    assert len({ax.get_yscale() for ax in main_axes(fig)}) == 1
    text = words(fig)
    assert "tp40" not in text and "w1" not in text  # every search has them


def test_a_one_cell_run_still_draws_each_figure() -> None:
    [s] = summarize([make_row(cell_id="c", rps=500.0, p50_ms=2.0, p99_ms=5.0, cpu_ms_per_request=0.5,
                              requests=5000)])
    for build in BUILDERS.values():
        fig = build([s])
        assert fig is not None
        check_legible(fig)


def test_a_knob_names_only_the_cells_that_read_it(stats) -> None:
    """sleep_ms labels the sleep's rows, never the no-op's; Granian's threads Granian's rows only."""
    rps = BUILDERS["rps"](stats["knobs"])
    assert rps is not None
    drawn(rps)
    rows = [t.get_text().replace(",\n", ", ") for ax in main_axes(rps) for t in tick_labels(ax)
            if t in ax.get_yticklabels()]
    assert any("sleep 50 ms" in r for r in rows) and any("granian_runtime_threads=2" in r for r in rows)
    assert not [r for r in rows if r.startswith("noop") and "sleep 50 ms" in r]
    titles = [ax.get_title() for ax in main_axes(rps)]
    assert titles == ["uvicorn", "granian"]
    uvicorn = [t.get_text() for t in main_axes(rps)[0].get_yticklabels()]
    assert uvicorn and not [r for r in uvicorn if "granian" in r]


def test_a_knob_resolved_from_the_users_is_no_label() -> None:
    """On a host with 11 Locust CPUs "auto" gives 10 users 10 processes and 100 users 11: the
    processes echo the users, as a closed loop's max_inflight does, and label nothing."""
    rows = [make_row(cell_id=f"{style}-u{users}", style=style, users=users, max_inflight=users,
                     loadgen_processes=min(users, 11), rps=100.0 * users, requests=1000)
            for style in ("def", "async") for users in (10, 100)]
    stats = summarize(rows)
    assert plots.varying(stats, ("style",)) == ["users"]
    for build in BUILDERS.values():
        fig = build(stats)
        assert fig is not None
        drawn(fig)
        assert not re.search(r"loadgen_processes|max_inflight|=1[01]\b", words(fig)), words(fig)
