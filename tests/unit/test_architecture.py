"""The house: imports only go down the pipeline, and no two modules import each other round a
circle. Every import is read, the lazy ones inside functions too, so a circle cannot hide in one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench import ROOT

# lowest first: a module may import from its own layer or any layer before it, never one after
LAYERS = ["errors", "scenario", "results", "run", "judge", "report", "commands", "cli"]


def layer(module: str) -> int | None:
    """The layer of bench.<part>...; None for the package itself (ROOT, __version__: under all)."""
    parts = module.split(".")
    if parts[0] != "bench" or len(parts) == 1 or parts[1] in {"__init__", "__main__"}:
        return None
    return LAYERS.index(parts[1])


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str) -> set[str]:
    """The bench modules a file's source imports: `from bench.x import y` counts as bench.x.y when
    bench.x.y is a module (a package's module), else as bench.x."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bench")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


MODULES = {module_name(p) for p in (ROOT / "bench").rglob("*.py")}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p.read_text()) & MODULES
            for p in (ROOT / "bench").rglob("*.py")}


def climbs(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in sorted(edges.items()):
        for dst in sorted(targets):
            ls, ld = layer(src), layer(dst)
            if ls is not None and ld is not None and ld > ls:
                bad.append(f"{src} imports {dst}: {LAYERS[ld]} is above {LAYERS[ls]}")
    return bad


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan), each one a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_import_goes_down_the_pipeline() -> None:
    assert climbs(graph()) == []


def test_no_import_circle() -> None:
    assert circles(graph()) == []


def test_every_folder_is_a_layer() -> None:
    folders = {p.name for p in (ROOT / "bench").iterdir() if p.is_dir() and p.name != "__pycache__"}
    files = {p.stem for p in (ROOT / "bench").glob("*.py")} - {"__init__", "__main__"}
    assert folders | files == set(LAYERS)


@pytest.mark.parametrize("edges, expected", [
    ({"bench.run.a": {"bench.run.b"}, "bench.run.b": {"bench.run.a"}}, [["bench.run.a", "bench.run.b"]]),
    ({"bench.run.a": {"bench.run.b"}, "bench.run.b": {"bench.run.c"}, "bench.run.c": {"bench.run.a"}},
     [["bench.run.a", "bench.run.b", "bench.run.c"]]),
    ({"bench.run.a": {"bench.run.b"}, "bench.run.b": set()}, []),
])
def test_the_circle_check_can_fail(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert circles(edges) == expected


def test_the_climb_check_can_fail() -> None:
    assert climbs({"bench.scenario.keys": {"bench.judge.checks"}, "bench.judge.checks": {"bench.scenario.keys"}}) == [
        "bench.scenario.keys imports bench.judge.checks: judge is above scenario"]


def test_lazy_imports_are_read() -> None:
    source = "def f():\n    from bench.judge import checks\n    import bench.run.runner\n"
    assert imports(source) == {"bench.judge.checks", "bench.run.runner"}


# What the agent may import in the target's own interpreter: the standard library, anyio (which
# every FastAPI has), fastapi for the on_loop what-if, uvicorn_worker where Gunicorn loads it, and
# itself. Never the runner (bench) nor the built-in app: a team's environment has neither.
AGENT_MAY_IMPORT = {"anyio", "fastapi", "uvicorn_worker", "benchagent"}


def agent_imports(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found - {"__future__"}


def test_the_agent_imports_only_what_any_fastapi_app_has() -> None:
    import sys

    stdlib = set(sys.stdlib_module_names)
    # `make mutation` runs this in its copy of the tree (mutants/), where every mutated module
    # imports mutmut's trampoline: the copy says nothing of what a team's environment needs
    mutants = {"mutmut"} if ROOT.name == "mutants" else set()
    outside = {f"{p.name}: {name}" for p in (ROOT / "benchagent").glob("*.py")
               for name in agent_imports(p.read_text()) if name not in stdlib | AGENT_MAY_IMPORT | mutants}
    assert outside == set()


def test_the_agent_check_can_fail() -> None:
    assert agent_imports("import os\nfrom bench.run import procs\ndef f():\n    from app import db\n") == {
        "os", "bench", "app"}
