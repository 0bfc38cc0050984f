"""Gunicorn's worker class for the target: uvicorn-worker's UvicornWorker, running the event loop
and HTTP parser the cell asks for (BENCH_LOOP, BENCH_HTTP, as `uvicorn --loop/--http` take them).

uvicorn-worker's own classes fix them ("auto"/"auto", or asyncio/h11), so without this a cell's
`loop = "asyncio"` would silently run uvloop under Gunicorn. The arbiter imports this module and
forks its workers from it; benchagent/serve.py has checked both values before Gunicorn starts.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": os.environ["BENCH_LOOP"],
                                     "http": os.environ["BENCH_HTTP"]}
