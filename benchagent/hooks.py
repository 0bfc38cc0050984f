"""What an app run by the agent may tell it, without depending on it: the built-in app registers
its database pools' sizes for /__bench/info and their use for the sampler here; a team's app
need not know this module exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# extra /__bench/info fields, asked on every /__bench/info
INFO: list[Callable[[], dict[str, Any]]] = []
_PROBE: list[Callable[[], tuple[int, int]]] = []


def add_info(fn: Callable[[], dict[str, Any]]) -> None:
    INFO.append(fn)


def set_probe(fn: Callable[[], tuple[int, int]] | None) -> None:
    """(connections in use, requests waiting for one): the sampler's db columns."""
    _PROBE[:] = [fn] if fn is not None else []


def probe() -> tuple[int, int]:
    return _PROBE[0]() if _PROBE else (0, 0)


def extra_info() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fn in INFO:
        out.update(fn())
    return out
