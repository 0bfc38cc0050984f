"""The fake executor as a fixture: `bench run` through the CLI gets it as its backend."""

from __future__ import annotations

import pytest

from bench import run_cmd, runner
from tests.fakes import FakeBackend


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs in this suite must not write into the job summary of a CI that runs the suite."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    backend = FakeBackend()
    monkeypatch.setattr(run_cmd, "load_backend", lambda choice: backend)
    monkeypatch.setattr(runner, "DRAIN_POLL_S", 0.02)  # the fake's worker writes every 20 ms
    return backend
