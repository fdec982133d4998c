"""A real headless browser (Debian's ``chromium``) opening a report page, for tests and scripts.

``inspect_page`` loads a copy of the page with a probe script put first in its ``<head>``:
it records every error (script errors, failed loads, ``console.error``) and, once the page
has loaded, measures each ``svg.chart`` and each of its ``.mark`` elements as laid out on
screen, then writes what it found into the DOM, which ``--dump-dom`` returns. Chromium's own
log (``--enable-logging=stderr``) is read too: any ``CONSOLE`` line there is the page
talking to the console. ``problems`` turns that into sentences; an empty list means every
chart was drawn and nothing went wrong. ``screenshot`` takes a PNG of the page.

Chromium talks to nothing but the page: every background service is off, and ``file://``
pages need no network.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
PROBE = """<script>
window.__problems = [];
addEventListener(
  "error", e => __problems.push("error: " + (e.message || e.target.outerHTML)), true);
const __consoleError = console.error;
console.error = (...args) => {
  __problems.push("console.error: " + args.join(" "));
  __consoleError(...args);
};
addEventListener("load", () => {
  const inside = (b, box) => b.left >= box.left - 1 && b.right <= box.right + 1
    && b.top >= box.top - 1 && b.bottom <= box.bottom + 1;
  const charts = [...document.querySelectorAll("svg.chart")].map(svg => {
    const box = svg.getBoundingClientRect();
    const marks = [...svg.querySelectorAll(".mark")];
    const drawn = marks.filter(m => {
      const b = m.getBoundingClientRect();
      return b.width > 0 && b.height > 0 && inside(b, box);
    });
    return {id: svg.id, width: box.width, height: box.height, declared: Number(svg.dataset.marks),
            marks: marks.length, drawn: drawn.length, empty: !!svg.querySelector(".empty")};
  });
  const out = document.createElement("pre");
  out.id = "browser-probe";
  out.textContent = JSON.stringify({charts, problems: __problems,
    resources: performance.getEntriesByType("resource").map(r => r.name)});
  document.body.appendChild(out);
});
</script>"""


@dataclass(frozen=True)
class PageInspection:
    charts: list[dict[str, Any]]
    errors: list[str]  # the probe's and chromium's console lines
    resources: list[str]  # anything the page fetched (a self-contained page fetches nothing)
    dom: str


def available() -> bool:
    return CHROMIUM.exists()


def run_chromium(url: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "HOME": profile},
        )


def inspect_page(page: Path) -> PageInspection:
    """Open ``page`` (a copy with the probe, beside it) and report what the browser saw."""
    with tempfile.TemporaryDirectory(prefix="probe-") as folder:
        probed = Path(folder) / page.name
        html = page.read_text(encoding="utf-8")
        probed.write_text(html.replace("<head>", f"<head>{PROBE}", 1), encoding="utf-8")
        done = run_chromium(
            probed.as_uri(),
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            "--window-size=1000,900",
        )
    found = re.search(r'<pre id="browser-probe">(.*?)</pre>', done.stdout, flags=re.S)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    if found is None:
        return PageInspection(
            [], [f"no probe output (exit {done.returncode})", *console], [], done.stdout
        )
    probe = json.loads(_unescape(found.group(1)))
    return PageInspection(
        probe["charts"], probe["problems"] + console, probe["resources"], done.stdout
    )


def problems(seen: PageInspection) -> list[str]:
    """What is wrong with the page as the browser showed it; [] when all is well."""
    found = [*seen.errors, *(f"fetched {url}" for url in seen.resources)]
    for chart in seen.charts:
        name = chart["id"]
        if chart["width"] <= 0 or chart["height"] <= 0:
            found.append(f"{name}: not laid out ({chart['width']}x{chart['height']})")
        if chart["declared"] != chart["marks"] or chart["drawn"] != chart["marks"]:
            found.append(
                f"{name}: {chart['drawn']} of {chart['marks']} marks drawn, "
                f"{chart['declared']} declared"
            )
        if chart["marks"] == 0 and not chart["empty"]:
            found.append(f"{name}: no marks and no 'none in the year'")
    return found


def screenshot(page: Path, png: Path, *, width: int = 1000, height: int = 2000) -> None:
    """A PNG of the top ``width`` x ``height`` pixels of ``page``."""
    png.parent.mkdir(parents=True, exist_ok=True)
    done = run_chromium(
        page.resolve().as_uri(), f"--screenshot={png}", f"--window-size={width},{height}"
    )
    if not png.exists():
        raise RuntimeError(
            f"chromium took no screenshot (exit {done.returncode}): {done.stderr[-500:]}"
        )


def _unescape(text: str) -> str:
    return (
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    )
