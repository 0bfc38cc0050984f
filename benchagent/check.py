"""`python -m benchagent.check`: the checks that need the app's own interpreter, run by the runner
before anything starts (bench/run/appcheck.py), from the app's folder with the app's variables, as
the target will be. It imports BENCH_APP as a server would and prints one line, last:

    BENCH_CHECK {"error": "" or why the app cannot load, "on_loop_error": "" or why on_loop cannot
                 apply (BENCH_ON_LOOP=true only), "python", "python_build", "executable",
                 "packages": {name: version or null}, "fastapi_app": bool}

The app's own import may print anything before it; the runner reads the last line only.
"""

from __future__ import annotations

import json
import os
import platform
import sys

MARK = "BENCH_CHECK "


def main() -> None:
    from benchagent import info, loader, onloop
    from benchagent.buildinfo import python_build

    out = {"error": "", "on_loop_error": "", "python": platform.python_version(),
           "python_build": python_build(), "executable": sys.executable, "fastapi_app": False}
    try:
        loader.export_db_url()
        app = loader.load(os.environ.get("BENCH_APP", ""))
        out["fastapi_app"] = loader.is_fastapi(app)
    except loader.LoadError as exc:
        out["error"] = str(exc)
    if not out["error"] and os.environ.get("BENCH_ON_LOOP") == "true":
        try:
            onloop.apply()
        except onloop.Unsupported as exc:
            out["on_loop_error"] = str(exc)
    out["packages"] = info.versions()  # after the import: what the app's environment holds
    sys.stdout.flush()
    print(MARK + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
