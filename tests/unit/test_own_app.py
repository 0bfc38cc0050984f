"""A team's own app as the target (issue 25), without a load: bad input refused through the real CLI
before anything starts (one line, exit 2, no run directory), the agent's loader and lifespan driven
as a server drives them, and style = on_loop in a fresh interpreter (it patches FastAPI)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.run import appcheck
from benchagent import loader
from benchagent.asgi import Agent
from tests.runs import bench_cli, write
from tests.unit.test_hostile_input import refused

ROOT = Path(__file__).resolve().parents[2]
APP = '''
from fastapi import FastAPI
app = FastAPI()

@app.get("/hi")
def hi() -> dict[str, str]:
    return {"hi": "there"}

def make():
    return app
'''
ENDPOINTS = '[[endpoints]]\nname = "hi"\npath = "/hi"\n'


def scenario(tmp_path: Path, head: str, endpoints: str = ENDPOINTS, tail: str = "") -> str:
    (tmp_path / "svc.py").write_text(APP)
    return write(tmp_path, head + endpoints + "[defaults]\nduration = 1\nwarmup = 0\n" + tail)


def run_refused(tmp_path: Path, text: str, message: str) -> None:
    out = tmp_path / "results"
    refused(bench_cli("run", text, "--backend", "local", "--out", str(out)), message)
    assert not out.exists(), "bad input must not create a run directory"


# checked in the app's own interpreter: only `run` (and capacity) import the app
@pytest.mark.parametrize(("head", "message"), [
    ('app = "nosuch.module:app"\n', "importing nosuch.module failed: ModuleNotFoundError"),
    ('app = "svc:api"\n', "module svc has no attribute 'api'"),
    ('app = "svc:make.__name__"\n', "'svc:make.__name__' is a str, not an ASGI app or a factory of one"),
    ('app = "svc:app"\napp_python = "no-such-python3"\n', "app_python 'no-such-python3': no such file or command"),
    ('app = "svc:app"\napp_python = "/bin/true"\n', "is not a Python interpreter that runs the agent (exit 0"),
])
def test_an_app_that_cannot_load_is_refused_from_its_own_interpreter(tmp_path: Path, head: str,
                                                                     message: str) -> None:
    run_refused(tmp_path, scenario(tmp_path, head), message)


KEY_CASES = [
    ('app = "svc:app"\n', ENDPOINTS, '[matrix]\nendpoint = ["hi", "bye"]\n', "bye"),
    ('app = "svc:app"\n', ENDPOINTS * 2, "", "the name 'hi' is used twice"),
    ('app = "svc:app"\n', ENDPOINTS + 'method = "FETCH"\n', "", "'FETCH' is not one of GET"),
    ('app = "svc:app"\n', ENDPOINTS + "expect_status = 99\n", "", "99 is not an HTTP status"),
    ('app = "svc:app"\n', ENDPOINTS + 'json = {a = 1}\nbody = "x"\n', "", "json and body both given"),
    ('app = "svc:app"\n', ENDPOINTS, '[matrix]\nstyle = ["def"]\n', "style"),
    ('app = "svc:app"\n', ENDPOINTS, '[matrix]\nworkload = ["sleep"]\n', "workload"),
    ('app = "svc:app"\n', "", "", "needs [[endpoints]]"),
    ('app_dir = "."\n', ENDPOINTS, "", "app_dir without app"),
    ('app = "svc"\n', ENDPOINTS, "", "expected \"package.module:attribute\""),
]


@pytest.mark.parametrize(("head", "endpoints", "tail", "message"), KEY_CASES)
def test_bad_app_keys_are_refused_by_plan_and_run(tmp_path: Path, head: str, endpoints: str, tail: str,
                                                  message: str) -> None:
    text = scenario(tmp_path, head, endpoints, tail)
    refused(bench_cli("plan", text), message)
    run_refused(tmp_path, text, message)


SERVICE_CASES = [
    ('services = ["postgres"]\n', "services is for your own app"),
    ('app = "svc:app"\nservices = ["redis"]\n', "'redis' is not a service the run can start"),
    ('app = "svc:app"\nservices = "postgres"\n', "services: expected a list of names"),
    ('app = "svc:app"\ndb_init = "schema.sql"\n', "db_init goes with services = [\"postgres\"]"),
    ('app = "svc:app"\nservices = ["postgres"]\ndb_init = "none.sql"\n', "db_init 'none.sql': no such file"),
    ('app = "svc:app"\nservices = ["postgres"]\ndb_env = "BENCH_DB"\n', "db_env: 'BENCH_DB' is not"),
    ('app = "svc:app"\nservices = ["postgres"]\n[app_env]\nDATABASE_URL = "x"\n',
     "app_env.DATABASE_URL and services"),
]


@pytest.mark.parametrize(("head", "message"), SERVICE_CASES)
def test_bad_service_keys_are_refused_by_plan_and_run(tmp_path: Path, head: str, message: str) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int);\n")
    text = scenario(tmp_path, head)
    refused(bench_cli("plan", text), message)
    run_refused(tmp_path, text, message)


@pytest.mark.parametrize(("head", "endpoints", "tail", "message"),
                         [*KEY_CASES, *((head, ENDPOINTS, "", message) for head, message in SERVICE_CASES)])
def test_the_same_keys_are_refused_by_the_scenario_reader_itself(tmp_path: Path, head: str, endpoints: str,
                                                                  tail: str, message: str) -> None:
    """In-process, as `bench plan` reads them (what mutation testing can follow)."""
    from bench.errors import BadInput
    from bench.scenario import matrix

    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int);\n")
    with pytest.raises(BadInput) as err:
        matrix.load(scenario(tmp_path, head, endpoints, tail))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_app_scenario_reads_into_its_spec_and_cells(tmp_path: Path) -> None:
    from bench.scenario import matrix

    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int);\n")
    (tmp_path / "seed.sql").write_text("INSERT INTO t VALUES (1);\n")
    body = ENDPOINTS + ('[[endpoints]]\nname = "o"\nmethod = "post"\npath = "/o?x=1"\njson = {n = 1}\n'
                        'headers = {X-Key = "k"}\nexpect_status = 201\n')
    scen = matrix.load(scenario(tmp_path, 'app = "svc:make"\napp_python = "python3"\nservices = ["postgres"]\n'
                                'db_init = "schema.sql"\ndb_seed = "seed.sql"\n[app_env]\nA = 1\n', body,
                                '[matrix]\nstyle = ["as_written", "on_loop"]\n'))
    app = scen.app
    assert (app.app, app.app_dir, app.app_python, app.app_env) == ("svc:make", str(tmp_path), "python3",
                                                                   (("A", "1"),))
    assert app.services == ("postgres",) and app.db_env == "DATABASE_URL" and not app.builtin
    assert app.db_files() == (str(tmp_path / "schema.sql"), str(tmp_path / "seed.sql"))
    assert app.db_url_env("postgresql://x") == {"DATABASE_URL": "postgresql://x"}
    env = app.target_env()
    assert env["BENCH_APP"] == "svc:make" and env["A"] == "1" and env["PYTHONPATH"] == str(ROOT)
    order = scen.endpoints["o"]
    assert (order.method, order.path, order.body, order.expect_status) == ("POST", "/o?x=1", '{"n":1}', 201)
    assert dict(order.headers) == {"X-Key": "k", "Content-Type": "application/json"}
    cells = scen.cells()
    assert sorted((c.endpoint, c.style) for c in cells) == [
        ("hi", "as_written"), ("hi", "on_loop"), ("o", "as_written"), ("o", "on_loop")]
    assert all(c.needs_db and c.db_cpuset and c.db_sql == app.db_files() for c in cells)
    assert [c.server_config.on_loop for c in cells if c.endpoint == "hi"] == [False, True]
    stored = scen.as_dict()  # what scenario.toml keeps for --resume: every key of the app
    assert stored["app"] == "svc:make" and stored["services"] == ["postgres"]
    assert stored["db_init"] == str(tmp_path / "schema.sql") and stored["app_env"] == {"A": "1"}
    assert stored["endpoints"][1] == {"name": "o", "method": "POST", "path": "/o?x=1", "body": '{"n":1}',
                                      "headers": {"X-Key": "k", "Content-Type": "application/json"},
                                      "expect_status": 201}


def test_an_apps_database_is_placed_and_named_in_the_plan(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int);\n")
    text = scenario(tmp_path, 'app = "svc:app"\nservices = ["postgres"]\ndb_init = "schema.sql"\n'
                    'db_env = "SVC_DB"\n', tail='db_cpuset = "0"\n[matrix]\nworkers = [1, 5]\n')
    proc = bench_cli("plan", text)
    assert proc.returncode == 0, proc.stderr
    assert "services: PostgreSQL once for the run, on CPUs 0" in proc.stdout
    assert "max_connections 120" in proc.stdout  # 20 per worker of the largest cell, and a margin
    assert "the app gets its URL in SVC_DB, after schema.sql" in proc.stdout


def test_plan_lists_one_cell_per_endpoint_and_style(tmp_path: Path) -> None:
    body = ENDPOINTS + '[[endpoints]]\nname = "order"\nmethod = "post"\npath = "/o"\njson = {n = 1}\n'
    proc = bench_cli("plan", scenario(tmp_path, 'app = "svc:app"\n', body,
                                      '[matrix]\nstyle = ["as_written", "on_loop"]\n'))
    assert proc.returncode == 0, proc.stderr
    for endpoint in ("hi", "order"):
        for style in ("as_written", "on_loop"):
            assert any(endpoint in line and style in line for line in proc.stdout.splitlines()), proc.stdout


def test_check_reports_the_app_environment(tmp_path: Path) -> None:
    from bench.scenario.appspec import parse_app

    (tmp_path / "svc.py").write_text(APP)
    spec = parse_app({"app": "svc:make"}, tmp_path)  # a factory, as Uvicorn's --factory takes it
    found = appcheck.run_check(spec, on_loop=True)
    assert found["error"] == "" and found["on_loop_error"] == "" and found["fastapi_app"] is True
    assert found["packages"]["fastapi"] and found["packages"]["uvicorn"] and found["executable"]


def cells(*servers: str, loop: str = "asyncio", http: str = "h11") -> list[Any]:
    return [SimpleNamespace(server=s, loop=loop, http=http) for s in servers]


def test_a_server_the_app_environment_lacks_is_named_with_its_install_line() -> None:
    have = {"anyio": "4", "uvicorn": "1", "gunicorn": "1", "uvicorn_worker": "1", "hypercorn": "1"}
    assert appcheck.missing(cells("uvicorn", "gunicorn", "hypercorn"), have) == ""
    line = appcheck.missing(cells("uvicorn", "granian"), have)
    pins = appcheck.pins()
    assert line.startswith("server granian needs granian, which the app's environment lacks")
    assert f"pip install granian=={pins['granian']}" in line
    line = appcheck.missing(cells("gunicorn"), {"anyio": "4", "uvicorn": "1"})
    assert line.startswith("server gunicorn needs gunicorn, uvicorn-worker,")
    assert "uvloop" in appcheck.missing(cells("uvicorn", loop="uvloop"), have)
    assert "httptools" in appcheck.missing(cells("uvicorn", http="httptools"), have)
    assert "anyio" in appcheck.missing(cells("uvicorn"), {"uvicorn": "1"})


# ------------------------------------------------------------------ the loader


def test_loader_takes_an_app_a_dotted_attribute_and_a_factory(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "own_pkg").mkdir()
    (tmp_path / "own_pkg" / "__init__.py").write_text("")
    (tmp_path / "own_pkg" / "web.py").write_text(
        "async def app(scope, receive, send): pass\n"
        "class Holder:\n    inner = app\n"
        "def factory(debug=False):\n    return app\n"
        "def broken():\n    raise RuntimeError('no config')\n"
        "NOT_AN_APP = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = loader.load("own_pkg.web:app")
    assert loader.load("own_pkg.web:Holder.inner") is app
    assert loader.load("own_pkg.web:factory") is app  # called: a function without required arguments
    assert not loader.is_factory(app) and not loader.is_fastapi(app)
    with pytest.raises(loader.LoadError, match="its factory raised RuntimeError: no config"):
        loader.load("own_pkg.web:broken")
    with pytest.raises(loader.LoadError, match="is a int, not an ASGI app or a factory"):
        loader.load("own_pkg.web:NOT_AN_APP")
    with pytest.raises(loader.LoadError, match=r"expected \"package\.module:attribute\""):
        loader.split("own_pkg.web")


# ------------------------------------------------------------------ the agent, as a server drives it


class Server:
    """Drives an ASGI app's lifespan and one request as a server does; records what it was sent."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def lifespan(self, shutdown: bool) -> list[dict[str, Any]]:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        out: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            out.append(message)
            if message["type"] == "lifespan.startup.complete" and shutdown:
                await inbox.put({"type": "lifespan.shutdown"})

        await inbox.put({"type": "lifespan.startup"})
        await asyncio.wait_for(self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                        inbox.get, send), 10)
        return out

    async def get(self, path: str, method: str = "GET") -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
        await self.app(scope, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture(autouse=True)
def no_agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BENCH_PIN_DIR", "BENCH_THREADPOOL_TOKENS", "BENCH_STATS_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_the_agent_runs_the_apps_lifespan_and_passes_its_failure_through() -> None:
    events: list[str] = []

    def app_with(startup: str) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "lifespan":
                events.append(scope["path"])
                await send({"type": "http.response.start", "status": 204, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            await receive()
            if startup == "failed":
                await send({"type": "lifespan.startup.failed", "message": "no database"})
                return
            events.append("startup")
            await send({"type": "lifespan.startup.complete"})
            await receive()
            events.append("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
        return app

    ok = Server(Agent(app_with("ok")))
    said = asyncio.run(ok.lifespan(shutdown=True))
    assert [m["type"] for m in said] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["startup", "shutdown"]
    said = asyncio.run(Server(Agent(app_with("failed"))).lifespan(shutdown=False))
    assert said == [{"type": "lifespan.startup.failed", "message": "no database"}]

    assert asyncio.run(ok.get("/__bench/healthz")) == (200, b'{"status": "ok"}')
    assert asyncio.run(ok.get("/__bench/healthz", "HEAD")) == (200, b"")
    assert asyncio.run(ok.get("/__bench/nothing"))[0] == 404
    assert asyncio.run(ok.get("/orders/__bench/healthz")) == (204, b"")  # the app's own paths: untouched
    assert asyncio.run(ok.get("/healthz")) == (204, b"")
    assert events[-2:] == ["/orders/__bench/healthz", "/healthz"]
    info = json.loads(asyncio.run(ok.get("/__bench/info"))[1])
    assert info["agent"] is True and info["anyio"] and info["pid"] > 0


def test_an_app_without_lifespan_still_starts() -> None:
    async def plain(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "an app that does not speak lifespan"

    said = asyncio.run(Server(Agent(plain)).lifespan(shutdown=True))
    assert [m["type"] for m in said] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_the_agent_sizes_the_threadpool_inside_the_workers_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_THREADPOOL_TOKENS", "7")
    seen: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        from anyio.to_thread import current_default_thread_limiter

        await receive()
        seen.append(current_default_thread_limiter().total_tokens)
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    asyncio.run(Server(Agent(app)).lifespan(shutdown=True))
    assert seen == [7]


# ------------------------------------------------------------------ on_loop, in its own interpreter

ON_LOOP = '''
import asyncio, json, sys, threading
from typing import Annotated
from fastapi import Depends, FastAPI
from benchagent import onloop
if sys.argv[1] == "on_loop":
    onloop.apply()
    onloop.apply()  # a second time changes nothing
app = FastAPI()
def dep() -> int:
    return threading.get_ident()
@app.get("/sync")
def sync(d: Annotated[int, Depends(dep)]) -> dict[str, int]:
    return {"at": threading.get_ident(), "dep": d}
@app.get("/async")
async def asy() -> dict[str, int]:
    return {"at": threading.get_ident()}
async def get(path):
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(m):
        sent.append(m)
    await app({"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b"",
               "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http", "root_path": "",
               "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "raw_path": path.encode()}, receive, send)
    return json.loads(sent[1]["body"])
async def main():
    print(json.dumps({"loop": threading.get_ident(), "sync": await get("/sync"), "async": await get("/async")}))
asyncio.run(main())
'''


@pytest.mark.parametrize("style", ["as_written", "on_loop"])
def test_on_loop_runs_def_path_operations_on_the_loop_and_leaves_dependencies(style: str) -> None:
    proc = subprocess.run([sys.executable, "-c", ON_LOOP, style], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["async"]["at"] == got["loop"]
    assert got["sync"]["dep"] != got["loop"]  # a def dependency: the threadpool, either way
    assert (got["sync"]["at"] == got["loop"]) is (style == "on_loop")


# ------------------------------------------------------------------ target_image (Docker)

@pytest.mark.parametrize(("head", "backend", "message"), [
    ('app = "svc:app"\ntarget_image = "Shop Image"\n', "docker", "expected an image reference"),
    ('app = "svc:app"\ntarget_image = "shop:1"\napp_dir = "src"\n', "docker", "a folder inside the image"),
    ('app = "svc:app"\ntarget_image = "shop:1"\n', "local", "runs on --backend docker"),
    ('app = "svc:app"\n', "docker", "give target_image"),
])
def test_target_image_keys_and_backends_are_refused_before_anything_starts(tmp_path: Path, head: str,
                                                                          backend: str, message: str) -> None:
    out = tmp_path / "results"
    refused(bench_cli("run", scenario(tmp_path, head), "--backend", backend, "--out", str(out)), message)
    assert not out.exists()


def test_the_agents_layer_keeps_the_apps_values_literal_and_replaces_its_entrypoint(tmp_path: Path) -> None:
    from bench.run.backends import app_image
    from bench.scenario.appspec import parse_app

    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int);\n")
    spec = parse_app({"app": "shop.main:app", "target_image": "shop:1.4", "app_dir": "/srv/shop",
                      "app_python": "/opt/venv/bin/python", "services": ["postgres"], "db_env": "SHOP_DB",
                      "app_env": {"SECRET": 'a"b$HOME\\c', "N": 3}}, tmp_path)
    text = app_image.dockerfile(spec)
    lines = text.splitlines()
    assert lines[0] == "FROM shop:1.4" and lines[-2:] == [
        "ENTRYPOINT []", 'CMD ["/opt/venv/bin/python", "-m", "benchagent.serve"]']
    assert 'ENV SECRET="a\\"b\\$HOME\\\\c"' in lines  # quotes, backslashes and $ arrive as written
    assert 'ENV N="3"' in lines and 'ENV BENCH_APP="shop.main:app"' in lines
    assert 'ENV BENCH_APP_DB_ENV="SHOP_DB"' in lines and "WORKDIR /srv/shop" in lines
    assert 'ENV PYTHONPATH="/opt/benchagent${PYTHONPATH:+:$PYTHONPATH}"' in lines
    # the image's own python and WORKDIR when none is named
    plain = app_image.dockerfile(parse_app({"app": "main:app", "target_image": "shop:1.4"}, tmp_path))
    assert "WORKDIR" not in plain and 'CMD ["python", "-m", "benchagent.serve"]' in plain


def test_the_agent_hands_the_runs_database_url_to_the_apps_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DB", "")  # so that what export_db_url sets is undone after the test
    monkeypatch.delenv("SHOP_DB")
    monkeypatch.setenv("BENCH_DB_URL", "postgresql://bench@127.0.0.1:5999/postgres")
    loader.export_db_url()  # no BENCH_APP_DB_ENV: nothing asked
    assert "SHOP_DB" not in os.environ
    monkeypatch.setenv("BENCH_APP_DB_ENV", "SHOP_DB")
    loader.export_db_url()
    assert os.environ["SHOP_DB"] == "postgresql://bench@127.0.0.1:5999/postgres"
