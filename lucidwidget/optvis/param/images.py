"""High-level image parameterisations: the renderer's default and Lucid's aligned interpolation."""

from __future__ import annotations

import keras
import numpy as np

from lucidwidget import checks
from lucidwidget.optvis.param.base import ImageParam
from lucidwidget.optvis.param.color import to_valid_rgb
from lucidwidget.optvis.param.lowres import lowres_tensor
from lucidwidget.optvis.param.spatial import fft_image, pixel_image


def image(w, h=None, *, batch=1, channels=3, sd=None, decorrelate=True, fft=True, alpha=False, decay_power=1.0,
          seed=None, alpha_prior=0.0):
    """A batch of RGB (or RGBA, grey, any channel count) images in [0, 1] to optimise (Lucid's `param.image`).

    The renderer calls it as `image(w=..., h=..., batch=..., seed=...)`; pass other options with
    `functools.partial(param.image, fft=False)`.

    Args:
        w: width in pixels.
        h: height in pixels. Defaults to `w`.
        batch: number of images. Defaults to 1.
        channels: colour channels: 3 for RGB, 1 for a grey model, or any other count (optimised as
            independent channels). The renderer passes the model's. Defaults to 3.
        sd: standard deviation of the initial values. Defaults to 0.01.
        decorrelate: optimise RGB colours in decorrelated colour space (other channel counts have
            none). Defaults to True.
        fft: parameterise by 1/f-scaled Fourier coefficients; False uses plain pixels. Defaults to True.
        alpha: add a fourth, alpha channel (for `transform.collapse_alpha_random`). Defaults to False.
        decay_power: spectrum decay of the FFT parameterisation (ignored without `fft`). Defaults to 1.0.
        seed: integer seed of the initial values. Defaults to None (fresh random).
        alpha_prior: a prior for one object in the middle: the alpha channel's logits are offset by
            `-alpha_prior * r**2`, `r` the distance from the centre (1 at the corners), so opacity starts
            there and costs more towards the borders. Needs `alpha`. Defaults to 0 (none).

    Returns:
        An `ImageParam` of shape `(batch, h, w, channels)`, or `(batch, h, w, channels + 1)` with `alpha`.
    """
    shape = _shape(w, h, batch, channels, alpha)
    alpha_prior = checks.real(alpha_prior, "alpha_prior", 0)
    if alpha_prior and not alpha:
        raise ValueError(f"`alpha_prior` shapes the alpha channel; pass alpha=True with it. Received: alpha={alpha!r}")
    raw = fft_image(shape, sd=sd, decay_power=decay_power, seed=seed) if fft else pixel_image(shape, sd=sd, seed=seed)
    if alpha_prior:
        raw = _CentredAlpha(raw, alpha_prior)
    return to_valid_rgb(raw, decorrelate=decorrelate, sigmoid=True, alpha=alpha)


class _CentredAlpha(ImageParam):
    """Another parameterisation with `-strength * r**2` added to its last (alpha) channel, `r` the
    distance from the image centre (1 at the corners); see `image(alpha_prior=...)`."""

    def __init__(self, raw, strength):
        self.raw, self.strength = raw, strength
        _, height, width, channels = raw.shape
        rows = (np.arange(height) + 0.5) / height - 0.5
        columns = (np.arange(width) + 0.5) / width - 0.5
        squared = (rows[:, None] ** 2 + columns[None, :] ** 2) / 0.5      # 1 at the corners (+-0.5, +-0.5)
        offset = np.zeros((1, height, width, channels), np.float32)
        offset[..., -1] = -strength * squared
        self._offset = offset
        super().__init__(raw.shape, raw.variables)

    def __call__(self):
        return keras.ops.add(self.raw(), self._offset)

    def _initialize(self, rng):
        self.raw._initialize(rng)

    def _initialize_items(self, rngs):
        self.raw._initialize_items(rngs)

    def _assign(self, images):
        self.raw._assign(images - self._offset)

    def __repr__(self):
        return f"CentredAlpha({self.raw!r}, strength={self.strength:g})"


def aligned_image(w, h=None, *, batch=1, channels=3, shared=(2, 4, 8, 16), sd=None, decorrelate=True, fft=True,
                  alpha=False, decay_power=1.0, seed=None):
    """Images that share low-resolution structure across the batch (Lucid's aligned interpolation).

    Each image is its own `image`-style term plus one low-resolution term per factor in `shared`, each a
    single `(h // factor, w // factor)` image upsampled and added to every batch item. Optimising, say,
    an interpolation between two objectives over the batch then keeps landmarks in the same place from
    frame to frame. `assign_image` puts the images into the per-image term and zeroes the shared ones.

    Args:
        w: width in pixels.
        h: height in pixels. Defaults to `w`.
        batch: number of images. Defaults to 1.
        shared: downsampling factors (integers >= 1) of the shared terms; a factor beyond the image
            size gives a single shared colour. Defaults to (2, 4, 8, 16).
        channels, sd, decorrelate, fft, alpha, decay_power: as in `image`.
        seed: integer seed of all initial values. Defaults to None (fresh random).

    Returns:
        An `ImageParam` of shape `(batch, h, w, channels)`, or `(batch, h, w, channels + 1)` with `alpha`.
    """
    shape = _shape(w, h, batch, channels, alpha)
    _, height, width, channels = shape
    factors = [checks.whole(factor, "shared factor", 1) for factor in shared]
    unique = fft_image(shape, sd=sd, decay_power=decay_power) if fft else pixel_image(shape, sd=sd)
    terms = [lowres_tensor(shape, (1, max(1, height // f), max(1, width // f), channels), sd=sd) for f in factors]
    param = to_valid_rgb(sum(terms, unique), decorrelate=decorrelate, sigmoid=True, alpha=alpha)
    param.reset(seed)
    return param


def _shape(w, h, batch, channels, alpha):
    w = checks.whole(w, "w", 1)
    h = w if h is None else checks.whole(h, "h", 1)
    return (checks.whole(batch, "batch", 1), h, w, checks.whole(channels, "channels", 1) + (1 if alpha else 0))
