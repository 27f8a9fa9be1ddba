"""Attribution maps as pictures: a colour map with transparency, and the map laid over its image.

Plain NumPy (no Keras), so the widget, the command line and notebooks draw maps the same way. A map is
a float array `(height, width)` of any scale (an attribution method's raw output); `display_scale`
brings it to [0, 1], `colorize` turns it into RGBA, and `overlay` composites that over the image.

    rgba = heatmap.colorize(maps[0])                       # (H, W, 4) in [0, 1], low values clear
    picture = heatmap.overlay(image, maps[0], opacity=0.6) # (H, W, 3): the map over the image
"""

from __future__ import annotations

import numpy as np

from lucidwidget import checks, imaging

COLORMAP = np.array([
    (0.00, 0, 0, 4),
    (0.25, 87, 16, 110),
    (0.50, 188, 55, 84),
    (0.75, 249, 142, 9),
    (1.00, 252, 255, 164),
], np.float32)
"""Matplotlib's "inferno" sampled at five points (position, R, G, B in 0..255) and interpolated linearly:
dark purple through red to pale yellow, brighter as the value grows and readable in grey."""

DISPLAY_PERCENTILE = 99.5
"""`display_scale` maps this percentile of a map to 1 (and clips above it). A gradient map's largest
values are a few isolated pixels; scaled by its maximum, the rest of the map is nearly invisible. The
top 0.5% saturating keeps CAMs (smooth, with broad maxima) looking as they would scaled by the maximum."""

OPAQUE_FROM = 0.5
"""`colorize`'s alpha grows linearly from 0 (a value of 0) to 1 at this value and stays 1 above it, so
the parts of the image the map does not point at show through."""

DEFAULT_OPACITY = 0.6
"""How much of the colour covers the image where the map is strongest, in `overlay` and the widget."""


def display_scale(values) -> np.ndarray:
    """A map scaled to [0, 1] for display: negative values to 0, `DISPLAY_PERCENTILE` of the positive
    values to 1 (clipped above). An all-zero map stays zero.

    Args:
        values: array `(height, width)` (or any shape), e.g. one map from `lucidwidget.attribute`.
    """
    values = np.maximum(np.asarray(values, np.float32), 0.0)
    positive = values[values > 0]
    if positive.size == 0:
        return np.zeros_like(values)
    top = float(np.percentile(positive, DISPLAY_PERCENTILE))
    return np.clip(values / top, 0.0, 1.0).astype(np.float32) if top > 0 else np.zeros_like(values)


def colorize(values, scaled=False) -> np.ndarray:
    """A map as float32 RGBA `(..., 4)` in [0, 1]: `COLORMAP` colours, alpha rising to 1 at `OPAQUE_FROM`.

    Args:
        values: a map `(height, width)`.
        scaled: `values` are already in [0, 1] (see `display_scale`). Defaults to False: scale them.
    """
    values = np.clip(np.asarray(values, np.float32), 0.0, 1.0) if scaled else display_scale(values)
    rgb = np.stack([np.interp(values, COLORMAP[:, 0], COLORMAP[:, channel]) for channel in (1, 2, 3)], axis=-1)
    alpha = np.clip(values / OPAQUE_FROM, 0.0, 1.0)[..., None]
    return np.concatenate([rgb / imaging.UINT8_MAX, alpha], axis=-1).astype(np.float32)


def overlay(image, values, opacity=DEFAULT_OPACITY) -> np.ndarray:
    """The map drawn over the image: float32 RGB `(height, width, 3)` in [0, 1].

    Args:
        image: `(height, width, 1 or 3)` in [0, 1] (or uint8); a grey image is shown grey.
        values: a map of the image's height and width, any scale (see `display_scale`).
        opacity: how much of the colour covers the image where the map is strongest, in [0, 1].
            Defaults to `DEFAULT_OPACITY` (0.6).
    """
    image = imaging.to_float(imaging.as_batch(image))[0]
    opacity = checks.real(opacity, "opacity", 0)
    if opacity > 1:
        raise ValueError(f"Expected an opacity in [0, 1]. Received: opacity={opacity}")
    values = np.asarray(values)
    if values.shape != image.shape[:2]:
        raise ValueError(
            f"Expected a map of the image's size {image.shape[:2]}. Received: map shape={values.shape}"
        )
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    rgba = colorize(values)
    alpha = rgba[..., 3:] * opacity
    return (image[..., :3] * (1.0 - alpha) + rgba[..., :3] * alpha).astype(np.float32)
