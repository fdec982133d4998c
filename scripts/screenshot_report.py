"""Regenerate the README's screenshot of the demo's report with headless chromium.

    .venv/bin/python scripts/screenshot_report.py                 # docs/report-demo.png
    .venv/bin/python scripts/screenshot_report.py --height 3000   # more of the page

Runs ``gh-collect demo`` in a temporary folder (the simulator on 127.0.0.1, no network),
opens its report in Debian's ``chromium`` (``apt-get install chromium``), refuses to save a
screenshot of a page with a console error or an undrawn chart, and writes the top of the
page as a PNG.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import browser  # noqa: E402

DEFAULT_PNG = ROOT / "docs" / "report-demo.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PNG)
    parser.add_argument("--width", type=int, default=900)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args()
    if not browser.available():
        print(f"no {browser.CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="report-demo-") as folder:
        demo = [sys.executable, "-m", "gh_collect", "demo", "--out", folder]
        subprocess.run(demo, check=True, capture_output=True, cwd=ROOT, timeout=300)
        page = Path(folder) / "report.html"
        found = browser.problems(browser.inspect_page(page))
        if found:
            print("the report has problems:\n  " + "\n  ".join(found), file=sys.stderr)
            return 1
        browser.screenshot(page, args.out, width=args.width, height=args.height)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
