"""The report's profile table on a hand-made run: only ok repeats count, whatever their order."""

from __future__ import annotations

from pathlib import Path

from bench.report import profiles
from tests.rows import make_row, make_run

APP = "main (/srv/app/main.py:1);cpu (/srv/app/main.py:9)"


def test_a_failed_repeat_neither_stops_nor_joins_the_cells_profile(tmp_path: Path) -> None:
    rows = [make_row(cell_id="c", repeat=1, profile="cpu", status="failed", error="boom", profile_gil_pct=5.0),
            make_row(cell_id="c", repeat=2, profile="cpu", profile_samples=70, profile_gil_pct=70.0,
                     cpu_app_pct=100.0),
            make_row(cell_id="d", repeat=1, profile="off", profile_gil_pct=3.0)]
    run = make_run(tmp_path / "run", rows)
    for repeat, count in ((1, 999), (2, 70)):
        folded = run.path / run.cell_rel("c", repeat, 1) / "profile.folded"
        folded.parent.mkdir(parents=True)
        folded.write_text(f"{APP} {count}\n")
    (header, table), links = profiles.profile_table(run, rows)
    assert header[:3] == ["cell", "samples", "GIL held %"]
    assert table == [["c", "70", "70", "0.0", "0.0", "0.0", "0.0", "100.0", "0.0", "0.0"]]
    assert links == {"c": "cells/c/profile.svg"} and (run.path / "cells/c/profile.svg").is_file()
