"""`bench run`: validate everything, create (or reopen) the run directory, run the matrix, summarize.

Everything that can be refused is refused before the run directory exists: the scenario, the
options, the backend, the ports, a remote target that does not answer.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BadInput, TargetError
from bench.judge import gate
from bench.results.baseline import Baseline
from bench.results.row import latest
from bench.results.rundir import RunDir, kept
from bench.run import appcheck, envinfo
from bench.run.backends.base import Backend
from bench.run.progress import Progress, describe
from bench.run.runner import Runner
from bench.run.services import Endpoints, Needs, ServiceError, needs
from bench.scenario import matrix as scenario_mod
from bench.scenario.appspec import AppSpec
from bench.scenario.cells import Cell, work_order
from bench.scenario.collapse import merged_axes


def load_backend(choice: str, app: AppSpec | None = None) -> Backend:
    """Where the target and Locust run: local processes or Compose services. A team's own app runs
    as local processes from its folder, or, with target_image, as its own image on Docker."""
    app = app or AppSpec()
    from bench.run.backends.local import LocalBackend

    if app.target_image and choice == "local":
        raise BadInput(f"target_image {app.target_image!r} runs on --backend docker (or auto); --backend "
                       "local runs the app from its folder (app_dir) on its interpreter (app_python)")
    if choice == "local" or (choice == "auto" and not app.builtin and not app.target_image):
        return LocalBackend(app=app)
    from bench.run.backends import compose, docker

    if choice == "docker" and not app.builtin and not app.target_image:
        raise BadInput(f"--backend docker runs an image: give target_image = \"<your image>\" for app = "
                       f"{app.app!r}, or run it on --backend local (its own interpreter, pinned)")
    if choice == "docker" or app.target_image:
        if not compose.docker_available():
            raise BadInput(f"{'target_image' if app.target_image else '--backend docker'}: no Docker engine "
                           "with Compose v2 answers (see docs/docker.md)")
        return docker.DockerBackend(app)
    if compose.docker_available():
        return docker.DockerBackend()
    return LocalBackend()


def make_backend(choice: str, target_url: str | None = None, app: AppSpec | None = None) -> Backend:
    """The backend for this run; with a target URL, a remote target loaded from `choice`'s Locust."""
    if target_url is None:
        return load_backend(choice, app=app)
    if app is not None and not app.builtin:
        raise BadInput(f"--target-url measures a target that runs already; app = {app.app!r} names one to "
                       "start: give one or the other ([[endpoints]] alone go with --target-url)")
    from bench.run.backends.remote import RemoteBackend, check_url, preflight

    url = check_url(target_url)
    preflight(url)
    return RemoteBackend(url, load_backend(choice))


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _resolve(args: argparse.Namespace) -> tuple[scenario_mod.Scenario, RunDir | None]:
    """The scenario to run and, with --resume, its run directory; fills in how it ran before
    (backend, target URL) where the command line leaves them open."""
    if args.retry_failed and args.resume is None:
        raise BadInput("--retry-failed goes with --resume RUN_DIR")
    if args.resume is None:
        if not args.scenario:
            raise BadInput("run needs a SCENARIO (or --resume RUN_DIR)")
        return scenario_mod.load(args.scenario, args.set), None
    run = RunDir.open(args.resume)
    if run.env().get("command") == "capacity":
        raise BadInput(f"--resume {args.resume}: a capacity search is not resumed; run bench capacity again "
                       "(its finished searches are in capacity.csv)")
    if args.set:
        raise BadInput("--resume runs the scenario stored in RUN_DIR; --set cannot change it")
    stored = run.stored_scenario()
    scen = scenario_mod.from_dict({k: stored[k] for k in scenario_mod.TOP_LEVEL if k in stored}, {},
                                  origin=str(run.env_path))
    if args.scenario and scenario_mod.load(args.scenario).name != scen.name:
        raise BadInput(f"--resume {args.resume} holds scenario {scen.name!r}, not {args.scenario!r}")
    env = run.env()
    meta = env.get("backend_meta") if isinstance(env.get("backend_meta"), dict) else {}
    if args.target_url is None and isinstance(env.get("target_url"), str):
        args.target_url = env["target_url"]  # a remote run resumes against the same target
    ran_on = meta.get("loadgen_backend") if env.get("backend") == "remote" else env.get("backend")
    if args.backend == "auto" and ran_on in ("local", "docker"):
        args.backend = ran_on  # finish the run the way it started
    return scen, run


def warn_exposed(cells: list[Cell]) -> None:
    """One line per address beyond loopback: the target is then reachable from other hosts."""
    for bind in sorted({c.bind for c in cells if not scenario_mod.is_loopback(c.bind)}):
        print(f"bench: warning: bind = {bind}: the target listens beyond loopback, reachable from other "
              "hosts", file=sys.stderr)


def check_profile(cells: list[Cell], target_url: str | None = None) -> None:
    """profile = "cpu" samples the target's workers with py-spy on this host: a target someone else
    runs has none we can see, and py-spy missing or refused by the kernel would fail every cell."""
    if not any(cell.profile == "cpu" for cell in cells):
        return
    if target_url is not None:
        raise BadInput('profile = "cpu" samples the workers of a target this bench starts; --target-url '
                       "measures one it cannot see (profile it where it runs: py-spy record --pid ...)")
    from bench.run import profiler

    why = profiler.refusal()
    if why:
        raise BadInput(why)


def check_ports(cells: list[Cell]) -> None:
    """A port something else already listens on would fail every cell (or measure that other
    server): refuse before anything starts. A port taken later still fails just its cells."""
    from bench.run import procs

    for cfg in sorted({cell.server_config for cell in cells}, key=lambda c: (c.bind, c.port)):
        try:
            procs.free_url(cfg.bind, cfg.port)
        except TargetError as exc:
            raise BadInput(str(exc)) from None


def _todo(run: RunDir, cells: list[Cell], retry_failed: bool
          ) -> tuple[list[tuple[Cell, int]], dict[tuple[str, int], int], int]:
    """The (cell, repeat) runs still to do, the attempt number each gets, and how many are done."""
    last = {(r.cell_id, r.repeat): r for r in latest(run.rows())}
    done = {k for k, r in last.items() if r.status == "ok" or not retry_failed}
    items = [(c, r) for c, r in work_order(cells) if (c.cell_id, r) not in done]
    attempts = {k: r.attempt + 1 for k, r in last.items()}
    return items, attempts, len(done)


def start_services(backend: Backend, cells: list[Cell], remote: bool) -> Endpoints:
    """PostgreSQL and the upstream stub, when some cell needs them, before the run directory
    exists: one that cannot start (not installed, its port taken) refuses the run in one line. A
    remote target brings its own."""
    want = Needs() if remote else needs(cells)
    if not want.any:
        return Endpoints()
    try:
        return backend.start_services(want)
    except ServiceError as exc:
        raise BadInput(str(exc)) from None


def stop_services(backend: Backend, run: RunDir | None) -> None:
    backend.services.stop(run.path / "services" if run is not None else None)


def backend_metadata(backend: Backend) -> dict[str, Any]:
    try:
        return backend.metadata()
    except TargetError as exc:
        raise BadInput(str(exc)) from None


@dataclass(frozen=True)
class CiArgs:
    """--baseline, --threshold and --junit, checked (and the baseline read) before the run starts."""

    baseline: Baseline | None = None
    threshold: float = gate.DEFAULT_THRESHOLD_PCT
    junit: Path | None = None


def ci_args(args: argparse.Namespace) -> CiArgs:
    if args.threshold is not None and args.baseline is None:
        raise BadInput("--threshold goes with --baseline PATH")
    from bench.report import junit
    from bench.results import baseline

    if args.junit is not None:  # first: an old report goes even when the baseline is refused
        junit.check_target(args.junit)
    base = baseline.load(args.baseline) if args.baseline is not None else None
    given = args.threshold if args.threshold is not None else gate.DEFAULT_THRESHOLD_PCT
    return CiArgs(base, given, args.junit)


def cmd_run(args: argparse.Namespace) -> int:
    scen, resumed = _resolve(args)
    ci = ci_args(args)
    cells = scen.cells()
    check_profile(cells, args.target_url)
    backend = make_backend(args.backend, args.target_url, scen.app)  # refused before the run directory exists
    # a team's app imports, in its own interpreter (or image), before anything starts
    app_meta = appcheck.check(scen.app, cells) if args.target_url is None and not scen.app.builtin else {}
    if args.target_url is None:
        warn_exposed(cells)
        check_ports(cells)
    meta = backend_metadata(backend) if resumed is None else {}  # builds the images: a failed build
    if app_meta:
        meta = {**meta, "app": app_meta}
    # a resumed run needs the services of the cells still to do, no more
    todo = cells if resumed is None else [c for c, _ in _todo(resumed, cells, args.retry_failed)[0]]
    endpoints = start_services(backend, todo, args.target_url is not None)  # stops here, no run directory
    run: RunDir | None = None
    try:
        run = _open_run(args, scen, resumed, backend, meta)
        with kept(run.path, resumable=True):
            if endpoints.meta:  # the PostgreSQL version, its connections and CPUs
                run.write_env({**run.env(), "services": endpoints.meta})
            return _run(args, scen, run, backend, cells, ci)
    finally:
        stop_services(backend, run)


def _open_run(args: argparse.Namespace, scen: scenario_mod.Scenario, resumed: RunDir | None, backend: Backend,
              meta: dict[str, Any]) -> RunDir:
    if resumed is None:
        run = RunDir.create(args.out, scen.name)
        run.write_scenario(scen.source)
        env = envinfo.collect(run.name, backend.name, meta, scen.as_dict(), args.target_url)
        env["merged_axes"] = merged_axes(scen)  # the report says which question was not tested here
    else:
        run = resumed
        torn = run.set_aside_torn()
        if torn:
            print(f"bench: warning: the last line of {run.summary_path} was cut by a crash; set aside in "
                  "summary.csv.torn, and its run is done again", file=sys.stderr)
        env = run.env()
        env.setdefault("resumed_at", []).append(_utc())
    run.write_env(env)
    return run


def _run(args: argparse.Namespace, scen: scenario_mod.Scenario, run: RunDir, backend: Backend,
         cells: list[Cell], ci: CiArgs) -> int:
    env = run.env()
    items, attempts, n_done = _todo(run, cells, args.retry_failed)
    progress = Progress(len(items), sum(c.estimated_s() for c, _ in items))
    runner = Runner(backend, run, on_row=progress.row)
    print(f"bench: {len(items)} runs of {len(cells)} cells ({n_done} already done) on the "
          f"{backend.name} backend -> {run.path}", file=sys.stderr)
    for sentence in env.get("merged_axes", []):
        print(f"bench: note: {sentence}", file=sys.stderr)
    with run.ending(env):
        try:
            runner.run_all(items, attempts)
        finally:
            progress.close()
    if env["interrupted"]:
        print(f"bench: interrupted; {len(run.rows())} rows kept. Resume: bench run --resume {run.path}",
              file=sys.stderr)
        print(run.path)
        return 130
    code = _finish(run, scen.name, scen.checks, no_report=args.no_report, ci=ci)
    print(run.path)
    return code


def _finish(run: RunDir, name: str, checks: dict[str, Any], no_report: bool, ci: CiArgs | None = None) -> int:
    from bench.judge import checks as checks_mod
    from bench.judge.answer import answer
    from bench.judge.outcome import Outcome
    from bench.report.publish import publish
    from bench.results import stats

    ci = ci or CiArgs()
    rows = run.latest_rows()
    cell_stats = stats.summarize(rows)
    run.write_stats(cell_stats)
    env = run.env()
    # the target's build as its /info said: a baseline kept without cells/ still tells it
    env["target_python_build"] = run.python_build()
    run.write_env(env)
    failed_checks = checks_mod.evaluate(rows, checks) if checks else None
    if not no_report:
        from bench.report.pages import write_report

        write_report(run, rows, cell_stats, failed_checks)
    # each ok run was printed as it ran: the summary repeats only the failed ones, and the answer ends it
    failed = [r for r in rows if r.status != "ok"]
    print(f"\nsummary: {len(rows) - len(failed)} of {len(rows)} runs ok", file=sys.stderr)
    for row in failed:
        print(f"  {describe(row)}", file=sys.stderr)
    saturated = [r for r in rows if r.loadgen_saturated and r.status == "ok"]
    if saturated:
        from bench.run.headroom import advice

        print(f"  {len(saturated)} row(s) flagged: Locust was the bottleneck there, so those figures "
              "understate the target (per cell, its last repeat):", file=sys.stderr)
        for row in {r.cell_id: r for r in saturated}.values():
            print(f"    {advice(row)}", file=sys.stderr)
    for message in failed_checks or []:
        print(f"  check failed: {message}", file=sys.stderr)
    said = answer(cell_stats, rows, env.get("merged_axes"))
    if said.lines or said.notes:
        print("\nthe answer:\n" + said.text(), file=sys.stderr)
    verdicts = tuple(checks_mod.verdicts(rows, checks or {}))
    said_md, floors = tuple(said.markdown()), tuple(s.cell_id for s in cell_stats if s.any_saturated)
    if ci.baseline is None:
        outcome = Outcome(run.name, name, verdicts, answer=said_md, floors=floors)
    else:
        current = (str(env.get("cpu_model") or ""), env["target_python_build"])
        outcome = Outcome(run.name, name, verdicts,
                          tuple(gate.judge(ci.baseline, cell_stats, *current, threshold=ci.threshold)),
                          str(ci.baseline.source), ci.threshold,
                          gate.machine_differs(ci.baseline, *current) or gate.unchecked(ci.baseline),
                          answer=said_md, floors=floors)
    for line in outcome.lines():  # nothing without a baseline
        print(line, file=sys.stderr)
    for path in publish(outcome, run, ci.junit):
        print(f"  wrote {path}", file=sys.stderr)
    return outcome.exit_code
