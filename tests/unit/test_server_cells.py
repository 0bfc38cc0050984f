"""The four servers without starting one: which settings each takes, what the runner refuses before
anything starts, and the path from a cell to the server's command line on both backends.
Real servers: tests/e2e/test_app.py (each one's /info, stop) and tests/e2e/test_servers.py (runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bench.errors import BadInput
from bench.scenario import matrix as scenario
from bench.scenario.keys import by_hand_env
from benchagent.serve import SERVERS, command

ROOT = Path(__file__).resolve().parents[2]


def cells(body: dict, sets: dict | None = None) -> list:
    return scenario.from_dict(body, sets or {}).cells()


@pytest.mark.parametrize(("body", "message"), [
    ({"matrix": {"server": ["uvicorn", "granian"], "http": ["httptools"]}},
     "server = granian: http = 'httptools' is one of Uvicorn's parsers (server uvicorn or gunicorn); Granian "
     "parses HTTP itself (in Rust, with hyper): leave http = auto"),
    ({"defaults": {"server": "hypercorn", "http": "h11"}},
     "server = hypercorn: http = 'h11' is one of Uvicorn's parsers (server uvicorn or gunicorn); Hypercorn "
     "parses HTTP/1.1 with h11 and HTTP/2 with h2, always: leave http = auto"),
    ({"defaults": {"server": "granian", "granian_blocking_threads": 4}},
     "server = granian: granian_blocking_threads = 4: Granian refuses more than one blocking thread for an "
     "ASGI app (only its WSGI interface uses them); a def endpoint runs in anyio's threadpool: set "
     "threadpool_tokens"),
    ({"defaults": {"granian_runtime_threads": 2}},
     "granian_runtime_threads is for server granian, and only uvicorn run where it is set"),
    ({"matrix": [{"server": ["granian"]}, {"server": ["gunicorn", "hypercorn"], "granian_runtime_threads": [2]}]},
     "granian_runtime_threads is for server granian, and only gunicorn, hypercorn run where it is set"),
    ({"defaults": {"server": "daphne"}}, "server: 'daphne' is not one of uvicorn, gunicorn, granian, hypercorn"),
    ({"defaults": {"server": "granian", "granian_runtime_threads": 0}},
     "granian_runtime_threads: 0 is below the minimum 1"),
    ({"defaults": {"loop": "trio"}}, "loop: 'trio' is not one of auto, asyncio, uvloop"),
])
def test_a_setting_a_server_cannot_run_is_refused_with_its_reason(body: dict, message: str) -> None:
    with pytest.raises(BadInput) as err:
        cells(body)
    assert str(err.value) == message


def test_every_server_takes_every_loop_and_uvicorns_parsers_go_to_uvicorn_and_gunicorn() -> None:
    out = cells({"matrix": [{"server": list(SERVERS), "loop": ["auto", "asyncio", "uvloop"]},
                            {"server": ["uvicorn", "gunicorn"], "http": ["h11", "httptools"]}]})
    assert len(out) == 4 * 3 + 2 * 2


def test_granian_knobs_are_neutral_where_granian_does_not_run_and_part_of_its_config() -> None:
    out = cells({"defaults": {"granian_runtime_threads": 2},
                 "matrix": {"server": list(SERVERS), "style": ["def"]}})
    by = {c.server: c for c in out}
    assert (by["granian"].granian_runtime_threads, by["granian"].granian_blocking_threads) == (2, 1)
    for other in ("uvicorn", "gunicorn", "hypercorn"):
        assert (by[other].granian_runtime_threads, by[other].granian_blocking_threads) == (0, 0)
    two = cells({"defaults": {"server": "granian"}, "matrix": {"granian_runtime_threads": [1, 2]}})
    assert len({c.server_config for c in two}) == 2, "a runtime-thread count needs its own target start"
    assert len({c.cell_id for c in two}) == 2 and "granian_runtime_threads2" in two[1].cell_id


@pytest.mark.parametrize("server", SERVERS)
def test_a_cells_settings_reach_its_servers_command_line(server: str) -> None:
    [cell] = cells({"defaults": {"server": server, "workers": 3, "port": 9123, "loop": "asyncio",
                                 **({"granian_runtime_threads": 2} if server == "granian" else {})}})
    argv = command(cell.server_config.env())
    assert argv[2] == server
    text = " ".join(argv)
    assert re.search(r"(--workers|-w) 3\b", text) and "9123" in text
    assert re.search(r"(--loop|-k) asyncio\b", text) or server == "gunicorn"  # gunicorn: from its env
    if server == "granian":
        assert "--runtime-threads 2 --blocking-threads 1" in text


def test_a_configs_settings_for_the_launcher_whole() -> None:
    [db, http] = cells({"defaults": {"db_pool_size": 12, "http_pool_size": 7, "db_pool_timeout_s": 2.5},
                        "matrix": [{"workload": ["db"]}, {"workload": ["http"]}]})
    # every knob at its default (as a start by hand has them), the pools as given, Granian's neutral
    assert db.server_config.env() == {
        **by_hand_env(), "BENCH_GRANIAN_RUNTIME_THREADS": "0", "BENCH_GRANIAN_BLOCKING_THREADS": "0",
        "BENCH_DB_POOL_SIZE": "12", "BENCH_DB_POOL_TIMEOUT_S": "2.5", "BENCH_HTTP_POOL_SIZE": "0"}
    assert by_hand_env()["BENCH_THREADPOOL_TOKENS"] == "40" and by_hand_env()["BENCH_SERVER"] == "uvicorn"
    assert (http.server_config.env()["BENCH_HTTP_POOL_SIZE"], http.server_config.env()["BENCH_DB_POOL_SIZE"]) == (
        "7", "0")


def test_compose_gives_the_container_every_setting_the_local_backend_gives() -> None:
    """compose.yaml maps BENCH_X: ${BENCH_X}, which the Docker backend sets from the config: each of a
    cell's settings arrives under the name the launcher reads, with no default standing in for it."""
    spec = yaml.safe_load((ROOT / "compose.yaml").read_text())
    environment = spec["services"]["target"]["environment"]
    [cell] = cells({"defaults": {"server": "granian", "granian_runtime_threads": 3}})
    for key in cell.server_config.env():
        assert environment[key] == f"${{{key}}}", (key, environment)


def test_plot_labels_name_granian_knobs_only_where_they_differ_among_granian_cells() -> None:
    from bench.report import plots
    from bench.results.stats import summarize
    from tests.rows import make_row

    rows = [make_row(cell_id=f"{server}{rt}", server=server, granian_runtime_threads=rt,
                     granian_blocking_threads=1 if rt else 0)
            for server, rt in (("uvicorn", 0), ("granian", 1))]
    assert "granian_runtime_threads" not in plots.varying(summarize(rows), ("server",))
    rows.append(make_row(cell_id="granian2", server="granian", granian_runtime_threads=2, granian_blocking_threads=1))
    stats = summarize(rows)
    extra = plots.varying(stats, ("server",))
    assert extra == ["granian_runtime_threads"]
    assert [plots.label(s, extra) for s in stats] == ["", "granian_runtime_threads=1", "granian_runtime_threads=2"]
