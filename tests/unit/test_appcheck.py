"""bench/run/appcheck.py in-process (issue 25): the app imported once in its own interpreter, or in the
agent's layer on its image (a fake `docker`), before anything starts. The real CLI's refusals are in
test_own_app.py; these pin the exact lines, what the check's interpreter is given, and what env.json
records, where mutation testing can follow them."""

from __future__ import annotations

import json
import os
import platform
import stat
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import ROOT
from bench.errors import BadInput
from bench.run import appcheck
from bench.run.backends.compose import IMAGE_UID
from bench.scenario.appspec import parse_app
from tests.unit.test_app_image import engine, has_image  # noqa: F401 (engine is a fixture)

# an app that writes the environment its import sees to $PROBE_FILE
PROBE = '''
import json, os
from fastapi import FastAPI
with open(os.environ["PROBE_FILE"], "w") as f:
    json.dump({**os.environ, "CWD": os.getcwd()}, f)
app = FastAPI()

@app.get("/hi")
def hi() -> dict:
    return {}
'''
NO_DB = "postgresql://bench@127.0.0.1:9/postgres"


def cells(*servers: str, style: str = "as_written", loop: str = "asyncio", http: str = "h11") -> list[Any]:
    return [SimpleNamespace(server=s, style=style, loop=loop, http=http) for s in servers]


def probe(tmp_path: Path, **keys: Any):
    (tmp_path / "svc.py").write_text(PROBE)
    env = {"PROBE_FILE": str(tmp_path / "seen.json"), **keys.pop("app_env", {})}
    return parse_app({"app": "svc:app", **keys, "app_env": env}, tmp_path)


def seen(tmp_path: Path) -> dict[str, str]:
    return json.loads((tmp_path / "seen.json").read_text())


def test_the_check_returns_what_env_json_records_about_the_app(tmp_path: Path) -> None:
    app = probe(tmp_path)
    found = appcheck.check(app, cells("uvicorn"))
    packages = found.pop("packages")
    assert found == {"app": "svc:app", "app_dir": str(tmp_path), "app_python": sys.executable,
                     "python": platform.python_version(), "python_build": found["python_build"],
                     "fastapi_app": True}
    assert found["python_build"] and packages["fastapi"] and packages["anyio"] and packages["uvicorn"]


def test_the_check_sees_the_app_as_the_target_will(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int);\n")
    monkeypatch.setenv("BENCH_ON_LOOP", "true")  # the runner's own environment must not decide it
    appcheck.check(probe(tmp_path, services=["postgres"], db_env="SVC_DB"), cells("uvicorn"))
    env = seen(tmp_path)
    # the database's URL on a port nothing listens on, in the app's variable; no on_loop asked
    assert env["SVC_DB"] == NO_DB and env["BENCH_APP"] == "svc:app" and "BENCH_ON_LOOP" not in env
    assert env["CWD"] == str(tmp_path) != os.getcwd()  # from the app's folder, as the servers run
    appcheck.check(probe(tmp_path), cells("uvicorn", style="on_loop") + cells("uvicorn"))
    env = seen(tmp_path)
    assert env["BENCH_ON_LOOP"] == "true" and "SVC_DB" not in env  # no database: no URL


def test_what_the_app_cannot_do_is_one_line_naming_where_it_was_imported(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    where = f"(in {sys.executable}, from {tmp_path})"
    with pytest.raises(BadInput) as refused:
        appcheck.check(probe(tmp_path, app="svc:api"), cells("uvicorn"))
    assert str(refused.value) == f"app 'svc:api': module svc has no attribute 'api' {where}"
    # the stack's interpreter has every server this stack runs: a server it lacks is made up
    monkeypatch.setitem(appcheck.SERVER_DISTS, "ghost", ("ghost-server",))
    with pytest.raises(BadInput) as refused:
        appcheck.check(probe(tmp_path), cells("ghost"))
    assert str(refused.value) == ("server ghost needs ghost-server, which the app's environment lacks: pip install "
                                  f"ghost-server (the versions this stack pins) {where}")


def test_an_on_loop_the_apps_fastapi_cannot_take_is_refused(tmp_path: Path) -> None:
    (tmp_path / "svc.py").write_text("async def app(scope, receive, send):\n    pass\n")  # no FastAPI routes
    (tmp_path / "fastapi").mkdir()  # a FastAPI without the internals on_loop patches
    (tmp_path / "fastapi" / "__init__.py").write_text("__version__ = '0.1'\n")
    (tmp_path / "fastapi" / "routing.py").write_text("")
    with pytest.raises(BadInput) as refused:
        appcheck.check(parse_app({"app": "svc:app"}, tmp_path), cells("uvicorn", style="on_loop"))
    assert str(refused.value) == (
        "style = on_loop: FastAPI 0.1 has no fastapi.routing.run_endpoint_function taking dependant, "
        f"is_coroutine, values (tested on FastAPI 0.163.2) (in {sys.executable}, from {tmp_path})")
    # as written, the same app passes: only on_loop needed those internals
    assert appcheck.check(parse_app({"app": "svc:app"}, tmp_path), cells("uvicorn"))["fastapi_app"] is False


def executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_an_app_python_that_is_not_an_interpreter_is_one_line(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def said(python: str) -> str:
        with pytest.raises(BadInput) as refused:
            appcheck.run_check(parse_app({"app": "svc:app", "app_python": python}, tmp_path), on_loop=False)
        return str(refused.value)

    assert said("no-such-python3") == "app_python 'no-such-python3': no such file or command"
    (tmp_path / "plain").write_text("")
    assert said("./plain") == f"app_python '{tmp_path}/plain': not executable"
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x7fELF\x00\x00garbage")
    garbage.chmod(0o755)
    assert said("./garbage") == f"app_python '{garbage}': cannot run it (Exec format error)"
    talks = executable(tmp_path / "talks", "#!/bin/sh\necho one >&2\necho two >&2\necho three >&2\nexit 3\n")
    assert said(talks) == f"app_python '{talks}' is not a Python interpreter that runs the agent (exit 3: two | three)"
    quiet = executable(tmp_path / "quiet", "#!/bin/sh\necho said on stdout\n")
    assert said(quiet) == (f"app_python '{quiet}' is not a Python interpreter that runs the agent "
                           "(exit 0: said on stdout)")
    silent = executable(tmp_path / "silent", "#!/bin/sh\nexit 0\n")
    assert said(silent) == f"app_python '{silent}' is not a Python interpreter that runs the agent (exit 0)"
    long = executable(tmp_path / "long", "#!/bin/sh\nprintf '%0400d\\n' 7 >&2\nexit 1\n")
    assert said(long) == (f"app_python '{long}' is not a Python interpreter that runs the agent (exit 1: "
                          + "0" * 300 + ")")
    # an interpreter that never returns: the app connects to something at import
    monkeypatch.setattr(appcheck, "CHECK_TIMEOUT_S", 0.5)
    hangs = executable(tmp_path / "hangs", "#!/bin/sh\nexec sleep 20\n")
    with pytest.raises(BadInput) as refused:
        appcheck.run_check(parse_app({"app": "svc:app", "app_python": hangs}, tmp_path), on_loop=False)
    assert str(refused.value) == (f"app 'svc:app': importing it in {hangs} took over 0.5 s (does it connect "
                                  "to something at import?)")


def test_the_last_marked_line_is_the_checks_answer(tmp_path: Path) -> None:
    answer = {"error": "", "on_loop_error": "", "packages": {}}
    talks = executable(tmp_path / "py", "#!/bin/sh\necho 'BENCH_CHECK {\"error\": \"old\"}'\necho noise\n"
                       f"echo 'BENCH_CHECK {json.dumps(answer)}'\necho after\n")
    assert appcheck.run_check(parse_app({"app": "svc:app", "app_python": talks}, tmp_path), False) == answer


def test_the_apps_import_cannot_read_the_runners_input(tmp_path: Path) -> None:
    """An app that asks something at import (a prompt, a `read`) gets end of file, not the terminal
    of whoever started `bench run`: the check's stdin is /dev/null, whatever the runner's is."""
    reports = executable(tmp_path / "py", "#!/bin/sh\nprintf 'BENCH_CHECK {\"stdin\": \"%s\"}\\n' "
                         "\"$(readlink /proc/self/fd/0)\"\n")
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    try:
        os.dup2(read_end, 0)  # the runner's own stdin: a pipe that nobody writes to
        found = appcheck.run_check(parse_app({"app": "svc:app", "app_python": reports}, tmp_path), False)
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read_end, write_end):
            os.close(fd)
    assert found == {"stdin": "/dev/null"}


def test_pins_are_the_stacks_pinned_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "requirements.txt").write_text(
        "# Target image: every version pinned\n\nFastAPI==0.163.2  # the framework\nuvicorn==0.40.0\nhttptools\n")
    monkeypatch.setattr(appcheck, "ROOT", tmp_path)
    assert appcheck.pins() == {"fastapi": "0.163.2", "uvicorn": "0.40.0"}


def test_what_the_apps_environment_lacks_is_named_with_the_stacks_pins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appcheck, "pins", lambda: {"uvloop": "1.0", "httptools": "2.0", "gunicorn": "3.0",
                                                  "uvicorn-worker": "4.0"})
    have = {"anyio": "4", "uvicorn": "1"}
    tail = "which the app's environment lacks: pip install"
    assert appcheck.missing(cells("uvicorn", loop="uvloop"), have) == \
        f"loop = uvloop needs uvloop, {tail} uvloop==1.0 (the versions this stack pins)"
    assert appcheck.missing(cells("uvicorn", http="httptools"), have) == \
        f"http = httptools needs httptools, {tail} httptools==2.0 (the versions this stack pins)"
    assert appcheck.missing(cells("gunicorn"), have) == \
        f"server gunicorn needs gunicorn, uvicorn-worker, {tail} gunicorn==3.0 uvicorn-worker==4.0 (the versions this stack pins)"
    assert appcheck.missing(cells("granian", loop="uvloop"), have) == \
        f"server granian needs granian, uvloop, {tail} granian uvloop==1.0 (the versions this stack pins)"
    assert appcheck.missing(cells("uvicorn"), {"uvicorn": "1"}) == \
        "the agent needs anyio in the app's environment (FastAPI and Starlette bring it)"


def test_in_the_teams_image_the_check_runs_in_the_agents_layer_offline(engine: Path,  # noqa: F811
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    has_image(engine, "shop:1.4", "sha256:base1")
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int);\n")
    answer = {"error": "", "on_loop_error": "", "python": "3.12.8", "python_build": "CPython 3.12.8 (gcc)",
              "executable": "/usr/local/bin/python", "fastapi_app": True,
              "packages": {"anyio": "4.6.0", "uvicorn": "0.30.0", "fastapi": "0.115.0"}}
    monkeypatch.setenv("FAKE_RUN_OUT", "starting\nBENCH_CHECK " + json.dumps(answer) + "\n")
    app = parse_app({"app": "shop.main:app", "target_image": "shop:1.4", "services": ["postgres"]}, tmp_path)
    found = appcheck.check(app, cells("uvicorn", style="on_loop"))
    [argv] = (engine / "runs.log").read_text().splitlines()
    layer = next(p.name for p in (engine / "images").iterdir() if p.name.startswith("fastapi-bench-app"))
    assert argv.split() == ["run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--user",
                            str(IMAGE_UID), "-e", f"BENCH_DB_URL={NO_DB}", "-e", "BENCH_ON_LOOP=true",
                            layer.replace("_", ":", 1), "python", "-m", "benchagent.check"]
    # run from the stack's folder with the runner's environment: the app's variables are in the layer
    assert (engine / "run.where").read_text().split() == [str(ROOT), "no-BENCH_APP"]
    assert found == {"app": "shop.main:app", "app_dir": "", "target_image": "shop:1.4",
                     "app_python": "/usr/local/bin/python", "python": "3.12.8",
                     "python_build": "CPython 3.12.8 (gcc)", "fastapi_app": True, "packages": answer["packages"]}
    # no database and no on_loop: nothing passed but the layer's own settings
    plain = parse_app({"app": "shop.main:app", "target_image": "shop:1.4", "app_dir": "/srv",
                       "app_python": "/opt/venv/bin/python"}, tmp_path)
    monkeypatch.setenv("FAKE_RUN_OUT", "BENCH_CHECK " + json.dumps({**answer, "error": "importing shop failed"}))
    with pytest.raises(BadInput) as refused:
        appcheck.check(plain, cells("uvicorn"))
    assert str(refused.value) == "importing shop failed (in /usr/local/bin/python, from /srv of shop:1.4)"
    second = (engine / "runs.log").read_text().splitlines()[1].split()
    assert "-e" not in second and second[-3:] == ["/opt/venv/bin/python", "-m", "benchagent.check"]
    image_only = parse_app({"app": "shop.main:app", "target_image": "shop:1.4"}, tmp_path)
    monkeypatch.setenv("FAKE_RUN_OUT", "BENCH_CHECK " + json.dumps({**answer, "executable": "",
                                                                     "on_loop_error": "no on_loop here"}))
    with pytest.raises(BadInput) as refused:
        appcheck.check(image_only, cells("uvicorn", style="on_loop"))
    assert str(refused.value) == "no on_loop here (in python, from the WORKDIR of shop:1.4)"
    monkeypatch.setenv("FAKE_RUN_OUT", "")
    monkeypatch.setenv("FAKE_RUN_RC", "125")
    with pytest.raises(BadInput) as refused:
        appcheck.check(image_only, cells("uvicorn"))
    assert str(refused.value) == "app_python 'python in shop:1.4' is not a Python interpreter that runs the agent (exit 125)"
