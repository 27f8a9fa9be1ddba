"""What live streaming costs: optimizer steps/s inside the widget against the bare engine (run by hand).

The widget renders on its worker thread and, at `frame_rate`, copies the tiles off the device, encodes
them as PNG and publishes them (plus progress, loss history and steps/s) through traitlets. The bare
engine runs the very same `Renderer.render` arguments with no callbacks. Both are timed in interleaved
rounds on one Renderer, so they share compiled steps and the ratio survives drifting machine load.
Frames per second reaching a browser and the slider-to-frame latency are measured in a real browser by
tests/test_browser.py, which prints them.

    python benchmarks/bench_widget.py               # vgg16-hed block4_conv3:42, 128 px, 4 tiles
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import lucidwidget as lw  # noqa: E402
from lucidwidget.widget import settings as settings_lib  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--tiles", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frame-rate", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    widget = lw.LucidWidget("vgg16-hed", layer="block4_conv3", channel=42, steps=args.steps, size=args.size,
                            tiles=args.tiles, seed=0, frame_rate=args.frame_rate, autostart=False)
    renderer = widget.renderer
    objective, kwargs = settings_lib.render_arguments(widget.settings, renderer.layers)

    def streamed():
        frames = []
        widget.observe(lambda change: frames.append(change["new"]), names="frame")
        began = time.perf_counter()
        widget.run()
        widget.wait()
        seconds = time.perf_counter() - began
        widget.unobserve_all("frame")
        return args.steps / seconds, len(frames) / seconds

    def bare():
        began = time.perf_counter()
        renderer.render(objective, **kwargs)
        return args.steps / (time.perf_counter() - began)

    bare()
    streamed()
    widget_rates, bare_rates, frame_rates = [], [], []
    for _ in range(args.rounds):
        steps_per_sec, frames_per_sec = streamed()
        widget_rates.append(steps_per_sec)
        frame_rates.append(frames_per_sec)
        bare_rates.append(bare())
    ratios = [w / b for w, b in zip(widget_rates, bare_rates)]
    print(f"vgg16-hed block4_conv3:42, {args.tiles} tiles of {args.size} px, {args.steps} steps, "
          f"frame_rate {args.frame_rate:g}, {args.rounds} interleaved rounds")
    print(f"widget {statistics.median(widget_rates):.2f} steps/s streaming "
          f"{statistics.median(frame_rates):.1f} frames/s; bare engine {statistics.median(bare_rates):.2f} steps/s; "
          f"ratio widget/engine {statistics.median(ratios):.2f}x (streaming costs "
          f"{100 * (1 - statistics.median(ratios)):.0f}%)")
    widget.close()


if __name__ == "__main__":
    main()
