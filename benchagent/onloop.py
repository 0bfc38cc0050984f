"""style = "on_loop": the app's sync path operation functions run on the event loop, as if each
were declared `async def` with the same body. What it changes, exactly:

- the path operation function (the `def` decorated with @app.get and the like) is called on the
  loop instead of in anyio's threadpool (fastapi.routing.run_endpoint_function);
- its return value is validated against its response model on the loop too (FastAPI does that in
  the threadpool for a `def` endpoint: fastapi.routing.serialize_response, `is_coroutine`).

What it leaves as written: dependencies (a `def` dependency still runs in the threadpool, as it
would for an `async def` endpoint), middleware, background tasks, streaming responses, and every
`async def`. So a run with both styles shows, per endpoint, what the first article's advice
("always async, unless it blocks") would do to it: a sync body that blocks shows as loop lag.

Both are module-level functions that FastAPI's request handler looks up by name on every request,
so replacing them reaches every route, whenever and however it was added (included routers too).
Tested on FastAPI 0.163.2 (the version pinned here); their signatures are checked first, so a
FastAPI without them refuses on_loop in one line instead of running something else.
"""

from __future__ import annotations

import inspect
from typing import Any


class Unsupported(Exception):
    pass


def apply() -> None:
    try:
        import fastapi
        from fastapi import routing
    except ImportError as exc:
        raise Unsupported(f"style = on_loop needs FastAPI in the app's environment ({exc})") from None
    run = getattr(routing, "run_endpoint_function", None)
    serialize = getattr(routing, "serialize_response", None)
    if getattr(run, "bench_on_loop", False):
        return  # applied already (a worker that imports the agent twice): ours take no is_coroutine
    for name, fn, wanted in (("run_endpoint_function", run, {"dependant", "values", "is_coroutine"}),
                             ("serialize_response", serialize, {"is_coroutine"})):
        if fn is None or not wanted <= set(inspect.signature(fn).parameters):
            raise Unsupported(f"style = on_loop: FastAPI {fastapi.__version__} has no fastapi.routing.{name} "
                              f"taking {', '.join(sorted(wanted))} (tested on FastAPI 0.163.2)")

    async def run_endpoint_function(*, dependant: Any, values: dict[str, Any], is_coroutine: bool) -> Any:
        if is_coroutine:
            return await run(dependant=dependant, values=values, is_coroutine=True)
        return dependant.call(**values)  # on the loop: what `async def` with this body would do

    async def serialize_response(*args: Any, **kwargs: Any) -> Any:
        kwargs["is_coroutine"] = True  # validate on the loop, as for an async def endpoint
        return await serialize(*args, **kwargs)

    run_endpoint_function.bench_on_loop = True  # type: ignore[attr-defined]
    routing.run_endpoint_function = run_endpoint_function
    routing.serialize_response = serialize_response
