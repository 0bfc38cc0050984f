"""What a reader sees first: the axes that merged on this host (bench/scenario/collapse.py), the
environment folded to the facts that change results (bench/report/environment.py), and a CI
summary that never says "passed" without what it did not judge (bench/report/ci_summary.py)."""

from __future__ import annotations

import pytest

from bench.judge.outcome import Outcome
from bench.report import ci_summary
from bench.report.environment import env_table, facts_table
from bench.scenario import cpuset
from bench.scenario import matrix as scenario_mod
from bench.scenario.collapse import merged_axes, smallest_host


def host(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(cpuset, "host_cpus", lambda: frozenset(range(n)))


def test_workers_1_and_cores_merge_on_a_small_host_and_the_sentence_says_what_would_test_them(monkeypatch) -> None:
    host(monkeypatch, 2)
    scen = scenario_mod.load("default")
    (sentence,) = merged_axes(scen)
    assert sentence.startswith('workers = [1, "cores"] both mean 1 on this host')
    assert "(24 planned, 12 run)" in sentence and f"a host with {smallest_host(2)} or more CPUs" in sentence
    assert len(scen.cells()) == 12


def test_nothing_merges_where_the_target_gets_two_cpus(monkeypatch) -> None:
    host(monkeypatch, smallest_host(2))
    scen = scenario_mod.load("default")
    assert merged_axes(scen) == [] and len(scen.cells()) == 24
    host(monkeypatch, smallest_host(2) - 1)
    assert merged_axes(scenario_mod.load("default")) != []


def test_the_smallest_host_follows_the_split() -> None:
    assert smallest_host(1) == 2 and smallest_host(2) == 6 and smallest_host(3) == 9
    target, _ = cpuset.split(list(range(smallest_host(4))))
    assert len(cpuset.parse(target)) == 4


def test_an_axis_of_values_that_differ_merges_nothing(monkeypatch) -> None:
    host(monkeypatch, 2)
    scen = scenario_mod.from_dict({"matrix": {"users": [10, 20], "workers": [1, 2]}}, {})
    assert merged_axes(scen) == []
    three = scenario_mod.from_dict({"matrix": {"users": [10, 10.0, 20]}}, {})
    (sentence,) = merged_axes(three)
    assert sentence.startswith("users = [10, 10] both mean 10 on this host") and "a host with" not in sentence
    three = scenario_mod.from_dict({"matrix": {"threadpool_tokens": [40, 40, 40, 41]}}, {})
    (sentence,) = merged_axes(three)
    assert sentence == ("threadpool_tokens = [40, 40, 40] all mean 40 on this host, so their cells merged (4 planned, "
                        "2 run): the threadpool_tokens question was not tested here.")
    three = scenario_mod.from_dict({"matrix": {"workers": [1, "cores", 2]}}, {})
    (sentence,) = merged_axes(three)
    assert sentence.startswith('workers = [1, "cores"] both mean 1 on this host') and "(3 planned, 2 run)" in sentence
    pinned = scenario_mod.from_dict({"defaults": {"target_cpuset": "0"}, "matrix": {"workers": [1, "cores"]}}, {})
    (sentence,) = merged_axes(pinned)
    assert sentence.startswith('workers = [1, "cores"] both mean 1') and sentence.endswith(
        "(2 planned, 1 run): the workers question was not tested here; a target_cpuset of 2 CPUs or more would "
        "test it."), "no bigger host helps a pinned set"
    axis = scenario_mod.from_dict({"matrix": {"workers": [1, "cores"], "target_cpuset": ["0"]}}, {})
    (sentence,) = merged_axes(axis)
    assert sentence.endswith("a target_cpuset of 2 CPUs or more would test it.")
    auto = scenario_mod.from_dict({"matrix": {"workers": [1, "cores"], "target_cpuset": ["auto"]}}, {})
    (sentence,) = merged_axes(auto)
    assert sentence.endswith("; a host with 6 or more CPUs gives the target 2 or more (or set target_cpuset to 2 "
                             "CPUs or more).")


ENV = {"cpu_model": "AMD EPYC", "cores": 2, "host_cpus": "0-1", "kernel": "6.1", "backend": "local",
       "target_python_build": "CPython 3.11.2", "python_build": "CPython 3.11.7",
       "packages_pinned": {"fastapi": "0.115.0", "uvicorn": "0.30.0", "granian": "1.0"},
       "packages": {"fastapi": "0.115.0", "uvicorn": "0.31.0", "granian": "1.0", "starlette": "0.38",
                    "locust": "2.47", "uvloop": "0.21"}}


def test_each_package_is_listed_once_and_a_pin_only_where_it_differs() -> None:
    _, rows = env_table(ENV)
    keys = [k for k, _ in rows]
    assert "packages.fastapi" in keys and "packages_pinned.fastapi" not in keys
    assert ["packages_pinned.uvicorn", "0.30.0"] in rows and ["packages.uvicorn", "0.31.0"] in rows
    assert ["cores", "2"] in rows
    # without the installed map the pins are all there is: none is dropped
    _, alone = env_table({"packages_pinned": {"fastapi": "0.115.0"}})
    assert alone == [["packages_pinned.fastapi", "0.115.0"]]


def test_the_facts_name_the_cpu_kernel_target_python_and_the_servers_in_use() -> None:
    _, rows = facts_table(ENV, ["uvicorn"])
    facts = dict(rows)
    assert facts["CPU"] == "AMD EPYC, 2 cores (host CPUs 0-1)"
    assert facts["target's Python"] == "CPython 3.11.2" and facts["kernel"] == "6.1"
    assert facts["versions"] == "fastapi 0.115.0, starlette 0.38, uvicorn 0.31.0, uvloop 0.21"
    assert "granian" not in facts["versions"], "a server no cell ran is no fact of this run"
    _, rows = facts_table({**ENV, "target_python_build": ""}, ["granian"])
    assert dict(rows)["target's Python"] == "CPython 3.11.7" and "granian 1.0" in dict(rows)["versions"]


def test_ci_summary_says_what_a_pass_did_not_judge_and_opens_with_the_answer() -> None:
    answer = ("| question | throughput (req/s) |", "|---|---|", "| noop, 10 users | a floor |")
    o = Outcome("r", "ci", (), answer=answer, floors=("def-noop", "async-noop", "x"))
    text = ci_summary.render(o)
    first = text.splitlines()[0]
    assert first == ("## bench ci: passed (not judged: 3 cell(s) where Locust was the limit (their req/s are "
                     "floors); no baseline: regressions not looked for)")
    assert text.index("| noop, 10 users | a floor |") < text.index("Run `r`")
    assert ci_summary.render(Outcome("r", "ci", ())).splitlines()[0] == (
        "## bench ci: passed (not judged: no baseline: regressions not looked for)")


def test_key_csv_has_the_figures_people_open_first_in_their_order(tmp_path) -> None:
    from bench.results.rundir import RunDir
    from bench.results.stats import KEY_COLUMNS, key_records, summarize
    from tests.rows import make_row

    rows = [make_row(cell_id="a", style="async", users=100, rps=r, p50_ms=2.0, p99_ms=9.0, cpu_ms_per_request=0.25,
                     repeat=i, loadgen_saturated=i == 2) for i, r in ((1, 100.0), (2, 200.0))]
    rows.append(make_row(cell_id="f", status="failed", error="boom"))
    header, ok, failed = key_records(summarize(rows))
    assert header == list(KEY_COLUMNS) == ["cell_id", "style", "subject", "load", "workers", "n", "rps", "p50_ms",
                                           "p99_ms", "cpu_ms_per_request", "saturated"]
    assert ok == ["a", "async", "noop", "100 users", "1", "2", "150.0", "2.000", "9.000", "0.250", "true"]
    assert failed[5:10] == ["0", "", "", "", ""], "a cell with no ok repeat has blanks, not zeros"
    run = RunDir(tmp_path)
    run.write_stats(summarize(rows))
    assert run.key_path.read_text().splitlines()[1] == ",".join(ok)


def test_plan_counts_repeats_honestly_and_says_what_merged(monkeypatch, capsys) -> None:
    import argparse

    from bench.commands.plan import cmd_plan, repeats_text

    host(monkeypatch, 2)
    assert cmd_plan(argparse.Namespace(scenario="default", set=["repeats=1"])) == 0
    first, second = capsys.readouterr().out.splitlines()[:2]
    assert first == "scenario default: 12 cells, 1 repeat each: 12 runs"
    assert second.startswith('  note: workers = [1, "cores"] both mean 1 on this host')
    assert cmd_plan(argparse.Namespace(scenario="default", set=[])) == 0
    assert capsys.readouterr().out.startswith("scenario default: 12 cells, 3 interleaved repeats each: 36 runs\n")
    cells = scenario_mod.from_dict({"matrix": [{"users": [10], "repeats": [1]}, {"users": [20], "repeats": [3]}]},
                                   {}).cells()
    assert repeats_text(cells) == "1-3 interleaved repeats"
    assert repeats_text(cells[:1]) == "1 repeat each"


def test_the_line_under_the_title_says_what_was_measured_where() -> None:
    from bench.report.environment import measured

    assert measured(ENV, 12, 3, 4.0) == "12 cells x 3 repeats of 4 s measured each, on AMD EPYC, 2 cores, local backend."
    assert measured({}, 1, 1, 2.5) == "1 cells x 1 repeat of 2.5 s measured each, on an unknown CPU, ? cores, the backend."


def test_a_floor_the_baseline_left_unjudged_is_said_once_as_a_floor() -> None:
    from bench.judge import gate

    def judged(cell: str, verdict: str) -> gate.Judgement:
        return gate.Judgement(cell, cell, verdict, "", "", 3, 3, ())

    o = Outcome("r", "ci", (), (judged("a", gate.NOT_JUDGED), judged("b", gate.NOT_JUDGED), judged("c", gate.PASS)),
                baseline="base/summary_stats.csv", floors=("a",))
    assert o.not_judged == ["1 cell(s) where Locust was the limit (their req/s are floors)",
                            "1 cell(s) the baseline could not judge"]
    assert Outcome("r", "ci", (), (judged("c", gate.PASS),), baseline="b").not_judged == []


def test_facts_and_the_full_list_of_an_env_that_lacks_everything() -> None:
    assert facts_table({}, []) == (["fact", "value"], [["CPU", "unknown CPU, ? cores (host CPUs ?)"]])
    env = {"python_build": "CPython 3.12", "backend": "docker", "kernel": "6.1", "cores": 16,
           "packages": {"mine": "1.0", "fastapi": "0.1"}, "scenario": {"matrix": [{"users": [10]}], "name": "x"}}
    header, rows = facts_table(env, ["mine"])
    assert header == ["fact", "value"] and rows == [
        ["CPU", "unknown CPU, 16 cores (host CPUs ?)"], ["kernel", "6.1"], ["target's Python", "CPython 3.12"],
        ["backend", "docker"], ["versions", "fastapi 0.1, mine 1.0"]]  # a server unknown here: its own name
    header, rows = env_table({**env, "packages_pinned": {"fastapi": "0.1"}, "packages": "not read"})
    assert header == ["key", "value"]
    assert ["scenario.matrix", '[{"users": [10]}]'] in rows and ["scenario.name", "x"] in rows
    assert ["packages_pinned.fastapi", "0.1"] in rows, "without an installed map, no pin is dropped"
    _, rows = env_table({"scenario": {"defaults": {"b": 1, "a": 2}}})
    assert rows == [["scenario.defaults", '{"a": 2, "b": 1}']], "sorted keys: two runs' files compare line by line"
