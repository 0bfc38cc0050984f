"""bench.report.flame: the SVG parses, boxes are as wide as their samples and coloured by their part."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from bench.report import flame
from bench.run.attribution import Stacks

NS = "{http://www.w3.org/2000/svg}"
SP = "/venv/lib/python3.12/site-packages"
UVICORN = f"run ({SP}/uvicorn/main.py:577)"
LOOP = "run_until_complete (/usr/lib/python3.12/asyncio/base_events.py:687)"
HTTP = f"run_asgi ({SP}/uvicorn/protocols/http/httptools_impl.py:401)"
ROUTE = f"app ({SP}/starlette/routing.py:73)"
ENDPOINT = "items (/srv/app/main.py:12)"
RENDER = f"render ({SP}/starlette/responses.py:180)"
DUMPS = "dumps (/usr/lib/python3.12/json/__init__.py:238)"
BOOT = "_bootstrap (/usr/lib/python3.12/threading.py:1030)"
BOOT_INNER = "_bootstrap_inner (/usr/lib/python3.12/threading.py:1073)"
WORKER = f"run ({SP}/anyio/_backends/_asyncio.py:967)"
REPORT = f"_report_result ({SP}/anyio/_backends/_asyncio.py:920)"


def profile() -> Stacks:
    return Counter({
        (UVICORN, LOOP, HTTP, ROUTE, ENDPOINT): 60,
        (BOOT, BOOT_INNER, WORKER, REPORT): 30,
        (UVICORN, LOOP, HTTP, ROUTE, RENDER, DUMPS): 10,
    })


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)


def boxes(doc: ET.Element) -> dict[str, ET.Element]:
    """Each drawn box's rect by its frame (the tooltip's text up to " — "), one box a frame here."""
    out = {}
    for g in doc.iter(f"{NS}g"):
        frame = g.findtext(f"{NS}title").split(" — ")[0]
        assert frame not in out, f"{frame} drawn twice"
        out[frame] = g
    return out


def rect(g: ET.Element) -> ET.Element:
    return g.find(f"{NS}rect")


def width(g: ET.Element) -> float:
    return float(rect(g).get("width"))


def x(g: ET.Element) -> float:
    return float(rect(g).get("x"))


def folded(frame: str) -> str:
    """The frame as the graph names it: without its line number."""
    return frame.rsplit(":", 1)[0] + ")"


def test_root_spans_the_drawing_and_widths_follow_samples() -> None:
    drawn = boxes(parse(flame.svg(profile(), "p")))
    root = drawn["all"]
    assert width(root) == 1200 - 2 * flame.PAD
    assert x(root) == flame.PAD
    assert abs(width(drawn[folded(ENDPOINT)]) - 0.6 * width(root)) <= 1
    assert abs(width(drawn[folded(UVICORN)]) - 0.7 * width(root)) <= 1
    assert abs(width(drawn[folded(BOOT)]) - 0.3 * width(root)) <= 1
    assert abs(width(drawn[folded(DUMPS)]) - 0.1 * width(root)) <= 1


def test_root_at_the_bottom_callees_above_callers() -> None:
    drawn = boxes(parse(flame.svg(profile(), "p")))
    ys = [float(rect(drawn[f]).get("y")) for f in ("all", folded(UVICORN), folded(LOOP), folded(HTTP))]
    assert ys == sorted(ys, reverse=True)
    assert ys[0] - ys[1] == flame.ROW


def test_siblings_in_alphabetical_order_not_by_size() -> None:
    drawn = boxes(parse(flame.svg(profile(), "p")))
    # "_bootstrap" sorts before "run": the 30-sample thread stack is left of the 70-sample one
    assert x(drawn[folded(BOOT)]) < x(drawn[folded(UVICORN)])
    assert x(drawn[folded(ENDPOINT)]) < x(drawn[folded(RENDER)])  # "items" < "render"
    assert abs(x(drawn[folded(RENDER)]) - (x(drawn[folded(ENDPOINT)]) + width(drawn[folded(ENDPOINT)]))) <= 0.02


def test_line_numbers_are_folded_into_one_box() -> None:
    stacks = Counter({(UVICORN, ENDPOINT): 5, (UVICORN, ENDPOINT.replace(":12)", ":14)")): 7})
    g = boxes(parse(flame.svg(stacks, "p")))[folded(ENDPOINT)]
    assert g.findtext(f"{NS}title") == f"{folded(ENDPOINT)} — 12 samples (100.0 %)"


def test_colours_by_part_and_stdlib_inherits_its_caller() -> None:
    drawn = boxes(parse(flame.svg(profile(), "p")))
    colour = {f: rect(g).get("fill") for f, g in drawn.items()}
    assert colour[folded(ENDPOINT)] == flame.PART_COLOURS["app"]
    assert colour[folded(DUMPS)] == flame.PART_COLOURS["framework"]  # json under starlette's render
    assert colour[folded(UVICORN)] == flame.PART_COLOURS["server"]
    assert colour[folded(LOOP)] == flame.PART_COLOURS["loop"]  # asyncio: stdlib, but the loop's own
    assert colour[folded(BOOT)] == flame.PART_COLOURS["hop"]
    assert colour[folded(REPORT)] == flame.PART_COLOURS["hop"]
    # anyio's worker loop is loop code, but called by the thread's bootstrap (hop): the hop's
    assert colour[folded(WORKER)] == flame.PART_COLOURS["hop"]
    assert colour["all"] == flame.NO_PART_COLOUR


def test_stdlib_alone_is_grey() -> None:
    stacks = Counter({(UVICORN,): 5, ("<module> (/usr/lib/python3.12/runpy.py:88)",
                                   "loads (/usr/lib/python3.12/json/__init__.py:346)"): 5})
    drawn = boxes(parse(flame.svg(stacks, "p")))
    assert rect(drawn["<module> (/usr/lib/python3.12/runpy.py)"]).get("fill") == flame.NO_PART_COLOUR
    assert rect(drawn["loads (/usr/lib/python3.12/json/__init__.py)"]).get("fill") == flame.NO_PART_COLOUR


def test_part_colours_are_distinct_and_cover_every_part() -> None:
    from bench.run.attribution import PARTS
    assert set(flame.PART_COLOURS) == set(PARTS)
    assert len(set(flame.PART_COLOURS.values()) | {flame.NO_PART_COLOUR}) == len(PARTS) + 1


def test_tooltips_carry_samples_and_share() -> None:
    drawn = boxes(parse(flame.svg(profile(), "p")))
    assert drawn["all"].findtext(f"{NS}title") == "all — 100 samples (100.0 %)"
    assert drawn[folded(REPORT)].findtext(f"{NS}title") == f"{folded(REPORT)} — 30 samples (30.0 %)"
    assert drawn[folded(UVICORN)].findtext(f"{NS}title").endswith("— 70 samples (70.0 %)")


def test_markup_in_frames_and_title_is_escaped() -> None:
    odd = "<lambda> (/srv/app/a&b.py:3)"
    text = flame.svg(Counter({(UVICORN, odd): 4}), "a <b> & c")
    assert "&lt;lambda&gt;" in text and "a&amp;b.py" in text
    doc = parse(text)  # would raise on a bare < or &
    assert boxes(doc)["<lambda> (/srv/app/a&b.py)"].findtext(f"{NS}text") == "<lambda>"
    assert "a <b> & c" in [t.text for t in doc.iter(f"{NS}text")]


def test_legend_shows_each_parts_share() -> None:
    texts = [t.text for t in parse(flame.svg(profile(), "my title")).iter(f"{NS}text")]
    assert texts[0] == "my title"
    for entry in ("app 60.0 %", "hop 30.0 %", "framework 10.0 %", "loop 0.0 %", "server 0.0 %",
                  "agent 0.0 %", "rest 0.0 %"):
        assert entry in texts


def test_boxes_under_a_thousandth_are_left_out() -> None:
    stacks = Counter({(UVICORN, ENDPOINT): 1997, (BOOT,): 2, (REPORT, WORKER): 1})
    drawn = boxes(parse(flame.svg(stacks, "p")))
    assert folded(BOOT) in drawn  # 2 of 2000: 0.1 %, not under it
    assert folded(REPORT) not in drawn and folded(WORKER) not in drawn  # 1 of 2000, and its callee
    # the skipped samples still take their place: the root is all 2000, uvicorn 1997 of it
    assert abs(width(drawn[folded(UVICORN)]) - 0.9985 * width(drawn["all"])) <= 1


def test_labels_are_the_function_cut_to_the_box() -> None:
    assert flame.label(UVICORN, 500) == "run"
    assert flame.label(ENDPOINT, 6 + 3 * flame.CHAR_PX) == "i.."
    assert flame.label(ENDPOINT, 6 + 5 * flame.CHAR_PX) == "items"
    assert flame.label(ENDPOINT, 6 + 3 * flame.CHAR_PX - 1) == ""
    drawn = boxes(parse(flame.svg(profile(), "p")))
    assert drawn[folded(ENDPOINT)].findtext(f"{NS}text") == "items"


def test_narrow_box_has_no_label() -> None:
    stacks = Counter({(UVICORN,): 995, (ENDPOINT,): 5})  # 0.5 % of 1180 px: under 3 characters
    drawn = boxes(parse(flame.svg(stacks, "p")))
    assert drawn[folded(ENDPOINT)].find(f"{NS}text") is None
    assert drawn[folded(UVICORN)].findtext(f"{NS}text") == "run"


def test_empty_profile_says_no_samples() -> None:
    for stacks in (Counter(), Counter({(UVICORN,): 0})):
        text = flame.svg(stacks, "empty")
        doc = parse(text)
        assert "no samples" in [t.text for t in doc.iter(f"{NS}text")]
        assert list(doc.iter(f"{NS}g")) == []


def test_same_profile_same_string_whatever_the_order() -> None:
    first = flame.svg(profile(), "p")
    assert flame.svg(profile(), "p") == first
    reordered = Counter(dict(reversed(list(profile().items()))))
    assert flame.svg(reordered, "p") == first


def test_width_scales_the_drawing() -> None:
    drawn = boxes(parse(flame.svg(profile(), "p", width=600)))
    assert width(drawn["all"]) == 600 - 2 * flame.PAD
    assert parse(flame.svg(profile(), "p", width=600)).get("width") == "600"


def test_write_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "cell.svg"
    path.write_text("old")
    flame.write(path, profile(), "p")
    assert path.read_text(encoding="utf-8") == flame.svg(profile(), "p")
    assert [p.name for p in tmp_path.iterdir()] == ["cell.svg"]
