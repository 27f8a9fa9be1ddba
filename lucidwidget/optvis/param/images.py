"""High-level image parameterisations: the renderer's default and Lucid's aligned interpolation."""

from __future__ import annotations

from lucidwidget import checks
from lucidwidget.optvis.param.color import to_valid_rgb
from lucidwidget.optvis.param.lowres import lowres_tensor
from lucidwidget.optvis.param.spatial import fft_image, pixel_image


def image(w, h=None, *, batch=1, channels=3, sd=None, decorrelate=True, fft=True, alpha=False, decay_power=1.0,
          seed=None):
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

    Returns:
        An `ImageParam` of shape `(batch, h, w, channels)`, or `(batch, h, w, channels + 1)` with `alpha`.
    """
    shape = _shape(w, h, batch, channels, alpha)
    raw = fft_image(shape, sd=sd, decay_power=decay_power, seed=seed) if fft else pixel_image(shape, sd=sd, seed=seed)
    return to_valid_rgb(raw, decorrelate=decorrelate, sigmoid=True, alpha=alpha)


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
