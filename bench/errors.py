"""The runner's own exceptions, under every layer: bad input (one line, exit 2, before anything
starts) and a target that could not start (recorded as the failing cell's reason)."""

from __future__ import annotations


class BadInput(Exception):
    """A scenario, option or value the runner refuses; str(exc) is the whole message, on one line
    whatever it quotes: a key or value holding a line break (TOML allows "a\\nb" as a key) shows
    it escaped, so the message stays the one line a user and a CI log read."""

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))


class TargetError(RuntimeError):
    """The target could not start or died; the message is the reason recorded in summary.csv."""
