"""Each sample's part, from hand-made stacks as py-spy writes them (root first, full file names)."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.run import attribution as at

STD = "/usr/local/lib/python3.12"
LIB = "/venv/lib/python3.12/site-packages"
MAIN = ("_run_module_as_main (<frozen runpy>:198)", f"<module> ({LIB}/uvicorn/__main__.py:4)",
        f"run ({STD}/asyncio/runners.py:118)")
ROUTE = (f"run_asgi ({LIB}/uvicorn/protocols/http/httptools_impl.py:409)",
         f"__call__ ({LIB}/fastapi/applications.py:1054)", f"handle ({LIB}/starlette/routing.py:289)",
         f"app ({LIB}/fastapi/routing.py:301)")
THREAD = (f"_bootstrap ({STD}/threading.py:1002)", f"_bootstrap_inner ({STD}/threading.py:1045)",
          f"run ({LIB}/anyio/_backends/_asyncio.py:1113)")
ENDPOINT = "cpu (/srv/app/main.py:40)"


def test_parse_reads_py_spy_raw_lines_and_skips_a_torn_one() -> None:
    text = f"{';'.join(MAIN)} 7\n{';'.join(MAIN)} 3\n{';'.join(THREAD)};{ENDPOINT} 5\nrun (/x.py:1"
    stacks = at.parse(text)
    assert stacks == Counter({MAIN: 10, (*THREAD, ENDPOINT): 5})


def test_fold_drops_line_numbers_and_merges_what_then_matches() -> None:
    stacks = Counter({("f (/a.py:1)", "g (/b.py:2)"): 2, ("f (/a.py:9)", "g (/b.py:3)"): 3, ("h (/c.py)",): 1})
    assert at.fold(stacks) == Counter({("f (/a.py)", "g (/b.py)"): 5, ("h (/c.py)",): 1})


def test_to_text_is_folded_format_most_samples_first_and_parses_back() -> None:
    stacks = Counter({("a (/a.py:1)",): 1, ("b (/b.py:1)", "c (/c.py:2)"): 4})
    text = at.to_text(stacks)
    assert text == "b (/b.py:1);c (/c.py:2) 4\na (/a.py:1) 1\n"
    assert at.parse(text) == stacks


@pytest.mark.parametrize(("frame", "where", "top"), [
    (f"f ({LIB}/uvicorn/server.py:1)", "lib", "uvicorn"),
    ("f (/usr/lib/python3/dist-packages/h11/_state.py:3)", "lib", "h11"),
    (f"f ({STD}/json/encoder.py:1)", "stdlib", "json"),
    (f"f ({STD}/threading.py:1)", "stdlib", "threading"),
    ("f (<frozen importlib._bootstrap>:1)", "stdlib", "<frozen importlib._bootstrap>"),
    ("f (/work/benchagent/asgi.py:79)", "agent", "benchagent"),
    (f"f ({LIB}/benchagent/asgi.py:79)", "agent", "benchagent"),
    ("f (/srv/app/main.py:3)", "app", "/srv/app/main.py"),
])
def test_module_of(frame: str, where: str, top: str) -> None:
    assert at.module_of(frame)[:2] == (where, top)


@pytest.mark.parametrize(("frame", "part"), [
    (f"to_thread_run_sync ({LIB}/anyio/to_thread.py:56)", "hop"),
    (f"run_sync_in_worker_thread ({LIB}/anyio/_backends/_asyncio.py:2470)", "hop"),
    (f"_report_result ({LIB}/anyio/_backends/_asyncio.py:1092)", "hop"),
    (f"acquire_on_behalf_of ({LIB}/anyio/_backends/_asyncio.py:2263)", "hop"),
    (f"run_in_threadpool ({LIB}/starlette/concurrency.py:32)", "hop"),
    (f"contextmanager_in_threadpool ({LIB}/fastapi/concurrency.py:25)", "hop"),
    (f"put ({STD}/queue.py:150)", "hop"),
    (f"wait ({STD}/threading.py:327)", "hop"),
    (f"_worker ({STD}/concurrent/futures/thread.py:81)", "hop"),
    (f"__aenter__ ({LIB}/anyio/_backends/_asyncio.py:700)", "loop"),  # a task group: not the hop's
    (f"run_until_first_complete ({LIB}/starlette/concurrency.py:16)", "framework"),
    (f"_run_once ({STD}/asyncio/base_events.py:1900)", "loop"),
    (f"select ({STD}/selectors.py:468)", "loop"),
    (f"run ({LIB}/uvloop/__init__.py:105)", "loop"),
    (f"f ({LIB}/sniffio/_impl.py:1)", "loop"),
    (f"data_received ({LIB}/uvicorn/protocols/http/httptools_impl.py:1)", "server"),
    (f"f ({LIB}/httptools/parser.py:1)", "server"),
    (f"f ({LIB}/h11/_connection.py:1)", "server"),
    (f"f ({LIB}/gunicorn/arbiter.py:1)", "server"),
    (f"f ({LIB}/granian/asgi.py:1)", "server"),
    (f"f ({LIB}/hypercorn/protocol/h11.py:1)", "server"),
    (f"f ({LIB}/h2/connection.py:1)", "server"),
    (f"f ({LIB}/fastapi/routing.py:1)", "framework"),
    (f"f ({LIB}/starlette/routing.py:1)", "framework"),
    (f"f ({LIB}/pydantic/main.py:1)", "framework"),
    (f"f ({LIB}/pydantic_core/core_schema.py:1)", "framework"),
    (f"f ({LIB}/psycopg/cursor.py:1)", "rest"),
    ("f (/work/benchagent/sampler.py:1)", "agent"),
    (ENDPOINT, "app"),
    (f"dumps ({STD}/json/__init__.py:231)", None),
    ("f (<frozen importlib._bootstrap>:1)", None),
])
def test_part_of_frame(frame: str, part: str | None) -> None:
    assert at.part_of_frame(frame) == part


def test_a_stdlib_helper_takes_its_callers_part() -> None:
    json = (f"render ({LIB}/starlette/responses.py:200)", f"dumps ({STD}/json/__init__.py:231)",
            f"encode ({STD}/json/encoder.py:200)")
    assert at.part_of_stack((*MAIN, *ROUTE, *json)) == "framework"
    assert at.part_of_stack((*MAIN, ENDPOINT, f"dumps ({STD}/json/__init__.py:231)")) == "app"


def test_the_endpoint_in_a_worker_thread_is_the_apps_and_the_thread_around_it_the_hops() -> None:
    assert at.part_of_stack((*THREAD, ENDPOINT)) == "app"
    # the worker thread's own loop (anyio's WorkerThread.run, a name the loop code also has)
    assert at.part_of_stack(THREAD) == "hop"
    assert at.part_of_stack((*THREAD, f"get ({STD}/queue.py:171)", f"wait ({STD}/threading.py:327)")) == "hop"


def test_loop_code_called_by_the_hop_is_the_hops() -> None:
    # the worker thread wakes the loop: call_soon_threadsafe under _report_result
    wake = (*THREAD, f"_report_result ({LIB}/anyio/_backends/_asyncio.py:1092)",
            f"call_soon_threadsafe ({STD}/asyncio/base_events.py:806)",
            f"_write_to_self ({STD}/asyncio/selector_events.py:141)")
    assert at.part_of_stack(wake) == "hop"
    # the request's coroutine waiting for its thread, in the loop's own thread
    waiting = (*MAIN, *ROUTE, f"run_in_threadpool ({LIB}/starlette/concurrency.py:32)",
               f"run_sync ({LIB}/anyio/to_thread.py:56)", f"__aexit__ ({LIB}/anyio/_backends/_asyncio.py:700)",
               f"wait ({STD}/asyncio/locks.py:210)")
    assert at.part_of_stack(waiting) == "hop"
    # loop code with no hop further out stays the loop's; the server's code above it is the server's
    assert at.part_of_stack((*MAIN, f"_run_once ({STD}/asyncio/base_events.py:1900)")) == "loop"
    assert at.part_of_stack((*MAIN, f"_run_once ({STD}/asyncio/base_events.py:1900)",
                             f"data_received ({LIB}/uvicorn/protocols/http/httptools_impl.py:1)")) == "server"


def test_a_stack_of_stdlib_alone_is_rest() -> None:
    assert at.part_of_stack(("f (<frozen runpy>:1)", f"dumps ({STD}/json/__init__.py:1)")) == "rest"
    assert at.part_of_stack(()) == "rest"


def test_shares_add_up_to_100_with_every_part_present() -> None:
    stacks = Counter({(*THREAD, ENDPOINT): 30, THREAD: 10, (*MAIN, *ROUTE): 10})
    got = at.shares(stacks)
    assert list(got) == list(at.PARTS)
    assert got["app"] == pytest.approx(60.0) and got["hop"] == pytest.approx(20.0)
    assert got["framework"] == pytest.approx(20.0) and got["loop"] == 0.0
    assert sum(got.values()) == pytest.approx(100.0)
    assert at.shares(Counter()) == {part: 0.0 for part in at.PARTS}


def test_figures_count_samples_against_window_rate_and_workers() -> None:
    stacks = Counter({(*MAIN, ENDPOINT): 150, (*MAIN, *ROUTE): 50})
    got = at.figures(stacks, window_s=10.0, rate=20, workers=2)
    assert got["profile_samples"] == 200
    assert got["profile_gil_pct"] == pytest.approx(50.0)  # 200 of 10 s x 20 Hz x 2 workers
    assert got["cpu_app_pct"] == pytest.approx(75.0) and got["cpu_framework_pct"] == pytest.approx(25.0)
    assert set(got) == {"profile_samples", "profile_gil_pct", *(f"cpu_{p}_pct" for p in at.PARTS)}
    assert at.figures(stacks, window_s=0.0, rate=20, workers=1)["profile_gil_pct"] == 0.0


def test_notes_name_a_small_profile_lost_samples_and_a_short_one() -> None:
    assert at.notes(samples=400, errors=0, sampled_s=9.5, window_s=10.0) == []
    assert at.notes(samples=at.FEW_SAMPLES, errors=0, sampled_s=10, window_s=10) == []
    few = at.notes(samples=at.FEW_SAMPLES - 1, errors=0, sampled_s=10, window_s=10)
    assert few == [f"profile has {at.FEW_SAMPLES - 1} samples (under {at.FEW_SAMPLES}): its shares are rough"]
    assert at.notes(samples=400, errors=20, sampled_s=10, window_s=10) == []  # 5 %: within
    assert at.notes(samples=400, errors=21, sampled_s=10, window_s=10) == [
        "py-spy lost 21 samples against 400 kept"]
    assert at.notes(samples=400, errors=0, sampled_s=8.9, window_s=10) == [
        "profile covers 8.9 s of the 10.0 s window"]
    assert at.notes(samples=400, errors=0, sampled_s=9.0, window_s=10) == []
    assert at.notes(samples=400, errors=0, sampled_s=0, window_s=0) == []


def test_a_single_file_package_and_a_frame_without_a_file() -> None:
    te = "get_origin (/venv/lib/python3.12/site-packages/typing_extensions.py:10)"
    assert at.module_of(te) == ("lib", "typing_extensions", "get_origin")
    assert at.part_of_frame(te) == "framework"
    assert at.module_of("<native>") == ("stdlib", "", "<native>")
    assert not at.is_hop("<native>")


def test_a_window_under_one_sample_still_gives_a_gil_share() -> None:
    stacks = at.parse("main (/srv/app/main.py:1) 1\n")
    assert at.figures(stacks, 0.5, 1, 1)["profile_gil_pct"] == pytest.approx(200.0)
    assert at.figures(stacks, 0.0, 20, 1)["profile_gil_pct"] == 0.0
