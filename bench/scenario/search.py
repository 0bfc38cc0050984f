"""A scenario as `bench capacity` searches it: each cell an open-loop cell at the search's first
rate, with the step's window, the axes the search sets itself dropped (with a note), and the
[capacity] settings. Read once, through the same loader as `bench run` (matrix.from_dict)."""

from __future__ import annotations

from bench.errors import BadInput
from bench.scenario import matrix, sections
from bench.scenario.sections import SearchSettings

# Keys the search sets itself: what it searches (the rate), how (open loop), and each step's length.
SEARCH_SETS = ("users", "load_model", "rate", "duration", "warmup", "repeats")

def load_for_search(ref: str, sets: list[str], slo_p99_ms: float | None
                    ) -> tuple[matrix.Scenario, SearchSettings, list[str]]:
    """The scenario's cells as open-loop cells at start_rps, its settings, and notes on what the
    search ignores (a users axis: the search sets the rate instead)."""
    data, text, path = matrix.read(ref)
    overrides = matrix.parse_set(sets)
    if "rate" in overrides:
        raise BadInput("bench capacity searches the rate itself: drop --set rate")
    table = data.get("capacity", {})
    if not isinstance(table, dict):
        raise BadInput(f"{path}: [capacity] must be a table")
    settings = sections.settings_from(table, slo_p99_ms)
    notes = []
    data = dict(data)
    defaults = {k: v for k, v in dict(data.get("defaults", {})).items() if k not in SEARCH_SETS}
    blocks_in = data.get("matrix", {})
    blocks = []
    for block in blocks_in if isinstance(blocks_in, list) else [blocks_in]:
        if isinstance(block, dict) and "rate" in block:
            raise BadInput(f"{path}: bench capacity searches the rate itself: drop the matrix's rate axis")
        if isinstance(block, dict):
            for key in set(block) & set(SEARCH_SETS):
                notes.append(f"matrix {key} = {block[key]} ignored: each search sets the rate")
            block = {k: v for k, v in block.items() if k not in SEARCH_SETS}
        blocks.append(block)
    data.update(defaults=defaults, matrix=blocks)
    steps = {"load_model": "open", "rate": settings.start_rps, "duration": settings.step_s,
             "warmup": settings.step_warmup_s, "repeats": 1}
    sets_ = {k: v for k, v in overrides.items() if k not in SEARCH_SETS}
    scen = matrix.from_dict(data, {**sets_, **steps}, source=text, origin=str(path))
    return scen, settings, sorted(set(notes))
