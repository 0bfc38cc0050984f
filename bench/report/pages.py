"""A run directory -> report/ (PNG plots), report.md and a self-contained report.html.

The tables are built here by pure functions (rows/stats/env -> lists of strings) into one Report,
which bench/report/render.py renders twice, as Markdown and as HTML.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from bench.judge import checks as checks_mod
from bench.judge import verdict
from bench.judge.answer import Answer, answer
from bench.report import profiles
from bench.report.environment import env_table, facts_table, measured
from bench.report.plots import FIGURES, capacity_figure
from bench.report.render import Report, Table, render_html, render_markdown
from bench.results.row import SummaryRow
from bench.results.rundir import RunDir, atomic_write, writing
from bench.results.stats import CellStats, summarize, tightest_headroom

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
    out = []
    for cell, rs in verdict.ok_rows(rows).items():
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
