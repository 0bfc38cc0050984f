"""How this interpreter was built, as one string (stdlib only: the runner imports it too).

Interpreter builds differ in speed (PGO/LTO): a pure-Python loop measures the build as well as the
code, so the target's /info and the runner's env.json both report this, in the same format.
"""

from __future__ import annotations

import platform


def python_build() -> str:
    """e.g. 'CPython 3.12.7 (main, Oct  1 2024 08:52:12) GCC 12.2.0'."""
    return (f"{platform.python_implementation()} {platform.python_version()} "
            f"({', '.join(platform.python_build())}) {platform.python_compiler()}")
