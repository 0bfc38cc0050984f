"""`bench serve`: the target alone in the foreground, with a scenario's first cell's server
settings and services, until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import time

from bench import ROOT
from bench.commands.run import start_services, warn_exposed
from bench.errors import BadInput, TargetError
from bench.run import procs
from bench.run.backends.local import LocalBackend
from bench.scenario import matrix as scenario_mod


def cmd_serve(args: argparse.Namespace) -> int:
    scen = scenario_mod.load(args.scenario or "default", args.set)
    cfg = scen.cells()[0].server_config
    warn_exposed(scen.cells()[:1])
    try:
        procs.free_url(cfg.bind, cfg.port)
    except TargetError as exc:
        raise BadInput(str(exc)) from None
    backend = LocalBackend()
    run_dir = ROOT / "results" / "serve"
    endpoints = start_services(backend, scen.cells()[:1], remote=False)  # the first cell's db, upstream
    try:
        target = backend.start_target(cfg, run_dir / "stats")
        print(f"serving {cfg.server} x{cfg.workers} on {target.url} (CPUs {cfg.target_cpuset}); "
              f"log {run_dir / 'target.log'}; Ctrl-C stops", flush=True)
        for what, where in (("PostgreSQL", endpoints.db_dsn), ("upstream", endpoints.upstream_url)):
            if where:
                print(f"  {what}: {where}", flush=True)
        while target.alive():
            time.sleep(0.5)
        print(f"bench: target exited: {target.log_tail(5)}", file=sys.stderr)
        return 1
    except TargetError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        backend.close()
        backend.services.stop(run_dir / "services")
