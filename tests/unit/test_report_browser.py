"""report.html in a real browser: headless Chromium (Debian's chromium-headless-shell, or chromium)
opens the report of a 12-cell run at a laptop's window size; the answer table must be on the first
screen, whole, and every image must load and be shown. Skipped with the reason where no Chromium
is installed; required where CI is set (.ci/run installs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.report.pages import write_report
from bench.results.stats import summarize
from tests.rows import make_row, make_run

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser")
WINDOW = (1366, 768)  # the most common laptop screen
# reads the laid-out page once everything has loaded, into an element --dump-dom prints
PROBE = """<script>
window.addEventListener('load', () => {
  const t = document.getElementById('answer');
  const box = t ? t.getBoundingClientRect() : null;
  const out = {top: box && box.top, bottom: box && box.bottom, height: innerHeight,
               images: [...document.images].map(i => [i.complete, i.naturalWidth, i.getBoundingClientRect().width])};
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        why = f"no headless Chromium ({' or '.join(BROWSERS)}; Debian: apt-get install chromium-headless-shell)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, and {why}")
        pytest.skip(why)
    return found


def default_like_run(path: Path) -> Path:
    """A run of the default matrix's shape: def/async x noop/cpu/sleep x 10/100 users, 3 repeats."""
    rows = []
    figures = {"noop": (3000.0, 9.0), "cpu": (250.0, 500.0), "sleep": (95.0, 120.0)}
    for workload, (rps, p99) in figures.items():
        for users in (10, 100):
            for style in ("def", "async"):
                for repeat in (1, 2, 3):
                    slower = 1.0 + 0.3 * (style == "async" and workload == "cpu")
                    rows.append(make_row(cell_id=f"{style}-{workload}-u{users}", style=style, workload=workload,
                                         users=users, repeat=repeat, rps=rps * (1 + 0.01 * repeat),
                                         p50_ms=p99 / 3, p99_ms=p99 * slower * (1 + 0.02 * repeat),
                                         mean_ms=p99 / 2, cpu_ms_per_request=1000 / rps,
                                         target_cpu_pct=99.0 if workload == "cpu" else 30.0,
                                         loadgen_saturated=workload == "noop" and style == "async"))
    run = make_run(path, rows)
    write_report(run, run.latest_rows(), summarize(run.latest_rows()), None)
    return run.path / "report.html"


def test_the_answer_is_on_the_first_screen_and_every_image_loads(tmp_path) -> None:
    exe = browser()
    page = default_like_run(tmp_path / "run")
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert "<pre id=\"probe\">" in proc.stdout, proc.stderr[-2000:]
    found = json.loads(proc.stdout.split("<pre id=\"probe\">", 1)[1].split("</pre>", 1)[0])
    assert found["top"] is not None, "the report has no answer table"
    assert 0 < found["top"] < found["bottom"] <= found["height"], f"the answer is not whole on the first screen: {found}"
    assert len(found["images"]) == 3, found["images"]  # rps, latency, cpu
    for complete, natural, shown in found["images"]:
        assert complete and natural > 0 and shown > 0, f"an image did not load or is not shown: {found['images']}"
