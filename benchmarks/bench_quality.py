"""Image quality on the bundled model, printed in one run (run by hand; slow on a CPU).

1. Diversity: mean pixel correlation between 4 tiles and the activation each keeps, at several weights.
2. Transparency: the widget's transparency mode on several objective kinds, layers, channels and seeds,
   with 1 and 4 tiles: the mean alpha; the activation kept, i.e. the mode's target on each RGBA tile
   composited over uniform per-pixel noise as a share of it on an opaque render of equal steps; and the
   largest connected opaque region as a share of the opaque area. Per case, and the mean.
3. Steps to image: with the widget's defaults, activation at 16 .. 256 steps as a share of the same
   render's at 256 (the widget's own finished tile) and of Lucid's plain 256-step render (constant
   steps, 1/f spectrum), for units across layers and seeds, with 1 tile and with 4 (diversity on), next
   to the previous schedule's; with each render's final activation and high-frequency share. Steps do
   not depend on the machine's speed, so neither do these figures.
4. Early layers: the share of sampled block2_conv2 channels that come out as Nyquist checkerboards, and
   of block1_conv2 channels that come out flat.

    python benchmarks/bench_quality.py                      # everything: 256 steps, 128 px (hours on a CPU)
    python benchmarks/bench_quality.py --only steps --units 2 --seeds 1 --tiled-units 0  # a look
    python benchmarks/bench_quality.py --only transparency  # one section
    python benchmarks/bench_quality.py --only transparency --cases 3 1 --alpha-prior 0  # compare a constant
"""

from __future__ import annotations

import argparse
import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

import lucidwidget as lw  # noqa: E402
from lucidwidget import objectives, optimizers  # noqa: E402
from lucidwidget.widget import settings as widget_settings  # noqa: E402
from lucidwidget.widget.core import DEFAULT_DIVERSITY, LucidWidget  # noqa: E402

LAYER, CHANNEL = "block4_conv3", 42
"""The README's running example (the diversity section)."""

NOISE_BACKGROUNDS = 4
"""Uniform per-pixel noise images each transparent tile is composited over when it is scored."""

ALPHA_RANGE, MIN_KEPT, MIN_REGION = (0.15, 0.35), 0.5, 0.6
"""What transparency mode aims for: mean alpha in ALPHA_RANGE, at least MIN_KEPT of an opaque render's
activation kept over noise, and the largest opaque region at least MIN_REGION of the opaque area."""

OPAQUE_ALPHA = 0.5
"""A pixel is opaque, for the connected-region measure, where its alpha is above this."""

TRANSPARENCY_CASES = [
    dict(layer="block5_conv1", channel=100, tiles=4),
    dict(layer="block4_conv3", channel=42),
    dict(layer="block3_conv3", channel=40),
    dict(layer="block5_conv3", channel=300),
    dict(layer="block4_conv3", channel=200, seed=1),
    dict(layer="block4_conv3", channel=200, objective="neuron"),
    dict(layer="block5_conv1", channel=100),
    dict(layer="block4_conv3", channel=42, tiles=4, seed=1),
    dict(layer="block4_conv3", channel=0, objective="deepdream"),
    dict(layer="block5_conv1", channel=0, objective="random_direction", seed=2),
    dict(layer="block5_conv3", channel=7, objective="class_logit"),
    dict(layer="block4_conv3", channel=0, objective="expression", expression="block4_conv3:42 - 0.5*block5_conv1:7"),
]
"""Widget settings of the transparency cases: several layers, channels and seeds, 1 and 4 tiles, and
each objective kind (vgg16-hed has no dense layer, so its class logit is a channel's)."""


STEP_UNITS = [("block3_conv3", 40), ("block4_conv3", 42), ("block4_conv3", 200), ("block5_conv1", 7),
              ("block5_conv1", 100), ("block5_conv3", 300)]
STEP_SEEDS = (0, 1)
"""Units and seeds of the steps-to-image section (`--units`, `--seeds` and `--tiled-units` take the first
ones; with 4 tiles, the first seed only)."""

CHECKPOINTS = (16, 32, 48, 64, 96, 128, 192, 256)
REFERENCE_STEPS = 256
TARGET_STEP, TARGET_SHARE = 64, 0.9
"""Step counts at which activation is read; the widget's default step count, whose render is the
reference; the target: TARGET_SHARE of it by TARGET_STEP."""

PREVIOUS_BOOST, PREVIOUS_DECAY_STEPS, PREVIOUS_DECAY_POWER = 2.0, 64.0, 1.4
"""The widget's "fast" schedule before the warm-up (`optvis.schedules`), rendered for comparison."""

HALF_NYQUIST = 0.25
"""Cycles per pixel above which spectral energy counts as high-frequency (Nyquist is 0.5)."""

CHECKERBOARD_BAND = 0.4
CHECKERBOARD_SHARE = 0.5
"""A render is a Nyquist checkerboard when more than CHECKERBOARD_SHARE of its (mean-removed, grey)
spectral energy lies above CHECKERBOARD_BAND cycles per pixel."""

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


def widget_case(renderer, **overrides):
    """The widget's default settings with `overrides`, and its objective and `Renderer.render` arguments."""
    traits = LucidWidget.class_traits()
    settings = {name: traits[name].default_value for name in widget_settings.SETTING_NAMES}
    settings.update(overrides)
    objective, kwargs = widget_settings.render_arguments(settings, renderer.layers)
    return settings, objective, kwargs


def per_tile_mean(renderer, objective, images):
    return per_tile(renderer, objective, images).mean()


def largest_region_share(alpha):
    """The largest 4-connected region of opaque pixels (alpha > OPAQUE_ALPHA), as a share of all of them."""
    labels, count = ndimage.label(alpha > OPAQUE_ALPHA)
    return float(np.bincount(labels.ravel())[1:].max() / (labels > 0).sum()) if count else 0.0


def noise_composites(images, seed):
    """Each RGBA tile composited over NOISE_BACKGROUNDS images of uniform per-pixel noise."""
    rgb, alpha = images[..., :3], images[..., 3:]
    rng = np.random.default_rng(seed)
    return [(alpha[i] * rgb[i] + (1 - alpha[i]) * rng.uniform(size=(NOISE_BACKGROUNDS, *rgb.shape[1:])))
            .astype(np.float32) for i in range(len(images))]


def transparency_case(renderer, overrides, args):
    """Mean alpha, activation kept over noise (the mode's target, and the standard mode's over the whole
    tile), and the largest opaque region's share (mean, smallest tile) for one case of the widget's
    transparency mode."""
    settings, objective, kwargs = widget_case(renderer, mode="transparency", size=args.size, steps=args.steps,
                                              **overrides)
    images = renderer.render(objective, **kwargs)
    standard = dict(settings, mode="standard")
    whole_objective, opaque_kwargs = widget_settings.render_arguments(standard, renderer.layers)
    target, whole_target = (widget_settings.in_mode(widget_settings.target(s, renderer.layers), s)
                           for s in (settings, standard))
    centre_objective = target
    if settings["tiles"] > 1:
        centre_objective = target + float(settings["diversity"]) * widget_settings.in_mode(
            objectives.diversity(settings["layer"]), settings)
    centre_opaque = renderer.render(centre_objective, **opaque_kwargs)
    composites = noise_composites(images, args.seed)
    kept = (np.mean([per_tile_mean(renderer, target, c) for c in composites])
            / per_tile_mean(renderer, target, centre_opaque))
    whole = float("nan")
    if args.whole:
        whole_opaque = renderer.render(whole_objective, **opaque_kwargs)
        whole = (np.mean([per_tile_mean(renderer, whole_target, c) for c in composites])
                 / per_tile_mean(renderer, whole_target, whole_opaque))
    regions = [largest_region_share(alpha) for alpha in images[..., 3]]
    return images[..., 3].mean(), kept, whole, np.mean(regions), np.min(regions)


def transparency(renderer, args):
    cases = [TRANSPARENCY_CASES[i] for i in args.cases] if args.cases else TRANSPARENCY_CASES
    print(f"\n## Transparency: the widget's defaults, {args.size} px, {args.steps} steps, opacity 0.25; alpha "
          f"prior {widget_settings.ALPHA_PRIOR:g}, alpha penalty {widget_settings.ALPHA_PENALTY_WEIGHT:g}")
    print("Kept: the mode's target (read at the centre) on each tile composited over "
          f"{NOISE_BACKGROUNDS} uniform per-pixel noise images, as a share of it on an opaque render of equal "
          "steps (the same objective, seed and settings, no alpha); whole tile (with --whole): the standard "
          "mode's target (e.g. the channel mean) likewise against the standard mode's render. Region: the largest "
          f"4-connected region with alpha > {OPAQUE_ALPHA:g} as a share of that area (mean and smallest tile).")
    print(f"{'case':44s} alpha   kept  whole  region (min)")
    rows = []
    for overrides in cases:
        row = transparency_case(renderer, overrides, args)
        rows.append(row)
        print(f"{case_label(overrides):44s} {row[0]:.3f} {row[1]:6.0%} {percent(row[2]):>6s} {row[3]:6.2f} ({row[4]:.2f})",
              flush=True)
    mean = np.mean(rows, axis=0)
    print(f"{'mean':44s} {mean[0]:.3f} {mean[1]:6.0%} {percent(mean[2]):>6s} {mean[3]:6.2f} ({np.min(rows, axis=0)[4]:.2f})")
    low, high = ALPHA_RANGE
    met = [low <= alpha <= high and kept >= MIN_KEPT and smallest >= MIN_REGION for alpha, kept, _, _, smallest in rows]
    print(f"{sum(met)}/{len(rows)} cases meet mean alpha {low:g}-{high:g}, kept >= {MIN_KEPT:.0%} and every tile's "
          f"largest region >= {MIN_REGION:.0%}", flush=True)


def percent(value):
    return "-" if np.isnan(value) else f"{value:.0%}"


def case_label(overrides):
    kind = overrides.get("objective", "channel")
    what = overrides.get("expression") if kind == "expression" else (
        f"{overrides['layer']}" + ("" if kind in widget_settings.CHANNEL_FREE_KINDS else f":{overrides['channel']}"))
    extras = [f"{overrides['tiles']} tiles"] if overrides.get("tiles", 1) > 1 else []
    extras += [f"seed {overrides['seed']}"] if overrides.get("seed") else []
    return f"{kind} {what}" + (f" ({', '.join(extras)})" if extras else "")


def high_frequency(images):
    return band_share(images, HALF_NYQUIST)


def steps_to_image(renderer, args):
    """Activation against steps for the widget's defaults, as a share of the same render at REFERENCE_STEPS."""
    units, seeds = STEP_UNITS[:args.units], STEP_SEEDS[:args.seeds]
    marks = [m for m in CHECKPOINTS if m <= REFERENCE_STEPS]
    print(f"\n## Steps to image: the widget's defaults, {args.size} px; activation at each step count as a share "
          f"of the same render's at {REFERENCE_STEPS} steps (the widget's own {REFERENCE_STEPS}-step render, "
          "what its live tile ends on); the previous schedule's for comparison; and the widget's as a share of "
          f"Lucid's plain {REFERENCE_STEPS}-step render (constant Adam steps, 1/f spectrum)")
    previous = optimizers.Boosted(optimizers.get("adam"), PREVIOUS_BOOST, PREVIOUS_DECAY_STEPS)

    def spectrum(kwargs, decay_power):
        """The widget's parameterisation with another spectrum and Lucid's initial values."""
        return functools.partial(kwargs["param"].func, **{**kwargs["param"].keywords, "decay_power": decay_power,
                                                          "sd": None})

    compared = {"widget": lambda kwargs: {},
                "previous": lambda kwargs: {"schedule": None, "optimizer": previous,
                                            "param": spectrum(kwargs, PREVIOUS_DECAY_POWER)},
                "plain": lambda kwargs: {"schedule": None, "param": spectrum(kwargs, 1.0)}}
    runs = [(1, units, seeds)] + ([(4, STEP_UNITS[:args.tiled_units], seeds[:1])] if args.tiled_units else [])
    for tiles, unit_list, seed_list in runs:
        results = {name: [] for name in compared}
        for layer, channel in unit_list:
            for seed in seed_list:
                for name, overrides in compared.items():
                    settings, objective, kwargs = widget_case(renderer, layer=layer, channel=channel, tiles=tiles,
                                                              seed=seed, size=args.size, steps=REFERENCE_STEPS)
                    target = widget_settings.in_mode(widget_settings.target(settings, renderer.layers), settings)
                    images = renderer.render(objective, **{**kwargs, **overrides(kwargs), "thresholds": marks})
                    values = np.array([per_tile_mean(renderer, target, im) for im in images])
                    results[name].append((f"{layer}:{channel} s{seed}", values, high_frequency(images[-1]),
                                          tile_correlation(images[-1]) if tiles > 1 else float("nan")))
        print(f"\n{tiles} tile{'s' if tiles > 1 else ''}" + (" (diversity on)" if tiles > 1 else "")
              + ": share of the final activation per unit at each step count; final activation, high-frequency "
              "share" + (" and tile correlation" if tiles > 1 else "") + " (the previous schedule's)")
        print(f"{'unit':24s}" + "".join(f"{m:>6d}" for m in marks) + "   final (previous)   hf (previous)")
        for (label, values, high, corr), (_, old, old_high, old_corr) in zip(results["widget"], results["previous"]):
            print(f"{label:24s}" + "".join(f"{v / values[-1]:6.0%}" for v in values)
                  + f"   {values[-1]:6.1f} ({old[-1]:6.1f})   {high:.3f} ({old_high:.3f})"
                  + (f"   {corr:.3f} ({old_corr:.3f})" if tiles > 1 else ""))
        at = marks.index(TARGET_STEP)
        for name, rows in list(results.items())[:2]:
            values = np.array([v for _, v, *_ in rows])
            shares = values / values[:, -1:]
            print(f"{name:>9s} mean" + "".join(f"{v:6.0%}" for v in shares.mean(0))
                  + f"   final {values[:, -1].mean():.1f}, hf {np.mean([r[2] for r in rows]):.3f}; at step "
                  f"{TARGET_STEP}: {np.sum(shares[:, at] >= TARGET_SHARE)}/{len(rows)} units at >= {TARGET_SHARE:.0%}",
                  flush=True)
        ratio = np.array([(new[1][at] / old[1][at], new[1][-1] / old[1][-1])
                          for new, old in zip(results["widget"], results["previous"])])
        print(f"widget / previous, per unit: at step {TARGET_STEP} " + " ".join(f"{r:.2f}" for r in ratio[:, 0])
              + f" (mean {ratio[:, 0].mean():.2f}); at {REFERENCE_STEPS} " + " ".join(f"{r:.2f}" for r in ratio[:, 1])
              + f" (mean {ratio[:, 1].mean():.2f})", flush=True)
        shares = np.array([new[1] / plain[1][-1] for new, plain in zip(results["widget"], results["plain"])])
        print(f"widget's activation as a share of the plain {REFERENCE_STEPS}-step render's:")
        for (label, *_), row in zip(results["widget"], shares):
            print(f"{label:24s}" + "".join(f"{v:6.0%}" for v in row))
        print(f"{'mean':24s}" + "".join(f"{v:6.0%}" for v in shares.mean(0)) + f"   at step {TARGET_STEP}: "
              f"{np.sum(shares[:, at] >= TARGET_SHARE)}/{len(shares)} units at >= {TARGET_SHARE:.0%}", flush=True)


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
    parser.add_argument("--steps", type=int, default=256, help="steps of the diversity, transparency and early "
                        "renders (the steps section always runs to REFERENCE_STEPS)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 3.0, DEFAULT_DIVERSITY, 30.0])
    parser.add_argument("--whole", action="store_true", help="also score transparency by the standard mode's "
                        "target over the whole tile (one more opaque render per case)")
    parser.add_argument("--alpha-prior", type=float, help="the widget's ALPHA_PRIOR replaced, to compare")
    parser.add_argument("--alpha-penalty", type=float, help="the widget's ALPHA_PENALTY_WEIGHT replaced, to compare")
    parser.add_argument("--cases", type=int, nargs="+", help="indices of the transparency cases (default all)")
    parser.add_argument("--units", type=int, default=len(STEP_UNITS), help="units of the steps section (the first ones)")
    parser.add_argument("--seeds", type=int, default=len(STEP_SEEDS), help="seeds of the steps section, one tile")
    parser.add_argument("--tiled-units", type=int, default=2, help="units of the steps section also run with 4 tiles")
    parser.add_argument("--only", nargs="+", choices=("diversity", "transparency", "steps", "early"),
                        default=("transparency", "steps", "diversity", "early"))
    args = parser.parse_args()
    for name, value in (("ALPHA_PRIOR", args.alpha_prior), ("ALPHA_PENALTY_WEIGHT", args.alpha_penalty)):
        if value is not None:
            setattr(widget_settings, name, value)
    renderer = lw.Renderer("vgg16-hed")
    sections = {"diversity": diversity, "transparency": transparency, "steps": steps_to_image,
                "early": early_layers}
    for name in args.only:
        sections[name](renderer, args)


if __name__ == "__main__":
    main()
