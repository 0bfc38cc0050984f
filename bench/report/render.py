"""report.md and report.html from one Report: the answer first, then the plots, then the tables
behind them, the environment last. Markdown shows images by relative path (for browsing the
repository); HTML inlines them as base64 data URIs, so the file can be mailed or opened on its own.
Links to each repeat's Locust report are relative to the run directory, where both files live."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

from bench.judge.answer import Answer
from bench.report import profiles

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


NOTE_CAPACITY = ("Open loop: requests leave at the offered rate whatever the target does, and each "
                 "latency counts from its due time. A step passes when its p99 is within the objective and "
                 "it served at least 99 % of the rate offered; the search doubles the rate from start_rps, "
                 "then bisects to within 5 %. Every step is in capacity_steps.csv and, as a cell, in the "
                 "tables below.")


NOTE_INSIDE = ("Sampled every 10 ms inside each target worker, worst repeat shown: threads busy = anyio "
               "tokens in use by def endpoints, waiting = def requests queued for a token, connections = "
               "the database pools' (db workloads: in use, and requests waiting for one), loop lag = how "
               "late a 10 ms timer fires (a blocking call in async def shows here). Locust headroom = the "
               "requests/s its CPUs allow at its measured CPU cost per request over the requests/s it sent "
               "(under 1.1: Locust set the pace); Locust loop lag = mean lateness of a 20 ms timer in its "
               "own event loop (over 1 ms: it waited for a CPU).")


NOTE_CI = "Mean over ok repeats, ± the 95 % confidence half-width (Student t) when n > 1."


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    header, rows = table
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]


def _answer_md(rep: Report) -> list[str]:
    """The table and its notes; where no question has both styles (a run of one), each cell's
    line in full instead of the table, the notes (merged axes, failed cells) still under it."""
    if rep.answer.lines:
        return rep.answer.markdown()
    said = [f"- {_md_cell(line)}" for line in rep.says] or ["No ok cell to draw a conclusion from."]
    return said + (["", *rep.answer.notes] if rep.answer.notes else [])


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
    notes = "".join(f"<li>{esc(n)}</li>" for n in rep.answer.notes)
    notes = f"<ul class='notes'>{notes}</ul>" if notes else ""
    if not rep.answer.lines:
        says = "".join(f"<li>{esc(line)}</li>" for line in rep.says)
        return (f"<ul>{says}</ul>" if says else "<p>No ok cell to draw a conclusion from.</p>") + notes
    return _html_table(*_escaped(rep.answer.table())).replace("<table>", "<table id='answer'>", 1) + notes


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
