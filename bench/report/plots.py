"""The report's figures, built from per-cell stats (no file I/O here: write_report saves them).

Figures are made with matplotlib's object API (Figure, not pyplot), so no global state or GUI
backend is involved and the module works headless without calling matplotlib.use("Agg").

The report shows each PNG at most 1200 px wide, saved at dpi 100: a figure is at most 12 inches
wide, so its text is shown at its true size (9 pt and up), and a larger matrix makes it taller,
never wider. Labels name only what varies across the cells and what a cell reads (plot_labels).
Each figure has one scale kind on its value axis, so panels side by side read alike.

A saturated Locust is marked where it changes what the figure says: its rps is a floor, and its
latency was measured under less load than asked. The CPU a request costs does not depend on who
set the pace, so the CPU figure does not mark it.
Cells with no ok repeat (n = 0) have no figure to plot; the report lists them with their error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

from bench.report import plot_labels as pl
from bench.report.plot_labels import SMALL, Split, label, unique, varying
from bench.results.stats import CellStats

__all__ = ["FIGURES", "capacity_figure", "cpu_figure", "label", "latency_figure", "rps_figure", "varying"]

PAGE_IN = 12.0  # pages.CSS: the body is at most 1200 px wide, and savefig uses dpi 100
BAR_IN = 0.2  # one bar's thickness: room for a 9 pt number beside it
STYLE_COLORS = {"def": "tab:blue", "async": "tab:orange"}
OTHER_COLORS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
SATURATED_HATCH = "///"
WHITE_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8}
SATURATED_NOTE = "load generator saturated: rps is a floor"
LIGHTER_NOTE = "Locust saturated: the server got less load than shown"
SPREAD = 10.0  # values further apart than this share a log axis: else the small ones are flat


def style_color(style: str, styles: list[str]) -> str:
    return STYLE_COLORS.get(style) or OTHER_COLORS[styles.index(style) % len(OTHER_COLORS)]


def _bars(ok: list[CellStats], metric: str, title: str, unit: str, floor: bool) -> Figure:
    """Horizontal bars, the styles side by side per row: a row per workload and load (and any other
    knob that varies), a panel per deployment. Rows stack downwards, so their labels never collide
    however many there are; the figure grows in height, not width."""
    styles = unique(s.style for s in ok)
    split = Split(ok, pl.DEPLOYMENT, None)
    panels = unique(split.panel_of(s) for s in ok)
    rows = {p: unique(split.along_of(s) for s in ok if split.panel_of(s) == p) for p in panels}
    cols = 1 if len(panels) == 1 else 2
    lines = max(pl.wrap(name, pl.ROW_CHARS).count("\n") + 1 for names in rows.values() for name in names)
    row_in = max(BAR_IN * len(styles) + 0.12, 0.18 * lines + 0.1)  # the bars, or the label's lines
    heights = [max(len(rows[p]) for p in panels[r:r + cols]) * row_in + 0.8
               for r in range(0, len(panels), cols)]
    fig = Figure(figsize=(PAGE_IN if cols > 1 else 10.0, sum(heights) + 0.8), layout="constrained")
    grid = fig.add_gridspec(len(heights), cols, height_ratios=heights)
    axes = [fig.add_subplot(grid[i // cols, i % cols]) for i in range(len(panels))]
    means = [getattr(s, f"{metric}_mean") for s in ok]
    tops = [m + getattr(s, f"{metric}_ci95") for s, m in zip(ok, means, strict=True)]
    positive = [m for m in means if m > 0]
    log = bool(positive) and max(positive) > SPREAD * min(positive)
    # one value axis for the figure: the same scale and limits in every panel
    lo = 10 ** math.floor(math.log10(min(positive) / 1.5)) if log else 0.0
    hi = max([*tops, 1e-9]) * (2.0 if log else 1.1)
    width = 0.8 / len(styles)
    for ax, panel in zip(axes, panels, strict=True):
        names = rows[panel]
        for s in (s for s in ok if split.panel_of(s) == panel):
            i = styles.index(s.style)
            y = names.index(split.along_of(s)) + (i - (len(styles) - 1) / 2) * width
            mean, half = getattr(s, f"{metric}_mean"), getattr(s, f"{metric}_ci95")
            hatched = floor and s.any_saturated
            # on a log axis a bar starts at the axis' left end (there is no zero)
            ax.barh(y, max(mean - lo, 0.0), width, left=lo, xerr=half or None, capsize=2,
                    color=style_color(s.style, styles), hatch=SATURATED_HATCH if hatched else None,
                    edgecolor="red" if hatched else "black", linewidth=0.6)
            _value(ax, y, mean, half, lo, hi, log)
        # a row with nothing to name (only the style varies) is the one subject's
        ax.set_yticks(range(len(names)), [pl.wrap(name or ok[0].subject, pl.ROW_CHARS) for name in names])
        ax.set_ylim(len(names) - 0.5, -0.5)  # the first cell on top, like the tables
        if log:
            ax.set_xscale("log")
            pl.log_ticks(ax.xaxis, lo, hi)
        ax.set_xlim(lo, hi)
        ax.set_title(pl.wrap(panel, pl.title_chars(fig, cols)))
    pl.xlabel_below(axes, cols, unit + (" (log scale)" if log else ""))
    handles: list[Any] = [Patch(facecolor=style_color(st, styles), edgecolor="black", label=st)
                          for st in styles]
    if floor and any(s.any_saturated for s in ok):
        handles.append(Patch(facecolor="white", edgecolor="red", hatch=SATURATED_HATCH, label=SATURATED_NOTE))
    pl.legend_below(fig, handles)
    fig.suptitle(title)
    return fig


def _value(ax: Any, y: float, mean: float, half: float, lo: float, hi: float, log: bool) -> None:
    """The bar's number: past its whisker where there is room, else inside the bar's end (on a
    white box, readable on any colour). The figure itself: bars on a log axis do not read as ratios."""
    def at(v: float) -> float:
        v = max(v, lo if log else 0.0)
        return math.log(v / lo) / math.log(hi / lo) if log else (v - lo) / (hi - lo)

    if at(mean + half) < 0.6:
        ax.annotate(pl.number(mean), (mean + half, y), xytext=(3, 0), textcoords="offset points",
                    va="center", ha="left", fontsize=SMALL)
    else:
        inside = mean - half if at(mean - half) > 0.3 else mean
        ax.annotate(pl.number(mean), (inside, y), xytext=(-3, 0), textcoords="offset points", va="center",
                    ha="right", fontsize=SMALL, bbox=WHITE_BOX)


def rps_figure(stats: list[CellStats]) -> Figure | None:
    """(a) requests/s, def vs async side by side per workload and load; one panel per deployment."""
    ok = [s for s in stats if s.n > 0]
    if not ok:
        return None
    styles = unique(s.style for s in ok)
    return _bars(ok, "rps", f"Throughput: {' vs '.join(styles)}", "requests/s (mean, 95 % CI)", floor=True)


def cpu_figure(stats: list[CellStats]) -> Figure | None:
    """(c) the target's CPU milliseconds per request, laid out like the throughput figure."""
    ok = [s for s in stats if s.n > 0]
    if not ok:
        return None
    fig = _bars(ok, "cpu_ms_per_request", "Server CPU time per request",
                "target CPU ms per request (mean, 95 % CI)", floor=False)
    if not any(s.cpu_ms_per_request_mean for s in ok):
        fig.axes[0].text(0.5, 0.5, "no CPU figures recorded", transform=fig.axes[0].transAxes, ha="center")
    return fig


def _grid(n: int, height: float, extra_in: float) -> tuple[Figure, list[Any]]:
    """Up to three panels a row, each ~3.7 in wide: within the page however many there are."""
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(min(PAGE_IN, 3.8 * cols + 0.8), height * rows + extra_in), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _series_colors(keys: list[tuple[str, str]], styles: list[str]) -> dict[tuple[str, str], Any]:
    """Each style keeps its colour; its further lines (other knob values) are lighter shades of it."""
    extras = sorted(unique(extra for _, extra in keys), key=bool)  # a line with no knob: the full colour
    shade = 0.55 / max(1, len(extras) - 1)
    return {(st, ex): tuple(c + (1 - c) * shade * extras.index(ex) for c in to_rgb(style_color(st, styles)))
            for st, ex in keys}


def latency_figure(stats: list[CellStats]) -> Figure | None:
    """(b) p50 and p99 against the load, one line per style: where def's threadpool queue starts.
    One panel per workload and deployment; the lines of a panel are its styles (and other knobs)."""
    ok = [s for s in stats if s.n > 0]
    if not ok:
        return None
    styles = unique(s.style for s in ok)
    # an open loop's load is its rate (its users are just one per Locust process)
    load = "rate" if all(s.load_model == "open" for s in ok) else "users"
    split = Split(ok, ("subject", *pl.DEPLOYMENT), pl.LOADS)
    panels = unique(split.panel_of(s) for s in ok)
    keys = unique((s.style, split.series_of(s)) for s in ok)
    colors = _series_colors(keys, styles)
    values = [v for s in ok for v in (s.p50_ms_mean, s.p99_ms_mean) if v > 0]
    # one scale kind for every panel: a queue's latency dwarfs a no-op's, so log where any does
    log = bool(values) and max(values) > 100 * min(values)
    fig, axes = _grid(len(panels), 3.0, 0.9)
    knees: dict[int, Any] = {}
    for ax, panel in zip(axes, panels, strict=True):
        cells = [s for s in ok if split.panel_of(s) == panel]
        for key in keys:
            line = sorted((s for s in cells if (s.style, split.series_of(s)) == key),
                          key=lambda s: getattr(s, load))
            x = [getattr(s, load) for s in line]
            ax.errorbar(x, [s.p99_ms_mean for s in line], yerr=[s.p99_ms_ci95 for s in line],
                        color=colors[key], marker="o", capsize=3)
            ax.errorbar(x, [s.p50_ms_mean for s in line], yerr=[s.p50_ms_ci95 for s in line],
                        color=colors[key], marker=".", linestyle="--", capsize=3)
        sat = [s for s in cells if s.any_saturated]
        ax.scatter([getattr(s, load) for s in sat], [s.p99_ms_mean for s in sat], marker="X", s=90,
                   facecolor="none", edgecolor="red", zorder=5)
        if load == "users":
            _mark_threadpool(ax, cells, knees)
        if len({getattr(s, load) for s in cells}) == 1:
            ax.set_xticks([getattr(cells[0], load)])  # one load: no scale of made-up ones around it
        if log:
            ax.set_yscale("log")
            pl.log_ticks(ax.yaxis, *ax.get_ylim())
        else:
            ax.set_ylim(bottom=0)  # a wide interval must not suggest negative latency
        ax.set_title(pl.wrap(panel, pl.title_chars(fig, 3)))
    pl.xlabel_below(axes, 3, "offered requests/s (open loop)" if load == "rate" else "concurrent users")
    fig.supylabel("latency, ms (mean of repeats, 95 % CI" + ("; log scale)" if log else ")"))
    handles: list[Any] = [Line2D([], [], color=colors[k], marker="o",
                                 label=pl.wrap(", ".join(filter(None, k)), pl.LEGEND_CHARS)) for k in keys]
    handles += [Line2D([], [], color="black", marker="o", label="p99"),
                Line2D([], [], color="black", marker=".", linestyle="--", label="p50")]
    handles += [Line2D([], [], color="gray", linestyle=style, label=f"def threadpool full above {size} users")
                for size, style in knees.items()]
    if any(s.any_saturated for s in ok):
        handles.append(Line2D([], [], color="red", marker="X", markerfacecolor="none", linestyle="none",
                              markersize=9, label=LIGHTER_NOTE))
    pl.legend_below(fig, handles)
    fig.suptitle("Latency p50 (dashed) and p99 (solid) against load")
    return fig


KNEE_STYLES = (":", "-.", (0, (1, 4)), (0, (5, 3)))


def _mark_threadpool(ax: Any, cells: list[CellStats], knees: dict[int, Any]) -> None:
    """A def endpoint runs in anyio's threadpool: beyond tokens x workers users, requests queue."""
    users = [s.users for s in cells]
    for size in unique(s.threadpool_tokens * s.workers for s in cells if s.style == "def"):
        if min(users) <= size <= max(users):
            style = knees.setdefault(size, KNEE_STYLES[len(knees) % len(KNEE_STYLES)])
            ax.axvline(size, color="gray", linestyle=style, linewidth=1)


# name -> (caption, builder): the report's plots, in the order they appear
FIGURES: dict[str, tuple[str, Callable[[list[CellStats]], Figure | None]]] = {
    "rps": ("Requests per second, def vs async, per workload and worker count (whiskers: 95 % CI)",
            rps_figure),
    "latency": ("Latency p50/p99 against the load (concurrent users, or an open loop's offered rate) per "
                "workload: the threadpool knee", latency_figure),
    "cpu": ("Target CPU milliseconds per request, def vs async, per workload and worker count", cpu_figure),
}
# capacity.csv's knobs of a search (bench/commands/capacity.py RESULT_COLUMNS): its panel's title
SEARCH_KNOBS = ("workload", "server", "workers", "threadpool_tokens", "sleep_ms", "cpu_iterations",
                "arrivals")


def _typed(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def capacity_figure(steps: list[dict[str, str]], results: list[dict[str, str]]) -> Figure | None:
    """The hockey stick: p99 (solid) and p50 (dashed) against the offered rate, def and async side
    by side, one panel per searched endpoint, the objective as a line and each capacity marked."""
    ran = [s for s in steps if float(s["p99_ms"]) > 0]
    if not ran:
        return None
    style_of = {r["search_id"]: r["style"] for r in results}
    panel_of = {sid: sid.split("-", 1)[-1] for sid in style_of}
    panels = unique(panel_of[s["search_id"]] for s in ran if s["search_id"] in panel_of)
    if not panels:
        return None
    styles = unique(style_of.values())
    shown = [k for k in SEARCH_KNOBS if len({r.get(k) for r in results}) > 1]  # what varies names a panel
    fig, axes = _grid(len(panels), 3.2, 0.9)
    for ax, panel in zip(axes, panels, strict=True):
        searches = [r for r in results if panel_of[r["search_id"]] == panel]
        caps = []
        for r in searches:
            points = sorted((float(s["rate"]), float(s["p50_ms"]), float(s["p99_ms"])) for s in ran
                            if s["search_id"] == r["search_id"])
            if not points:
                continue
            color = style_color(r["style"], styles)
            rates = [p[0] for p in points]
            ax.plot(rates, [p[2] for p in points], color=color, marker="o")
            ax.plot(rates, [p[1] for p in points], color=color, marker=".", linestyle="--")
            cap = float(r["capacity_rps"])
            if cap > 0:
                ax.axvline(cap, color=color, linestyle=":", linewidth=1)
                caps.append(f"{r['style']} {cap:.0f}")
        ax.axhline(float(searches[0]["slo_p99_ms"]), color="red", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        pl.log_ticks(ax.yaxis, *ax.get_ylim())
        ramp = sorted({float(s["rate"]) for s in ran if s["phase"] in ("up", "down")
                       and panel_of.get(s["search_id"]) == panel})
        ramp = ramp[::-(-len(ramp) // 6)]  # the ramp's rates, labelled as such: six at most
        ax.set_xticks(ramp, [f"{rate:g}" for rate in ramp])
        ax.xaxis.set_minor_formatter(NullFormatter())
        name = ", ".join(pl.value_text(k, _typed(searches[0][k])) for k in shown if k in searches[0])
        ax.set_title("\n".join(filter(None, [name or (panel if len(panels) > 1 else ""),
                                             "capacity, req/s: " + ", ".join(caps) if caps else ""])),
                     fontsize=10)
    pl.xlabel_below(axes, 3, "offered requests/s (open loop, log scale)")
    fig.supylabel("latency from the due time, ms (log scale)")
    slos = {r["slo_p99_ms"] for r in results}
    handles: list[Any] = [Line2D([], [], color=style_color(st, styles), marker="o", label=st)
                          for st in styles]
    handles += [Line2D([], [], color="black", marker="o", label="p99"),
                Line2D([], [], color="black", marker=".", linestyle="--", label="p50"),
                Line2D([], [], color="gray", linestyle=":",
                       label="capacity (highest rate within the objective)"),
                Line2D([], [], color="red", label=f"objective: p99 {float(slos.pop()):g} ms" if len(slos) == 1
                       else "objective: p99")]
    pl.legend_below(fig, handles)
    fig.suptitle("Latency against offered rate (open loop)")
    return fig
