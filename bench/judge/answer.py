"""The answer first: one row per question the run can answer, then at most a few sentences.

A question is a group of cells that differ only in style (a workload or endpoint at one load, one
server, one worker count...). Its row says which style wins on throughput and on p99 and by how
much, with the ratio's 95 % interval; what bound each side; and the one thing to change. Where the
run cannot say, the row says why instead of a ratio: one repeat (no interval), Locust was the limit
(the figures are its, not the target's), or the interval holds 1x (within noise). The caveats
that apply to many rows are said once, below the table, and the suggestions are grouped.

The report (html and md), the end of `bench run` and ci-summary.md all render this one value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.judge.verdict import NOT_PAIRED, PAIRS, Limit, limit_of, ok_rows, ratio, style_groups
from bench.results.row import SummaryRow
from bench.results.stats import CellStats
from bench.results.varying import reads, varying

HEADER = ("question", "throughput (req/s)", "p99 latency", "what bound it", "change first")
BOUND = {"the load generator": "Locust", "the load itself": "the load (nothing saturated)"}
NOISE = "within noise"
FLOOR = "a floor: Locust was the limit"
ONE_REPEAT = "1 repeat: no interval"
# the one thing to change, short, from what bound the side the row recommends (Limit.suggestion
# says it in full, grouped under the table)
SHORT = {"the load generator": "more CPUs for Locust", "the threadpool": "more threadpool tokens",
         "the connection pool": "a bigger connection pool", "the offered rate": "a higher rate",
         "the load itself": "nothing saturated: more load",
         "the threadpool and the connection pool waiting on each other": "db_pool_size >= tokens"}


@dataclass(frozen=True)
class Comparison:
    """second over first for one figure, oriented so that > 1 means `second` is better."""
    factor: float
    low: float
    high: float
    n: int  # the fewer ok repeats of the two sides

    @property
    def significant(self) -> bool:
        return self.n > 1 and (self.low > 1 or self.high < 1)


def compare(better: float, better_half: float, worse: float, worse_half: float, n: int) -> Comparison:
    """better / worse with its 95 % interval (verdict.ratio: the one formula of the report)."""
    factor, low, high = ratio(better, better_half, worse, worse_half)
    return Comparison(factor, low, high, n if factor else 0)


def verdict_text(c: Comparison, first: str, second: str, lower: bool) -> str:
    """"async 1.24x (1.10-1.39)", "def 11x lower (8.2-15)"; where the run cannot say which wins,
    why, and no ratio (the comparisons in full give it)."""
    if not c.factor:
        return "no figures"
    if c.n < 2:
        return ONE_REPEAT
    if not c.significant:
        return NOISE
    winner, factor, low, high = ((second, c.factor, c.low, c.high) if c.factor > 1
                                 else (first, 1 / c.factor, 1 / c.high, 1 / c.low))
    interval = f"({_end(low, down=True)}-{_end(high, down=False)})"
    return f"{winner} {_x(factor)}" + (" lower" if lower else "") + f" {interval}"


def _num(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.0f}"


def _end(x: float, down: bool) -> str:
    """An interval's end, rounded away from the ratio (down for the low end) so that a significant
    win never shows a range that holds 1.00."""
    digits = 2 if x < 10 else 0
    scaled = x * 10**digits
    rounded = (math.floor(scaled) if down else math.ceil(scaled)) / 10**digits
    text = f"{rounded:.{digits}f}"
    return f"{x:.3f}" if text == "1.00" else text


def _x(x: float) -> str:
    return _num(x) + "x"


@dataclass(frozen=True)
class Line:
    question: str
    throughput: str
    p99: str
    bound: str
    change: str
    # for the sentences under the table: the full suggestion, and the sharpest figure of the row
    suggestion: str = ""
    sharpest: tuple[bool, float, str] = (False, 0.0, "")  # (established, factor, sentence)

    def cells(self) -> list[str]:
        return [self.question, self.throughput, self.p99, self.bound, self.change]


@dataclass(frozen=True)
class Answer:
    lines: tuple[Line, ...]
    notes: tuple[str, ...]

    def table(self) -> tuple[list[str], list[list[str]]]:
        return list(HEADER), [line.cells() for line in self.lines]

    def text(self) -> str:
        """Fixed-width, for the terminal at the end of `bench run`; the notes alone when no question
        has both sides (one style, no ok cell)."""
        if not self.lines:
            return "\n".join(self.notes)
        header, rows = self.table()
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
               for r in [header, *rows]]
        out.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([*out, "", *self.notes])

    def markdown(self) -> list[str]:
        if not self.lines:
            return list(self.notes)
        header, rows = self.table()
        cell = lambda t: t.replace("|", "\\|")  # noqa: E731
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        return [*out, "", *self.notes]


def _question(s: CellStats, knobs: list[str]) -> str:
    what = f"endpoint {s.endpoint}" if s.endpoint else s.workload
    load = f"{s.rate:g} req/s offered" if s.load_model == "open" else f"{s.users} users"
    extra = [f"{p} {getattr(s, p)}" for p in knobs if reads(s, p)]
    return ", ".join([str(what), load, *extra])


def _bound(first: str, lf: Limit, second: str, ls: Limit) -> str:
    short = lambda lim: BOUND.get(lim.name, lim.name.removeprefix("the "))  # noqa: E731
    if lf.name == ls.name:
        return f"both: {short(lf)}"
    return f"{first}: {short(lf)}; {second}: {short(ls)}"


def _change(lim: Limit) -> str:
    if lim.name in SHORT:
        return SHORT[lim.name]
    if lim.name == "the target's CPU":
        return "more workers" if lim.suggestion.startswith("add workers") else "more target cores"
    if lim.name == "the event loop":
        return "more workers" if lim.suggestion.startswith("add workers") else "unblock the event loop"
    return lim.suggestion


def line_for(d: CellStats, a: CellStats, first: str, second: str, question: str,
             by_cell: dict[str, list[SummaryRow]]) -> Line:
    n = min(d.n, a.n)
    ld, la = limit_of(by_cell[d.cell_id]), limit_of(by_cell[a.cell_id])
    rps = compare(a.rps_mean, a.rps_ci95, d.rps_mean, d.rps_ci95, n)
    p99 = compare(d.p99_ms_mean, d.p99_ms_ci95, a.p99_ms_mean, a.p99_ms_ci95, n)
    bound = _bound(first, ld, second, la)
    if d.any_saturated or a.any_saturated:
        lim = ld if d.any_saturated else la
        return Line(question, FLOOR, FLOOR, bound, _change(lim), lim.suggestion)
    sharp = _sharpest(question, d, a, first, second, rps, p99)
    change, lim = _first_change(rps, p99, (first, ld), (second, la))
    return Line(question, verdict_text(rps, first, second, lower=False),
                verdict_text(p99, first, second, lower=True), bound, change, lim.suggestion, sharp)


def _first_change(rps: Comparison, p99: Comparison, first: tuple[str, Limit],
                  second: tuple[str, Limit]) -> tuple[str, Limit]:
    """The one thing to change: the style that wins (p99 first, then throughput), then what bound
    it, or what the other style would need; with no winner, what bound each."""
    wins = [c for c in (p99, rps) if c.significant]
    if not wins:
        if first[1].name == second[1].name:
            return _change(first[1]), first[1]
        return f"{first[0]}: {_change(first[1])}; {second[0]}: {_change(second[1])}", first[1]
    (winner, lw), (loser, ll) = (second, first) if wins[0].factor > 1 else (first, second)
    if lw.name == ll.name:
        return f"{winner}, then {_change(lw)}", lw
    return f"{winner} (or {loser} with {_change(ll)})", lw


def _sharpest(question: str, d: CellStats, a: CellStats, first: str, second: str, rps: Comparison,
              p99: Comparison) -> tuple[bool, float, str]:
    """The row's larger difference, as a sentence with both figures (an established one first)."""
    found = [(c.significant, max(c.factor, 1 / c.factor), c, name)
             for c, name in ((p99, "p99"), (rps, "req/s")) if c.factor]
    if not found:
        return False, 0.0, ""
    established, factor, c, name = max(found, key=lambda f: (f[0], f[1]))
    (win, ws), (lose, ls_) = ((a, second), (d, first)) if c.factor > 1 else ((d, first), (a, second))
    fig, unit = ("p99_ms_mean", "ms") if name == "p99" else ("rps_mean", "req/s")
    return established, factor, (f"{question}: {ws}'s {name} {_fig(getattr(win, fig))} against "
                                 f"{ls_}'s {_fig(getattr(lose, fig))} {unit}")


def _fig(x: float) -> str:
    """A figure to three significant digits or more: 6,107, 549, 12.3, 0.842."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.3g}"


def answer(stats: list[CellStats], rows: list[SummaryRow], merged: list[str] | None = None) -> Answer:
    """The table and its sentences, from the run's per-cell figures and rows."""
    by_cell = ok_rows(rows)
    knobs = varying([s for s in stats if s.n > 0], (*NOT_PAIRED, "workload", "endpoint", "users", "rate"))
    lines = []
    for styles in style_groups(stats):
        question = _question(next(iter(styles.values())), knobs)
        for first, second in PAIRS:
            if first in styles and second in styles:
                lines.append(line_for(styles[first], styles[second], first, second, question, by_cell))
    return Answer(tuple(lines), tuple(notes(lines, stats, merged or [])))


def notes(lines: list[Line], stats: list[CellStats], merged: list[str]) -> list[str]:
    """The sentences under the table: the sharpest result, then each caveat once, then the
    suggestions grouped by what they say."""
    out = []
    sharp = max((line for line in lines if line.sharpest[1]), key=lambda line: line.sharpest[:2],
                default=None)
    if sharp is not None:
        established, factor, sentence = sharp.sharpest
        out.append(f"{'Sharpest' if established else 'Largest (not established)'} difference: {sentence} "
                   f"({_x(factor)}).")
    ns = sorted({s.n for s in stats if s.n})
    if ns and ns[-1] < 2:
        out.append("One repeat: no ratio has an interval, so no difference here is established; "
                   "run with --set repeats=3 (or more) before trusting one.")
    elif ns:
        out.append(f"{'-'.join(map(str, sorted({ns[0], ns[-1]})))} interleaved repeats per cell; a ratio's "
                   f"range is its 95 % interval, and \"{NOISE}\" means that interval holds 1x.")
    floors = [s.cell_id for s in stats if s.any_saturated]
    if floors:
        out.append(f"Locust was the limit in {len(floors)} of {len(stats)} cells: their req/s are floors and "
                   "their latencies partly Locust's, so those rows compare nothing.")
    failed = [s.cell_id for s in stats if s.n == 0]
    if failed:
        out.append(f"{len(failed)} cell(s) failed every repeat and are left out: {', '.join(failed)}.")
    out += merged
    grouped: dict[str, list[str]] = {}
    for line in lines:
        if line.suggestion:
            grouped.setdefault(line.suggestion, []).append(line.question)
    for suggestion, questions in grouped.items():
        out.append(f"To go further on {'; '.join(questions)}: {suggestion}.")
    return out
