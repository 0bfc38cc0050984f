"""Write (or, with --check, verify) what is derived from the key table (bench/scenario/keys.py):
docs/knobs.md's table of knobs, .env.example's target block and compose.yaml's target environment.
Each lives between two marker lines; `make knobs` rewrites them, `make test` fails on drift."""

from __future__ import annotations

import re
import sys

from bench import ROOT
from bench.scenario.keys import KEYS, TARGET_ENV, allowed_text, by_hand, default_text, env_name, env_text

KNOBS_DOC = "docs/knobs.md"
DOC_BEGIN = "<!-- knobs: written by `make knobs` from bench/scenario/keys.py -->"
DOC_END = "<!-- end of knobs -->"
ENV_BEGIN = "# knobs: written by `make knobs` from bench/scenario/keys.py (the target's settings)"
ENV_END = "# end of knobs"
COMPOSE_BEGIN = ("      # knobs: written by `make knobs` from bench/scenario/keys.py: the runner sets each "
                 "per cell, by")
COMPOSE_END = "      # end of knobs"


# A help text may link to a section of the README as it was (`[Real I/O](#real-io)`); each of those
# sections is a page of docs/ now, beside docs/knobs.md. A help that names the page itself
# (`[Real I/O](real-io.md)`) is written as it is.
SECTION_PAGES = {
    "#closed-vs-open-loop": "load-models.md",
    "#on-a-cloud-vm": "cloud-vm.md",
    "#real-io": "real-io.md",
    "#servers": "servers.md",
    "#why-the-cpu-profile": "profiling.md",
    "#your-own-app": "own-app.md",
}


def linked(text: str) -> str:
    return re.sub(r"\]\((#[^)]*)\)", lambda m: f"]({SECTION_PAGES.get(m[1], m[1])})", text)


def knobs_table() -> list[str]:
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    rows += [f"| `{key}` | {default_text(key)} | {allowed_text(key)} | {linked(k.help)} |"
             for key, k in KEYS.items()]
    return rows


def env_block() -> list[str]:
    lines = []
    for key in TARGET_ENV:
        first = KEYS[key].help.split(" (")[0].split("; ")[0].replace("`", "")
        lines.append(f"# {key}: {first}")
        lines.append(f"{env_name(key)}={env_text(by_hand(key))}")
    return lines


def compose_block() -> list[str]:
    return ["      # hand they come from .env (cp .env.example .env)",
            *(f"      {env_name(key)}: ${{{env_name(key)}}}" for key in TARGET_ENV)]


def splice(text: str, begin: str, end: str, body: list[str], where: str) -> str:
    lines = text.split("\n")
    try:
        i, j = lines.index(begin), lines.index(end)
    except ValueError:
        raise SystemExit(f"knobs: {where} lacks the marker lines {begin!r} and {end!r}") from None
    return "\n".join([*lines[:i + 1], *body, *lines[j:]])


TARGETS = (
    (KNOBS_DOC, DOC_BEGIN, DOC_END, knobs_table),
    (".env.example", ENV_BEGIN, ENV_END, env_block),
    ("compose.yaml", COMPOSE_BEGIN, COMPOSE_END, compose_block),
)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, begin, end, body in TARGETS:
        path = ROOT / name
        old = path.read_text()
        new = splice(old, begin, end, body(), name)
        if new != old:
            stale.append(name)
            if not check:
                path.write_text(new)
    if check and stale:
        print(f"knobs: {', '.join(stale)} differ from bench/scenario/keys.py: run `make knobs`",
              file=sys.stderr)
        return 1
    for name in stale:
        print(f"knobs: rewrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
