"""The ten one-line breaks a sceptical review found the fast suite blind to (issue 14): each is
applied to a throwaway copy of the tree, and the fast suite must fail on every one.

    .venv/bin/python scripts/breaks.py        # exit 1 if any break goes unnoticed

A hand-picked complement to `make mutation`: these are the breaks that would publish a wrong
figure without a word, written as a reviewer would write them rather than as mutmut does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST = ["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/unit"]

# (what, file, text, replacement): each text must occur in the file exactly once
BREAKS: list[tuple[str, str, str, str]] = [
    ("no request verifies the endpoint before the load", "bench/run/runner.py",
     "        self._verify_endpoint(target, cell)\n", ""),
    ("the threadpool-token check is gone", "bench/run/runner.py",
     "            if info.get(\"threadpool_tokens\") != cell.threadpool_tokens:",
     "            if False:"),
    ("a cell with zero requests is accepted", "bench/run/runner.py",
     "        if agg.requests == 0:\n", "        if False:\n"),
    ("saturated is hard-coded to False", "bench/run/runner.py",
     "loadgen_saturated=bool(meta.get(\"cpu_warning\")) or is_saturated(",
     "loadgen_saturated=False and is_saturated("),
    ("the drain does nothing", "bench/run/runner.py",
     "        if not target.managed or self._stats_dir is None or not self._stats_dir.is_dir():\n",
     "        if True:\n"),
    ("the HDR branch is gone (Locust's rounded percentiles are reported)", "bench/run/runner.py",
     "        if hist is not None and hist.get_total_count() > 0:\n", "        if False:\n"),
    ("p99 is read from Locust's 100% column", "bench/run/locust_csv.py",
     'p99_ms=_num(rec, "99%")', 'p99_ms=_num(rec, "100%")'),
    ("the Failure Count header is misspelt", "bench/run/locust_csv.py",
     'failures=int(_num(rec, "Failure Count"))', 'failures=int(_num(rec, "Failure count"))'),
    ("gunicorn's --timeout and --keep-alive change", "benchagent/serve.py",
     '"--timeout", "120", "--keep-alive", "5"', '"--timeout", "30", "--keep-alive", "2"'),
    ("the [checks] exit gate is gone", "bench/judge/outcome.py",
     "return not self.failed_checks and not self.regressions", "return not self.regressions"),
]


# the checkout's own outputs, left out at its top only: bench/results/ is a package of the runner
TOP_OUTPUTS = {".venv", ".git", "results", "build", "mutants"}
CACHES = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis")


def copy_tree(dest: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = TOP_OUTPUTS.intersection(names) if Path(folder) == ROOT else set()
        return top | CACHES(folder, names)

    shutil.copytree(ROOT, dest, ignore=ignore, dirs_exist_ok=True)


def main() -> int:
    missed = 0
    with tempfile.TemporaryDirectory(prefix="breaks-") as tmp:
        tree = Path(tmp) / "tree"
        copy_tree(tree)
        for what, rel, text, replacement in BREAKS:
            path = tree / rel
            original = path.read_text()
            if original.count(text) != 1:
                print(f"STALE  {what}: the text to break is not in {rel} once; update scripts/breaks.py")
                missed += 1
                continue
            path.write_text(original.replace(text, replacement))
            try:
                proc = subprocess.run([sys.executable, *FAST], cwd=tree, capture_output=True, text=True,
                                      timeout=900)
            finally:
                path.write_text(original)
            failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
            if proc.returncode == 0:
                missed += 1
                print(f"MISSED {what}")
            else:
                by = failed[0].split(" - ")[0].removeprefix("FAILED ") if failed else f"rc {proc.returncode}"
                print(f"caught {what}: {by}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
