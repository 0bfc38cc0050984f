"""The answer first (bench/judge/answer.py): one row per question, a ratio only where the run can
say it (repeats, Locust not the limit, outside the noise), caveats said once, suggestions grouped."""

from __future__ import annotations

import math

import pytest

from bench.judge.answer import FLOOR, HEADER, NOISE, ONE_REPEAT, Comparison, answer, compare, verdict_text
from bench.results.stats import summarize
from tests.rows import make_row


def rows_of(style: str, workload: str, users: int, rps: list[float], p99: list[float], **kw) -> list:
    cell = kw.pop("cell_id", f"{style}-{workload}-u{users}")
    base = dict(status="ok", style=style, workload=workload, users=users, workers=1, threadpool_tokens=40,
                target_cpuset="0", mean_ms=50.0, p50_ms=10.0, target_cpu_pct=20.0, loop_lag_p99_ms=1.0,
                cpu_ms_per_request=0.5)
    return [make_row(**{**base, **kw, "cell_id": cell, "repeat": i + 1, "rps": r, "p99_ms": p})
            for i, (r, p) in enumerate(zip(rps, p99, strict=True))]


def said(rows: list, merged: list[str] | None = None):
    return answer(summarize(rows), rows, merged)


def test_compare_is_the_ratio_with_a_log_scale_interval_that_never_crosses_zero() -> None:
    c = compare(200.0, 20.0, 100.0, 10.0, 3)
    rel = math.hypot(0.1, 0.1)
    assert c.factor == 2.0 and c.low == pytest.approx(2 * math.exp(-rel)) and c.high == pytest.approx(2 * math.exp(rel))
    assert c.significant
    wide = compare(200.0, 400.0, 100.0, 10.0, 3)  # a half-width twice the mean
    assert wide.low > 0 and not wide.significant
    assert compare(0.0, 0.0, 100.0, 1.0, 3) == Comparison(0.0, 0.0, 0.0, 0)
    assert compare(100.0, 1.0, 0.0, 0.0, 3).factor == 0.0
    assert not compare(110.0, 0.0, 100.0, 0.0, 1).significant, "one repeat establishes nothing"
    assert compare(110.0, 0.0, 100.0, 0.0, 2).significant
    assert not compare(100.0, 0.0, 100.0, 0.0, 3).significant, "1x is never a difference"


def test_verdict_text_names_the_winner_its_factor_and_interval_or_why_not() -> None:
    assert verdict_text(Comparison(1.5, 1.2, 1.8, 3), "def", "async", lower=False) == "async 1.50x (1.20-1.80)"
    # under 1: the first style wins, by the inverse, its interval inverted too
    assert verdict_text(Comparison(0.5, 0.4, 0.625, 3), "def", "async", lower=True) == "def 2.00x lower (1.60-2.50)"
    # where the run cannot say, why, and no ratio
    assert verdict_text(Comparison(1.05, 0.9, 1.2, 3), "def", "async", lower=False) == NOISE
    assert verdict_text(Comparison(2.0, 2.0, 2.0, 1), "def", "async", lower=False) == ONE_REPEAT
    assert verdict_text(Comparison(0.0, 0.0, 0.0, 0), "def", "async", lower=False) == "no figures"
    assert verdict_text(Comparison(12.0, 11.0, 13.0, 3), "def", "async", lower=False) == "async 12x (11-13)"
    # the ends round away from the ratio: a win never shows a range that holds 1.00
    assert verdict_text(Comparison(1.10, 1.004, 1.2049, 3), "def", "async", lower=False) == "async 1.10x (1.004-1.21)"
    assert verdict_text(Comparison(12.5, 10.6, 14.2, 3), "def", "async", lower=False) == "async 12x (10-15)"


def test_a_clear_win_gives_its_ratio_interval_limit_and_the_sharpest_sentence() -> None:
    rows = (rows_of("def", "cpu", 100, [250, 240, 260], [550, 540, 560], target_cpu_pct=99.0)
            + rows_of("async", "cpu", 100, [251, 249, 250], [6100, 6000, 6200], target_cpu_pct=99.0))
    a = said(rows)
    (line,) = a.lines
    assert line.question == "cpu, 100 users"
    assert line.throughput == NOISE
    assert line.p99.startswith("def 11") and " lower (" in line.p99
    assert line.bound == "both: target's CPU" and line.change == "def, then more target cores"
    assert a.table() == (list(HEADER), [line.cells()])
    assert any(n.startswith("Sharpest difference: cpu, 100 users: def's p99 550 against async's 6,100 ms")
               for n in a.notes), a.notes
    assert any("3 interleaved repeats" in n for n in a.notes)
    assert sum("give the target more cores" in n for n in a.notes) == 1


def test_a_saturated_locust_makes_the_row_a_floor_and_is_said_once() -> None:
    rows = []
    for users in (10, 100):
        rows += rows_of("def", "noop", users, [3000, 3100], [9, 9], loadgen_saturated=True)
        rows += rows_of("async", "noop", users, [4000, 4100], [5, 5], loadgen_saturated=True)
    a = said(rows)
    assert [line.throughput for line in a.lines] == [FLOOR, FLOOR]
    assert [line.p99 for line in a.lines] == [FLOOR, FLOOR]
    assert [line.change for line in a.lines] == ["more CPUs for Locust"] * 2
    assert sum("Locust was the limit in 4 of 4 cells" in n for n in a.notes) == 1
    grouped = [n for n in a.notes if "give Locust more CPUs" in n]
    assert grouped == [grouped[0]] and "noop, 10 users; noop, 100 users" in grouped[0]


def test_one_repeat_is_said_once_and_no_row_claims_a_winner() -> None:
    rows = rows_of("def", "sleep", 10, [98.0], [120.0]) + rows_of("async", "sleep", 10, [99.0], [105.0])
    a = said(rows)
    (line,) = a.lines
    assert line.throughput == ONE_REPEAT and line.p99 == ONE_REPEAT
    assert sum(n.startswith("One repeat") for n in a.notes) == 1
    assert any(n.startswith("Largest (not established) difference") for n in a.notes)


def test_merged_axes_and_failed_cells_join_the_notes() -> None:
    rows = (rows_of("def", "sleep", 10, [98.0, 99.0], [120.0, 121.0])
            + rows_of("async", "sleep", 10, [99.0, 98.0], [105.0, 104.0])
            + [make_row(cell_id="def-cpu-u10", style="def", workload="cpu", status="failed", error="boom")])
    a = said(rows, ["workers = [1, \"cores\"] both mean 1 on this host."])
    assert "workers = [1, \"cores\"] both mean 1 on this host." in a.notes
    assert any(n.startswith("1 cell(s) failed every repeat") and "def-cpu-u10" in n for n in a.notes)
    assert len(a.lines) == 1, "a question with one side failed has no row"


def test_the_question_names_only_what_varies_and_the_text_table_lines_up() -> None:
    rows = []
    for workers, cpus in ((1, "0"), (2, "0-1")):
        rows += rows_of("def", "sleep", 10, [98.0, 99.0], [120.0, 121.0], workers=workers, target_cpuset=cpus,
                        cell_id=f"def-w{workers}")
        rows += rows_of("async", "sleep", 10, [99.0, 98.0], [105.0, 104.0], workers=workers, target_cpuset=cpus,
                        cell_id=f"async-w{workers}")
    a = said(rows)
    # target_cpuset follows the workers here: a knob resolved from the others names nothing new
    assert [line.question for line in a.lines] == ["sleep, 10 users, workers 1", "sleep, 10 users, workers 2"]
    text = a.text().splitlines()
    assert text[0].split() [:1] == ["question"] and set(text[1]) <= {"-", " "}
    column = text[0].index("throughput")
    assert all(line[column - 2:column] == "  " for line in text[2:4]), "columns line up"


def test_the_change_names_the_winner_and_what_the_other_style_would_need() -> None:
    rows = (rows_of("def", "sleep", 100, [394, 390, 396], [285, 298, 286], threadpool_busy_max=40,
                    threadpool_waiting_max=60)
            + rows_of("async", "sleep", 100, [978, 926, 961], [108, 110, 112]))
    (line,) = said(rows).lines
    assert line.throughput.startswith("async 2.") and line.p99.startswith("async 2.")
    assert line.bound == "def: threadpool; async: the load (nothing saturated)"
    assert line.change == "async (or def with more threadpool tokens)"
    # no winner, different limits: what bound each
    rows = (rows_of("def", "sleep", 100, [394, 396], [285, 286], threadpool_busy_max=40, threadpool_waiting_max=60)
            + rows_of("async", "sleep", 100, [395, 395], [285, 286]))
    (line,) = said(rows).lines
    assert line.change == "def: more threadpool tokens; async: nothing saturated: more load"


def test_one_side_saturated_makes_the_row_a_floor_with_the_fix_of_that_side() -> None:
    rows = (rows_of("def", "noop", 10, [3000, 3100], [9, 9], target_cpu_pct=99.0)
            + rows_of("async", "noop", 10, [4000, 4100], [5, 5], loadgen_saturated=True))
    (line,) = said(rows).lines
    assert (line.throughput, line.p99) == (FLOOR, FLOOR)
    assert line.bound == "def: target's CPU; async: Locust" and line.change == "more CPUs for Locust"


def test_a_teams_app_pairs_as_written_with_on_loop_and_names_the_endpoint() -> None:
    rows = (rows_of("as_written", "noop", 10, [100, 101, 99], [50, 51, 52], endpoint="orders")
            + rows_of("on_loop", "noop", 10, [200, 201, 199], [20, 21, 22], endpoint="orders"))
    (line,) = said(rows).lines
    assert line.question == "endpoint orders, 10 users"
    assert line.throughput.startswith("on_loop 2.0") and line.p99.startswith("on_loop 2.")
    assert line.change == "on_loop, then nothing saturated: more load"
    rows = (rows_of("as_written", "noop", 10, [100, 101, 99], [30, 31, 32], endpoint="orders")
            + rows_of("on_loop", "noop", 10, [100, 101, 99], [20, 21, 22], endpoint="orders"))
    assert said(rows).lines[0].change.startswith("on_loop"), "a win under 2x names its winner too"


def test_an_open_loop_question_names_its_offered_rate() -> None:
    rows = []
    for rate in (100.0, 200.0):
        for style in ("def", "async"):
            rows += rows_of(style, "sleep", 1, [rate, rate], [120.0, 121.0], load_model="open", rate=rate,
                            cell_id=f"{style}-r{rate:g}")
    assert [line.question for line in said(rows).lines] == ["sleep, 100 req/s offered", "sleep, 200 req/s offered"]


def test_a_run_of_one_style_has_no_table_but_keeps_its_notes() -> None:
    rows = rows_of("def", "sleep", 10, [98.0, 99.0], [120.0, 121.0])
    a = said(rows, ["workers merged."])
    assert a.lines == () and "workers merged." in a.notes
    assert a.markdown() == list(a.notes) and a.text() == "\n".join(a.notes)
    assert not any(line.startswith("|") for line in a.markdown())


def test_the_sharpest_sentence_keeps_three_digits_of_a_small_figure() -> None:
    rows = (rows_of("def", "noop", 10, [3000, 3010, 2990], [0.84, 0.85, 0.86])
            + rows_of("async", "noop", 10, [3000, 3010, 2990], [0.41, 0.42, 0.43]))
    notes = said(rows).notes
    assert any("async's p99 0.42 against def's 0.85 ms" in n for n in notes), notes


def test_two_repeats_are_enough_for_an_interval_and_ten_keeps_its_format() -> None:
    assert verdict_text(Comparison(1.5, 1.2, 1.8, 2), "def", "async", lower=False) == "async 1.50x (1.20-1.80)"
    assert verdict_text(Comparison(10.0, 10.0, 10.0, 3), "def", "async", lower=False) == "async 10x (10-10)"
    assert verdict_text(Comparison(9.999, 9.991, 9.999, 3), "def", "async", lower=False) == "async 10.00x (9.99-10.00)"


def test_the_terminal_and_markdown_tables_exactly() -> None:
    from bench.judge.answer import Answer, Line

    a = Answer((Line("q|1", "a", "bb", "c", "d"), Line("q2", "aaa", "b", "c", "d")), ("A note.",))
    assert a.text() == ("question  throughput (req/s)  p99 latency  what bound it  change first\n"
                        "--------  ------------------  -----------  -------------  ------------\n"
                        "q|1       a                   bb           c              d\n"
                        "q2        aaa                 b            c              d\n"
                        "\n"
                        "A note.")
    assert a.markdown() == ["| question | throughput (req/s) | p99 latency | what bound it | change first |",
                            "|---|---|---|---|---|",
                            "| q\\|1 | a | bb | c | d |",
                            "| q2 | aaa | b | c | d |",
                            "", "A note."]


def test_a_knob_a_cell_does_not_read_stays_out_of_its_question() -> None:
    rows = []
    for ms in (50, 100):
        for style in ("def", "async"):
            rows += rows_of(style, "sleep", 10, [98.0, 99.0], [120.0, 121.0], sleep_ms=ms, cell_id=f"{style}-s{ms}")
    rows += rows_of("def", "noop", 10, [98.0, 99.0], [120.0, 121.0], sleep_ms=50, cell_id="def-noop")
    rows += rows_of("async", "noop", 10, [98.0, 99.0], [120.0, 121.0], sleep_ms=50, cell_id="async-noop")
    questions = [line.question for line in said(rows).lines]
    assert questions == ["sleep, 10 users, sleep_ms 50", "sleep, 10 users, sleep_ms 100", "noop, 10 users"]


def test_the_short_change_of_each_limit() -> None:
    from bench.judge.answer import _change
    from bench.judge.verdict import Limit

    assert _change(Limit("the target's CPU", "", 'add workers (workers = "cores")')) == "more workers"
    assert _change(Limit("the target's CPU", "", "give the target more cores")) == "more target cores"
    assert _change(Limit("the event loop", "", "add workers: one event loop each")) == "more workers"
    assert _change(Limit("the event loop", "", "move blocking calls out of async def")) == "unblock the event loop"
    assert _change(Limit("the threadpool", "", "raise it")) == "more threadpool tokens"
    assert _change(Limit("something new", "", "do this")) == "do this"


def test_def_saturated_alone_still_asks_for_locust_and_throughput_never_says_lower() -> None:
    rows = (rows_of("def", "noop", 10, [3000, 3100], [9, 9], loadgen_saturated=True)
            + rows_of("async", "noop", 10, [4000, 4100], [5, 5], target_cpu_pct=99.0))
    assert said(rows).lines[0].change == "more CPUs for Locust"
    rows = (rows_of("def", "cpu", 10, [300, 302, 301], [50, 51, 52])
            + rows_of("async", "cpu", 10, [200, 201, 202], [50, 51, 52]))
    (line,) = said(rows).lines
    assert line.throughput.startswith("def 1.50x (") and "lower" not in line.throughput and line.p99 == NOISE


def test_the_sharpest_sentence_of_a_throughput_win_and_an_established_one_before_a_larger_guess() -> None:
    rows = (rows_of("def", "sleep", 100, [400, 401, 399], [285, 290, 295], cell_id="d1")
            + rows_of("async", "sleep", 100, [600, 601, 599], [285, 290, 295], cell_id="a1")
            # a larger difference, but inside the noise: it is not what the run established
            + rows_of("def", "cpu", 100, [100, 500, 300], [50, 51, 52], cell_id="d2")
            + rows_of("async", "cpu", 100, [900, 100, 1700], [50, 51, 52], cell_id="a2"))
    notes = said(rows).notes
    assert notes[0] == "Sharpest difference: sleep, 100 users: async's req/s 600 against def's 400 req/s (1.50x)."
    rows = (rows_of("def", "cpu", 10, [300, 301, 302], [50, 51, 52]) + rows_of("async", "cpu", 10, [200, 201, 202],
                                                                              [50, 51, 52], target_cpu_pct=99.0))
    a = said(rows)
    assert a.notes[0] == "Sharpest difference: cpu, 10 users: def's req/s 301 against async's 201 req/s (1.50x)."
    assert a.lines[0].change == "def (or async with more target cores)"


def test_a_pair_without_figures_has_no_sharpest_sentence() -> None:
    rows = rows_of("def", "sleep", 10, [0.0, 0.0], [0.0, 0.0]) + rows_of("async", "sleep", 10, [0.0, 0.0], [0.0, 0.0])
    a = said(rows)
    assert a.lines[0].throughput == "no figures" and not any("difference" in n for n in a.notes)


def test_figures_keep_three_digits_at_every_size() -> None:
    from bench.judge.answer import _fig

    assert [_fig(x) for x in (6107.4, 100.0, 99.94, 10.0, 9.994, 0.8421)] == ["6,107", "100", "99.9", "10.0", "9.99",
                                                                               "0.842"]


def test_two_endpoints_are_two_questions_named_by_endpoint_alone() -> None:
    rows = []
    for ep in ("orders", "users"):
        rows += rows_of("as_written", "noop", 10, [100, 101], [50, 51], endpoint=ep, cell_id=f"w-{ep}")
        rows += rows_of("on_loop", "noop", 10, [100, 101], [50, 51], endpoint=ep, cell_id=f"l-{ep}")
    assert [line.question for line in said(rows).lines] == ["endpoint orders, 10 users", "endpoint users, 10 users"]


def test_each_caveat_said_once_word_for_word() -> None:
    one = said(rows_of("def", "sleep", 10, [98.0], [120.0]) + rows_of("async", "sleep", 10, [99.0], [105.0]))
    assert ("One repeat: no ratio has an interval, so no difference here is established; run with --set repeats=3 "
            "(or more) before trusting one.") in one.notes
    rows = (rows_of("def", "sleep", 10, [98.0, 99.0], [120.0, 121.0])
            + rows_of("async", "sleep", 10, [99.0, 98.0, 97.0], [105.0, 104.0, 103.0], loadgen_saturated=True)
            + [make_row(cell_id=c, style="def", workload="cpu", status="failed", error="boom") for c in ("f1", "f2")])
    notes = said(rows).notes
    assert ("2-3 interleaved repeats per cell; a ratio's range is its 95 % interval, and \"within noise\" means that "
            "interval holds 1x.") in notes
    assert ("Locust was the limit in 1 of 4 cells: their req/s are floors and their latencies partly Locust's, so "
            "those rows compare nothing.") in notes
    assert "2 cell(s) failed every repeat and are left out: f1, f2." in notes


def test_within_a_row_an_established_difference_wins_over_a_larger_guess() -> None:
    rows = (rows_of("def", "cpu", 10, [100, 500, 300], [60, 61, 62])
            + rows_of("async", "cpu", 10, [900, 100, 1700], [50, 51, 52]))
    (line,) = said(rows).lines
    assert line.throughput == NOISE and line.sharpest[0] is True
    assert line.sharpest[2] == "cpu, 10 users: async's p99 51.0 against def's 61.0 ms"
