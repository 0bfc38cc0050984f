"""bench/scenario/appspec.py in-process (issue 25): each refusal of the app keys, the services and the
[[endpoints]] tables as the exact line a user reads, and what an accepted spec carries on. The real
CLI's refusals (exit 2, no run directory) are in test_own_app.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bench import ROOT
from bench.errors import BadInput
from bench.scenario.appspec import AppSpec, Endpoint, parse_app, parse_endpoints

NAMES = "(letters, digits and _, and BENCH_ is the stack's)"
APP_CASES: list[tuple[dict[str, Any], str]] = [
    ({"services": ["postgres"]}, "services is for your own app (app = ...): the built-in app's db and http "
                                 "workloads start PostgreSQL and the upstream stub themselves"),
    ({"app_dir": ".", "app_python": "python3"}, 'app_dir, app_python without app: name the app, e.g. app = "main:app"'),
    ({"app": ""}, "app: expected a non-empty string, got ''"),
    ({"app": "m:a", "app_python": 3}, "app_python: expected a non-empty string, got 3"),
    ({"app": "m:a", "app_dir": ""}, "app_dir: expected a non-empty string, got ''"),
    ({"app": "m:a", "target_image": ""}, "target_image: expected a non-empty string, got ''"),
    ({"app": "m"}, "app 'm': expected \"package.module:attribute\" (e.g. \"main:app\")"),
    ({"app": "m:a", "target_image": "Shop:1"}, "target_image 'Shop:1': expected an image reference such as \"shop:1.4\""),
    ({"app": "m:a", "target_image": "shop:1", "app_dir": "srv"},
     "app_dir 'srv': with target_image, a folder inside the image (absolute; default: the image's WORKDIR)"),
    ({"app": "m:a", "app_dir": "nowhere"}, "app_dir 'nowhere': no such folder ({base}/nowhere)"),
    ({"app": "m:a", "app_env": ["A=1"]}, '[app_env] must be a table of NAME = "value"'),
    ({"app": "m:a", "app_env": {"1A": "x"}}, f"app_env.1A: not an environment variable name of the app's own {NAMES}"),
    ({"app": "m:a", "app_env": {"BENCH_X": "x"}}, f"app_env.BENCH_X: not an environment variable name of the app's own {NAMES}"),
    ({"app": "m:a", "app_env": {"A": True}}, "app_env.A: expected a string or a number, got True"),
    ({"app": "m:a", "app_env": {"A": [1]}}, "app_env.A: expected a string or a number, got [1]"),
    ({"app": "m:a", "services": "postgres"}, "services: expected a list of names (allowed: postgres), got 'postgres'"),
    ({"app": "m:a", "services": [1]}, "services: expected a list of names (allowed: postgres), got [1]"),
    ({"app": "m:a", "services": ["redis", "amqp"]}, "services: 'amqp' is not a service the run can start (allowed: postgres)"),
    ({"app": "m:a", "db_seed": "s.sql"}, 'db_seed goes with services = ["postgres"]: the run\'s own database'),
    ({"app": "m:a", "services": ["postgres"], "db_init": ""}, "db_init: expected the path of an SQL file, got ''"),
    ({"app": "m:a", "services": ["postgres"], "db_seed": 1}, "db_seed: expected the path of an SQL file, got 1"),
    ({"app": "m:a", "services": ["postgres"], "db_init": "none.sql"}, "db_init 'none.sql': no such file ({base}/none.sql)"),
    ({"app": "m:a", "services": ["postgres"], "db_env": "BENCH_DB"},
     f"db_env: 'BENCH_DB' is not an environment variable name of the app's own {NAMES}"),
    ({"app": "m:a", "services": ["postgres"], "db_env": 5}, f"db_env: 5 is not an environment variable name of the app's own {NAMES}"),
    ({"app": "m:a", "services": ["postgres"], "db_env": "SHOP_DB", "app_env": {"SHOP_DB": "x"}},
     'app_env.SHOP_DB and services = ["postgres"]: the run gives the app SHOP_DB (its own database\'s URL); '
     "drop it from [app_env] or name another db_env"),
]


@pytest.mark.parametrize(("data", "message"), APP_CASES)
def test_each_bad_app_key_is_one_exact_line(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_app(data, tmp_path)
    assert str(refused.value) == message.format(base=tmp_path)


def test_an_app_on_this_host_is_read_from_the_scenarios_folder(tmp_path: Path) -> None:
    (tmp_path / "srv").mkdir()
    (tmp_path / "init.sql").write_text("CREATE TABLE t (id int);\n")
    (tmp_path / "seed.sql").write_text("INSERT INTO t VALUES (1);\n")
    app = parse_app({"app": "shop.main:app", "app_dir": "srv", "app_python": "venv/bin/python",
                     "app_env": {"MODE": "bench", "N": 3, "PYTHONPATH": "/opt/lib"},
                     "services": ["postgres", "postgres"], "db_init": "init.sql", "db_seed": "seed.sql"}, tmp_path)
    assert app == AppSpec("shop.main:app", str(tmp_path / "srv"), str(tmp_path / "venv/bin/python"),
                          (("MODE", "bench"), ("N", "3"), ("PYTHONPATH", "/opt/lib")), ("postgres",),
                          str(tmp_path / "init.sql"), str(tmp_path / "seed.sql"), "DATABASE_URL")
    assert app.needs_db and not app.builtin and app.db_files() == (app.db_init, app.db_seed)
    assert app.db_url_env("postgresql://x") == {"DATABASE_URL": "postgresql://x"}
    # the stack's folder (the agent) first, then the app's own PYTHONPATH
    assert app.target_env() == {"MODE": "bench", "N": "3", "BENCH_APP": "shop.main:app",
                                "PYTHONPATH": f"{ROOT}{os.pathsep}/opt/lib"}
    assert app.as_dict() == {"app": "shop.main:app", "app_dir": str(tmp_path / "srv"),
                             "app_python": str(tmp_path / "venv/bin/python"),
                             "app_env": {"MODE": "bench", "N": "3", "PYTHONPATH": "/opt/lib"},
                             "services": ["postgres"], "db_init": str(tmp_path / "init.sql"),
                             "db_seed": str(tmp_path / "seed.sql"), "db_env": "DATABASE_URL"}
    # a bare interpreter name is looked up on PATH; an absolute path is kept
    assert parse_app({"app": "m:a", "app_python": "python3.12"}, tmp_path).app_python == "python3.12"
    assert parse_app({"app": "m:a", "app_python": "/usr/bin/python3"}, tmp_path).app_python == "/usr/bin/python3"
    plain = parse_app({"app": "m:a"}, tmp_path)
    assert (plain.app_dir, plain.app_python, plain.services, plain.db_env) == (str(tmp_path), "", (), "")
    assert plain.db_url_env("postgresql://x") == {} and plain.target_env() == {"BENCH_APP": "m:a", "PYTHONPATH": str(ROOT)}
    # a database with no variable named: no URL handed over
    assert AppSpec("m:a", services=("postgres",)).db_url_env("postgresql://x") == {}


def test_an_app_in_its_image_keeps_the_images_paths(tmp_path: Path) -> None:
    app = parse_app({"app": "shop.main:app", "target_image": "reg.local/shop:1.4", "services": ["postgres"],
                     "db_env": "SHOP_DB"}, tmp_path)
    assert (app.app_dir, app.app_python, app.target_image, app.db_env) == ("", "python", "reg.local/shop:1.4", "SHOP_DB")
    assert app.target_env() == {"BENCH_APP": "shop.main:app", "PYTHONPATH": "/opt/benchagent"}
    assert app.as_dict() == {"app": "shop.main:app", "target_image": "reg.local/shop:1.4", "app_python": "python",
                             "services": ["postgres"], "db_env": "SHOP_DB"}
    inside = parse_app({"app": "m:a", "target_image": "shop:1", "app_dir": "/srv", "app_python": "/venv/bin/python"},
                       tmp_path)
    assert (inside.app_dir, inside.app_python) == ("/srv", "/venv/bin/python")
    assert inside.as_dict()["app_dir"] == "/srv"


def test_the_builtin_app_is_the_spec_of_no_app_keys(tmp_path: Path) -> None:
    spec = parse_app({}, tmp_path)
    assert spec == AppSpec() and spec.builtin and spec.as_dict() == {}
    assert spec.target_env() == {"BENCH_APP": "app.main:app", "PYTHONPATH": str(ROOT)}


WHERE = "endpoints.e"
ENDPOINT_CASES: list[tuple[Any, str]] = [
    ([], "endpoints: expected [[endpoints]] tables, each with a name and a path"),
    ({"name": "e"}, "endpoints: expected [[endpoints]] tables, each with a name and a path"),
    (["e"], "endpoints: expected [[endpoints]] tables, each with a name and a path"),
    ([{"path": "/"}], "endpoints: name None: 1-64 letters, digits, _, . or - (it names cells)"),
    ([{"name": 5, "path": "/"}], "endpoints: name 5: 1-64 letters, digits, _, . or - (it names cells)"),
    ([{"name": "a b", "path": "/"}], "endpoints: name 'a b': 1-64 letters, digits, _, . or - (it names cells)"),
    ([{"name": "e", "path": "/", "data": 1, "auth": 2}],
     f"{WHERE}: unknown key 'auth' (allowed: name, method, path, json, body, headers, expect_status)"),
    ([{"name": "e"}], f"{WHERE}.path: expected a path from / without spaces (query included), got None"),
    ([{"name": "e", "path": "x"}], f"{WHERE}.path: expected a path from / without spaces (query included), got 'x'"),
    ([{"name": "e", "path": "/a b"}], f"{WHERE}.path: expected a path from / without spaces (query included), got '/a b'"),
    ([{"name": "e", "path": "/__bench/info"}], f"{WHERE}.path: /__bench/ is the agent's own; name one of the app's paths"),
    ([{"name": "e", "path": "/", "method": "FETCH"}],
     f"{WHERE}.method: 'FETCH' is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    ([{"name": "e", "path": "/", "method": 1}], f"{WHERE}.method: 1 is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    ([{"name": "e", "path": "/", "expect_status": 99}], f"{WHERE}.expect_status: 99 is not an HTTP status (100 … 599)"),
    ([{"name": "e", "path": "/", "expect_status": 600}], f"{WHERE}.expect_status: 600 is not an HTTP status (100 … 599)"),
    ([{"name": "e", "path": "/", "expect_status": True}], f"{WHERE}.expect_status: True is not an HTTP status (100 … 599)"),
    ([{"name": "e", "path": "/", "expect_status": "200"}], f"{WHERE}.expect_status: '200' is not an HTTP status (100 … 599)"),
    ([{"name": "e", "path": "/", "headers": "X: y"}], f'{WHERE}.headers: expected a table of Name = "value"'),
    ([{"name": "e", "path": "/", "headers": {"X": 1}}], f'{WHERE}.headers: expected a table of Name = "value"'),
    ([{"name": "e", "path": "/", "json": {}, "body": ""}],
     f"{WHERE}: json and body both given: json is sent as the body (with Content-Type: application/json), so give one"),
    ([{"name": "e", "path": "/", "body": 5}], f"{WHERE}.body: expected a string (or give json)"),
    ([{"name": "e", "path": "/", "body": "a\0b"}], f"{WHERE}.body: at most 64 KiB of text, without NUL bytes"),
    ([{"name": "e", "path": "/", "body": "x" * (64 * 1024 + 1)}], f"{WHERE}.body: at most 64 KiB of text, without NUL bytes"),
    ([{"name": "e", "path": "/"}, {"name": "e", "path": "/b"}], "endpoints: the name 'e' is used twice (each names a cell)"),
]


@pytest.mark.parametrize(("raw", "message"), ENDPOINT_CASES)
def test_each_bad_endpoint_is_one_exact_line(raw: Any, message: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_endpoints(raw)
    assert str(refused.value) == message


def test_endpoints_read_in_the_files_order_with_their_bodies_and_statuses() -> None:
    assert parse_endpoints(None) == {}
    read = parse_endpoints([
        {"name": "item", "path": "/items/1?full=1"},
        {"name": "order", "path": "/orders", "method": "post", "json": {"sku": "a", "n": 2, "at": 1.5},
         "headers": {"X-Key": "k"}, "expect_status": 201},
        {"name": "raw.v2", "path": "/raw", "method": "PUT", "body": "x" * 64 * 1024,
         "headers": {"content-type": "text/plain"}, "expect_status": 599},
        {"name": "typed", "path": "/t", "method": "PATCH", "json": [1], "headers": {"CONTENT-TYPE": "application/x"},
         "expect_status": 100},
    ])
    assert list(read) == ["item", "order", "raw.v2", "typed"]
    assert read["item"] == Endpoint("item", "/items/1?full=1")
    assert read["order"] == Endpoint("order", "/orders", "POST", '{"sku":"a","n":2,"at":1.5}',
                                     (("X-Key", "k"), ("Content-Type", "application/json")), 201)
    assert read["raw.v2"] == Endpoint("raw.v2", "/raw", "PUT", "x" * 64 * 1024, (("content-type", "text/plain"),), 599)
    # json given with the team's own Content-Type, in any case: theirs is kept
    assert read["typed"] == Endpoint("typed", "/t", "PATCH", "[1]", (("CONTENT-TYPE", "application/x"),), 100)
    assert read["order"].as_dict() == {"name": "order", "method": "POST", "path": "/orders",
                                       "body": '{"sku":"a","n":2,"at":1.5}',
                                       "headers": {"X-Key": "k", "Content-Type": "application/json"},
                                       "expect_status": 201}
    assert read["item"].as_dict() == {"name": "item", "method": "GET", "path": "/items/1?full=1", "expect_status": 200}
    # a value JSON cannot spell (a TOML date) is sent as its text
    import datetime

    dated = parse_endpoints([{"name": "d", "path": "/", "json": {"on": datetime.date(2026, 12, 6)}}])
    assert dated["d"].body == '{"on":"2026-12-06"}'
