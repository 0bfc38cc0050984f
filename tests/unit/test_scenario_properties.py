"""Property tests of the scenario validator (hypothesis): whatever a TOML document or a --set
string holds, it ends in a valid plan or in one BadInput line (exit 2), never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import cli
from bench.errors import BadInput
from bench.run.loadspec import load_spec, master_argv, worker_argv
from bench.scenario.matrix import KEYS, from_dict, parse_set

# values that reach the interesting branches more often than random text would
MEANINGFUL = ["def", "async", "noop", "cpu", "sleep", "uvicorn", "gunicorn", "auto", "uvloop", "h11",
              "cores", "0", "1", "0-1", "0;1", "0-999999999", "1m30s", "90s", "127.0.0.1", "::1",
              "0.0.0.0", "nan", "inf", "-1", "1e9", "", " "]
scalars = (st.none() | st.booleans() | st.integers(-(10**12), 10**12)
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(MEANINGFUL) | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
keys = st.sampled_from(list(KEYS)) | st.text(max_size=8)
tables = st.dictionaries(keys, values, max_size=5)
axes = st.dictionaries(keys, st.lists(scalars, max_size=3) | scalars, max_size=3)
documents = st.fixed_dictionaries({}, optional={
    "name": values, "description": values, "defaults": tables | values,
    "matrix": axes | st.lists(axes, max_size=2) | values,
    "checks": st.dictionaries(st.sampled_from(["min_rps", "max_p99_ms", "max_failure_ratio",
                                               "fail_on_saturation", "sleep", "noop", "x"]), values, max_size=3),
    "extra": values,
})
set_items = (st.builds(lambda k, v: f"{k}={v}", keys, st.sampled_from(MEANINGFUL) | st.text(max_size=10))
             | st.text(max_size=15))


def plan_or_refuse(doc: dict[str, Any], sets: list[str]) -> None:
    try:
        scen = from_dict(doc, parse_set(sets))
    except BadInput as exc:
        assert str(exc) and "\n" not in str(exc), "one line"
        return
    cells = scen.cells()
    assert cells, "a valid scenario has at least one cell"
    for cell in cells:
        assert cell.cell_id and cell.path.startswith(f"/{cell.style}/")
        spec = load_spec(cell, "http://127.0.0.1:1")
        assert master_argv(spec, "/out") and worker_argv(spec)
        assert 1 <= cell.port <= 65_535 and cell.duration >= 1 and cell.spawn_rate > 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.lists(set_items, max_size=3))
def test_any_document_and_sets_plan_or_refuse_in_one_line(doc: dict[str, Any], sets: list[str]) -> None:
    plan_or_refuse(doc, sets)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list(KEYS)), scalars, max_size=6), st.lists(set_items, max_size=4))
def test_known_keys_with_any_values(defaults: dict[str, Any], sets: list[str]) -> None:
    plan_or_refuse({"defaults": defaults}, sets)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=80) | st.sampled_from(["matrix = []", "[defaults]\nduration = nan", "name = 1"]))
def test_any_text_through_the_real_cli(tmp_path_factory: Any, text: str) -> None:
    """The CLI's own exit path: 0 with a plan, or 2 with one line; anything else is a traceback."""
    path = Path(tmp_path_factory.mktemp("p")) / "s.toml"
    path.write_text(text, encoding="utf-8")
    assert cli.main(["plan", str(path)]) in (0, 2)
