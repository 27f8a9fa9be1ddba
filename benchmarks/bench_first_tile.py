"""The quickstart's first hour, in seconds: Run All -> first tile in JupyterLab, and where the time goes
(run by hand).

Two measurements, each repeated `--runs` times:
- in the browser: the quickstart notebook in a real JupyterLab page in Debian's chromium (the helpers of
  tests/browser_support.py); the page's clock times Run All -> the widget shown (its cell has run:
  imports and model load) -> its first tile drawn. The kernel is started and idle before Run All, as it
  is when a user clicks it.
- in a fresh Python process, the same steps one by one: importing TensorFlow, loading vgg16-hed,
  building the widget, and its first frame (debounce, tracing and compiling the step, one step, PNG).

The target is a first tile within FIRST_TILE_TARGET seconds on a 2-core CPU; the ratio to it is printed.
Other processes on the machine make absolute times noisy: compare the runs of one invocation.

    python benchmarks/bench_first_tile.py            # both, 3 runs each
    python benchmarks/bench_first_tile.py --no-browser
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import browser_support  # noqa: E402

QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"
FIRST_TILE_TARGET = 10.0
"""Seconds from Run All to the first visible tile that the quickstart aims for on a 2-core CPU."""

STEPS = """\
import json, threading, time
began = time.perf_counter()
marks = {}
def mark(name):
    marks[name] = time.perf_counter() - began
import lucidwidget as lw
from lucidwidget._tf_startup import import_backend
import_backend(); mark("import the backend")
widget_class = lw.LucidWidget; mark("import lucidwidget")
model = lw.load_model("vgg16-hed"); mark("load vgg16-hed")
first = threading.Event()
w = widget_class(model, layer="block4_conv3", channel=42, autostart=False)
w.observe(lambda change: first.set(), names="frame"); mark("build the widget")
w.run(); first.wait(600); mark("first frame")
w.close()
print(json.dumps(marks))
"""


def in_process():
    """Cumulative seconds at each step of a fresh process (see STEPS)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True, env=env, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def in_browser(runs):
    """Seconds from Run All to the widget shown and to its first tile, one dict per run (fresh kernels)."""
    timings = []
    with tempfile.TemporaryDirectory(prefix="lucidwidget-bench-") as root:
        shutil.copyfile(QUICKSTART, pathlib.Path(root) / QUICKSTART.name)
        with browser_support.jupyter_lab(root) as server, browser_support.chromium() as page:
            for _ in range(runs):
                browser_support.open_notebook(page, server.url, QUICKSTART.name)
                timings.append(browser_support.run_all_until_first_tile(page))
                browser_support.close_notebook(page)
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true", help="only the in-process breakdown")
    args = parser.parse_args()

    print(f"fresh process, cumulative seconds ({args.runs} runs):")
    runs = [in_process() for _ in range(args.runs)]
    previous = {index: 0.0 for index in range(args.runs)}
    for name in runs[0]:
        values = [run[name] for run in runs]
        parts = [value - previous[index] for index, value in enumerate(values)]
        previous = dict(enumerate(values))
        print(f"  {name:<18} at {', '.join(f'{v:5.1f}' for v in values)}   (this step: "
              f"{', '.join(f'{p:4.1f}' for p in parts)})")

    if args.no_browser:
        return
    if not os.path.exists(browser_support.CHROMIUM):
        raise SystemExit(f"error: the browser measurement needs Debian's chromium at {browser_support.CHROMIUM}")
    timings = in_browser(args.runs)
    print(f"\nJupyterLab + chromium, quickstart.ipynb, seconds after Run All ({args.runs} runs, fresh kernels):")
    for name, label in (("shown", "widget shown"), ("tile", "first tile drawn")):
        print(f"  {label:<18} {', '.join(format(t[name], '5.1f') for t in timings)}")
    median = statistics.median(t["tile"] for t in timings)
    print(f"  median first tile {median:.1f} s = {median / FIRST_TILE_TARGET:.2f} x the {FIRST_TILE_TARGET:.0f}-s target")


if __name__ == "__main__":
    main()
