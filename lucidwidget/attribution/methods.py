"""Attribution maps: gradient, SmoothGrad, Integrated Gradients, Grad-CAM, Grad-CAM++ (Score-CAM in
`scorecam`), on an `Explainer`'s compiled passes.

Maps are raw float32 values, never rescaled (`normalize` rescales for display). The gradient family
returns magnitudes, the maximum over the image's channels of the absolute value (tf-keras-vis's
convention), or with `signed=True` the signed value of every channel `(N, H, W, C)`. CAMs are ReLU'd
weighted sums of a layer's feature maps, upsampled (bilinear) to the images.
"""

from __future__ import annotations

import numpy as np

from lucidwidget import checks
from lucidwidget.attribution import scorecam
from lucidwidget.attribution.images import resize_maps

DEFAULT_SAMPLES = 50
"""SmoothGrad's noisy copies per image: Smilkov et al. (2017) saw diminishing returns past about 50;
also xplique's default."""

DEFAULT_NOISE = 0.2
"""SmoothGrad's noise standard deviation as a fraction of each image's value range (max - min): the
paper's 10-20% band, tf-keras-vis's default."""

DEFAULT_STEPS = 50
"""Integrated Gradients' path points (xplique's default; Sundararajan et al. suggest 20-300). With the
midpoint rule, completeness (the map sums to f(x) - f(baseline)) held within 1% at 32 steps on the 24
test scenes of `tests/test_attribution_scenes.py`, black and grey baselines, on every backend."""

OPTIONS = {
    "gradient": ("signed", "batch_size"),
    "smoothgrad": ("signed", "samples", "noise", "seed", "batch_size"),
    "integrated_gradients": ("signed", "steps", "baseline", "batch_size"),
    "gradcam": ("layer", "batch_size"),
    "gradcam++": ("layer", "batch_size"),
    "scorecam": ("layer", "top_n", "batch_size"),
}
"""Each method's options (keyword arguments of `attribute`)."""

METHODS = tuple(OPTIONS)
"""The methods `attribute` accepts."""


def attribute(explainer, images, target, method, size=None, **options):
    """See `lucidwidget.attribution.attribute`."""
    method = checks.choice(method, "method", METHODS)
    unknown = sorted(set(options) - set(OPTIONS[method]))
    if unknown:
        raise TypeError(
            f"Method {method!r} takes the options {', '.join(OPTIONS[method])}. "
            f"Received: {unknown[0]}={options[unknown[0]]!r}"
        )
    batch = explainer.prepare(images, size)
    resolved = explainer.target(target, len(batch.images), batch.size)
    return batch.restore(_IMPLEMENTATIONS[method](explainer, batch.images, resolved, **options))


def normalize(maps):
    """Each map rescaled to [0, 1] by its own minimum and maximum, for display (a constant map gives
    zeros). Works on `(N, H, W)` and `(N, H, W, C)` maps alike."""
    maps = np.asarray(maps, np.float32)
    axes = tuple(range(1, maps.ndim))
    low, high = maps.min(axis=axes, keepdims=True), maps.max(axis=axes, keepdims=True)
    span = high - low
    return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0).astype(np.float32)


def _reduce(values, signed):
    """Signed per-channel values, or their magnitude: the maximum over channels of the absolute value."""
    values = np.asarray(values, np.float32)
    return values if signed else np.abs(values).max(axis=-1)


def gradient(explainer, images, target, signed=False, batch_size=None):
    """The gradient of each image's score with respect to its pixels (Simonyan et al. 2014)."""
    _, grads = explainer.gradients(images, target, batch_size=batch_size)
    return _reduce(grads, signed)


def smoothgrad(explainer, images, target, signed=False, samples=DEFAULT_SAMPLES, noise=DEFAULT_NOISE, seed=0,
               batch_size=None):
    """SmoothGrad (Smilkov et al. 2017): gradients averaged over `samples` copies of each image with
    Gaussian noise of standard deviation `noise` times the image's value range, drawn from `seed`. The
    magnitude map averages absolute gradients (tf-keras-vis), the signed map the gradients."""
    samples = checks.whole(samples, "samples", 1)
    noise = checks.real(noise, "noise", 0)
    rng = np.random.default_rng(checks.whole(seed, "seed", 0))
    maps = []
    for i, image in enumerate(images):
        sigma = noise * float(image.max() - image.min())
        noisy = image[None] + rng.normal(0.0, sigma, (samples, *image.shape)).astype(np.float32)
        _, grads = explainer.gradients(noisy, target, np.full(samples, i), batch_size=batch_size)
        maps.append(grads.mean(axis=0) if signed else np.abs(grads).mean(axis=0))
    return _reduce(np.stack(maps), signed)


def path_points(steps):
    """Positions along a straight path for the midpoint rule: `(k + 0.5) / steps`, k = 0 .. steps - 1."""
    return ((np.arange(steps) + 0.5) / steps).astype(np.float32)


def _baselines(baseline, images):
    array = np.asarray(baseline, np.float32)
    if array.ndim == 0:
        return np.full_like(images, float(array))
    if array.shape in (images.shape[1:], images.shape):
        return np.broadcast_to(array, images.shape).astype(np.float32)
    raise ValueError(
        f"Expected a baseline number, one image of shape {images.shape[1:]} or one per image "
        f"{images.shape}. Received: baseline.shape={array.shape}"
    )


def integrated_gradients(explainer, images, target, signed=False, steps=DEFAULT_STEPS, baseline=0.0,
                         batch_size=None):
    """Integrated Gradients (Sundararajan et al. 2017): `(x - baseline)` times the mean gradient at
    `steps` points of the straight path from the baseline (black by default) to `x` (midpoint rule).
    The signed map sums to about `f(x) - f(baseline)` (completeness)."""
    steps = checks.whole(steps, "steps", 1)
    baselines = _baselines(baseline, images)
    alphas = path_points(steps)[:, None, None, None]
    maps = []
    for i, (image, base) in enumerate(zip(images, baselines)):
        path = base + alphas * (image - base)
        _, grads = explainer.gradients(path, target, np.full(steps, i), batch_size=batch_size)
        maps.append((image - base) * grads.mean(axis=0))
    return _reduce(np.stack(maps), signed)


def gradcam(explainer, images, target, layer=None, batch_size=None):
    """Grad-CAM (Selvaraju et al. 2017): `ReLU(sum_k alpha_k A_k)`, `alpha_k` the mean over positions
    of the gradient with respect to feature map `A_k` of the CAM layer."""
    size = images.shape[1:3]
    layer = explainer.cam_layer(target, size, layer)
    _, acts, grads = explainer.gradients(images, target, layer=layer, batch_size=batch_size)
    weights = grads.mean(axis=(1, 2), keepdims=True)
    return resize_maps(np.maximum((weights * acts).sum(axis=-1), 0.0), size)


def gradcam_plus_plus(explainer, images, target, layer=None, batch_size=None):
    """Grad-CAM++ (Chattopadhay et al. 2018) in its closed form: per-position weights
    `a = g^2 / (2 g^2 + sum_positions(A) g^3)` (0 where that is 0/0), channel weights
    `w_k = sum_positions(a ReLU(g))`, map `ReLU(sum_k w_k A_k)`. The paper differentiates exp(score);
    that multiplies each image's map by exp(score) alone, so it is left out (it overflows float32 for
    scores above 88) and the maps keep their shapes."""
    size = images.shape[1:3]
    layer = explainer.cam_layer(target, size, layer)
    _, acts, grads = explainer.gradients(images, target, layer=layer, batch_size=batch_size)
    squared = grads ** 2
    denominator = 2.0 * squared + acts.sum(axis=(1, 2), keepdims=True) * squared * grads
    alphas = np.where(denominator != 0, squared / np.where(denominator != 0, denominator, 1.0), 0.0)
    weights = (alphas * np.maximum(grads, 0.0)).sum(axis=(1, 2), keepdims=True)
    return resize_maps(np.maximum((weights * acts).sum(axis=-1), 0.0), size)


_IMPLEMENTATIONS = {
    "gradient": gradient,
    "smoothgrad": smoothgrad,
    "integrated_gradients": integrated_gradients,
    "gradcam": gradcam,
    "gradcam++": gradcam_plus_plus,
    "scorecam": scorecam.scorecam,
}
