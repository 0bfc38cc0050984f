"""The key table is the one declaration of a knob: what is derived from it cannot drift from it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

from bench import ROOT
from bench.results.row import COLUMNS, IDENTITY
from bench.results.stats import STATS_COLUMNS
from bench.scenario.cells import PARAM_COLUMNS, Cell, ServerConfig
from bench.scenario.keys import KEYS, SERVER_KEYS, TARGET_ENV, by_hand_env, env_name


def test_knobs_doc_env_example_and_compose_are_what_make_knobs_writes() -> None:
    proc = subprocess.run([sys.executable, "scripts/knobs.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _knobs_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("knobs", ROOT / "scripts" / "knobs.py")
    assert spec and spec.loader
    knobs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(knobs)
    return knobs


def test_the_check_fails_on_a_table_edited_by_hand() -> None:
    knobs = _knobs_script()
    doc = (ROOT / knobs.KNOBS_DOC).read_text()
    edited = doc.replace("| `threadpool_tokens` | `40` |", "| `threadpool_tokens` | `41` |")
    assert edited != doc
    assert knobs.splice(edited, knobs.DOC_BEGIN, knobs.DOC_END, knobs.knobs_table(), knobs.KNOBS_DOC) == doc


def test_the_knob_table_lives_in_docs_and_links_pages_not_readme_sections() -> None:
    """README's sections moved to pages of docs/: a help's `(#real-io)` is written as `(real-io.md)`,
    and an anchor the table does not know is left as it is, for the link test to catch."""
    knobs = _knobs_script()
    assert knobs.KNOBS_DOC == "docs/knobs.md" and knobs.DOC_BEGIN not in (ROOT / "README.md").read_text()
    assert knobs.linked("see [Real I/O](#real-io), [x](#nowhere)") == "see [Real I/O](real-io.md), [x](#nowhere)"
    assert knobs.linked("[Servers](servers.md)") == "[Servers](servers.md)"
    for page in knobs.SECTION_PAGES.values():
        assert (ROOT / "docs" / page).is_file(), page
    assert "](#" not in "\n".join(knobs.knobs_table())


def test_every_key_is_a_cell_field_and_a_column_in_the_tables_order() -> None:
    assert [f.name for f in fields(Cell)] == [*KEYS, "axes", "request", "services", "db_sql"]
    expected = [k.column if k.column is not None else name for name, k in KEYS.items() if k.column != ""]
    assert list(PARAM_COLUMNS) == expected
    assert list(COLUMNS[len(IDENTITY):len(IDENTITY) + len(PARAM_COLUMNS)]) == expected
    assert list(STATS_COLUMNS[2:2 + len(PARAM_COLUMNS)]) == expected


SCHEMA_6 = (
    "run_id", "cell_id", "repeat", "attempt", "backend", "server", "workers", "style", "workload", "users",
    "load_model", "rate", "arrivals", "max_inflight", "spawn_rate", "duration_s", "warmup_s", "sleep_ms",
    "cpu_iterations", "db_query", "db_sleep_ms", "db_pool_size", "db_pool_timeout_s", "db_dependency",
    "upstream_delay_ms", "http_pool_size", "threadpool_tokens", "target_cpuset", "worker_pinning",
    "loadgen_cpuset", "db_cpuset", "loadgen_processes", "loadgen_workers", "port", "bind", "loop", "http",
    "granian_runtime_threads", "granian_blocking_threads", "target_affinity", "status", "error")


def test_the_columns_keep_the_files_order() -> None:
    """summary.csv's header of schema 6, written by hand before the columns came from the table,
    is still there in its order: a knob added to the table adds a column, it reorders none. (Every
    read checks the header whole, so a run of another header is refused, never misread.)"""
    at = [COLUMNS.index(c) for c in SCHEMA_6]
    assert at == sorted(at)
    assert COLUMNS[:len(IDENTITY)] == SCHEMA_6[:len(IDENTITY)]


def test_the_target_gets_every_knob_it_reads_as_bench_and_its_name() -> None:
    # on_loop is not a knob of its own: it is what style = "on_loop" asks of the target
    assert [f.name for f in fields(ServerConfig)] == [*SERVER_KEYS, "on_loop"]
    assert set(TARGET_ENV) < set(SERVER_KEYS) and set(SERVER_KEYS) - set(TARGET_ENV) == {"target_cpuset"}
    assert env_name("threadpool_tokens") == "BENCH_THREADPOOL_TOKENS"
    assert set(by_hand_env()) == {env_name(k) for k in TARGET_ENV}


def test_no_target_default_outside_the_table() -> None:
    """compose.yaml names each target knob with no `:-default`, and the launcher takes none."""
    compose = (ROOT / "compose.yaml").read_text()
    for key in TARGET_ENV:
        assert f"{env_name(key)}: ${{{env_name(key)}}}\n" in compose, key
    serve = (ROOT / "benchagent" / "serve.py").read_text()
    assert "setdefault" not in serve
    for key in TARGET_ENV:
        assert f'env.get("{env_name(key)}"' not in serve, key
