"""The run on disk: the one module that knows a run directory's layout (pytest-benchmark's
FileStorage, pyperf's one format check).

    env.json              schema version, machine, versions, backend, the scenario as resolved
    scenario.toml         the scenario file as it was read
    summary.csv           one row per cell x repeat x attempt, appended and fsynced row by row
    summary.csv.torn      torn last lines set aside by a resume (never merged into a row)
    summary_stats.csv     per cell over repeats
    capacity.csv          bench capacity: per searched cell, the highest rate within the objective
    capacity_steps.csv    bench capacity: one line per step of the searches (its row is in summary.csv)
    cells/<cell_id>/r<k>/ one repeat's files (r<k>.a<n>/ for retry n of it)
    targets/NN/           one started target: its log and its workers' samples (stats/)

A row is one `os.write` of a whole line ending in a newline, then fsync: a crash leaves either
the whole row or a last line without its newline, which readers skip and a resume sets aside,
so a new row is never glued onto a torn one. env.json is replaced atomically.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BadInput, RunDirWriteError
from bench.results.row import COLUMNS, SCHEMA_VERSION, SummaryRow, from_record, latest, to_record
from bench.results.stats import CellStats, key_records, stats_records


class RunDirError(BadInput):
    """A directory that is not a readable run of this schema; str(exc) names it and says why."""


def slug(name: str) -> str:
    """A scenario name as one safe path component: `../../x` must not leave --out."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-") or "scenario"


def _line(fields: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue().encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """An OSError while writing `path` becomes the one RunDirWriteError that names it."""
    try:
        yield
    except OSError as exc:
        raise RunDirWriteError(path, exc) from None


def atomic_write(path: Path, data: bytes) -> None:
    """Write beside, fsync, rename: a reader sees the old file or the new one, never half, and a
    write that fails (no space) leaves no .tmp behind."""
    tmp = path.with_name(path.name + ".tmp")
    with writing(path):
        try:
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def kept(run: Path, resumable: bool) -> Iterator[None]:
    """Around a command's work on its run: a failed write names the run, so the one line the CLI
    prints can say how many rows it kept and how to finish it (`--resume` where that exists)."""
    try:
        yield
    except RunDirWriteError as exc:
        exc.run, exc.resumable = exc.run or run, resumable
        raise


@dataclass(frozen=True)
class RunDir:
    path: Path

    # --- creating and opening ---------------------------------------------------------------
    @classmethod
    def create(cls, out: Path, name: str) -> RunDir:
        """A new, empty run directory under `out`: <UTC stamp>-<name>[-n]."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise RunDirError(f"--out {out}: exists and is not a directory")
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        base, n = f"{stamp}-{slug(name)}", 1
        try:
            out.mkdir(parents=True, exist_ok=True)
            while True:
                path = out / (base if n == 1 else f"{base}-{n}")
                try:
                    path.mkdir()
                    return cls(path)
                except FileExistsError:
                    n += 1
        except OSError as exc:
            raise RunDirError(f"--out {out}: cannot create a run directory there ({exc.strerror})") from None

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run of this schema version, or RunDirError naming what is wrong."""
        run = cls(Path(path))
        if not run.path.is_dir():
            raise RunDirError(f"{run.path}: not a run directory (no such directory)")
        if not run.env_path.is_file():
            raise RunDirError(f"{run.path}: not a run directory (no env.json)")
        version = run.env().get("schema_version")
        if version != SCHEMA_VERSION:
            raise RunDirError(f"{run.path}: schema_version {version!r}; this bench reads only "
                              f"{SCHEMA_VERSION} (use the bench version that wrote it)")
        run.rows()  # refuses other columns and unparseable rows now, not halfway through a report
        return run

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def env_path(self) -> Path:
        return self.path / "env.json"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.csv"

    @property
    def stats_path(self) -> Path:
        return self.path / "summary_stats.csv"

    @property
    def key_path(self) -> Path:
        return self.path / "key.csv"

    # --- env.json and scenario.toml ---------------------------------------------------------
    def env(self) -> dict[str, Any]:
        try:
            env = json.loads(self.env_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{self.env_path}: unreadable ({exc})") from None
        if not isinstance(env, dict):
            raise RunDirError(f"{self.env_path}: expected a JSON object")
        return env

    def write_env(self, env: dict[str, Any]) -> None:
        atomic_write(self.env_path, json.dumps(env, indent=2).encode())

    @contextlib.contextmanager
    def ending(self, env: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The run's work, then its last env.json however the work ended: `interrupted` true after
        Ctrl-C (which ends here: the caller reads env["interrupted"]), and after a write that failed
        (no space) env.json is left as it was rather than a second error raised over the first."""
        env["interrupted"] = False
        try:
            yield env
        except KeyboardInterrupt:
            env["interrupted"] = True
        except RunDirWriteError:
            env["ended_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            with contextlib.suppress(RunDirWriteError):
                self.write_env(env)
            raise
        env["ended_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.write_env(env)

    def write_scenario(self, text: str) -> None:
        atomic_write(self.path / "scenario.toml", text.encode())

    def stored_scenario(self) -> dict[str, Any]:
        scenario = self.env().get("scenario")
        if not isinstance(scenario, dict):
            raise RunDirError(f"{self.env_path}: no scenario stored, so there is nothing to resume")
        return scenario

    # --- summary.csv ------------------------------------------------------------------------
    def _split(self) -> tuple[list[bytes], bytes]:
        """Whole lines (header included) and the torn tail after the last newline ("" if none)."""
        try:
            data = self.summary_path.read_bytes()
        except FileNotFoundError:
            return [], b""
        cut = data.rfind(b"\n") + 1
        return data[:cut].splitlines(), data[cut:]

    def torn_tail(self) -> bytes:
        """The last line's bytes when a crash cut it (no newline), else b""."""
        return self._split()[1]

    def torn_warning(self) -> str:
        """One line for readers (report, compare) when the last row was cut by a crash, else ""."""
        torn = self.torn_tail()
        return (f"bench: warning: {self.summary_path}: the last line ({len(torn)} bytes) was cut by a "
                "crash and is ignored; `bench run --resume` sets it aside and runs its cell again"
                ) if torn else ""

    def rows(self) -> list[SummaryRow]:
        """Every row of summary.csv, every attempt, skipping a torn last line."""
        lines, _ = self._split()
        if not lines:
            return []
        text = [line.decode("utf-8", errors="replace") for line in lines]
        reader = csv.reader(text)
        header = tuple(next(reader))
        if header != COLUMNS:
            raise RunDirError(f"{self.summary_path}: columns differ from this version's summary.csv "
                              f"(schema {SCHEMA_VERSION})")
        out = []
        for n, fields in enumerate(reader, start=2):
            try:
                if len(fields) != len(COLUMNS):
                    raise ValueError(f"{len(fields)} fields, expected {len(COLUMNS)}")
                out.append(from_record(dict(zip(COLUMNS, fields, strict=True))))
            except (ValueError, TypeError) as exc:
                raise RunDirError(f"{self.summary_path}: line {n} is damaged ({exc})") from None
        return out

    def latest_rows(self) -> list[SummaryRow]:
        """The last attempt of each cell x repeat: what stats, checks, report and compare use."""
        return latest(self.rows())

    def set_aside_torn(self) -> bytes:
        """Move a torn last line to summary.csv.torn and cut it from summary.csv (before appending)."""
        lines, torn = self._split()
        if torn:
            with writing(self.path / "summary.csv.torn"), (self.path / "summary.csv.torn").open("ab") as fh:
                fh.write(torn + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            with writing(self.summary_path), self.summary_path.open("r+b") as fh:
                fh.truncate(sum(len(line) + 1 for line in lines))
                os.fsync(fh.fileno())
        return torn

    def append_row(self, row: SummaryRow) -> None:
        """One row, durable before this returns (a crash at cell 37 keeps 36)."""
        self.append_record(self.summary_path, COLUMNS, to_record(row))

    @staticmethod
    def append_record(path: Path, header: tuple[str, ...], fields: list[str]) -> None:
        """One CSV line appended and fsynced, the header first into an empty file."""
        data = _line(fields)
        with writing(path):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size == 0:
                    data = _line(list(header)) + data
                _write_all(fd, data)  # a short write (no space) leaves a torn line: --resume sets it aside
                os.fsync(fd)
            finally:
                os.close(fd)

    # --- bench capacity's files ---------------------------------------------------------------
    @property
    def capacity_path(self) -> Path:
        return self.path / "capacity.csv"  # one row per searched cell, rewritten after each search

    @property
    def steps_path(self) -> Path:
        return self.path / "capacity_steps.csv"  # one row per step, appended as it ends

    def write_capacity(self, header: tuple[str, ...], records: list[list[str]]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([list(header), *records])
        atomic_write(self.capacity_path, buf.getvalue().encode())

    @staticmethod
    def read_records(path: Path) -> list[dict[str, str]]:
        """A CSV's whole lines as dicts (a torn last line skipped); [] when there is no file."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        text = data[:data.rfind(b"\n") + 1].decode("utf-8", errors="replace")
        return list(csv.DictReader(io.StringIO(text)))

    def write_stats(self, stats: list[CellStats]) -> None:
        """summary_stats.csv, and key.csv: its figures people open first."""
        for path, records in ((self.stats_path, stats_records(stats)), (self.key_path, key_records(stats))):
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(records)
            atomic_write(path, buf.getvalue().encode())

    # --- per-cell and per-target folders ----------------------------------------------------
    @staticmethod
    def cell_rel(cell_id: str, repeat: int, attempt: int) -> str:
        return f"cells/{cell_id}/r{repeat}" + (f".a{attempt}" if attempt > 1 else "")

    def cell_dir(self, cell_id: str, repeat: int, attempt: int) -> Path:
        path = self.path / self.cell_rel(cell_id, repeat, attempt)
        with writing(path):
            path.mkdir(parents=True, exist_ok=True)
        return path

    def new_target_dir(self) -> Path:
        """targets/NN for the next target start; a resumed run skips the numbers already used."""
        n = 1
        while True:
            path = self.path / "targets" / f"{n:02d}"
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                n += 1
            except OSError as exc:
                raise RunDirWriteError(path, exc) from None

    def python_build(self) -> str:
        """The interpreter build the target ran (its /info, else as env.json recorded it when the run
        ended: a baseline kept without cells/ still says), else the runner's (env.json)."""
        for info in sorted(self.path.glob("cells/*/r*/target_info.json")):
            try:
                build = json.loads(info.read_text()).get("python_build")
            except (OSError, ValueError, AttributeError):
                continue
            if build:
                return str(build)
        try:
            env = self.env()
            return str(env.get("target_python_build") or env.get("python_build") or "")
        except RunDirError:
            return ""
