"""The first screen of a run's report.html as a small PNG (the README's picture):
`python scripts/report_screenshot.py results/<run_id> docs/img/report-first-screen.png`.

Headless Chromium (Debian's chromium-headless-shell, or chromium) at a laptop's window size, then
reduced to a 64-colour palette so that the committed picture stays small.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser")
WINDOW = (1366, 768)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[1], file=sys.stderr)
        return 2
    page, out = Path(argv[0]) / "report.html", Path(argv[1])
    exe = next((p for name in BROWSERS if (p := shutil.which(name))), None)
    if exe is None or not page.is_file():
        why = "no headless Chromium" if exe is None else f"no {page}"
        print(f"report_screenshot: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}",
                        page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
        Image.open(shot).convert("RGB").quantize(colors=64).save(out, optimize=True)
    print(f"{out}: {out.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
