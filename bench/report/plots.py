"""The report's figures, built from per-cell stats (no file I/O here: write_report saves them).

Figures are made with matplotlib's object API (Figure, not pyplot), so no global state or GUI
backend is involved and the module works headless without calling matplotlib.use("Agg").

Every figure marks cells whose load generator saturated (hatched bars / X markers, explained in
the legend): their rps is what Locust could send, a floor on what the server can do.
Cells with no ok repeat (n = 0) have no figure to plot; the report lists them with their error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter, ScalarFormatter

from bench.results.stats import PARAMS, CellStats
from bench.scenario.keys import differs, reads

STYLE_COLORS = {"def": "tab:blue", "async": "tab:orange"}
OTHER_COLORS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
SATURATED_HATCH = "///"
SATURATED_NOTE = "load generator saturated: rps is a floor"
SHORT = {"users": "u", "threadpool_tokens": "tp", "workers": "w", "cpu_iterations": "it", "sleep_ms": "ms"}


def style_color(style: str, styles: list[str]) -> str:
    return STYLE_COLORS.get(style) or OTHER_COLORS[styles.index(style) % len(OTHER_COLORS)]


def varying(stats: list[CellStats], exclude: tuple[str, ...]) -> list[str]:
    """Parameters that differ between cells (so they must appear in labels), in PARAMS order."""
    return [p for p in PARAMS if p not in exclude and differs(stats, p)]


def label(s: CellStats, params: list[str]) -> str:
    # a knob this cell does not read (at its neutral value) names nothing about it
    return " ".join(f"{SHORT.get(p, p + '=')}{getattr(s, p)}" for p in params if reads(s, p))


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _grid(n: int, width: float, height: float) -> tuple[Figure, list[Any]]:
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def rps_figure(stats: list[CellStats]) -> Figure | None:
    """(a) requests/s, def vs async side by side per workload; one panel per server x workers."""
    ok = [s for s in stats if s.n > 0]
    if not ok:
        return None
    styles = _unique([s.style for s in ok])
    many_servers = len({s.server for s in ok}) > 1
    panels = _unique([(s.server, s.workers) for s in ok])
    extra = varying(ok, ("style", "server", "workers", "workload", "endpoint"))
    fig, axes = _grid(len(panels), 5.5, 4.0)
    width = 0.8 / len(styles)
    for ax, (server, workers) in zip(axes, panels, strict=True):
        cells = [s for s in ok if (s.server, s.workers) == (server, workers)]
        groups = _unique([(s.subject, label(s, extra)) for s in cells])
        for i, style in enumerate(styles):
            for g, group in enumerate(groups):
                for s in (c for c in cells if c.style == style and (c.subject, label(c, extra)) == group):
                    bars = ax.bar(g + (i - (len(styles) - 1) / 2) * width, s.rps_mean, width,
                                  yerr=s.rps_ci95, capsize=3, color=style_color(style, styles),
                                  hatch=SATURATED_HATCH if s.any_saturated else None,
                                  edgecolor="red" if s.any_saturated else "black", linewidth=0.6)
                    # the figure itself: bar lengths on a log axis do not read as ratios
                    ax.bar_label(bars, labels=[f"{s.rps_mean:.0f}"], fontsize="small", padding=2)
        ax.set_xticks(range(len(groups)), [f"{w}\n{extra_label}".strip() for w, extra_label in groups])
        ax.set_title(f"{server}, {workers} worker{'s' if workers != 1 else ''}" if many_servers
                     else f"{workers} worker{'s' if workers != 1 else ''}")
        subject = "endpoint" if ok[0].endpoint else "workload"
        ax.set_xlabel(subject + (" and " + ", ".join(extra) if extra else ""))
        rates = [s.rps_mean for s in cells if s.rps_mean > 0]
        if rates and max(rates) > 10 * min(rates):
            # a no-op beside a CPU loop: on a linear axis the slower workload's bars would be flat
            ax.set_yscale("log")
            ax.set_ylabel("requests/s (mean, 95 % CI; log scale)")
            ax.set_ylim(top=max(rates) * 2)  # room for the labels
        else:
            ax.set_ylabel("requests/s (mean, 95 % CI)")
            ax.set_ylim(0, max([*rates, 1.0]) * 1.15)
        ax.set_xlim(-0.8, len(groups) - 0.2)  # one group must not stretch into a wall of colour
    handles = [Patch(facecolor=style_color(st, styles), edgecolor="black", label=st) for st in styles]
    if any(s.any_saturated for s in ok):
        handles.append(Patch(facecolor="white", edgecolor="red", hatch=SATURATED_HATCH, label=SATURATED_NOTE))
    # below the panels, where it can hide no bar
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    fig.suptitle(f"Throughput: {' vs '.join(styles)}")
    return fig


def latency_figure(stats: list[CellStats]) -> Figure | None:
    """(b) p50 and p99 against users, one line per style: where def's threadpool queue starts."""
    ok = [s for s in stats if s.n > 0]
    if not ok:
        return None
    styles = _unique([s.style for s in ok])
    workloads = _unique([s.subject for s in ok])
    # an open loop's load is its rate (its users are just one per Locust process)
    load = "rate" if all(s.load_model == "open" for s in ok) else "users"
    extra = varying(ok, ("style", "workload", "endpoint", "users", "rate", "max_inflight"))
    fig, axes = _grid(len(workloads), 5.5, 4.0)
    for ax, workload in zip(axes, workloads, strict=True):
        cells = [s for s in ok if s.subject == workload]
        keys = _unique([(s.style, label(s, extra)) for s in cells])
        seen: set[str] = set()
        for k, (style, extra_label) in enumerate(keys):
            line = sorted((s for s in cells if (s.style, label(s, extra)) == (style, extra_label)),
                          key=lambda s: getattr(s, load))
            users = [getattr(s, load) for s in line]
            # a style's first line has the style's colour everywhere; further lines of it get others
            color = OTHER_COLORS[k % len(OTHER_COLORS)] if style in seen else style_color(style, styles)
            seen.add(style)
            name = f"{style} {extra_label}".strip()
            ax.errorbar(users, [s.p99_ms_mean for s in line], yerr=[s.p99_ms_ci95 for s in line],
                        color=color, marker="o", capsize=3, label=f"{name} p99")
            ax.errorbar(users, [s.p50_ms_mean for s in line], yerr=[s.p50_ms_ci95 for s in line],
                        color=color, marker=".", linestyle="--", capsize=3, label=f"{name} p50")
        sat = [s for s in cells if s.any_saturated]
        if sat:
            ax.scatter([getattr(s, load) for s in sat], [s.p99_ms_mean for s in sat], marker="X", s=90,
                       facecolor="none", edgecolor="red", zorder=5, label=SATURATED_NOTE)
        if load == "users":
            _mark_threadpool(ax, cells)
        values = [v for s in cells for v in (s.p50_ms_mean, s.p99_ms_mean) if v > 0]
        if values and max(values) / min(values) > 100:  # a queue's latency dwarfs noop's otherwise
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)  # a wide interval must not suggest negative latency
        ax.set_title(f"Latency vs {'offered rate' if load == 'rate' else 'users'}: {workload}")
        ax.set_xlabel("offered requests/s (open loop)" if load == "rate" else "concurrent users")
        ax.set_ylabel("latency (ms, mean of repeats, 95 % CI)")
        ax.legend(fontsize="x-small")
    fig.suptitle("Latency p50 (dashed) and p99 (solid) against load")
    return fig


def _mark_threadpool(ax: Any, cells: list[CellStats]) -> None:
    """A def endpoint runs in anyio's threadpool: beyond tokens x workers users, requests queue."""
    users = [s.users for s in cells]
    sizes = _unique([s.threadpool_tokens * s.workers for s in cells if s.style == "def"])
    for size in sizes:
        if min(users) <= size <= max(users):
            ax.axvline(size, color="gray", linestyle=":", linewidth=1,
                       label=f"threadpool size {size} (tokens x workers)")


def cpu_figure(stats: list[CellStats]) -> Figure | None:
    """(c) the target's CPU milliseconds per request, one bar per cell."""
    ok = [s for s in stats if s.n > 0]
    if not ok:
        return None
    styles = _unique([s.style for s in ok])
    fig = Figure(figsize=(8, 1.2 + 0.35 * len(ok)), layout="constrained")
    ax = fig.subplots()
    y = list(range(len(ok)))[::-1]  # first cell on top, like the tables
    for pos, s in zip(y, ok, strict=True):
        ax.barh(pos, s.cpu_ms_per_request_mean, color=style_color(s.style, styles),
                hatch=SATURATED_HATCH if s.any_saturated else None,
                edgecolor="red" if s.any_saturated else "black", linewidth=0.6)
    ax.set_yticks(y, [s.cell_id for s in ok], fontsize="small")
    ax.set_xlabel("target CPU time per request (ms)")
    ax.set_title("Server CPU cost per request")
    if not any(s.cpu_ms_per_request_mean for s in ok):
        ax.text(0.5, 0.5, "no CPU figures recorded", transform=ax.transAxes, ha="center")
    handles = [Patch(facecolor=style_color(st, styles), edgecolor="black", label=st) for st in styles]
    if any(s.any_saturated for s in ok):
        handles.append(Patch(facecolor="white", edgecolor="red", hatch=SATURATED_HATCH, label=SATURATED_NOTE))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    return fig


# name -> (caption, builder): the report's plots, in the order they appear
FIGURES: dict[str, tuple[str, Callable[[list[CellStats]], Figure | None]]] = {
    "rps": ("Requests per second, def vs async, per workload and worker count (whiskers: 95 % CI)",
            rps_figure),
    "latency": ("Latency p50/p99 against concurrent users per workload: the threadpool knee", latency_figure),
    "cpu": ("Target CPU milliseconds per request, per cell", cpu_figure),
}


def capacity_figure(steps: list[dict[str, str]], results: list[dict[str, str]]) -> Figure | None:
    """The hockey stick: p99 (solid) and p50 (dashed) against the offered rate, def and async side
    by side, one panel per searched endpoint, the objective as a line and each capacity marked."""
    ran = [s for s in steps if float(s["p99_ms"]) > 0]
    if not ran:
        return None
    style_of = {r["search_id"]: r["style"] for r in results}
    panel_of = {sid: sid.split("-", 1)[-1] for sid in style_of}
    panels = _unique(panel_of[s["search_id"]] for s in ran if s["search_id"] in panel_of)
    if not panels:
        return None
    styles = _unique(style_of.values())
    fig, axes = _grid(len(panels), 5.5, 4.0)
    for ax, panel in zip(axes, panels, strict=True):
        for r in (r for r in results if panel_of[r["search_id"]] == panel):
            points = sorted((float(s["rate"]), float(s["p50_ms"]), float(s["p99_ms"])) for s in ran
                            if s["search_id"] == r["search_id"])
            if not points:
                continue
            color = style_color(r["style"], styles)
            rates = [p[0] for p in points]
            ax.plot(rates, [p[2] for p in points], color=color, marker="o", label=f"{r['style']} p99")
            ax.plot(rates, [p[1] for p in points], color=color, marker=".", linestyle="--",
                    label=f"{r['style']} p50")
            cap = float(r["capacity_rps"])
            if cap > 0:
                ax.axvline(cap, color=color, linestyle=":", linewidth=1,
                           label=f"{r['style']} capacity {cap:.0f} req/s")
        slo = float(next(r["slo_p99_ms"] for r in results if panel_of[r["search_id"]] == panel))
        ax.axhline(slo, color="red", linewidth=1, label=f"objective: p99 {slo:g} ms")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())  # plain numbers: 100, 1000 rather than 10^2
        ramp = sorted({float(s["rate"]) for s in ran if s["phase"] in ("up", "down")
                       and panel_of.get(s["search_id"]) == panel})
        ax.set_xticks(ramp, [f"{rate:g}" for rate in ramp])  # the ramp's rates, labelled as such
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(panel.replace("-cap-", ", ").replace("-", " "))
        ax.set_xlabel("offered requests/s (open loop, log scale)")
        ax.set_ylabel("latency from the due time (ms, log scale)")
        ax.legend(fontsize="x-small")
    fig.suptitle("Latency against offered rate (open loop)")
    return fig
