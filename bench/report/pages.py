"""A run directory -> report/ (PNG plots), report.md and a self-contained report.html.

The tables are built by pure functions (rows/stats/env -> lists of strings) and rendered twice,
as Markdown (images by relative path, for browsing the repository) and as HTML (images inlined
as base64 data URIs, so the file can be mailed or opened from disk on its own). Links to each
repeat's Locust report (cells/<cell_id>/r<k>/measure.html) are relative to the run directory,
where both report files live.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.judge import checks as checks_mod
from bench.judge import verdict
from bench.judge.answer import Answer, answer
from bench.report import profiles
from bench.report.environment import env_table, facts_table, measured
from bench.report.plots import FIGURES, capacity_figure
from bench.results.row import SummaryRow
from bench.results.rundir import RunDir, atomic_write, writing
from bench.results.stats import CellStats, summarize, tightest_headroom

Table = tuple[list[str], list[list[str]]]  # header, rows


@dataclass
class Report:
    title: str
    env: Table
    stats: Table
    inside: Table
    failed: list[str]
    checks: list[str] | None  # None: the scenario defines no checks
    plots: list[tuple[str, str]] = field(default_factory=list)  # (name, caption)
    links: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # cell -> (text, href)
    says: list[str] = field(default_factory=list)  # each comparison in full (bench/judge/verdict.py)
    capacity: Table = ([], [])  # bench capacity's result per searched cell
    profile: Table = ([], [])  # where the target's CPU went, per profiled cell (bench/report/profiles.py)
    flames: dict[str, str] = field(default_factory=dict)  # cell -> its flame graph, relative
    answer: Answer = field(default_factory=lambda: Answer((), ()))  # the first screen
    facts: Table = ([], [])  # the environment's facts that change results; env holds the rest
    measured: str = ""  # under the title: what was measured, where, how long


CAPACITY_HEADER = ["search", "objective p99 ms", "capacity req/s", "p50 ms there", "p99 ms there",
                   "first failing req/s", "why", "stopped", "steps"]


def capacity_table(records: list[dict[str, str]]) -> Table:
    rows = []
    for r in records:
        first = f"{float(r['first_fail_rps']):g}" if r["first_fail_reason"] else ""
        rows.append([r["search_id"], f"{float(r['slo_p99_ms']):g}", f"{float(r['capacity_rps']):.1f}",
                     f"{float(r['p50_ms']):.1f}", f"{float(r['p99_ms']):.1f}", first, r["first_fail_reason"],
                     r["stopped_by"], r["steps"]])
    return CAPACITY_HEADER, rows


CAPACITY_CAPTION = "p50/p99 against the offered rate, def and async, with the objective and each capacity"
NOTE_CAPACITY = ("Open loop: requests leave at the offered rate whatever the target does, and each "
                 "latency counts from its due time. A step passes when its p99 is within the objective and "
                 "it served at least 99 % of the rate offered; the search doubles the rate from start_rps, "
                 "then bisects to within 5 %. Every step is in capacity_steps.csv and, as a cell, in the "
                 "tables below.")


def _ci(mean: float, half: float, n: int, digits: int) -> str:
    return f"{mean:.{digits}f}" + (f" ± {half:.{digits}f}" if n > 1 else "")


def stats_table(stats: list[CellStats]) -> Table:
    # a team's app has endpoints where the built-in one has workloads (a run has one or the other)
    subject = "endpoint" if any(s.endpoint for s in stats) else "workload"
    header = ["cell", "style", subject, "load", "server", "workers", "tokens", "n", "req/s",
              "p50 ms", "p99 ms", "CPU ms/req", "fail %", "flags"]
    rows = []
    for s in stats:
        flags = [f for f, on in (("FAILED", s.n == 0), (f"{s.n_failed} repeat(s) failed", s.n and s.n_failed),
                                 ("SATURATED (rps is a floor)", s.any_saturated)) if on]
        fail_pct = f"{100.0 * s.failures / s.requests:.2f}" if s.requests else ""
        # a cell with no ok repeat has no figures: blanks, not zeros that read like a measurement
        figures = [_ci(s.rps_mean, s.rps_ci95, s.n, 1), _ci(s.p50_ms_mean, s.p50_ms_ci95, s.n, 3),
                   _ci(s.p99_ms_mean, s.p99_ms_ci95, s.n, 3), f"{s.cpu_ms_per_request_mean:.3f}",
                   fail_pct] if s.n else [""] * 5
        load = f"{s.rate:g} req/s offered" if s.load_model == "open" else f"{s.users} users"
        rows.append([s.cell_id, s.style, s.subject, load, s.server, str(s.workers),
                     str(s.threadpool_tokens), str(s.n), *figures, "; ".join(flags)])
    return header, rows


def inside_table(rows: list[SummaryRow]) -> Table:
    """Why a cell is fast or slow, per cell (worst repeat): the threadpool queue and the event loop's
    lag as each target worker saw them, the target's resources and the load generator's CPU."""
    header = ["cell", "threads busy", "requests waiting for a thread", "connections in use",
              "requests waiting for a connection", "loop lag p99 ms", "target CPU %",
              "target RSS MB", "target threads", "Locust CPU %", "Locust headroom x", "Locust loop lag ms"]
    by_cell: dict[str, list[SummaryRow]] = {}
    for r in rows:
        if r.status == "ok":
            by_cell.setdefault(r.cell_id, []).append(r)
    out = []
    for cell, rs in by_cell.items():
        worst = [max(getattr(r, f) for r in rs) for f in ("threadpool_busy_max", "threadpool_waiting_max",
                                                           "db_pool_busy_max", "db_pool_waiting_max")]
        out.append([cell, *map(str, worst), f"{max(r.loop_lag_p99_ms for r in rs):.1f}",
                    f"{max(r.target_cpu_pct for r in rs):.0f}", f"{max(r.target_rss_mb for r in rs):.0f}",
                    str(max(r.target_threads for r in rs)), f"{max(r.loadgen_cpu_pct for r in rs):.0f}",
                    _headroom(rs), f"{max(r.loadgen_lag_ms for r in rs):.1f}"])
    return header, out


def _headroom(rows: list[SummaryRow]) -> str:
    tightest = tightest_headroom(rows)
    return f"{tightest:.2f}" if tightest else ""


NOTE_INSIDE = ("Sampled every 10 ms inside each target worker, worst repeat shown: threads busy = anyio "
               "tokens in use by def endpoints, waiting = def requests queued for a token, connections = "
               "the database pools' (db workloads: in use, and requests waiting for one), loop lag = how "
               "late a 10 ms timer fires (a blocking call in async def shows here). Locust headroom = the "
               "requests/s its CPUs allow at its measured CPU cost per request over the requests/s it sent "
               "(under 1.1: Locust set the pace); Locust loop lag = mean lateness of a 20 ms timer in its "
               "own event loop (over 1 ms: it waited for a CPU).")


def failed_list(rows: list[SummaryRow]) -> list[str]:
    return [f"{r.cell_id} repeat {r.repeat}: {r.error or 'no error recorded'}"
            for r in rows if r.status != "ok"]


def check_results(rows: list[SummaryRow], env: dict[str, Any]) -> list[str] | None:
    """The stored scenario's [checks] on these rows; None when it has none."""
    scenario = env.get("scenario")
    checks = scenario.get("checks") if isinstance(scenario, dict) else None
    if not checks:
        return None
    try:
        return checks_mod.evaluate(rows, checks)
    except ValueError as exc:
        return [f"checks not evaluated: {exc}"]


def locust_links(run: RunDir, rows: list[SummaryRow]) -> dict[str, list[tuple[str, str]]]:
    links: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        rel = f"{run.cell_rel(r.cell_id, r.repeat, r.attempt)}/measure.html"
        if (run.path / rel).is_file():
            links.setdefault(r.cell_id, []).append((f"r{r.repeat}", rel))
    return links


NOTE_CI = "Mean over ok repeats, ± the 95 % confidence half-width (Student t) when n > 1."


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    header, rows = table
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]


def _answer_md(rep: Report) -> list[str]:
    if not rep.answer.lines:
        return [f"- {_md_cell(line)}" for line in rep.says] or ["No ok cell to draw a conclusion from."]
    return rep.answer.markdown()


def render_markdown(rep: Report) -> str:
    """The answer first, then the plots, then the tables behind them; the environment last."""
    out = [f"# {rep.title}", "", *([rep.measured, ""] if rep.measured else []), "## The answer", "",
           *_answer_md(rep), ""]
    if rep.checks is not None:
        out += ["## Checks", "", *([f"- FAIL: {m}" for m in rep.checks] or ["All checks passed."]), ""]
    others = [(n, c) for n, c in rep.plots if n != "capacity"]
    if others or not rep.capacity[1]:
        out += ["## Plots", ""]
    for name, cap in others:
        out += [f"![{cap}](report/{name}.png)", "", cap, ""]
    if not rep.plots:
        out += ["No ok cell to plot.", ""]
    if rep.capacity[1]:
        out += ["## Capacity at the objective", "", *_md_table(rep.capacity), "", NOTE_CAPACITY, ""]
        if any(name == "capacity" for name, _ in rep.plots):
            out += ["![capacity](report/capacity.png)", ""]
    out += ["## Per-cell results", ""]
    header, rows = rep.stats
    if rows:
        links = [" ".join(f"[{t}]({h})" for t, h in rep.links.get(row[0], [])) for row in rows]
        out += _md_table(([*header, "Locust"], [[*row, link] for row, link in zip(rows, links, strict=True)]))
    else:
        out.append("No cell ran.")
    out += ["", NOTE_CI, ""]
    if rep.inside[1]:
        out += ["## Inside the target", "", *_md_table(rep.inside), "", NOTE_INSIDE, ""]
    if rep.profile[1]:
        header, rows = rep.profile
        out += ["## Where the target's CPU went", "",
                *_md_table(([*header, "flame graph"],
                            [[*row, f"[profile.svg]({rep.flames[row[0]]})"] for row in rows])),
                "", profiles.NOTE, ""]
    if rep.answer.lines and rep.says:
        out += ["## Each comparison in full", "", *(f"- {_md_cell(line)}" for line in rep.says), ""]
    if rep.failed:
        out += ["## Failed", "", *(f"- {_md_cell(f)}" for f in rep.failed), ""]
    out += ["## Environment", "", *_md_table(rep.facts), "", "<details><summary>everything env.json holds"
            "</summary>", "", *_md_table(rep.env), "", "</details>", ""]
    return "\n".join(out)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already: the caller escapes text (and builds links)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _escaped(table: Table) -> tuple[list[str], list[list[str]]]:
    header, rows = table
    return [html.escape(h) for h in header], [[html.escape(c) for c in row] for row in rows]


CSS = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
       "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:2px 6px}"
       "th{background:#eee}img{max-width:100%}.fail{color:#b00}"
       "#answer td:first-child{font-weight:bold}.notes{font-size:0.9em}")


def _figure(name: str, caption: str, images: dict[str, bytes]) -> str:
    data = base64.b64encode(images[name]).decode("ascii")
    return (f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _answer_html(rep: Report) -> str:
    esc = html.escape
    if not rep.answer.lines:
        says = "".join(f"<li>{esc(line)}</li>" for line in rep.says)
        return f"<ul>{says}</ul>" if says else "<p>No ok cell to draw a conclusion from.</p>"
    notes = "".join(f"<li>{esc(n)}</li>" for n in rep.answer.notes)
    return (_html_table(*_escaped(rep.answer.table())).replace("<table>", "<table id='answer'>", 1)
            + (f"<ul class='notes'>{notes}</ul>" if notes else ""))


def render_html(rep: Report, images: dict[str, bytes]) -> str:
    """One file with everything in it: images as data URIs, links relative to the run directory;
    the answer first, then the plots, then the tables behind them."""
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(rep.title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{esc(rep.title)}</h1>"
             + (f"<p>{esc(rep.measured)}</p>" if rep.measured else ""),
             "<h2>The answer</h2>" + _answer_html(rep)]
    if rep.checks is not None:
        items = "".join(f"<li class='fail'>FAIL: {esc(m)}</li>" for m in rep.checks)
        parts.append("<h2>Checks</h2>" + (f"<ul>{items}</ul>" if items else "<p>All checks passed.</p>"))
    others = [(n, c) for n, c in rep.plots if n != "capacity"]
    if others or not rep.capacity[1]:
        parts.append("<h2>Plots</h2>")
    for name, cap in others:
        parts.append(_figure(name, cap, images))
    if not rep.plots:
        parts.append("<p>No ok cell to plot.</p>")
    if rep.capacity[1]:
        parts.append("<h2>Capacity at the objective</h2>" + _html_table(*_escaped(rep.capacity))
                     + f"<p>{esc(NOTE_CAPACITY)}</p>")
        if "capacity" in images:
            parts.append(_figure("capacity", "latency against offered rate", images))
    parts.append("<h2>Per-cell results</h2>")
    header, rows = _escaped(rep.stats)
    if rows:
        links = [" ".join(f"<a href='{esc(h)}'>{esc(t)}</a>" for t, h in rep.links.get(raw[0], []))
                 for raw in rep.stats[1]]
        parts.append(_html_table([*header, "Locust"],
                                 [[*row, link] for row, link in zip(rows, links, strict=True)]))
    else:
        parts.append("<p>No cell ran.</p>")
    parts.append(f"<p>{esc(NOTE_CI)}</p>")
    if rep.inside[1]:
        parts.append("<h2>Inside the target</h2>" + _html_table(*_escaped(rep.inside))
                     + f"<p>{esc(NOTE_INSIDE)}</p>")
    if rep.profile[1]:
        header, rows = _escaped(rep.profile)
        graphs = [f"<a href='{esc(rep.flames[raw[0]])}'>profile.svg</a>" for raw in rep.profile[1]]
        table = _html_table([*header, "flame graph"], [[*r, g] for r, g in zip(rows, graphs, strict=True)])
        parts.append("<h2>Where the target's CPU went</h2>" + table
                     + f"<p>{esc(profiles.NOTE)}</p>")
    if rep.answer.lines and rep.says:
        says = "".join(f"<li>{esc(line)}</li>" for line in rep.says)
        parts.append(f"<h2>Each comparison in full</h2><ul>{says}</ul>")
    if rep.failed:
        items = "".join(f"<li class='fail'>{esc(f)}</li>" for f in rep.failed)
        parts.append(f"<h2>Failed</h2><ul>{items}</ul>")
    parts.append("<h2>Environment</h2>" + _html_table(*_escaped(rep.facts))
                 + "<details><summary>everything env.json holds</summary>"
                 + _html_table(*_escaped(rep.env)) + "</details></body></html>")
    return "\n".join(parts)


def report_run(run: RunDir) -> list[Path]:
    """`bench report`: summary_stats.csv, checks and the report, all from summary.csv anew."""
    rows = run.latest_rows()
    stats = summarize(rows)
    run.write_stats(stats)
    return [run.stats_path, *write_report(run, rows, stats, check_results(rows, run.env()))]


def write_report(run: RunDir, rows: list[SummaryRow], stats: list[CellStats],
                 checks: list[str] | None) -> list[Path]:
    """Write report/*.png, report.md and report.html from figures already computed; return them.
    `checks` holds the failed checks' messages (None: the scenario has no checks)."""
    env = run.env()
    written: list[Path] = []
    plot_dir = run.path / "report"
    with writing(plot_dir):
        plot_dir.mkdir(exist_ok=True)
    images: dict[str, bytes] = {}
    plots: list[tuple[str, str]] = []
    steps, capacity = run.read_records(run.steps_path), run.read_records(run.capacity_path)
    # a capacity search's cells are its steps: its one figure is latency against the offered rate
    builders = {name: (caption, lambda build=build: build(stats))
                for name, (caption, build) in FIGURES.items() if not capacity}
    builders["capacity"] = (CAPACITY_CAPTION, lambda: capacity_figure(steps, capacity))
    for name in set(FIGURES) - set(builders):
        (plot_dir / f"{name}.png").unlink(missing_ok=True)  # an earlier report's would contradict this one
    for name, (caption, build) in builders.items():
        fig = build()
        png = plot_dir / f"{name}.png"
        if fig is None:
            png.unlink(missing_ok=True)  # a plot from an earlier report would contradict this one
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        images[name] = buf.getvalue()
        atomic_write(png, images[name])
        written.append(png)
        plots.append((name, caption))

    scenario = env.get("scenario") if isinstance(env.get("scenario"), dict) else {}
    title = f"Benchmark report: {env.get('run_id') or run.name}"
    if scenario.get("name"):
        title += f" ({scenario['name']})"
    profile, flames = profiles.profile_table(run, rows)
    merged = env.get("merged_axes") if isinstance(env.get("merged_axes"), list) else []
    said = answer(stats, rows, merged) if not capacity else Answer((), ())
    servers = sorted({s.server for s in stats})
    ok = [r for r in rows if r.status == "ok"]
    what = measured(env, len(stats), max((r.repeat for r in ok), default=0),
                    max((r.duration_s for r in ok), default=0.0)) if ok else ""
    rep = Report(title=title, env=env_table(env), facts=facts_table(env, servers), answer=said, measured=what,
                 stats=stats_table(stats),
                 inside=inside_table(rows), failed=failed_list(rows),
                 checks=checks, plots=plots, links=locust_links(run, rows),
                 says=verdict.lines(stats, rows, capacity, steps), capacity=capacity_table(capacity),
                 profile=profile, flames=flames)
    for path, text in ((run.path / "report.md", render_markdown(rep)),
                       (run.path / "report.html", render_html(rep, images))):
        atomic_write(path, text.encode("utf-8"))
        written.append(path)
    return written
