"""The app a scenario measures and the requests it sends: `app`, `app_dir`, `app_python`,
`[app_env]`, `[[endpoints]]` and the services it needs (`services`, `db_init`, `db_seed`,
`db_env`), checked before anything starts.

The built-in app is one case of this: `app.main:app` from the stack's own folder on the stack's
interpreter, its endpoints made from `style` x `workload` (bench/scenario/cells.py `Cell.path`).
A team's app is another: its module, its folder, its interpreter, its requests, each an
`endpoint` of the matrix.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import ROOT
from bench.errors import BadInput

BUILTIN = "app.main:app"
APP_KEYS = ("app", "app_dir", "app_python", "app_env", "target_image", "endpoints", "services", "db_init",
            "db_seed", "db_env")
AGENT_DIR = "/opt/benchagent"  # a target_image's thin layer puts the agent here (backends/app_image.py)
SERVICES = ("postgres",)  # what an app may ask the run to start (bench/run/services.py)
DB_KEYS = ("db_init", "db_seed", "db_env")
DEFAULT_DB_ENV = "DATABASE_URL"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ENDPOINT_KEYS = ("name", "method", "path", "json", "body", "headers", "expect_status")
MAX_BODY = 64 * 1024  # it travels to every Locust process in one environment variable
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,254}")  # a local image reference (lower-case, as Docker's)


@dataclass(frozen=True)
class Endpoint:
    """One request the load sends, and the status that counts as its success."""

    name: str
    path: str
    method: str = "GET"
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    expect_status: int = 200

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "method": self.method, "path": self.path}
        if self.body:
            out["body"] = self.body
        if self.headers:
            out["headers"] = dict(self.headers)
        return {**out, "expect_status": self.expect_status}


@dataclass(frozen=True)
class AppSpec:
    """Where the target's code comes from; the built-in app when nothing is said."""

    app: str = BUILTIN
    app_dir: str = str(ROOT)
    app_python: str = ""  # "": the stack's own interpreter
    app_env: tuple[tuple[str, str], ...] = field(default=())
    services: tuple[str, ...] = ()  # started once per run, like the built-in db workloads' PostgreSQL
    db_init: str = ""  # SQL files run in the run's PostgreSQL before any cell (absolute paths)
    db_seed: str = ""
    db_env: str = ""  # the variable the app reads its database URL from
    target_image: str = ""  # the team's image (Docker backend): app_dir and app_python are inside it

    @property
    def needs_db(self) -> bool:
        return "postgres" in self.services

    def db_files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.db_init, self.db_seed) if f)

    def db_url_env(self, url: str) -> dict[str, str]:
        """The app's own variable for its database, when it asked for one."""
        return {self.db_env: url} if self.needs_db and self.db_env else {}

    @property
    def builtin(self) -> bool:
        return (self.app == BUILTIN and Path(self.app_dir) == ROOT and not self.app_python
                and not self.target_image)

    def target_env(self) -> dict[str, str]:
        """What the target process gets on top of the runner's environment: the app to import, its
        own variables, and the agent importable from the stack's folder. The app's folder comes
        first on sys.path (the servers run as `python -m`, from it), so a team's own `app` or `db`
        package is found before anything of ours."""
        env = dict(self.app_env)
        theirs = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
        paths = [AGENT_DIR if self.target_image else str(ROOT), *theirs]
        return {**env, "BENCH_APP": self.app, "PYTHONPATH": os.pathsep.join(paths)}

    def as_dict(self) -> dict[str, Any]:
        if self.builtin:
            return {}
        out: dict[str, Any] = {"app": self.app}
        if self.app_dir:
            out["app_dir"] = self.app_dir
        if self.target_image:
            out["target_image"] = self.target_image
        if self.app_python:
            out["app_python"] = self.app_python
        if self.app_env:
            out["app_env"] = dict(self.app_env)
        if self.services:
            out["services"] = list(self.services)
            out.update({k: getattr(self, k) for k in DB_KEYS if getattr(self, k)})
        return out


def parse_app(data: dict[str, Any], base: Path) -> AppSpec:
    """The app keys of a scenario file; `app_dir` and `app_python` relative to `base`, the scenario
    file's folder (a stored scenario has them absolute)."""
    given = {k: data[k] for k in ("app", "app_dir", "app_python", "app_env", "target_image") if k in data}
    service_keys = [k for k in ("services", *DB_KEYS) if k in data]
    if not given:
        if service_keys:
            raise BadInput(f"{service_keys[0]} is for your own app (app = ...): the built-in app's db and "
                           "http workloads start PostgreSQL and the upstream stub themselves")
        return AppSpec()
    if "app" not in given:
        raise BadInput(f"{', '.join(given)} without app: name the app, e.g. app = \"main:app\"")
    for key in ("app", "app_dir", "app_python", "target_image"):
        if key in given and (not isinstance(given[key], str) or not given[key]):
            raise BadInput(f"{key}: expected a non-empty string, got {given[key]!r}")
    if not _SPEC.fullmatch(given["app"]):
        raise BadInput(f"app {given['app']!r}: expected \"package.module:attribute\" (e.g. \"main:app\")")
    image = given.get("target_image", "")
    if image and not _IMAGE.fullmatch(image):
        raise BadInput(f"target_image {image!r}: expected an image reference such as \"shop:1.4\"")
    if image:  # paths inside the image: its WORKDIR and the python on its PATH unless given
        if not given.get("app_dir", "/").startswith("/"):
            raise BadInput(f"app_dir {given['app_dir']!r}: with target_image, a folder inside the image "
                           "(absolute; default: the image's WORKDIR)")
        app_dir, python = given.get("app_dir", ""), given.get("app_python", "python")
    else:
        app_dir, python = _local(given, base)
    env = given.get("app_env", {})
    if not isinstance(env, dict):
        raise BadInput("[app_env] must be a table of NAME = \"value\"")
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name) or name.startswith("BENCH_"):
            raise BadInput(f"app_env.{name}: not an environment variable name of the app's own "
                           "(letters, digits and _, and BENCH_ is the stack's)")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise BadInput(f"app_env.{name}: expected a string or a number, got {value!r}")
    return AppSpec(given["app"], app_dir, python, tuple((k, str(v)) for k, v in env.items()),
                   **_services(data, base, set(env)), target_image=image)


def _local(given: dict[str, Any], base: Path) -> tuple[str, str]:
    """app_dir and app_python on this host, relative to the scenario file's folder."""
    named = given.get("app_dir", ".")
    app_dir = (base / named).resolve()
    if not app_dir.is_dir():
        raise BadInput(f"app_dir {named!r}: no such folder ({app_dir})")
    # a bare name ("python3.12") is looked up on PATH; a path is taken from the scenario's folder
    # (base / an absolute path is that path)
    python = given.get("app_python", "")
    return str(app_dir), str(base / python) if os.sep in python else python


def _services(data: dict[str, Any], base: Path, app_env: set[str]) -> dict[str, Any]:
    """services = ["postgres"], and the SQL files and the variable that go with it."""
    services = data.get("services", [])
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise BadInput(f"services: expected a list of names (allowed: {', '.join(SERVICES)}), "
                       f"got {services!r}")
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise BadInput(f"services: {unknown[0]!r} is not a service the run can start (allowed: "
                       f"{', '.join(SERVICES)})")
    given = [k for k in DB_KEYS if k in data]
    if "postgres" not in services:
        if given:
            raise BadInput(f"{given[0]} goes with services = [\"postgres\"]: the run's own database")
        return {}
    out: dict[str, Any] = {"services": tuple(dict.fromkeys(services)), "db_env": DEFAULT_DB_ENV}
    for key in ("db_init", "db_seed"):
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, str) or not value:
            raise BadInput(f"{key}: expected the path of an SQL file, got {value!r}")
        path = (base / value).resolve()
        if not path.is_file():
            raise BadInput(f"{key} {value!r}: no such file ({path})")
        out[key] = str(path)
    if "db_env" in data:
        name = data["db_env"]
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name) or name.startswith("BENCH_"):
            raise BadInput(f"db_env: {name!r} is not an environment variable name of the app's own "
                           "(letters, digits and _, and BENCH_ is the stack's)")
        out["db_env"] = name
    if out["db_env"] in app_env:
        raise BadInput(f"app_env.{out['db_env']} and services = [\"postgres\"]: the run gives the app "
                       f"{out['db_env']} (its own database's URL); drop it from [app_env] or name another "
                       "db_env")
    return out


def parse_endpoints(raw: Any) -> dict[str, Endpoint]:
    """[[endpoints]] -> name: Endpoint, in the file's order."""
    if raw is None:
        return {}
    if not isinstance(raw, list) or not raw or not all(isinstance(e, dict) for e in raw):
        raise BadInput("endpoints: expected [[endpoints]] tables, each with a name and a path")
    out: dict[str, Endpoint] = {}
    for table in raw:
        endpoint = _endpoint(table)
        if endpoint.name in out:
            raise BadInput(f"endpoints: the name {endpoint.name!r} is used twice (each names a cell)")
        out[endpoint.name] = endpoint
    return out


def _endpoint(table: dict[str, Any]) -> Endpoint:
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadInput(f"endpoints: name {name!r}: 1-64 letters, digits, _, . or - (it names cells)")
    where = f"endpoints.{name}"
    unknown = sorted(set(table) - set(ENDPOINT_KEYS))
    if unknown:
        raise BadInput(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(ENDPOINT_KEYS)})")
    path = table.get("path")
    if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
        raise BadInput(f"{where}.path: expected a path from / without spaces (query included), got {path!r}")
    if path.startswith("/__bench/"):
        raise BadInput(f"{where}.path: /__bench/ is the agent's own; name one of the app's paths")
    method = table.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise BadInput(f"{where}.method: {method!r} is not one of {', '.join(METHODS)}")
    status = table.get("expect_status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadInput(f"{where}.expect_status: {status!r} is not an HTTP status (100 … 599)")
    headers_in = table.get("headers", {})
    if not isinstance(headers_in, dict) or not all(isinstance(v, str) for v in headers_in.values()):
        raise BadInput(f"{where}.headers: expected a table of Name = \"value\"")
    headers = dict(headers_in)
    if "json" in table and "body" in table:
        raise BadInput(f"{where}: json and body both given: json is sent as the body (with "
                       "Content-Type: application/json), so give one")
    body = table.get("body", "")
    if "json" in table:
        body = json.dumps(table["json"], separators=(",", ":"), default=str)
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    if not isinstance(body, str):
        raise BadInput(f"{where}.body: expected a string (or give json)")
    if "\0" in body or len(body.encode()) > MAX_BODY:
        raise BadInput(f"{where}.body: at most {MAX_BODY // 1024} KiB of text, without NUL bytes")
    return Endpoint(name, path, method.upper(), body, tuple(headers.items()), status)
