"""The agent: what the stack puts around the app it measures, in the app's own interpreter.

`python -m benchagent.serve` starts one of four servers on `benchagent.asgi:app`, which imports the
app named by BENCH_APP (the built-in `app.main:app`, or a team's own) and wraps it: pinning and the
threadpool size in each worker, the in-worker sampler, `/__bench/healthz` and `/__bench/info`; the
app's own paths pass through untouched. Stdlib only at import (anyio, which every FastAPI app has,
inside the worker), and no import of the stack's other packages: a team's `app` or `db` package
must not meet ours on its sys.path.
"""

PREFIX = "/__bench/"  # the agent's own paths; every other path is the app's
HEALTHZ = f"{PREFIX}healthz"
INFO = f"{PREFIX}info"
