"""The runner's own exceptions, under every layer: bad input (one line, exit 2, before anything
starts), a target that could not start (recorded as the failing cell's reason) and a run
directory that could not be written (one line, exit 3, the rows kept)."""

from __future__ import annotations

from pathlib import Path


class BadInput(Exception):
    """A scenario, option or value the runner refuses; str(exc) is the whole message, on one line
    whatever it quotes: a key or value holding a line break (TOML allows "a\\nb" as a key) shows
    it escaped, so the message stays the one line a user and a CI log read."""

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))


class TargetError(RuntimeError):
    """The target could not start or died; the message is the reason recorded in summary.csv."""


class RunDirWriteError(Exception):
    """A file of the run directory could not be written (no space left, a read-only or removed
    folder): the run ends with one line naming the file and why, its rows kept (exit 3). `run`
    and `resumable` are filled in by the command that owns the run (rundir.kept)."""

    def __init__(self, path: Path | str, exc: OSError) -> None:
        self.path = Path(path)
        self.reason = exc.strerror or str(exc)
        self.run: Path | None = None
        self.resumable = False
        super().__init__(f"cannot write {self.path}: {self.reason}")
