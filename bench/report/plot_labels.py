"""What the report's figures call their cells: only the knobs that vary across the cells and that
a cell reads, each written as a reader would say it ("100 users", "2 workers", "tp40").

A closed-loop cell does not read the open loop's knobs (its max_inflight echoes its users), an
open-loop cell's users are its Locust processes, a no-op does not read sleep_ms, and a knob
resolved from others ("auto" Locust processes) names nothing the others do not already say:
none of these may turn into an axis, a panel or a label.

Also here, the figures' other text: numbers, log-axis ticks, legends and axis labels placed so
that matplotlib's constrained layout keeps every one inside the figure and clear of the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.textpath import TextPath
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.results.stats import CellStats
from bench.results.varying import reads, varying

# the deployment: a figure's panels, so that a panel's bars or lines compare like with like
DEPLOYMENT = ("backend", "server", "workers")
LOADS = ("users", "rate")  # the load axis: users in a closed loop, the offered rate in an open one
SMALL = 9.0  # legends and numbers on bars, the smallest text; the rest keeps matplotlib's 10 pt


def _plural(word: str) -> Callable[[Any], str]:
    return lambda v: f"{v} {word}{'' if v == 1 else 's'}"


FORMATS: dict[str, Callable[[Any], str]] = {
    "users": _plural("user"),
    "workers": _plural("worker"),
    "rate": lambda v: f"{v:g} req/s offered",
    "threadpool_tokens": lambda v: f"tp{v}",  # as in the cell ids of the report's tables
    "cpu_iterations": lambda v: f"{v:,} steps",
    "sleep_ms": lambda v: f"sleep {v} ms",
    "load_model": lambda v: f"{v} loop",
}
NAMED = ("backend", "server", "style", "workload", "endpoint")  # their value says what they are


def value_text(param: str, value: Any) -> str:
    if param in FORMATS:
        return FORMATS[param](value)
    return str(value) if param in NAMED else f"{param}={value}"


def label(s: CellStats, params: Iterable[str]) -> str:
    """The cell's values of these knobs, those it does not read left out (another cell's knob, at
    its neutral value here, says nothing about this one)."""
    return ", ".join(value_text(p, getattr(s, p)) for p in params if reads(s, p))


# where a label wraps, at its commas: a row label beside its bars, a legend entry, a panel's title
ROW_CHARS = 32
LEGEND_CHARS = 48
MAX_SERIES = 2  # lines of one style in a panel: a dark and a light shade of its colour


def title_chars(fig: Figure, cols: int) -> int:
    """The characters of a 12 pt title a panel's width holds (a character is at most ~0.62 em)."""
    return max(12, int(fig.get_figwidth() / cols * 72 / (0.62 * 12)) - 2)


def wrap(text: str, width: int) -> str:
    """The label over several lines at its commas, each at most `width` characters where a part
    allows: a long label then grows the figure's height, never its width."""
    lines: list[str] = []
    for part in text.split(", "):
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += ", " + part
        else:
            lines.append(part)
    return ",\n".join(lines)


def unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


class Split:
    """A figure's cells split three ways, each named by only what varies: its panels (`panel`
    knobs), the positions along a panel's category or x axis (`along`; None: every other knob that
    varies) and the series at each position (the style, and the knobs left)."""

    def __init__(self, cells: list[CellStats], panel: tuple[str, ...], along: tuple[str, ...] | None) -> None:
        # the subject (a workload, or a team's endpoint) stands for both knobs: it varies or not
        keys = (["subject"] if len({s.subject for s in cells}) > 1 else []) + varying(
            cells, ("style", "workload", "endpoint"))
        self.panel = [k for k in keys if k in panel]
        rest = [k for k in keys if k not in panel]
        self.along = rest if along is None else [k for k in rest if k in along]
        self.series = [k for k in rest if k not in self.along]
        if len({self.text(s, self.series) for s in cells}) > MAX_SERIES:
            # more lines than two shades of each style's colour tell apart: they get panels instead
            self.panel, self.series = self.panel + self.series, []
        # Cells alike in all they read (a no-op under two sleep_ms) would share a bar or a point:
        # each is told apart by its place among them, in the series (along None) or the position
        self.nth: dict[str, str] = {}
        alike: dict[tuple[str, ...], list[str]] = {}
        for s in cells:
            key = (s.style, *(self.text(s, p) for p in (self.panel, self.along, self.series)))
            alike.setdefault(key, []).append(s.cell_id)
        for ids in (ids for ids in alike.values() if len(ids) > 1):
            self.nth.update({cid: f"cell {i} of {len(ids)}" for i, cid in enumerate(ids, 1)})
        self.tagged = "along" if along is None else "series"

    @staticmethod
    def text(s: CellStats, params: list[str]) -> str:
        named = label(s, [p for p in params if p != "subject"])
        return ", ".join(([s.subject] if "subject" in params else []) + ([named] if named else []))

    def panel_of(self, s: CellStats) -> str:
        return self.text(s, self.panel)

    def _tag(self, s: CellStats, text: str, where: str) -> str:
        nth = self.nth.get(s.cell_id, "") if where == self.tagged else ""
        return ", ".join(filter(None, [text, nth]))

    def along_of(self, s: CellStats) -> str:
        return self._tag(s, self.text(s, self.along), "along")

    def series_of(self, s: CellStats) -> str:
        return self._tag(s, self.text(s, self.series), "series")


def legend_columns(labels: list[str], width_in: float, fontsize: float) -> int:
    """As many legend columns as the figure's width holds, measured as matplotlib lays a legend
    out: its entries split into consecutive columns (np.array_split), each entry a 2 em handle,
    0.8 em of gap and its text, 2 em between columns and a border round them all."""
    em = fontsize / 72
    entries = [max(TextPath((0, 0), line, size=fontsize).get_extents().width for line in t.split("\n")) / 72
               + 2.8 * em for t in labels]
    for ncols in range(len(entries), 1, -1):
        columns = [c for c in np.array_split(np.array(entries), ncols) if len(c)]
        if sum(float(max(c)) for c in columns) + 2.0 * em * (len(columns) - 1) + 2.0 * em <= width_in - 0.3:
            return ncols
    return 1


def number(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _tick(v: float, _pos: Any = None) -> str:
    # plain numbers on log axes (100, 2k rather than 10^2): what the bars' own numbers read like
    return f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"


def log_ticks(axis: Any, lo: float, hi: float) -> None:
    """Decades only where the axis spans several; 1-2-5 steps where it spans one or two (else it
    could show a single tick). Minor ticks unlabelled: on a log axis they crowd."""
    subs = (1.0,) if hi / lo > 300 else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(FuncFormatter(_tick))
    axis.set_minor_formatter(NullFormatter())


def legend_below(fig: Figure, handles: list[Any]) -> None:
    """The figure's legend below its panels, where it hides nothing, in as many columns as the
    width holds; the figure grows by the legend's height, so the panels keep theirs."""
    labels = [h.get_label() for h in handles]
    ncols = legend_columns(labels, fig.get_figwidth(), SMALL)
    columns = np.array_split(np.array([t.count("\n") + 1 for t in labels]), ncols)
    lines = max(int(c.sum()) for c in columns)  # the tallest column's lines of text
    rows = max(len(c) for c in columns)
    # a line of 9 pt text is ~1.2 em; 0.5 em between entries, 0.4 em border and 0.6 em margin round them
    fig.set_figheight(fig.get_figheight() + (1.2 * lines + 0.5 * rows + 1.0) * SMALL / 72)
    fig.legend(handles=handles, loc="outside lower center", fontsize=SMALL, ncols=ncols)


def xlabel_below(axes: list[Any], cols: int, text: str) -> None:
    # under each column's lowest panel: a figure-wide supxlabel would share the bottom edge with
    # the legend, and constrained layout does not stack the two
    for i, ax in enumerate(axes):
        if i + cols >= len(axes):
            ax.set_xlabel(text)
