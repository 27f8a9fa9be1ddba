"""How strongly renders excite small trained models, under three transform settings, in one run (by hand).

The models are the tests' small trained classifiers (`tests/trained_models.py`: a 28-px grey one and a 32-px
RGB one, each with a fixed input size). Each target is rendered with
- "fraction, cropped": the defaults (distances as fractions of the side; padding cropped away);
- "pixels, cropped": Lucid's absolute distances (12 px pad, 8 and 4 px jitter), padding cropped away;
- "pixels, resized": the same, with the padded canvas resized into the input (what fixed-size models
  got before the engine cropped it),
and scored by `z_score` (noise standard deviations above uniform noise), the mean over `--seeds`.

    python benchmarks/bench_small_models.py --steps 128 --seeds 3
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
import keras  # noqa: E402

import trained_models as tm  # noqa: E402
from lucidwidget.optvis import transform  # noqa: E402
from lucidwidget.optvis.render import Renderer  # noqa: E402

LUCID_PIXELS = {"jitter": 8, "pad": 12}
"""Lucid's standard transform distances in pixels (tuned for its 128-px default)."""


def resized_into(side):
    """A last transform that resizes the padded canvas to the input, as fixed-size models used to see it."""
    return transform.Transform(lambda images, rng: keras.ops.image.resize(images, (side, side)), key=("resize", side))


def settings(side):
    absolute = transform.preset(**LUCID_PIXELS)[:5]
    return {
        "fraction, cropped": transform.standard_transforms,
        "pixels, cropped": absolute,
        "pixels, resized": absolute + [resized_into(side)],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    grey = tm.grey_classifier()
    tm.train(grey, *tm.stripes(tm.TRAIN_EXAMPLES, 28, 1))
    rgb = tm.rgb_classifier()
    tm.train(rgb, *tm.stripes(tm.TRAIN_EXAMPLES, 32, 3), preprocess=lambda x: 2 * x - 1)
    cases = [("grey28", Renderer(grey), ["conv2:3", "logits:1"]),
             ("rgb32", Renderer(rgb, preprocess="[-1, 1]"), ["conv2:1", "logits:2"])]
    print(f"z (noise standard deviations above {tm.NOISE_IMAGES} uniform-noise images), mean of {args.seeds} "
          f"seeds, {args.steps} steps")
    for name, renderer, targets in cases:
        side = renderer.input_size[0]
        for target in targets:
            scores = {}
            for label, transforms in settings(side).items():
                renders = [renderer.render(target, steps=args.steps, seed=seed, transforms=transforms)
                           for seed in range(args.seeds)]
                scores[label] = np.mean([tm.z_score(renderer, target, images) for images in renders])
            row = ", ".join(f"{label}: {z:.1f}" for label, z in scores.items())
            print(f"{name} {target}: {row}")


if __name__ == "__main__":
    main()
