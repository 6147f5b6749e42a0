"""Open the dashboard in headless Chromium: what it rendered (geometry, shown numbers, errors) and a screenshot.

No browser-automation dependency: Chromium's own command line does the work. ``inspect_page`` loads a copy of the
page with a small probe script in ``<head>`` that records every error (uncaught exceptions, ``console.error``,
resources that fail to load) and, on ``load``, the rendered size of every chart and bar (with its series, when a
chart has several), every KPI tile (its value and whether it fits the tile, its change against the previous period and its tooltip) and every
table cell (the ``data-value`` it carries and the text a person sees); ``--dump-dom`` prints the DOM with the
probe's JSON in it. Chromium's console log (``--enable-logging=stderr``) is read too, so an error the probe could
miss still counts. ``screenshot`` renders the unmodified page at its full height.

``python -m clickstream_local.browser REPORT.html [PNG]`` prints the probe's findings and writes the screenshot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Launch flags that work for Debian's Chromium in containers and CI: no sandbox (root), no GPU, no network chatter.
CHROMIUM_FLAGS = (
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
DEFAULT_WIDTH = 1280
TIMEOUT_S = 90

PROBE_ID = "clickstream-probe"
_PROBE = """<script>(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    errors.push(e.message || ("resource failed: " + ((t && (t.src || t.href)) || "?")));
  }, true);
  var original = console.error;
  console.error = function () {
    errors.push(Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
  function size(el) { var r = el.getBoundingClientRect(); return [r.width, r.height]; }
  function text(el) { return (el.textContent || "").trim(); }
  window.addEventListener("load", function () {
    var out = { errors: errors, charts: [], tiles: [], cells: [], height: 0 };
    document.querySelectorAll("svg.chart").forEach(function (svg) {
      var box = svg.getBBox();
      var bars = [];
      svg.querySelectorAll(".bar").forEach(function (bar) {
        var b = bar.getBBox();
        var bar_ = { label: bar.getAttribute("data-label"), value: bar.getAttribute("data-value"),
                     width: b.width, height: b.height };
        if (bar.hasAttribute("data-series")) { bar_.series = bar.getAttribute("data-series"); }
        bars.push(bar_);
      });
      out.charts.push({ chart: svg.getAttribute("data-chart"), points: Number(svg.getAttribute("data-points")),
                        content: [box.width, box.height], size: size(svg), bars: bars });
    });
    document.querySelectorAll("[data-kpi]").forEach(function (tile) {
      var shown = tile.querySelector(".value");
      var change = tile.querySelector(".change");
      out.tiles.push({ kpi: tile.getAttribute("data-kpi"), value: tile.getAttribute("data-value"),
                       text: shown ? text(shown) : "", size: size(tile), title: tile.getAttribute("title") || "",
                       fits: shown ? shown.scrollWidth <= shown.clientWidth : true,
                       change: tile.getAttribute("data-change"), previous: tile.getAttribute("data-previous"),
                       changeText: change ? text(change) : null,
                       changeSize: change ? size(change) : [0, 0] });
    });
    document.querySelectorAll("table[id]").forEach(function (table) {
      table.querySelectorAll("tbody tr").forEach(function (tr, row) {
        tr.querySelectorAll("td[data-value]").forEach(function (td) {
          out.cells.push({ table: table.id, row: row, cohort: tr.getAttribute("data-cohort"),
                           col: td.getAttribute("data-col") || ("W" + td.getAttribute("data-week")),
                           value: td.getAttribute("data-value"), text: text(td) });
        });
      });
    });
    out.height = Math.ceil(document.documentElement.scrollHeight);
    var node = document.createElement("script");
    node.type = "application/json";
    node.id = "__PROBE_ID__";
    node.textContent = JSON.stringify(out);
    document.body.appendChild(node);
  });
})();</script>""".replace("__PROBE_ID__", PROBE_ID)

_CONSOLE_LINE = re.compile(r":CONSOLE[:(]\d*\)?\]?\s*(.*)")
_PROBE_JSON = re.compile(r'<script type="application/json" id="' + PROBE_ID + r'">(.*?)</script>', re.DOTALL)


class BrowserError(RuntimeError):
    """Chromium could not be started or did not produce what was asked."""


@dataclass
class PageProbe:
    """What Chromium rendered for a page."""

    errors: list[str]  # from the probe: exceptions, console.error, failed resources
    console: list[str]  # every console message Chromium logged for the page
    charts: list[dict[str, Any]]
    tiles: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    height: int
    dom: str = field(repr=False)

    def chart(self, chart_id: str) -> dict[str, Any]:
        for chart in self.charts:
            if chart["chart"] == chart_id:
                return chart
        raise KeyError(chart_id)

    def table(self, table_id: str) -> list[dict[str, Any]]:
        return [cell for cell in self.cells if cell["table"] == table_id]


def find_chromium() -> str | None:
    """The Chromium binary: ``CHROMIUM_BIN`` when set, else ``chromium`` / ``chromium-browser`` on PATH."""
    explicit = os.environ.get("CHROMIUM_BIN")
    if explicit:
        return explicit if Path(explicit).exists() else shutil.which(explicit)
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(chromium: str, args: list[str], workdir: Path) -> subprocess.CompletedProcess[str]:
    profile = workdir / "profile"
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=workdir
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrowserError(f"could not run {chromium}: {exc}") from exc


def _with_probe(html: str) -> str:
    head = html.find("<head>")
    if head < 0:
        raise BrowserError("the page has no <head> to put the probe in")
    cut = head + len("<head>")
    return html[:cut] + _PROBE + html[cut:]


def inspect_page(
    page: Path, *, chromium: str | None = None, width: int = DEFAULT_WIDTH, height: int = 900
) -> PageProbe:
    """Load ``page`` (an HTML file) in headless Chromium and report what it rendered."""
    binary = chromium or find_chromium()
    if binary is None:
        raise BrowserError("chromium not found (install Debian's chromium or set CHROMIUM_BIN)")
    with tempfile.TemporaryDirectory(prefix="clickstream-browser-") as tmp:
        workdir = Path(tmp)
        # The copy sits next to the original's name in a fresh folder: relative references would fail to load
        # and be reported, exactly as they would for a page opened from S3 or an e-mail attachment.
        probed = workdir / page.name
        probed.write_text(_with_probe(page.read_text(encoding="utf-8")), encoding="utf-8")
        proc = _run(
            binary,
            [
                "--enable-logging=stderr",
                "--v=0",
                f"--window-size={width},{height}",
                "--dump-dom",
                probed.as_uri(),
            ],
            workdir,
        )
    if proc.returncode != 0:
        raise BrowserError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    found = _PROBE_JSON.search(proc.stdout)
    if found is None:
        raise BrowserError("the page's load event never ran the probe (no probe output in the DOM)")
    data = json.loads(found.group(1))
    console = [m.group(1) for line in proc.stderr.splitlines() if (m := _CONSOLE_LINE.search(line))]
    return PageProbe(
        errors=list(data["errors"]),
        console=console,
        charts=data["charts"],
        tiles=data["tiles"],
        cells=data["cells"],
        height=int(data["height"]),
        dom=proc.stdout,
    )


def screenshot(
    page: Path,
    png: Path,
    *,
    chromium: str | None = None,
    width: int = DEFAULT_WIDTH,
    height: int | None = None,
) -> Path:
    """A PNG of the whole page (``height`` defaults to the page's rendered height, measured first)."""
    binary = chromium or find_chromium()
    if binary is None:
        raise BrowserError("chromium not found (install Debian's chromium or set CHROMIUM_BIN)")
    if height is None:
        height = inspect_page(page, chromium=binary, width=width).height
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clickstream-browser-") as tmp:
        target = Path(tmp) / "page.png"
        proc = _run(
            binary,
            [f"--window-size={width},{height}", f"--screenshot={target}", page.resolve().as_uri()],
            Path(tmp),
        )
        if proc.returncode != 0 or not target.is_file():
            raise BrowserError(
                f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
            )
        shutil.copyfile(target, png)
    return png


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) > 2:
        print("usage: python -m clickstream_local.browser REPORT.html [SCREENSHOT.png]", file=sys.stderr)
        return 2
    page = Path(args[0])
    try:
        probe = inspect_page(page)
        for chart in probe.charts:
            print(f"chart {chart['chart']}: {chart['points']} points, content {chart['content']}")
        print(f"{len(probe.tiles)} tiles, {len(probe.cells)} table cells, page height {probe.height}px")
        for error in probe.errors + probe.console:
            print(f"error: {error}")
        if len(args) == 2:
            print(f"screenshot written to {screenshot(page, Path(args[1]), height=probe.height)}")
    except BrowserError as exc:
        print(f"browser: {exc}", file=sys.stderr)
        return 1
    return 1 if probe.errors or probe.console else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
