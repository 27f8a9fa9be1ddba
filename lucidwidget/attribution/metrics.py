"""Deletion and Insertion (Petsiuk et al. 2018, RISE), as xplique defines them.

Pixels are ranked by the map, highest first (a map with channels is averaged over them). Deletion
starts from the image and sets the top `k` pixels (all their channels) to the baseline; Insertion
starts from the baseline and puts the top `k` pixels back; `k` takes `steps + 1` evenly spaced values
from 0 to every pixel. The curve is the target's score at each `k` and the area under it the mean of
the trapezoids on a unit interval. For a class index the score is the class's softmax probability
(the papers' "probability of the class"); otherwise the target's own score. A good map makes
Deletion's area small and Insertion's large. Areas are per image; their mean over a batch is
xplique's figure for that batch.
"""

from __future__ import annotations

import numpy as np

from lucidwidget import checks

DEFAULT_STEPS = 10
"""Points on each curve after the start, xplique's default."""


def curves(explainer, images, target, maps, mode, steps=DEFAULT_STEPS, baseline=0.0, batch_size=None):
    """Scores `(N, steps + 1)` along the Deletion (`mode="deletion"`) or Insertion curve.

    Args:
        images: prepared images `(N, H, W, C)` (the model's view); target: a resolved `Target`.
        maps: `(N, H, W)` or `(N, H, W, C)` attribution maps of those images.
        baseline: the value removed pixels take. Defaults to 0.0 (black).
    """
    mode = checks.choice(mode, "mode", ("deletion", "insertion"))
    steps = checks.whole(steps, "steps", 1)
    baseline = checks.real(baseline, "baseline")
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 4:
        maps = maps.mean(axis=-1)
    if maps.shape != images.shape[:3]:
        raise ValueError(
            f"Expected maps of shape {images.shape[:3]} (one per image, at the model's view of it). "
            f"Received: maps.shape={maps.shape}"
        )
    weighting = target.probability() or target
    pixels = images.shape[1] * images.shape[2]
    counts = np.linspace(0, pixels, steps + 1).astype(np.int64)
    result = []
    for i, (image, values) in enumerate(zip(images, maps)):
        order = np.argsort(values.reshape(-1), kind="stable")[::-1]
        start = image.reshape(pixels, -1)
        end = np.full_like(start, baseline)
        if mode == "insertion":
            start, end = end, start
        variants = np.repeat(start[None], steps + 1, axis=0)
        for row, count in enumerate(counts):
            variants[row, order[:count]] = end[order[:count]]
        variants = variants.reshape(steps + 1, *image.shape)
        result.append(explainer.scores(variants, weighting, np.full(steps + 1, i), batch_size=batch_size))
    return np.stack(result)


def area(curve):
    """Area under curves `(..., points)` sampled evenly on [0, 1]: the mean of the trapezoids."""
    curve = np.asarray(curve, np.float64)
    return ((curve[..., :-1] + curve[..., 1:]) / 2).mean(axis=-1)
