"""The explain panel's latency in the kernel: a new channel to its new heat map (run by hand, not a test).

A `LucidWidget` on `vgg16-hed` with a bundled photo, no render running (`autostart=False`). Each move
sets `channel` as the page's slider does and times until the explain thread publishes the new heat map
(`explain_id` counts them), with the recompiles it caused (the explainers' `trace_count`). Two cases:

- `idle`: each move after the panel has finished everything (the top channels' thumbnails rendered);
- `busy`: each move while the previous move's thumbnails render, as when someone steps through channels
  (the thumbnail render stops at its next step, then the heat map is computed).

Prints the median and maximum of each, and the load average before and after: the machine is shared,
so compare the two cases of one run, not runs.

    python benchmarks/bench_explain.py                       # Grad-CAM of block4_conv3:k, 8 moves each
    python benchmarks/bench_explain.py --layer block5_conv3 --moves 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import lucidwidget as lw  # noqa: E402

POLL_SECONDS = 0.002
TIMEOUT = 600.0


def traces(widget):
    return sum(explainer.trace_count for explainer in widget._explain._explainers.values())


def move(widget, channel):
    """Sets the channel; returns the seconds until its heat map was published."""
    before = widget.explain_id
    start = time.perf_counter()
    widget.channel = channel
    while widget.explain_id == before:
        if time.perf_counter() - start > TIMEOUT:
            raise TimeoutError(f"no heat map for channel {channel} in {TIMEOUT} s: {widget.explain_error}")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="block4_conv3")
    parser.add_argument("--photo", default="chelsea")
    parser.add_argument("--method", default="gradcam")
    parser.add_argument("--moves", type=int, default=8)
    args = parser.parse_args()

    load_before = os.getloadavg()
    widget = lw.LucidWidget("vgg16-hed", layer=args.layer, channel=0, image=args.photo, method=args.method,
                            autostart=False)
    widget.wait(timeout=TIMEOUT)                        # compiles the passes, renders the first thumbnails
    warm = traces(widget)
    idle = []
    for channel in range(1, 1 + args.moves):
        idle.append(move(widget, channel))
        widget.wait(timeout=TIMEOUT)
    busy = []
    for channel in range(1 + args.moves, 1 + 2 * args.moves):
        busy.append(move(widget, channel))
        time.sleep(1.0)                                 # the thumbnails of this channel's top channels start
    retraces = traces(widget) - warm
    status = widget.explain_status
    widget.close()
    load_after = os.getloadavg()
    print(f"{status}; {widget.image_array.shape[0]} px; {args.moves} moves each; recompiles {retraces}")
    for name, seconds in (("idle", idle), ("busy", busy)):
        print(f"  {name}: median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s "
              f"({', '.join(f'{s:.2f}' for s in seconds)})")
    print(f"  load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
