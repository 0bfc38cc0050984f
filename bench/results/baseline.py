"""A baseline for `bench run --baseline PATH`: the per-cell figures of an earlier run, from what a
CI job keeps of it (an artifact or a cache): the run directory, its summary.csv or its
summary_stats.csv. The two files are told apart by their columns, not their names, so a renamed
artifact still loads; an env.json beside the file says which machine and interpreter made it.

Everything wrong with the path is refused here, before the run starts (exit 2, one line): nothing
there, no summary in a directory, other columns, no rows, a damaged line, a figure that is not a
finite number.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bench.errors import BadInput
from bench.results.row import COLUMNS, SCHEMA_VERSION, from_record, latest
from bench.results.rundir import RunDir
from bench.results.stats import STATS_COLUMNS, CellStats, from_stats_record, summarize

SUMMARY, STATS = "summary.csv", "summary_stats.csv"
LARGEST = 1e12  # no figure of a run comes near: a larger one is damage, and Welch's test would overflow on it


@dataclass(frozen=True)
class Baseline:
    source: Path  # the file the figures came from
    stats: list[CellStats]
    env: dict[str, Any]  # env.json beside the file; {} when there was none
    python_build: str  # the target's interpreter build; "" when unknown

    @property
    def cpu_model(self) -> str:
        return str(self.env.get("cpu_model") or "")


def _fail(path: Path, why: str) -> BadInput:
    return BadInput(f"--baseline {path}: {why}")


def _records(path: Path) -> tuple[tuple[str, ...], list[list[str]]]:
    """The header and the whole lines of a CSV (a line a crash cut, without its newline, skipped,
    as every reader of summary.csv does)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})") from None
    text = data[:data.rfind(b"\n") + 1].decode("utf-8", errors="replace")
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:  # a NUL byte, a field over the reader's limit
        raise _fail(path, f"not a readable CSV ({exc})") from None
    if not lines:
        raise _fail(path, "is empty: no header, no rows")
    return tuple(lines[0]), lines[1:]


def _dicts(path: Path, header: tuple[str, ...], lines: list[list[str]]) -> list[dict[str, str]]:
    if not lines:
        raise _fail(path, "holds no rows (a run that ended before its first cell?)")
    out = []
    for n, fields_ in enumerate(lines, start=2):
        if len(fields_) != len(header):
            raise _fail(path, f"line {n} is damaged ({len(fields_)} fields, expected {len(header)})")
        out.append(dict(zip(header, fields_, strict=True)))
    return out


def _finite(path: Path, stats: list[CellStats]) -> list[CellStats]:
    for s in stats:
        for f in fields(s):
            value = getattr(s, f.name)
            if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= LARGEST):
                raise _fail(path, f"cell {s.cell_id}: {f.name} is {value}, not a finite number of this size")
    return stats


def read_stats(path: Path) -> list[CellStats]:
    """Per-cell figures from a summary.csv (summarized here: the last attempt of each repeat) or a
    summary_stats.csv; BadInput naming the file and what is wrong with it."""
    header, lines = _records(path)
    if header not in (COLUMNS, STATS_COLUMNS):
        raise _fail(path, f"its columns are neither {SUMMARY}'s nor {STATS}'s of this version (schema "
                          f"{SCHEMA_VERSION}); keep a baseline made by the same bench version")
    try:
        if header == COLUMNS:
            rows = [from_record(d) for d in _dicts(path, header, lines)]
            return _finite(path, summarize(latest(rows)))
        return _finite(path, [from_stats_record(d) for d in _dicts(path, header, lines)])
    except (ValueError, TypeError, ArithmeticError) as exc:  # inf in an int column, 1e300 squared
        raise _fail(path, f"a line is damaged ({exc})") from None


def _env(folder: Path) -> dict[str, Any]:
    try:
        env = json.loads((folder / "env.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"--baseline: {folder / 'env.json'} is unreadable ({exc})") from None
    return env if isinstance(env, dict) else {}


def load(path: Path) -> Baseline:
    """The baseline at `path`: a run directory (its summary.csv, else its summary_stats.csv) or
    one of those files, with the env.json beside it when there is one."""
    path = Path(path)
    try:
        return _load(path)
    except OSError as exc:  # a name too long, a folder it may not enter
        raise _fail(path, f"cannot be read ({exc.strerror})") from None


def _load(path: Path) -> Baseline:
    if path.is_dir():
        source = next((path / name for name in (SUMMARY, STATS) if (path / name).is_file()), None)
        if source is None:
            raise _fail(path, f"a directory without {SUMMARY} or {STATS}: not a run directory")
    elif path.is_file():
        source = path
    else:
        raise _fail(path, "no such file or directory")
    stats = read_stats(source)
    env = _env(source.parent)
    return Baseline(source, stats, env, RunDir(source.parent).python_build())
