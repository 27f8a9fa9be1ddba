"""Penalties that keep a visualisation natural-looking: subtract them from an objective.

Each returns a POSITIVE amount to reduce, summed over the pixels (or units) of one image as Lucid does,
then averaged over the batch:

```python
obj = channel("block4_conv3", 42) - 1e-3 * total_variation() - 1e-4 * L1(constant=0.5)
```

They read `T("input")` (the transformed image the model sees) by default, or any layer by name.
Import them from `lucidwidget.optvis.objectives`.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from lucidwidget import checks
from lucidwidget.optvis.objectives.base import (
    activation,
    check_layer_name,
    item_axes,
    layer_shape,
    leaf,
    require_grid,
)

L2_EPSILON = 1e-6
"""Lucid's default inside the square root of `L2`: keeps its gradient finite at a zero image."""

BLUR_KERNEL = np.array([[0.5, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 0.5]], np.float32)
"""Lucid's 3x3 blur for `blur_input_each_step`: the centre pixel counts double its eight neighbours."""

ALPHA_TARGET = 0.25
"""Lucid's transparency notebook asks for a quarter of the image to be opaque on average."""


def _spatial_check(layer, kind):
    def check(shapes, batch):
        require_grid(layer_shape(shapes, layer), layer, kind)

    return check


def total_variation(layer="input", batch=None):
    """Total variation: the sum of absolute differences between neighbouring pixels, a penalty.

    Subtracting it smooths away high-frequency noise.

    Args:
        layer: layer name, or `"input"` for the image the model sees. Defaults to `"input"`.
        batch: index of the batch item to penalise. Defaults to `None` (all items).
    """
    layer = check_layer_name(layer)

    def compute(T):
        x = activation(T, layer)
        rows = ops.sum(ops.abs(x[:, 1:] - x[:, :-1]))
        columns = ops.sum(ops.abs(x[:, :, 1:] - x[:, :, :-1]))
        return (rows + columns) / x.shape[0]

    return leaf("total_variation", [layer], compute, batch=batch, description=f"total_variation {layer}",
                checks=[_spatial_check(layer, "total_variation")])


def Lp(layer="input", p=2, constant=0, epsilon=L2_EPSILON, batch=None):
    """The Lp norm of a layer's difference from `constant`: `(epsilon + sum |x - c| ** p) ** (1 / p)`.

    A penalty: subtracting it keeps values near `constant` (keras-vis's LPNorm; `L1`, `L2` are cases).

    Args:
        layer: layer name, or `"input"`. Defaults to `"input"`.
        p: the norm's order, > 0. Defaults to 2.
        constant: the value the layer is pulled towards, e.g. 0.5 for mid-grey. Defaults to 0.
        epsilon: added before the root so the gradient stays finite at `x = constant`. Defaults to 1e-6.
        batch: index of the batch item to penalise. Defaults to `None` (all items).
    """
    return _norm(layer, p, constant, epsilon, batch, "Lp")


def L1(layer="input", constant=0, batch=None):
    """The L1 norm `sum |x - constant|` of a layer, a penalty (Lucid's `L1`).

    Args:
        layer: layer name, or `"input"`. Defaults to `"input"`.
        constant: the value the layer is pulled towards. Defaults to 0.
        batch: index of the batch item to penalise. Defaults to `None` (all items).
    """
    return _norm(layer, 1, constant, 0.0, batch, "L1")


def L2(layer="input", constant=0, epsilon=L2_EPSILON, batch=None):
    """The L2 norm `sqrt(epsilon + sum (x - constant) ** 2)` of a layer, a penalty (Lucid's `L2`).

    Args:
        layer: layer name, or `"input"`. Defaults to `"input"`.
        constant: the value the layer is pulled towards. Defaults to 0.
        epsilon: keeps the gradient finite at `x = constant`. Defaults to 1e-6.
        batch: index of the batch item to penalise. Defaults to `None` (all items).
    """
    return _norm(layer, 2, constant, epsilon, batch, "L2")


def _norm(layer, p, constant, epsilon, batch, name):
    """`Lp`, `L1` and `L2` share one computation; order, constant and epsilon are knobs."""
    layer = check_layer_name(layer)
    p = checks.real(p, "p", 0, exclusive=True)
    constant = checks.real(constant, "constant")
    epsilon = checks.real(epsilon, "epsilon", 0)
    description = f"{name} {layer}" if name != "Lp" else f"Lp {layer} (p={p:g})"

    def compute(T, p, constant, epsilon):
        x = activation(T, layer)
        powers = ops.power(ops.abs(x - constant), p)
        per_item = ops.sum(powers, axis=item_axes(powers))
        return ops.mean(ops.power(epsilon + per_item, 1.0 / p))

    return leaf("lp", [layer], compute, [p, constant, epsilon], batch=batch, description=description)


def _blur(images):
    """Lucid's normalised 3x3 blur: each pixel becomes the kernel-weighted mean of its neighbourhood,
    with edge pixels averaged over the neighbours that exist."""
    kernel = np.tile(BLUR_KERNEL[:, :, None, None], (1, 1, images.shape[-1], 1))

    def convolve(x):
        return ops.depthwise_conv(x, kernel, strides=1, padding="same", data_format="channels_last")

    return convolve(images) / convolve(ops.ones_like(images))


def blur_input_each_step(batch=None):
    """`0.5 * sum (input - blur(input)) ** 2` with the blur held constant, a penalty.

    Subtracting `k * blur_input_each_step()` moves the input a step towards its own blur, like the
    blurring early feature visualisation applied between steps (Lucid's objective of this name).

    Args:
        batch: index of the batch item to penalise. Defaults to `None` (all items).
    """

    def compute(T):
        images = activation(T, "input")
        squares = ops.square(images - ops.stop_gradient(_blur(images)))
        return 0.5 * ops.sum(squares) / images.shape[0]

    return leaf("blur_input_each_step", ["input"], compute, batch=batch, description="blur_input_each_step")


def alpha_penalty(target=ALPHA_TARGET, batch=None):
    """`(mean alpha - target) ** 2` of the parameterised RGBA image, a penalty (Lucid's transparency
    notebook): subtracting it keeps the visualisation about `target` opaque. Needs an alpha
    parameterisation, e.g. `param.image(w, alpha=True)`.

    Args:
        target: wanted mean opacity in [0, 1]. Defaults to 0.25.
        batch: index of the batch item to penalise. Defaults to `None` (all items).
    """
    target = checks.real(target, "target", 0)
    if target > 1:
        raise ValueError(f"Expected a target opacity in [0, 1]. Received: target={target}")

    def compute(T, target):
        image = activation(T, "image")
        if image.shape[-1] != 4:
            raise ValueError(
                "alpha_penalty needs an RGBA image: render with an alpha parameterisation, e.g. "
                f"`param.image(w, alpha=True)`. Received: image channels={image.shape[-1]}"
            )
        return ops.square(ops.mean(image[..., 3]) - target)

    return leaf("alpha_penalty", ["image"], compute, [target], batch=batch,
                description=f"alpha_penalty (target={target:g})")
