"""Image quality on the bundled model, printed in one run (run by hand; slow on a CPU).

1. Diversity: mean pixel correlation between 4 tiles and the activation each keeps, at several weights.
2. Transparency: mean opacity at the widget's alpha penalty, and the activation kept when the RGBA image
   is composited over fresh random backgrounds, against an opaque render of equal steps.
3. Time to image: with the widget's defaults, activation (as a share of a 256-step constant render's) and
   the share of spectral energy above half the Nyquist frequency, against seconds since the first step,
   in interleaved rounds: constant steps, "fast" with Lucid's 1/f spectrum, "fast" (its steeper
   spectrum) and progressive resolution (half size first, shown upscaled). Absolute seconds depend on
   the machine's load; compare the rows.
4. Early layers: the share of sampled block2_conv2 channels that come out as Nyquist checkerboards, and
   of block1_conv2 channels that come out flat.

    python benchmarks/bench_quality.py                 # full: 256 steps, 128 px (tens of minutes)
    python benchmarks/bench_quality.py --steps 64 --size 64 --rounds 1      # a quick look
"""

from __future__ import annotations

import argparse
import functools
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402

import lucidwidget as lw  # noqa: E402
from lucidwidget import imaging, objectives, param  # noqa: E402
from lucidwidget.models import visualizable_layers  # noqa: E402
from lucidwidget.widget import settings as widget_settings  # noqa: E402
from lucidwidget.widget.core import DEFAULT_DIVERSITY, LucidWidget  # noqa: E402
from lucidwidget.widget.settings import ALPHA_PENALTY_WEIGHT  # noqa: E402

LAYER, CHANNEL = "block4_conv3", 42
"""The README's running example."""

BACKGROUNDS = 8
"""Random backgrounds each transparent render is scored over."""

WHITE_NOISE_SD = 0.5
"""Per-pixel noise of the harsher background also reported: a random colour plus this Gaussian noise."""

HALF_NYQUIST = 0.25
"""Cycles per pixel above which spectral energy counts as high-frequency (Nyquist is 0.5)."""

CHECKERBOARD_BAND = 0.4
CHECKERBOARD_SHARE = 0.5
"""A render is a Nyquist checkerboard when more than CHECKERBOARD_SHARE of its (mean-removed, grey)
spectral energy lies above CHECKERBOARD_BAND cycles per pixel."""

PROGRESSIVE_SCALE = 0.5
PROGRESSIVE_STEPS = 64
"""The progressive-resolution candidate: PROGRESSIVE_STEPS "fast" steps (at most half the run) at this
fraction of the tile side (each about a third of a full-size step's time), then the rest at full size
from the upscaled image. 64 tied with "fast" at 5 s; 96 lost (`optvis.schedules.FAST_BOOST`)."""

FLAT_STD = 0.02
"""A render whose grey levels vary less than this is flat: the optimisation never got going."""

EARLY_CHANNELS = {"block2_conv2": (1, 5, 9, 17, 23, 31, 40, 50), "block1_conv2": (1, 50)}
"""Channels sampled for the early-layer check. At 128 px, 128 steps, 6 of the 8 block2_conv2 channels
come out as checkerboards, all six with a negative best activation (e.g. -17.7 for channel 5). Tried
on channels 5, 17 and 31, none adopted: spectrum decay 1.5 or 2 (still checkerboards), a Gaussian blur
of 0.7 or 1 px after the transforms (Nyquist share 0.95 -> 0.68-0.83, activation 2-4x more negative),
transforms that always resample (no exact 1x scale or 0 degree angle; unchanged), and plain pixels
(Nyquist share 0.69, activation -11.8: a near-flat grey)."""


def tile_correlation(images):
    """Mean Pearson correlation, over pairs of tiles, of their flattened RGB pixels."""
    flat = images[..., :3].reshape(len(images), -1)
    rows, cols = np.triu_indices(len(images), 1)
    return float(np.corrcoef(flat)[rows, cols].mean())


def band_share(images, cutoff):
    """Share of the mean-removed grey images' spectral energy above `cutoff` cycles per pixel."""
    grey = images[..., :3].mean(-1)
    grey = grey - grey.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(grey)) ** 2
    fy = np.abs(np.fft.fftfreq(grey.shape[1]))[:, None]
    fx = np.abs(np.fft.fftfreq(grey.shape[2]))[None, :]
    return float(power[:, np.maximum(fy, fx) > cutoff].sum() / max(power.sum(), 1e-12))


def per_tile(renderer, objective, images):
    return np.array([renderer.evaluate(objective, images[i:i + 1]) for i in range(len(images))])


def diversity(renderer, args):
    target = objectives.channel(LAYER, CHANNEL)
    print(f"\n## Diversity: {LAYER}:{CHANNEL}, 4 tiles, {args.size} px, {args.steps} steps "
          f"(widget default weight {DEFAULT_DIVERSITY:g})")
    print("weight  correlation  activation kept (mean, weakest tile)")
    reference = None
    for weight in args.weights:
        objective = target if weight == 0 else target + weight * objectives.diversity(LAYER)
        images = renderer.render(objective, size=args.size, batch=4, steps=args.steps, seed=args.seed)
        values = per_tile(renderer, target, images)
        reference = values.mean() if reference is None else reference
        print(f"{weight:6g}  {tile_correlation(images):11.3f}  {values.mean() / reference:6.0%} "
              f"{values.min() / reference:6.0%}", flush=True)


def transparency(renderer, args):
    target = objectives.channel(LAYER, CHANNEL)
    size = args.size
    opaque = renderer.evaluate(target, renderer.render(target, size=size, steps=args.steps, seed=args.seed))
    images = renderer.render(target - ALPHA_PENALTY_WEIGHT * objectives.alpha_penalty(), size=size,
                             steps=args.steps, seed=args.seed, param=functools.partial(param.image, alpha=True))
    rgb, alpha = images[..., :3], images[..., 3:]
    shape = (BACKGROUNDS, size, size, 3)
    natural = keras.ops.convert_to_numpy(param.random_background(shape, keras.random.SeedGenerator(args.seed + 1)))
    rng = np.random.default_rng(args.seed)
    noisy = np.clip(rng.uniform(size=(BACKGROUNDS, 1, 1, 3)) + WHITE_NOISE_SD * rng.standard_normal(shape), 0, 1)
    print(f"\n## Transparency: {LAYER}:{CHANNEL}, {size} px, {args.steps} steps, alpha penalty "
          f"{ALPHA_PENALTY_WEIGHT:g}, target 0.25")
    print(f"mean alpha {alpha.mean():.3f}; opaque render's activation {opaque:.1f}")
    for name, backgrounds in (("random 1/f backgrounds", natural), ("colour + white noise", noisy)):
        composites = (alpha * rgb + (1 - alpha) * backgrounds).astype(np.float32)
        kept = per_tile(renderer, target, composites).mean() / opaque
        print(f"kept over {name}: {kept:.0%}", flush=True)


class _Timeline:
    """Seconds since the first step ended, at each step, counted on across the stages of one run."""

    def __init__(self):
        self.times = {}
        self.offset = 0
        self._first = None

    def on_step_end(self, step, logs=None):
        now = time.perf_counter()
        self._first = now if self._first is None else self._first
        self.times[self.offset + step] = now - self._first


def widget_render_arguments(renderer, size):
    """The widget's objective and `render` arguments for LAYER:CHANNEL at its default settings."""
    traits = LucidWidget.class_traits()
    settings = {name: traits[name].default_value for name in widget_settings.SETTING_NAMES}
    settings.update(layer=LAYER, channel=CHANNEL, size=size)
    return widget_settings.render_arguments(settings, visualizable_layers(renderer.model))


def schedule_candidates(kwargs, args):
    """Name -> stages `(size, steps, render overrides)` of each schedule compared; a run starts each stage
    from the previous stage's image."""
    flat = {"param": functools.partial(kwargs["param"], decay_power=1.0)}
    small = max(1, round(args.size * PROGRESSIVE_SCALE))
    small_steps = min(PROGRESSIVE_STEPS, args.steps // 2)
    return {
        "constant": [(args.size, args.steps, {**flat, "schedule": None})],
        "fast, 1/f": [(args.size, args.steps, flat)],
        "fast": [(args.size, args.steps, {})],
        f"{small}px, then {args.size}": [(small, small_steps, {}), (args.size, args.steps - small_steps, {})],
    }


def run_stages(renderer, objective, kwargs, stages, checkpoints, seed, size):
    """(seconds, image at `size`) at each checkpoint of one staged run."""
    timeline, images, kept = _Timeline(), None, []
    for stage_size, stage_steps, overrides in stages:
        marks = [s - timeline.offset for s in checkpoints if timeline.offset < s <= timeline.offset + stage_steps]
        marks = marks or [stage_steps]
        result = renderer.render(objective, **{**kwargs, **overrides, "size": stage_size, "steps": stage_steps,
                                                "seed": seed, "thresholds": marks, "callbacks": [timeline],
                                                "init_images": images})
        kept += [(timeline.times[timeline.offset + m], imaging.resize(im, (size, size)) if stage_size != size
                  else im) for m, im in zip(marks, result) if timeline.offset + m in checkpoints]
        images = result[-1]
        timeline.offset += stage_steps
    return kept


def schedules(renderer, args):
    objective, kwargs = widget_render_arguments(renderer, args.size)
    target = objectives.channel(LAYER, CHANNEL)
    checkpoints = [s for s in (8, 16, 24, 32, 48, 64, 72, 80, 96, 128, 192, 256) if s <= args.steps]
    candidates = schedule_candidates(kwargs, args)
    reference = renderer.render(objective, **{**kwargs, **candidates["constant"][0][2], "steps": 256,
                                              "seed": args.seed})
    ref_value = renderer.evaluate(target, reference)
    print(f"\n## Time to image: {LAYER}:{CHANNEL}, the widget's defaults, 1 tile, {args.size} px; 256-step "
          f"constant render: activation {ref_value:.1f}, high-frequency share "
          f"{band_share(reference, HALF_NYQUIST):.3f}")
    steep = renderer.render(objective, **{**kwargs, "schedule": None, "steps": 256, "seed": args.seed})
    print(f"256-step constant render with the widget's spectrum: activation {renderer.evaluate(target, steep):.1f}, "
          f"high-frequency share {band_share(steep, HALF_NYQUIST):.3f} (shares below are of the first)")
    results = {name: [] for name in candidates}
    for stages in candidates.values():        # compile every stage first, so no round pays for tracing
        for stage_size, _, overrides in stages:
            renderer.render(objective, **{**kwargs, **overrides, "size": stage_size, "steps": 2, "seed": 0})
    for round_ in range(args.rounds):
        for name, stages in candidates.items():
            kept = run_stages(renderer, objective, kwargs, stages, checkpoints, args.seed + round_, args.size)
            results[name].append([(seconds, renderer.evaluate(target, im) / ref_value, band_share(im, HALF_NYQUIST))
                                  for seconds, im in kept])
    print("steps  " + "  ".join(f"{name:>22s}: s  kept   hf" for name in results))
    for index, steps in enumerate(checkpoints):
        cells = [f"{seconds:19.1f} {kept:5.0%} {high:.3f}"
                 for seconds, kept, high in (np.mean([r[index] for r in rounds], axis=0)
                                             for rounds in results.values())]
        print(f"{steps:5d}  " + "  ".join(cells))
    print(f"At {args.seconds:g} s after the first step (interpolated between checkpoints; the last one if the "
          f"run ends sooner), each round:")
    for name, rounds in results.items():
        at = np.array([[np.interp(args.seconds, *np.array(r)[:, [0, i]].T) for i in (1, 2)] for r in rounds])
        per_round = ", ".join(f"{kept:.0%} ({high:.3f})" for kept, high in at)
        print(f"{name:>22s}: mean {at[:, 0].mean():.0%} of the reference, high-frequency share "
              f"{at[:, 1].mean():.3f}; rounds {per_round}", flush=True)


def early_layers(renderer, args):
    print(f"\n## Early layers: {args.size} px, {args.steps} steps")
    for layer, channels in EARLY_CHANNELS.items():
        checker, flat = [], []
        for channel in channels:
            images = renderer.render(f"{layer}:{channel}", size=args.size, steps=args.steps, seed=args.seed)
            share = band_share(images, CHECKERBOARD_BAND)
            checker.append(share > CHECKERBOARD_SHARE)
            flat.append(images[..., :3].mean(-1).std() < FLAT_STD)
            print(f"{layer}:{channel:<3d} share above {CHECKERBOARD_BAND} cycles/px {share:.2f}", flush=True)
        print(f"{layer}: {sum(checker)}/{len(channels)} checkerboards, {sum(flat)}/{len(channels)} flat")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 3.0, DEFAULT_DIVERSITY, 30.0])
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the schedule comparison")
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget the schedules are read at")
    parser.add_argument("--only", nargs="+", choices=("diversity", "transparency", "schedules", "early"),
                        default=("diversity", "transparency", "schedules", "early"))
    args = parser.parse_args()
    renderer = lw.Renderer("vgg16-hed")
    sections = {"diversity": diversity, "transparency": transparency, "schedules": schedules,
                "early": early_layers}
    for name in args.only:
        sections[name](renderer, args)


if __name__ == "__main__":
    main()
