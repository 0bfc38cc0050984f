"""The verdict's profile sentences on hand-made rows: which parts it names, when it says nothing,
and what it says of the thread hop between a def cell and its async twin."""

from __future__ import annotations

from typing import Any

import pytest

from bench.judge.verdict import hop_text, profile_shares, profile_text
from bench.results.row import SummaryRow
from bench.run.attribution import PARTS
from tests.rows import make_row

ZERO = {f"cpu_{part}_pct": 0.0 for part in PARTS}


def prof(samples: int, **shares: float) -> SummaryRow:
    kw: dict[str, Any] = {**ZERO, **{f"cpu_{p}_pct": v for p, v in shares.items()}}
    return make_row(profile="cpu", profile_rate=20, profile_samples=samples, **kw)


def test_shares_are_weighted_by_each_repeats_samples_and_skip_empty_or_unprofiled_rows() -> None:
    rows = [prof(100, hop=40.0, app=60.0), prof(300, hop=0.0, app=100.0), prof(0, hop=100.0),
            make_row(profile="off", profile_samples=500, cpu_hop_pct=100.0)]
    samples, shares = profile_shares(rows)
    assert samples == 400
    assert shares["hop"] == pytest.approx(10.0) and shares["app"] == pytest.approx(90.0)
    assert shares["loop"] == 0.0 and set(shares) == set(PARTS)
    assert profile_shares([prof(0, hop=50.0)]) == (0, {})


def test_the_parts_of_ten_percent_or_more_are_named_largest_first() -> None:
    rows = [prof(50, framework=41.6, hop=24.8, server=20.5, loop=9.9, app=3.2)]
    assert profile_text(rows) == " Its CPU: 42 % framework, 25 % thread hop, 20 % server (50 samples)."
    assert profile_text([prof(80, app=10.0, rest=90.0)]) == " Its CPU: 90 % other libraries, 10 % app code (80 samples)."


def test_a_profile_with_no_part_of_ten_percent_says_so() -> None:
    under = {part: 9.9 if part == "rest" else 9.0 for part in PARTS}
    assert profile_text([prof(60, **under)]) == " Its CPU: no part above 10 % (60 samples)."


def test_too_few_samples_or_no_profile_at_all() -> None:
    assert profile_text([prof(49, app=100.0)]) == " Its profile has 49 samples: too few to say where its CPU went."
    assert profile_text([prof(50, app=100.0)]).startswith(" Its CPU: 100 % app code")
    assert profile_text([make_row(profile="off")]) == ""


def test_async_removes_the_hop_when_its_share_is_under_half_of_defs() -> None:
    d, a = [prof(60, hop=30.0, framework=70.0)], [prof(60, hop=14.9, framework=85.1)]
    assert hop_text(d, a, "def", "async") == ("The thread hop is 30 % of def's CPU and 15 % of async's: "
                                              "async removes it. ")
    assert hop_text(d, a, "as_written", "on_loop").endswith("on_loop removes it. ")


def test_a_hop_that_stays_is_only_compared() -> None:
    d, a = [prof(60, hop=30.0, framework=70.0)], [prof(60, hop=15.0, framework=85.0)]
    assert hop_text(d, a, "def", "async") == "The thread hop is 30 % of def's CPU and 15 % of async's. "
    # a second style that is not on the loop never "removes" it
    assert hop_text(d, [prof(60, framework=100.0)], "def", "def") == \
        "The thread hop is 30 % of def's CPU and 0 % of def's. "


@pytest.mark.parametrize("first,second", [
    ([prof(49, hop=30.0)], [prof(60)]),  # too few samples on either side
    ([prof(60, hop=30.0)], [prof(49)]),
    ([prof(60, hop=9.9, app=90.1)], [prof(60, app=100.0)]),  # a hop under 10 % is not worth a sentence
])
def test_nothing_is_said_of_a_small_or_rough_hop(first: list[SummaryRow], second: list[SummaryRow]) -> None:
    assert hop_text(first, second, "def", "async") == ""


def test_the_boundaries_say_something() -> None:
    assert hop_text([prof(50, hop=10.0, app=90.0)], [prof(50, app=100.0)], "def", "async") == \
        "The thread hop is 10 % of def's CPU and 0 % of async's: async removes it. "
    assert hop_text([prof(50, hop=30.0)], [prof(50, hop=15.0)], "def", "async").endswith("15 % of async's. ")
