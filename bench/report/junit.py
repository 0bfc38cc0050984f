"""The Outcome as JUnit XML (`bench run --junit FILE`), the report format every CI system reads:
one test case per cell and check ("ran", each [checks] rule, "vs baseline: rps" and
"vs baseline: p50_ms"), a failure carrying the figure and the threshold, a cell the gate could
not judge as skipped with the reason."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.errors import BadInput
from bench.judge import gate
from bench.judge.compare import ALPHA
from bench.judge.outcome import Outcome

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # not allowed in XML 1.0, even escaped


def _text(value: str) -> str:
    return _CONTROL.sub("?", value)


def check_target(path: Path) -> None:
    """Refuse before the run a place the report cannot be written to; a file left from an earlier
    run is removed, so a run that dies leaves no stale passing report behind."""
    parent = path.parent
    try:
        is_dir, parent_ok = path.is_dir(), parent.is_dir()
    except OSError as exc:
        raise BadInput(f"--junit {path}: {exc.strerror}") from None
    if is_dir:
        raise BadInput(f"--junit {path}: is a directory")
    if not parent_ok:
        raise BadInput(f"--junit {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInput(f"--junit {path}: {parent} is not writable")
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise BadInput(f"--junit {path}: the earlier report cannot be removed ({exc.strerror})") from None


def _case(suite: ET.Element, cell_id: str, name: str, scenario: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=_text(f"bench.{scenario}.{cell_id}"), name=_text(name))


def render(o: Outcome) -> str:
    suite = ET.Element("testsuite", name=f"bench.{o.scenario}")
    failures = skipped = tests = 0
    for v in o.verdicts:
        case = _case(suite, v.cell_id, v.check, o.scenario)
        tests += 1
        if not v.passed:
            failures += 1
            what = "failed" if v.check == "ran" else "check"
            ET.SubElement(case, "failure", type=what, message=_text(v.message)).text = _text(
                f"{v.check}: value {v.value:g}, limit {v.limit:g}\n{v.message}")
    for j in o.judgements:
        figs = {f.name: f for f in j.figures}
        for name in gate.GATED:
            case = _case(suite, j.cell_id, f"vs baseline: {name}", o.scenario)
            tests += 1
            f = figs.get(name)
            if f is None:
                skipped += 1
                ET.SubElement(case, "skipped", message=_text(f"not judged: {j.reason}"))
            elif f.regressed:
                failures += 1
                change = f"{f.change_pct:+.1f} %" if f.change_pct is not None else "n/a"
                message = (f"{name} {f.baseline:.3f} -> {f.current:.3f} ({change}, Welch p = {f.p:.4f} < "
                           f"{ALPHA:g}) beyond the threshold of {o.threshold_pct:g} %")
                ET.SubElement(case, "failure", type="regression", message=_text(message)).text = _text(
                    f"{message}\nbaseline {o.baseline}, n = {j.n_baseline}/{j.n_current}\n{j.note}")
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites", name="bench", tests=str(tests), failures=str(failures), errors="0",
                      skipped=str(skipped))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
