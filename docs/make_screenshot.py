"""Makes docs/widget.png, the README's picture: the quickstart notebook's live widget on vgg16-hed, in
JupyterLab, in Debian's chromium (run on purpose; the tests never write it).

    python docs/make_screenshot.py                 # waits for the 256-step render to finish

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(REPO / "docs" / "widget.png"), help="PNG to write")
    args = parser.parse_args()
    if not os.path.exists(browser_support.CHROMIUM):
        raise SystemExit(f"error: Debian's chromium is needed at {browser_support.CHROMIUM} (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="lucidwidget-screenshot-") as root:
        shutil.copyfile(QUICKSTART, pathlib.Path(root) / QUICKSTART.name)
        with browser_support.jupyter_lab(root) as base_url, browser_support.chromium() as page:
            browser_support.open_notebook(page, base_url, QUICKSTART.name)
            seconds = browser_support.run_all_until_first_tile(page)
            page.wait_for_function("() => document.querySelector('.lw-root').dataset.running === 'false'",
                                   timeout=RENDER_TIMEOUT_MS)
            page.mouse.move(0, 0)                                   # no hover highlight in the picture
            cell = page.locator(".jp-CodeCell", has=page.locator(".lw-root"))
            cell.screenshot(path=args.output)
            status = page.locator(".lw-status").text_content()
            browser_support.close_notebook(page)
    print(f"wrote {args.output} ({status}; first tile {seconds['tile']:.1f} s after Run All)")


if __name__ == "__main__":
    main()
