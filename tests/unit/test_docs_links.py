"""The README and docs/*.md: every relative link and anchor resolves, the README stays a two-minute
read, and the examples the pages show are ones the runner takes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bench import ROOT
from bench.scenario import matrix as scenario

README = ROOT / "README.md"
PICTURE = "docs/img/report-first-screen.png"

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_TARGET = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, fenced = [], False
    for n, line in enumerate(text.split("\n"), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((n, line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (a link's text, code without backticks), lower case,
    punctuation but `-` and `_` dropped, each space a `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path.read_text()):
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m[1])
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for n, line in prose_lines(path.read_text()):
        line = CODE_SPAN.sub("", line)
        found += [(n, m[1]) for m in LINK.finditer(line)]
        found += [(n, m[1]) for m in HTML_TARGET.finditer(line)]
    return found


def broken(path: Path) -> list[str]:
    """Each relative link of a page whose file does not exist, or whose anchor names no heading."""
    bad = []
    for n, target in links(path):
        if SCHEME.match(target) or target.startswith("//"):
            continue
        ref, _, anchor = target.partition("#")
        dest = (path.parent / ref).resolve() if ref else path
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{n}: {target}"
        if not dest.exists():
            bad.append(f"{where} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{where} (no heading #{anchor} in {dest.name})")
    return bad


def test_every_relative_link_and_anchor_in_the_readme_and_docs_resolves() -> None:
    bad = [b for page in pages() for b in broken(page)]
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_the_checker_sees_a_broken_file_a_broken_anchor_and_skips_code(tmp_path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## On a cloud VM: `--set`\n\n## On a cloud VM: `--set`\n")
    page = tmp_path / "page.md"
    page.write_text("\n".join([
        "# Page", "",
        "[ok](other.md) [ok](other.md#on-a-cloud-vm---set) [ok](other.md#on-a-cloud-vm---set-1) [ok](#page)",
        "![missing picture](img/none.png) [gone](gone.md) [bad anchor](other.md#cloud) [self](#nowhere)",
        "[web](https://example.com/x.md) `[code](nothing.md)`",
        "```", "[fenced](nothing.md)", "```",
    ]))
    assert [b.split(": ", 1)[1] for b in broken(page)] == [
        "img/none.png (no such file)", "gone.md (no such file)",
        "other.md#cloud (no heading #cloud in other.md)", "#nowhere (no heading #nowhere in page.md)"]


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Idle threads are not samples: `--gil`", "idle-threads-are-not-samples---gil"),
    ("7. Real I/O: a real PostgreSQL and an upstream HTTP service (`real-io`)",
     "7-real-io-a-real-postgresql-and-an-upstream-http-service-real-io"),
    ("What CI's 11 minutes are made of", "what-cis-11-minutes-are-made-of"),
    ("`summary.csv` columns", "summarycsv-columns"),
    ("Distributed load, and outgrowing one machine", "distributed-load-and-outgrowing-one-machine"),
])
def test_anchors_are_githubs_slugs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_the_readme_is_a_two_minute_read() -> None:
    """Short, and in the order a reader needs it: what it answers, a real report, the two commands
    with the run time and where the report lands, the answer, the presets, the links."""
    text = README.read_text()
    assert len(text.split("\n")) <= 150, "README.md grew past 150 lines: move the detail to a page of docs/"
    assert len(text.split()) <= 1300, "README.md grew past 1,300 words: move the detail to a page of docs/"
    picture = re.search(r"!\[[^\]]+\]\(" + re.escape(PICTURE) + r"\)", text)
    assert picture, f"README.md shows no {PICTURE} (with alt text)"
    order = [picture.start(), text.index("make bench"), text.index("make test"),
             text.index("results/<run_id>/report.html"), text.index("## The short answer"),
             text.index("## Presets"), text.index("docs/results.md")]
    assert order == sorted(order)
    assert "about 4 minutes on a 2-core VM" in text and "key.csv" in text


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for _, target in links(README)}
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"README.md links no line to {unlinked}"


def test_each_set_flag_in_the_docs_takes_one_key_value() -> None:
    """`--set` takes one key=value per flag (`--set users=10,50 --set duration=5`); make's SET="a=1 b=2"
    is split by the Makefile and stays valid."""
    two = re.compile(r"--set\s+(\"[^\"]*\"|'[^']*'|\S+)\s+[\"']?[a-z_]+=")
    bad = [f"{page.relative_to(ROOT)}:{n}" for page in pages()
           for n, line in enumerate(page.read_text().split("\n"), 1) if two.search(line)]
    assert not bad, f"several key=value after one --set: {bad}"


@pytest.mark.parametrize("page", ["scenarios.md", "load-models.md"])
def test_the_scenario_examples_in_the_docs_are_valid(page: str) -> None:
    text = (ROOT / "docs" / page).read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        assert scenario.from_dict(tomllib.loads(block), {}).cells()
