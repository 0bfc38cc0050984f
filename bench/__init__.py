"""FastAPI def-vs-async benchmark runner: scenario -> cells -> backend -> results -> report."""

__version__ = "0.1.0"
