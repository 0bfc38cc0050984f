"""Progress on stderr: a bar with ETA on a terminal, a plain line per cell otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from bench.results.row import SummaryRow


def describe(row: SummaryRow) -> str:
    if row.status != "ok":
        return f"{row.cell_id} r{row.repeat}: FAILED {row.error}"
    flag = "  [loadgen saturated]" if row.loadgen_saturated else ""
    if row.error:  # failed requests, a lost histogram: what the figures must be read with
        flag += f"  [{row.error}]"
    room = f"  Locust headroom {row.loadgen_headroom:.1f}x" if row.loadgen_headroom > 0 else ""
    return (f"{row.cell_id} r{row.repeat}: {row.rps:.1f} req/s  p50 {row.p50_ms:.2f} ms  "
            f"p99 {row.p99_ms:.2f} ms  failures {row.failures}{room}{flag}")


@dataclass
class Progress:
    total: int
    estimate_s: float
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def tty(self) -> bool:
        return self.stream.isatty()

    def row(self, row: SummaryRow) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        # the ETA scales the plan's estimate by how far off it has been so far
        eta = (elapsed / self.done) * (self.total - self.done)
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r\033[K{describe(row)}\n[{bar}] {self.done}/{self.total}  ETA {hms(eta)}")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {describe(row)}  (ETA {hms(eta)})\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def hms(seconds: float) -> str:
    """H:MM:SS with as many hours as it takes (86400 s is 24:00:00, not 00:00:00)."""
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
