"""Make this checkout importable from the venv and give it a `bench` command, without pip.

`pip install -e .` did this until CI hung on it: setuptools' egg_info walks the whole checkout,
links followed, and CI builds the base image into build/rootfs meanwhile, where debootstrap mounts
/proc; the walk then never ends (reproduced: proc mounted at build/rootfs/proc, `pip install -e .`
still running after 60 s; 2 s without it). A .pth line and a three-line launcher are all that an
editable install gave us, and they read nothing of the tree. Usage: python scripts/link-project.py
(run by the venv's own python, from anywhere)."""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PTH = "fastapi_def_vs_async_bench.pth"


def main() -> int:
    site = Path(sysconfig.get_paths()["purelib"])
    (site / PTH).write_text(f"{ROOT}\n")
    # the command pyproject's [project.scripts] declares, as pip would have written it
    launcher = Path(sys.executable).parent / "bench"
    launcher.write_text(f"#!{sys.executable}\nimport sys\nfrom bench.cli import main\nsys.exit(main())\n")
    launcher.chmod(0o755)
    print(f"link-project: {ROOT} importable ({site / PTH}), {launcher}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
