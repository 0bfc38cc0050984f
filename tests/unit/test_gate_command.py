"""`bench run --baseline/--threshold/--junit` through the real CLI with the fake executor: the
gate's exit codes, its three outputs (checks.json, ci-summary.md, JUnit) agreeing, the baseline
in each of its forms, and every bad input refused in one line before anything starts."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import cli
from bench.results.row import COLUMNS
from bench.results.rundir import RunDir
from bench.results.stats import STATS_COLUMNS
from tests.fakes import HDR_VALUES_US, FakeBackend
from tests.runs import run, scen_file

TWO = 'repeats = 2\n[matrix]\nworkload = ["sleep"]\nstyle = ["def", "async"]\n'


def two_runs(tmp_path: Path, fake: FakeBackend, *args: str, slower: float = 1.0,
             body: str = TWO) -> tuple[int, Path, Path]:
    """A baseline run, then a run judged against it whose latencies are `slower` times longer."""
    tmp_path.mkdir(exist_ok=True)
    scen = scen_file(tmp_path, body)
    code, base = run(tmp_path / "a", scen)
    assert code == 0
    fake.hdr_values = [round(v * slower) for v in HDR_VALUES_US]
    code, cur = run(tmp_path / "b", scen, "--baseline", str(base), *args)
    return code, base, cur


def checks_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "checks.json").read_text())


def test_a_run_without_a_baseline_writes_its_checks_and_summary(tmp_path, fake) -> None:
    junit = tmp_path / "junit.xml"
    code, run_dir = run(tmp_path, scen_file(tmp_path, TWO + "[checks]\nmin_rps = 1000\n"), "--junit", str(junit))
    assert code == 1
    doc = checks_json(run_dir)
    assert doc["format_version"] == 1 and doc["passed"] is False and doc["baseline"] is None and doc["cells"] == []
    by = {(c["cell_id"].split("-")[0], c["check"]): c for c in doc["checks"]}
    assert by["def", "ran"]["passed"] is True and by["def", "ran"]["value"] == 2.0
    assert by["def", "min_rps"] == {**by["def", "min_rps"], "passed": False, "value": 100.5, "limit": 1000.0}
    assert "< min_rps 1000" in by["def", "min_rps"]["message"]
    assert "## bench t: FAILED" in (run_dir / "ci-summary.md").read_text()
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "2"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert {c.get("name") for c in failed} == {"min_rps"}
    message = failed[0].find("failure").get("message")  # type: ignore[union-attr]
    assert "100.5 requests/s" in message and "min_rps 1000" in message


def test_a_a_passes_and_says_the_rule(tmp_path, fake, capsys) -> None:
    junit = tmp_path / "j.xml"
    code, _base, cur = two_runs(tmp_path, fake, "--junit", str(junit))
    assert code == 0
    err = capsys.readouterr().err
    assert "rps falls or p50 rises by more than 25 %" in err and "Welch's t-test" in err
    doc = checks_json(cur)
    assert doc["passed"] and [c["verdict"] for c in doc["cells"]] == ["pass", "pass"]
    assert doc["baseline"]["threshold_pct"] == 25.0
    cases = ET.parse(junit).getroot().iter("testcase")
    names = sorted(c.get("name") for c in cases)
    assert names.count("vs baseline: rps") == 2 and names.count("vs baseline: p50_ms") == 2
    assert "vs baseline: p99_ms" not in names


def test_a_slowdown_beyond_the_threshold_fails_and_every_output_says_so(tmp_path, fake, capsys) -> None:
    junit = tmp_path / "j.xml"
    code, _base, cur = two_runs(tmp_path, fake, "--junit", str(junit), "--threshold", "40", slower=2.0)
    assert code == 1
    doc = checks_json(cur)
    assert [c["verdict"] for c in doc["cells"]] == ["regression", "regression"]
    p50 = doc["cells"][0]["figures"]["p50_ms"]
    assert p50["regressed"] and p50["change_pct"] == pytest.approx(100, abs=2) and p50["p"] == 0.0
    assert doc["cells"][0]["figures"]["rps"]["regressed"] is False  # the fake's rps did not move
    assert doc["cells"][0]["figures"]["p99_ms"]["gated"] is False
    failures = [f for f in ET.parse(junit).getroot().iter("failure") if f.get("type") == "regression"]
    assert len(failures) == 2 and all("threshold of 40 %" in f.get("message", "") for f in failures)
    assert "| regression |" in (cur / "ci-summary.md").read_text()
    assert "REGRESSION" in capsys.readouterr().err
    # within the threshold: a 30 % slower p50 does not fail at 40 %
    code, _b, _c = two_runs(tmp_path / "again", fake, "--threshold", "40", slower=1.3)
    assert code == 0


@pytest.mark.parametrize("form", ["dir", "summary.csv", "summary_stats.csv"])
def test_each_form_of_the_baseline_judges_alike(tmp_path, fake, form) -> None:
    scen = scen_file(tmp_path, TWO)
    code, base = run(tmp_path / "a", scen)
    kept = tmp_path / "kept"
    kept.mkdir()
    path = base if form == "dir" else kept / f"renamed-{form}"
    if form != "dir":  # an artifact renamed, without env.json beside it
        path.write_bytes((base / form).read_bytes())
    fake.hdr_values = [v * 2 for v in HDR_VALUES_US]
    code, cur = run(tmp_path / "b", scen, "--baseline", str(path))
    assert code == 1
    doc = checks_json(cur)
    assert [c["verdict"] for c in doc["cells"]] == ["regression", "regression"]
    unchecked = "CPU and interpreter unchecked" in doc["baseline"]["note"]
    assert unchecked == (form != "dir")


def test_a_setting_changed_for_the_whole_run_is_the_change_under_test(tmp_path, fake) -> None:
    code, _base, cur = two_runs(tmp_path, fake, "--set", "threadpool_tokens=5", slower=2.0)
    assert code == 1
    cells = checks_json(cur)["cells"]
    assert all(c["cell_id"].endswith("-tp5") and c["baseline_id"].endswith("-tp40") for c in cells)
    assert all("threadpool_tokens 40 -> 5" in c["note"] for c in cells)


def test_another_cpu_layout_or_machine_is_reported_not_judged(tmp_path, fake) -> None:
    code, _base, cur = two_runs(tmp_path, fake, "--set", "target_cpuset=1", "--set", "loadgen_cpuset=0", slower=2.0)
    assert code == 0
    cells = checks_json(cur)["cells"]
    assert {c["verdict"] for c in cells} == {"not judged"}
    assert "another setup: target_cpuset" in cells[0]["reason"]
    scen = scen_file(tmp_path, TWO)
    code, base = run(tmp_path / "m", scen)
    env = RunDir(base).env()
    RunDir(base).write_env({**env, "cpu_model": "Some Other CPU"})
    fake.hdr_values = [v * 3 for v in HDR_VALUES_US]
    code, cur = run(tmp_path / "n", scen, "--baseline", str(base))
    doc = checks_json(cur)
    assert code == 0 and "another CPU (baseline: Some Other CPU" in doc["baseline"]["note"]
    assert all(c["verdict"] == "not judged" and "another CPU" in c["reason"] for c in doc["cells"])


def test_cells_on_one_side_only_are_listed(tmp_path, fake) -> None:
    scen = scen_file(tmp_path, TWO)
    code, base = run(tmp_path / "a", scen)
    code, cur = run(tmp_path / "b", scen, "--baseline", str(base), "--set", "style=def", "--set", "workload=sleep,noop")
    cells = {c["cell_id"].split("-u")[0]: c for c in checks_json(cur)["cells"]}
    assert code == 0
    assert cells["def-sleep"]["verdict"] == "pass"
    assert cells["def-noop"]["reason"] == "not in the baseline"
    assert cells["async-sleep"]["reason"] == "in the baseline, not in this run"


def test_one_repeat_a_side_is_not_judged(tmp_path, fake) -> None:
    code, _base, cur = two_runs(tmp_path, fake, slower=3.0, body=TWO.replace("repeats = 2", "repeats = 1"))
    assert code == 0
    assert all("Welch's test needs two ok repeats" in c["reason"] for c in checks_json(cur)["cells"])


def test_the_summary_goes_to_github_step_summary(tmp_path, fake, monkeypatch) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, _base, cur = two_runs(tmp_path, fake)
    text = summary.read_text()
    assert code == 0 and text.startswith("earlier step\n")
    assert text.count("## bench t: passed") == 2 and "### Against the baseline" in text  # both runs appended
    assert (cur / "ci-summary.md").read_text() in text


def test_an_interrupted_or_refused_run_leaves_no_stale_junit(tmp_path, fake) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text("<testsuites/>")  # a passing report of an earlier run
    fake.interrupt_after = 1
    code, _run_dir = run(tmp_path, scen_file(tmp_path, TWO), "--junit", str(junit))
    assert code == 130 and not junit.exists()
    junit.write_text("<testsuites/>")
    code, _run_dir = run(tmp_path, scen_file(tmp_path, TWO), "--junit", str(junit), "--baseline", "/nowhere")
    assert code == 2 and not junit.exists()


def _damaged(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _field(line: str, index: int, value: str) -> str:
    """A CSV line with one field replaced."""
    fields = next(csv.reader([line]))
    fields[index] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue()


def bad_inputs(tmp_path: Path, base: Path) -> list[tuple[list[str], str]]:
    header = (base / "summary.csv").read_text().splitlines()[0]
    line = (base / "summary.csv").read_text().splitlines()[1]
    stats = (base / "summary_stats.csv").read_text().splitlines()
    rps_mean = STATS_COLUMNS.index("rps_mean")
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "a_file").write_text("x")
    return [
        (["--baseline", str(tmp_path / "nowhere")], "nowhere: no such file or directory"),
        (["--baseline", _damaged(tmp_path, "nan_rows.csv", f"{header}\n{_field(line, COLUMNS.index('rps'), 'nan')}\n")],
         "nan_rows.csv: cell "),
        (["--baseline", _damaged(tmp_path, "stats_header.csv", f"{stats[0]}\n")], "stats_header.csv: holds no rows"),
        (["--baseline", str(tmp_path / "empty_dir")], "without summary.csv or summary_stats.csv"),
        (["--baseline", _damaged(tmp_path, "other.csv", "a,b\n1,2\n")], "columns are neither"),
        (["--baseline", _damaged(tmp_path, "empty.csv", "")], "empty.csv: is empty: no header, no rows"),
        (["--baseline", _damaged(tmp_path, "header.csv", header + "\n")], "header.csv: holds no rows (a run"),
        (["--baseline", _damaged(tmp_path, "short.csv", f"{header}\n{line[:40]}\n")], "line 2 is damaged"),
        (["--baseline", _damaged(tmp_path, "long.csv", f"{header}\n{line},x\n")], "line 2 is damaged"),
        (["--baseline", _damaged(tmp_path, "field.csv", f'{header}\n"{"x" * 200_000}"\n')], "not a readable CSV"),
        (["--baseline", _damaged(tmp_path, "word.csv", f"{header}\n{_field(line, 2, 'one')}\n")], "damaged"),
        (["--baseline", _damaged(tmp_path, "nan.csv", f"{stats[0]}\n{_field(stats[1], rps_mean, 'nan')}\n")],
         "not a finite number"),
        (["--baseline", _damaged(tmp_path, "inf.csv", f"{header}\n{_field(line, 2, 'inf')}\n")], "damaged"),
        (["--baseline", _damaged(tmp_path, "huge.csv", f"{stats[0]}\n{_field(stats[1], rps_mean, '1e200')}\n")],
         "not a finite number of this size"),
        (["--baseline", str(base), "--threshold", "0"], "expected a finite percentage > 0"),
        (["--baseline", str(base), "--threshold", "-5"], "expected a finite percentage > 0"),
        (["--baseline", str(base), "--threshold", "nan"], "expected a finite percentage > 0"),
        (["--baseline", str(base), "--threshold", "lots"], "is not a number"),
        (["--threshold", "10"], "--threshold goes with --baseline"),
        (["--junit", str(tmp_path)], "is a directory"),
        (["--junit", str(tmp_path / "a_file" / "j.xml")], "is not a directory"),
        (["--junit", str(tmp_path / "no_dir" / "j.xml")], "is not a directory"),
    ]


def main(argv: list[str]) -> int | str | None:
    """cli.main's exit code, also when argparse refuses an option (it exits)."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


def test_bad_input_is_one_line_and_exit_2_before_anything_starts(tmp_path, fake, capsys) -> None:
    scen = scen_file(tmp_path, TWO)
    code, base = run(tmp_path / "a", scen)
    assert code == 0
    starts = len(fake.starts)
    capsys.readouterr()
    for args, expected in bad_inputs(tmp_path, base):
        out = tmp_path / "out"
        assert main(["run", scen, "--out", str(out), *args]) == 2, args
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, (args, err)
        if args[0] == "--baseline" and "--threshold" not in args:  # the line names the file it refuses
            assert err.startswith(f"bench: error: --baseline {args[1]}: "), err
        assert not out.exists() and len(fake.starts) == starts, args  # no run directory, no target


def test_the_ci_preset_fits_a_ci_job() -> None:
    from bench.judge import checks
    from bench.scenario import matrix as scenario

    scen = scenario.load("ci")
    cells = scen.cells()
    assert sorted((c.style, c.workload) for c in cells) == sorted(
        (s, w) for s in ("def", "async") for w in ("noop", "cpu", "sleep"))
    assert {c.repeats for c in cells} == {3} and {c.users for c in cells} == {10}
    assert sum(c.estimated_s() * c.repeats for c in cells) <= 120  # the whole job in two minutes
    checks.validate(scen.checks)
    sleep = checks.effective(scen.checks, "sleep")
    assert sleep["max_p99_ms"] == 2 * cells[0].sleep_ms and sleep["min_rps"] == 160


def test_gate_aa_counts_no_false_alarm_on_equal_runs_and_catches_the_cpu_slowdown(tmp_path, fake) -> None:
    import subprocess
    import sys

    from bench.scenario.matrix import ROOT

    scen = scen_file(tmp_path, 'repeats = 2\n[matrix]\nworkload = ["cpu", "sleep"]\nstyle = ["def"]\n')
    dirs = [run(tmp_path / f"r{i}", scen)[1] for i in range(3)]
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gate_aa.py"), *map(str, dirs)],
                          capture_output=True, text=True, check=True)
    assert "3 runs: 1 disjoint pairs, 6 ordered pairs" in proc.stdout
    assert "| 25 % | 0/1, 0/6 | 0/1, 0/6 | 0/1, 0/6 | 0/1, 0/6 | 0/1, 0/6 |" in proc.stdout
    assert "both caught in 6/6, at least one in 6/6" in proc.stdout  # the fake's one CPU cell
