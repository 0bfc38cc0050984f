"""ci-summary.md: the Outcome as Markdown for a CI job's page ($GITHUB_STEP_SUMMARY, a merge
request comment): the verdict first, then what failed, then every cell against the baseline."""

from __future__ import annotations

import math

from bench.judge import gate
from bench.judge.outcome import Outcome


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _change(f: gate.Figure) -> str:
    if f.change_pct is None:
        return "n/a"
    p = f", p {f.p:.3f}" if math.isfinite(f.p) else ""
    return f"{f.current:.1f} ({f.change_pct:+.1f} %{p})" + (" **worse**" if f.regressed else "")


def render(o: Outcome) -> str:
    status = "passed" if o.passed else "FAILED"
    if o.passed and o.not_judged:
        status += f" (not judged: {'; '.join(o.not_judged)})"
    lines = [f"## bench {o.scenario}: {status}", ""]
    if o.answer:
        lines += [*o.answer, ""]
    lines += [f"Run `{o.run_id}`: {len({v.cell_id for v in o.verdicts})} cells, "
              f"failed checks: {len(o.failed_checks)}, regressions: {len(o.regressions)}.", ""]
    if o.failed_checks:
        lines += ["### Failed checks", ""]
        lines += [f"- `{v.cell_id}` **{v.check}**: {_cell(v.message)}" for v in o.failed_checks]
        lines.append("")
    if o.baseline:
        lines += ["### Against the baseline", "",
                  f"Baseline `{o.baseline}`. {gate.rule(o.threshold_pct)}.", ""]
        if o.note:
            lines += [f"Note: {o.note}.", ""]
        if o.unjudged_warning:
            lines += [f"**Warning: {o.unjudged_warning}.**", ""]
        lines += ["| cell | verdict | rps | p50 ms | p99 ms | n | why / note |",
                  "|---|---|---|---|---|---|---|"]
        for j in o.judgements:
            figs = {f.name: f for f in j.figures}
            shown = [_change(figs[n]) if n in figs else "" for n in gate.FIGURES]
            why = "; ".join(x for x in (j.reason, j.note) if x)
            lines.append(f"| `{j.cell_id}` | {j.verdict} | " + " | ".join(shown)
                         + f" | {j.n_baseline}/{j.n_current} | {_cell(why)} |")
        lines.append("")
    elif not o.failed_checks:
        lines += ["No baseline given: only the scenario's checks were judged.", ""]
    return "\n".join(lines)
