"""The suite's two folders and the fake executor.

tests/unit/ is the fast suite (`make mutation` runs it; nothing in it starts a load), tests/e2e/
starts real servers and a real Locust: every test there is marked e2e, none in unit/ may be. The
fake executor is a fixture: `bench run` through the CLI gets it as its backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.commands import run as run_cmd
from bench.run import runner
from tests.fakes import FakeBackend

# tests/e2e/ files whose assertions hold on a machine busy with something else
SHAPE_FREE = ("test_app.py", "test_locustfile.py")


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs in this suite must not write into the job summary of a CI that runs the suite."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    backend = FakeBackend()
    monkeypatch.setattr(run_cmd, "load_backend", lambda choice, app=None: backend)
    monkeypatch.setattr(runner, "DRAIN_POLL_S", 0.02)  # the fake's worker writes every 20 ms
    return backend


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An end-to-end test in tests/unit/ (or a unit test in tests/e2e/) is a test in the wrong folder:
    the fast suite would start a load, or `-m "not e2e"` would skip a test that needs none."""
    wrong = []
    for item in items:
        folder = Path(str(item.path)).parent.name
        if folder == "e2e":
            item.add_marker(pytest.mark.e2e)
        elif folder == "unit" and item.get_closest_marker("e2e"):
            wrong.append(item.nodeid)
    if wrong:
        raise pytest.UsageError(f"end-to-end tests in tests/unit/ (move them to tests/e2e/): {', '.join(wrong)}")
    # the end-to-end files that assert no load shape first: should CI's image build (.ci/run) outlast
    # the unit tests, it shares the two CPUs with these, which it may slow but cannot fail
    items.sort(key=lambda item: Path(str(item.path)).name not in SHAPE_FREE)
