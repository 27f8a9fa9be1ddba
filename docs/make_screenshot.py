"""Makes the README's pictures of the widget on vgg16-hed, in JupyterLab, in Debian's chromium (run on
purpose; the tests never write them): docs/widget.png, the quickstart notebook's live widget, and with
`--explain` docs/explain.png, the widget explaining a bundled photo.

    python docs/make_screenshot.py                 # waits for the 256-step render to finish
    python docs/make_screenshot.py --explain       # ...and for the heat map and the top channels' thumbnails

The notebook runs from a copy in a temporary folder, on a JupyterLab of its own (tests/browser_support.py).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import browser_support  # noqa: E402

QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"
RENDER_TIMEOUT_MS = 600_000
"""The quickstart's 256 steps at 128 px take about 30 s on an idle 2-core CPU; a busy one is slower."""

EXPLAIN_CELL = """\
import lucidwidget as lw

w = lw.LucidWidget("vgg16-hed", layer="block4_conv3", channel=42, image="chelsea")
w"""
"""The explain picture's notebook: the quickstart's widget, given a bundled photo."""

VIEWPORT = {"width": 1400, "height": 1500}
"""Tall enough for the whole cell, explain panel included, above JupyterLab's status bar."""

THUMBNAILS = 8
"""Top-channel thumbnails the explain panel shows (`widget.explain.TOP_CHANNELS`), all rendered first."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--explain", action="store_true", help="the widget explaining a photo (docs/explain.png)")
    parser.add_argument("-o", "--output", default=None, help="PNG to write (default: docs/widget.png, or "
                                                             "docs/explain.png with --explain)")
    args = parser.parse_args()
    args.output = args.output or str(REPO / "docs" / ("explain.png" if args.explain else "widget.png"))
    if not os.path.exists(browser_support.CHROMIUM):
        raise SystemExit(f"error: Debian's chromium is needed at {browser_support.CHROMIUM} (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="lucidwidget-screenshot-") as root:
        notebook = pathlib.Path(root) / ("explain.ipynb" if args.explain else QUICKSTART.name)
        if args.explain:
            browser_support.write_notebook(notebook, [EXPLAIN_CELL])
        else:
            shutil.copyfile(QUICKSTART, notebook)
        with browser_support.jupyter_lab(root) as server, browser_support.chromium() as page:
            page.set_viewport_size(VIEWPORT)
            browser_support.open_notebook(page, server.url, notebook.name)
            seconds = browser_support.run_all_until_first_tile(page)
            page.wait_for_function("() => document.querySelector('.lw-root').dataset.running === 'false'",
                                   timeout=RENDER_TIMEOUT_MS)
            if args.explain:
                page.wait_for_function(
                    "(count) => { const root = document.querySelector('.lw-root');"
                    " return root.dataset.heatmapShown && Number(root.dataset.thumbnails) === count; }",
                    arg=THUMBNAILS, timeout=RENDER_TIMEOUT_MS)
            page.mouse.move(0, 0)                                   # no hover highlight in the picture
            cell = page.locator(".jp-CodeCell", has=page.locator(".lw-root"))
            cell.screenshot(path=args.output)
            status = page.locator(".lw-status").text_content()
            browser_support.close_notebook(page)
    print(f"wrote {args.output} ({status}; first tile {seconds['tile']:.1f} s after Run All)")


if __name__ == "__main__":
    main()
