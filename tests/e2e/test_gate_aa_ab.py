"""End to end, the CI gate: real Uvicorn, real Locust, the ci preset's sleep cells with short
windows. A/A passes; A/B with the threadpool cut to 5 tokens (10 users of a 50 ms sleep: half the
requests/s for def, nothing for async) fails, naming def-sleep and only it. Margins are shapes: the
slowdown is 2x, the threshold 40 %."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.scenario.matrix import ROOT
from tests.runs import bench, run_dir_of
from tests.servers import free_port

pytestmark = pytest.mark.e2e


def preset(tmp_path: Path) -> str:
    """The ci preset, its sleep p99 check loosened: with 1-1.5 s windows in a busy suite an async sleep
    of 50 ms reached a p99 of 104 ms, and this test is about the gate, not the check."""
    text = (ROOT / "scenarios" / "ci.toml").read_text()
    assert "max_p99_ms = 100" in text
    path = tmp_path / "ci.toml"
    path.write_text(text.replace("max_p99_ms = 100", "max_p99_ms = 500"))
    return str(path)


def gate_run(tmp_path: Path, name: str, *args: str) -> tuple[int, Path]:
    proc = bench("run", preset(tmp_path), "--backend", "local", "--out", str(tmp_path / name), "--no-report",
                 "--set", "workload=sleep", "--set", "duration=1", "--set", "warmup=0.5", "--set", f"port={free_port()}",
                 *args)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, run_dir_of(proc)


def test_a_a_passes_and_a_threadpool_cut_to_5_fails_naming_def_sleep_only(tmp_path: Path) -> None:
    code, base = gate_run(tmp_path, "base")
    assert code == 0, (base / "ci-summary.md").read_text()

    code, same = gate_run(tmp_path, "aa", "--baseline", str(base), "--threshold", "40")
    doc = json.loads((same / "checks.json").read_text())
    assert code == 0, (same / "ci-summary.md").read_text()
    assert [c["verdict"] for c in doc["cells"]] == ["pass", "pass"]

    junit = tmp_path / "junit.xml"
    code, cut = gate_run(tmp_path, "ab", "--baseline", str(base / "summary.csv"), "--threshold", "40",
                         "--set", "threadpool_tokens=5", "--junit", str(junit))
    doc = json.loads((cut / "checks.json").read_text())
    verdicts = {c["cell_id"].split("-u")[0]: c for c in doc["cells"]}
    assert code == 1
    assert verdicts["def-sleep"]["verdict"] == "regression", verdicts["def-sleep"]
    assert verdicts["async-sleep"]["verdict"] == "pass", verdicts["async-sleep"]
    rps = verdicts["def-sleep"]["figures"]["rps"]
    assert rps["change_pct"] < -40 and rps["p"] < 0.05 and rps["regressed"]
    assert "threadpool_tokens 40 -> 5" in verdicts["def-sleep"]["note"]
    regressions = [case.get("classname") for case in ET.parse(junit).getroot().iter("testcase")
                   if any(f.get("type") == "regression" for f in case.iter("failure"))]
    assert regressions and set(regressions) == {"bench.ci.def-sleep-u10-uvicorn-w1-tp5"}
