"""Colour: decorrelated colour space and the squash into valid RGB (Lucid's `color`).

Optimising in a decorrelated colour space (luminance-like first channel, two colour-opponent channels)
keeps gradient steps from being dominated by the strongly correlated R, G and B directions of natural
images, which gives more natural colours.
"""

from __future__ import annotations

import keras
import numpy as np

from lucidwidget.optvis.param.base import ImageParam

COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02],
     [0.27, 0.00, -0.05],
     [0.27, -0.09, 0.03]],
    dtype=np.float32,
)
"""A square root of ImageNet's RGB covariance, `U sqrt(S)` from its SVD (Lucid's values): it maps
independent unit-variance channels to colours with ImageNet's channel correlations."""

COLOR_CORRELATION_NORMALIZED = COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0))
"""`COLOR_CORRELATION_SVD_SQRT` divided by its largest column norm, so no decorrelated channel is
amplified: a unit step in any channel changes the RGB vector by at most 1."""

_COLOR_CORRELATION_INVERSE = np.linalg.inv(COLOR_CORRELATION_NORMALIZED.astype(np.float64)).astype(np.float32)

COLOR_MEAN = np.asarray([0.48, 0.46, 0.41], dtype=np.float32)
"""ImageNet's mean RGB colour; the clip (non-sigmoid) path centres decorrelated images on it."""

ASSIGN_EPSILON = 1e-4
"""`assign_image` clips target values to [eps, 1 - eps] before the inverse sigmoid, which is infinite at
0 and 1. The result reproduces the target within eps, and the logits (about +-9.2) stay where the
sigmoid's gradient has not vanished, so optimisation can still move those pixels."""


def decorrelated_to_rgb(t):
    """Maps the last axis (3 channels) from the decorrelated space to RGB; shifts by no mean."""
    return _mix_channels(t, COLOR_CORRELATION_NORMALIZED)


def rgb_to_decorrelated(rgb):
    """The exact inverse of `decorrelated_to_rgb`."""
    return _mix_channels(rgb, _COLOR_CORRELATION_INVERSE)


def _mix_channels(t, matrix):
    """`out[..., i] = sum_j matrix[i, j] * t[..., j]`, i.e. each pixel's colour vector times `matrix`."""
    return keras.ops.matmul(keras.ops.convert_to_tensor(t, dtype="float32"), matrix.T)


class ValidRGB(ImageParam):
    """Maps an unbounded parameterisation into [0, 1] colours (see `to_valid_rgb`)."""

    def __init__(self, raw, decorrelate=True, sigmoid=True, alpha=None):
        self.alpha = _has_alpha(raw.shape[-1], alpha)
        self.raw, self.decorrelate, self.sigmoid = raw, bool(decorrelate), bool(sigmoid)
        super().__init__(raw.shape, raw.variables)

    def __call__(self):
        return _to_valid_rgb(self.raw(), self.decorrelate, self.sigmoid, self.alpha)

    def _initialize(self, rng):
        self.raw._initialize(rng)

    def _initialize_items(self, rngs):
        self.raw._initialize_items(rngs)

    def _assign(self, images):
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"Expected images with values in [0, 1]. Received: images with values in [{low:.4g}, {high:.4g}]"
            )
        if self.sigmoid:
            images = np.clip(images, ASSIGN_EPSILON, 1.0 - ASSIGN_EPSILON)
            images = np.log(images) - np.log1p(-images)
        colours = images.shape[-1] - int(self.alpha)
        rgb, alpha = images[..., :colours], images[..., colours:]
        if self.decorrelate and colours == 3:
            rgb = keras.ops.convert_to_numpy(rgb_to_decorrelated(rgb - _mean_shift(self.sigmoid)))
        self.raw._assign(np.concatenate([rgb, alpha], -1))

    def __repr__(self):
        return f"to_valid_rgb({self.raw!r}, decorrelate={self.decorrelate}, sigmoid={self.sigmoid}, alpha={self.alpha})"


def to_valid_rgb(param, decorrelate=True, sigmoid=True, alpha=None):
    """Turns unbounded values into colours in [0, 1] (Lucid's `to_valid_rgb`).

    RGB goes through `decorrelated_to_rgb` (when `decorrelate`) and then a sigmoid, or a clip to
    [0, 1] whose gradient still flows wherever it would move a value back inside (the clip path also
    centres decorrelated colours on `COLOR_MEAN`). A fourth (alpha) channel is squashed the same way
    but never mixed with the colours. Other channel counts (a grey model's 1, or any other) are
    independent channels: squashed alike, never decorrelated.

    Args:
        param: an `ImageParam`, or a tensor, with any number of channels.
        decorrelate: treat 3 colour channels as decorrelated colour space (other counts have none).
            Defaults to True.
        sigmoid: squash with a sigmoid; False clips instead. Defaults to True.
        alpha: whether the last channel is an alpha channel. Defaults to None (only a 4th channel).

    Returns:
        An `ImageParam` (invertible by `assign_image` whenever `param` is) for an `ImageParam`, else
        the converted tensor.
    """
    if isinstance(param, ImageParam):
        return ValidRGB(param, decorrelate=decorrelate, sigmoid=sigmoid, alpha=alpha)
    t = keras.ops.convert_to_tensor(param, dtype="float32")
    return _to_valid_rgb(t, decorrelate, sigmoid, _has_alpha(t.shape[-1], alpha))


def _to_valid_rgb(t, decorrelate, sigmoid, alpha):
    colours = t.shape[-1] - int(alpha)
    rgb, alpha = t[..., :colours], t[..., colours:]
    if decorrelate and colours == 3:
        rgb = keras.ops.add(decorrelated_to_rgb(rgb), _mean_shift(sigmoid))
    squash = keras.ops.sigmoid if sigmoid else _clip_unit
    return keras.ops.concatenate([squash(rgb), squash(alpha)], -1)


def _mean_shift(sigmoid):
    """The colour offset added after decorrelation: ImageNet's mean on the clip path, none with sigmoid
    (the sigmoid already centres zero on grey)."""
    return 0.0 if sigmoid else COLOR_MEAN


@keras.ops.custom_gradient
def _clip_unit(x):
    """Clips to [0, 1]; the gradient passes where the value is inside, or where a descent step (against
    the gradient) would move it back inside, so clipped pixels are not stuck for good."""

    def grad(*args, upstream=None):
        if upstream is None:  # TensorFlow and JAX pass it positionally, PyTorch by keyword
            (upstream,) = args
        inside = (x >= 0.0) & (x <= 1.0)
        returning = ((x < 0.0) & (upstream < 0.0)) | ((x > 1.0) & (upstream > 0.0))
        return keras.ops.where(inside | returning, upstream, keras.ops.zeros_like(upstream))

    return keras.ops.clip(x, 0.0, 1.0), grad


def _has_alpha(channels, alpha):
    """Whether the last of `channels` is alpha: as given, else only a 4th (RGBA) channel."""
    if alpha is None:
        return channels == 4
    if alpha and channels < 2:
        raise ValueError(f"Expected a colour channel besides the alpha channel. Received: channels={channels}")
    return bool(alpha)
