"""A profile's flame graph: one self-contained SVG (no script, no web font, nothing fetched), drawn as
Brendan Gregg's flamegraph.pl draws it: the root at the bottom, each box a function as wide as the
samples under it, callees stacked on their callers, siblings in alphabetical order (so the same
profile always gives the same picture, and two profiles can be compared by eye).

Each box is coloured by the part (attribution.PARTS) its samples are given to, by the same rules as
attribution.part_of_stack, so the picture and the row's cpu_*_pct columns tell one story: a frame's
own part, or for a stdlib helper (None) the part of its nearest coloured caller, and loop code that
hop code called is the hop's. A leaf box's colour is thus the part its samples are counted in.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from bench.run import attribution
from bench.run.attribution import Stacks

# one colour a part, light enough for black labels and far enough apart to be told at a glance
PART_COLOURS: dict[str, str] = {
    "hop": "#e8663d",  # red-orange: the cost a `def` endpoint pays for its thread, the one to watch
    "loop": "#f2cf3a",  # yellow
    "server": "#5b9bd5",  # blue
    "framework": "#a683d8",  # purple
    "app": "#6cc06c",  # green
    "agent": "#a8906b",  # grey-brown
    "rest": "#dcdcdc",  # light grey
}
NO_PART_COLOUR = "#a9a9a9"  # darker than rest's grey: the root, and stacks of stdlib alone above it
ROW = 16  # px a stack level takes
PAD = 10  # px around the drawing
TOP = PAD + 2 * ROW + 8  # the title's line and the legend's line, then the boxes
CHAR_PX = 7  # about what an 11 px monospace glyph takes: enough to size labels without a font
MIN_CHARS = 3  # a label of fewer characters says nothing: leave the box bare
PER_MILLE = 1000  # a box under 1/1000 of the samples is skipped (see _boxes)


@dataclass
class Node:
    """A function in one calling context: the samples whose stack passes through it there."""

    frame: str
    part: str | None  # the part its box is coloured as (None: no coloured frame from the root to it)
    samples: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def tree(stacks: Stacks) -> Node:
    """The folded stacks merged from the root ("all") up: a frame's children keyed by their text."""
    root = Node("all", None)
    own: dict[str, str | None] = {}  # part_of_frame is a few regexes; a profile repeats its frames a lot
    for stack, count in attribution.fold(stacks).items():
        if count <= 0:
            continue
        root.samples += count
        node, under_hop = root, False
        for frame in stack:
            if frame not in own:
                own[frame] = attribution.part_of_frame(frame)
            part = own[frame]
            child = node.children.get(frame)
            if child is None:
                # part_of_stack's rule: loop code further in than a hop frame works for the hop
                colour_part = "hop" if part == "loop" and under_hop else part
                child = node.children[frame] = Node(frame, colour_part or node.part)
            child.samples += count
            under_hop = under_hop or part == "hop"
            node = child
    return root


def label(frame: str, box_width: float) -> str:
    """The function's name (without its file), cut to what the box holds; "" where too little fits."""
    name = frame.partition(" (")[0]
    fits = int((box_width - 6) // CHAR_PX)  # 3 px clear of each edge
    if fits < MIN_CHARS:
        return ""
    return name if len(name) <= fits else name[: fits - 2] + ".."


def _boxes(root: Node) -> list[tuple[int, int, Node]]:
    """(depth, samples left of it in its row, node) of each box drawn, parents before children.

    A box under 0.1 % of the samples is skipped, and its callees with it (they are no wider): it
    would be under a pixel or two wide, unreadable, and a profile of many small stacks would
    otherwise give a file of megabytes. The samples still count in the widths around it.
    An explicit stack rather than recursion: py-spy's stacks can be deeper than Python's limit."""
    out: list[tuple[int, int, Node]] = []
    todo = [(0, 0, root)]
    while todo:
        depth, before, node = todo.pop()
        if node.samples * PER_MILLE < root.samples:
            continue
        out.append((depth, before, node))
        kids, offset = [], before
        for name in sorted(node.children):  # flamegraph.pl's order: alphabetical, not by size
            kid = node.children[name]
            kids.append((depth + 1, offset, kid))
            offset += kid.samples
        todo.extend(reversed(kids))  # popped in alphabetical order: the output reads left to right
    return out


def _open(title: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',  # readable on a dark page too
        f'<text x="{PAD}" y="{PAD + 12}" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]


def _legend(stacks: Stacks) -> list[str]:
    out, x, y = [], PAD, PAD + ROW + 4
    for part, share in attribution.shares(stacks).items():
        text = f"{part} {share:.1f} %"
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{PART_COLOURS[part]}"/>'
                   f'<text x="{x + 14}" y="{y + 9}">{html.escape(text)}</text>')
        x += 14 + len(text) * CHAR_PX + 16
    return out


def svg(stacks: Stacks, title: str, width: int = 1200) -> str:
    """The flame graph of `stacks` (py-spy's stacks, line numbers and all: they are folded here)."""
    root = tree(stacks)
    if root.samples == 0:
        height = TOP + ROW + PAD
        return "\n".join([*_open(title, width, height),
                          f'<text x="{PAD}" y="{TOP + 12}">no samples</text>', "</svg>"]) + "\n"
    boxes = _boxes(root)
    depth = max(d for d, _, _ in boxes)
    height = TOP + (depth + 1) * ROW + PAD
    span = max(width - 2 * PAD, 1)
    out = [*_open(title, width, height), *_legend(stacks)]
    for d, before, node in boxes:
        x = PAD + span * before / root.samples
        w = span * node.samples / root.samples
        y = height - PAD - (d + 1) * ROW
        pct = 100.0 * node.samples / root.samples
        tip = html.escape(f"{node.frame} — {node.samples} samples ({pct:.1f} %)")
        colour = PART_COLOURS[node.part] if node.part else NO_PART_COLOUR
        text = label(node.frame, w)
        shown = f'<text x="{x + 3:.2f}" y="{y + ROW - 4}">{html.escape(text)}</text>' if text else ""
        # height ROW - 1: a pixel's gap between a caller and its callees shows where one ends
        out.append(f'<g><title>{tip}</title><rect x="{x:.2f}" y="{y}" width="{w:.2f}" '
                   f'height="{ROW - 1}" fill="{colour}"/>{shown}</g>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(path: Path, stacks: Stacks, title: str) -> None:
    """Save the graph; a reader (the report's page, a browser) never sees half a file."""
    tmp = path.with_suffix(".svg.tmp")
    tmp.write_text(svg(stacks, title), encoding="utf-8")
    os.replace(tmp, path)
