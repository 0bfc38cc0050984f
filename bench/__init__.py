"""FastAPI def-vs-async benchmark runner: scenario -> cells -> backend -> results -> report."""

from pathlib import Path

__version__ = "0.1.0"

# the checkout: app/, loadgen/, scenarios/ and compose.yaml are found from here
ROOT = Path(__file__).resolve().parent.parent
