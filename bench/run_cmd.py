"""`bench run`: validate everything, create the run directory, run the matrix, summarize."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import envinfo
from bench import scenario as scenario_mod
from bench.backends.base import Backend
from bench.cells import Cell, work_order
from bench.errors import BadInput
from bench.progress import Progress, describe
from bench.results import SummaryRow, read_rows
from bench.runner import Runner


def make_backend(choice: str) -> Backend:
    if choice == "local":
        from bench.backends.local import LocalBackend

        return LocalBackend()
    from bench.backends import docker

    if choice == "docker":
        if not docker.docker_available():
            raise BadInput("--backend docker: no Docker engine with Compose v2 answers (see README, Docker)")
        return docker.DockerBackend()
    if docker.docker_available():
        return docker.DockerBackend()
    from bench.backends.local import LocalBackend

    return LocalBackend()


def _resolve(args: argparse.Namespace) -> tuple[scenario_mod.Scenario, Path | None]:
    """The scenario to run and, with --resume, the run directory (whose backend auto keeps)."""
    if args.resume is None:
        if not args.scenario:
            raise BadInput("run needs a SCENARIO (or --resume RUN_DIR)")
        return scenario_mod.load(args.scenario, args.set), None
    from bench.cli import check_run_dir

    env = check_run_dir(args.resume)
    if args.set:
        raise BadInput("--resume runs the scenario stored in RUN_DIR; --set cannot change it")
    stored = env["scenario"]
    scen = scenario_mod.from_dict(
        {k: stored[k] for k in scenario_mod.TOP_LEVEL if k in stored}, {}, origin=str(args.resume)
    )
    if args.scenario and scenario_mod.load(args.scenario).name != scen.name:
        raise BadInput(f"--resume {args.resume} holds scenario {scen.name!r}, not {args.scenario!r}")
    if args.backend == "auto" and env.get("backend") in ("local", "docker"):
        args.backend = env["backend"]  # finish the run the way it started
    return scen, args.resume


def _check_ports(cells: list[Cell]) -> None:
    """A port something else already listens on would fail every cell (or measure that other
    server): refuse before anything starts. A port taken later still fails just its cells."""
    from bench.backends.base import TargetError
    from bench.backends.local import free_url

    for cfg in sorted({cell.server_config for cell in cells}, key=lambda c: (c.bind, c.port)):
        try:
            free_url(cfg)
        except TargetError as exc:
            raise BadInput(str(exc)) from None


def _new_run_dir(out: Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = out / f"{stamp}-{name}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = out / f"{stamp}-{name}-{n}"
    return run_dir


def cmd_run(args: argparse.Namespace) -> int:
    scen, resume_dir = _resolve(args)
    cells = scen.cells()
    if args.target_url and not args.target_url.startswith(("http://", "https://")):
        raise BadInput(f"--target-url {args.target_url!r}: expected http://HOST:PORT")
    backend = make_backend(args.backend)  # validated before the run directory exists
    if not args.target_url:
        _check_ports(cells)
    run_dir = resume_dir or _new_run_dir(args.out, scen.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_dir.name
    env_path = run_dir / "env.json"
    if resume_dir is None:
        (run_dir / "scenario.toml").write_text(scen.source)
        env = envinfo.collect(run_id, backend.name, backend.metadata(), scen.as_dict(), args.target_url)
    else:
        env = json.loads(env_path.read_text())
        env.setdefault("resumed_at", []).append(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    env_path.write_text(json.dumps(env, indent=2))

    done = {(r.cell_id, r.repeat) for r in read_rows(run_dir / "summary.csv")}
    items = [(c, r) for c, r in work_order(cells) if (c.cell_id, r) not in done]
    progress = Progress(len(items), sum(c.estimated_s() for c, _ in items))
    runner = Runner(backend, run_dir, run_id, target_url=args.target_url, on_row=progress.row)
    print(f"bench: {len(items)} runs of {len(cells)} cells ({len(done)} already done) on the "
          f"{backend.name} backend -> {run_dir}", file=sys.stderr)
    interrupted = False
    try:
        runner.run(items)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
        env["ended_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        env["interrupted"] = interrupted
        env_path.write_text(json.dumps(env, indent=2))
    rows = read_rows(run_dir / "summary.csv")
    if interrupted:
        print(f"bench: interrupted; {len(rows)} rows kept. Resume: bench run --resume {run_dir}",
              file=sys.stderr)
        print(run_dir)
        return 130
    code = _finish(run_dir, rows, scen.checks, no_report=args.no_report)
    print(run_dir)
    return code


def _finish(run_dir: Path, rows: list[SummaryRow], checks: dict[str, Any], no_report: bool) -> int:
    from bench import checks as checks_mod
    from bench import stats

    stats.write_stats(run_dir / "summary_stats.csv", stats.summarize(rows))
    if not no_report:
        from bench.report import write_report

        write_report(run_dir)
    print("\nsummary:", file=sys.stderr)
    for row in rows:
        print(f"  {describe(row)}", file=sys.stderr)
    saturated = [r for r in rows if r.loadgen_saturated]
    if saturated:
        print(f"  {len(saturated)} row(s) flagged: Locust was the bottleneck there, so those figures "
              "understate the target (more loadgen_processes / loadgen_workers or CPUs)", file=sys.stderr)
    failed_checks = checks_mod.evaluate(rows, checks) if checks else []
    for message in failed_checks:
        print(f"  check failed: {message}", file=sys.stderr)
    failed_cells = [r for r in rows if r.status != "ok"]
    return 1 if failed_cells or failed_checks else 0
