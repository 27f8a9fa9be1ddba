"""Parameterisation through a deep generator network: optimise latent codes, not pixels.

A generator trained to produce natural images acts as a strong image prior (Nguyen et al. 2016, the
"deep generator network" of cnnpref): only images it can produce are reachable.
"""

from __future__ import annotations

import keras
import numpy as np

from lucidwidget import checks
from lucidwidget.optvis.param.base import ImageParam, draw_items, normal, variable


class GeneratorParam(ImageParam):
    """Images `generator(latent)` rescaled to [0, 1]; the only variable is the latent batch.

    The generator's own weights are never part of `variables`, so an optimizer leaves them alone.
    """

    def __init__(self, model, batch=1, latent_shape=None, seed=None, sd=1.0, output_range=(-1, 1)):
        if not callable(model):
            raise TypeError(f"Expected a Keras model mapping latent codes to images. Received: model={model!r}")
        batch = checks.whole(batch, "batch", 1)
        self.model = model
        self.latent_shape = _latent_shape(model, latent_shape)
        self._sd = checks.real(sd, "sd", 0, exclusive=True)
        self._low, self._span = _output_range(output_range)
        self._latent = variable((batch,) + self.latent_shape, "latent")
        shape = _output_shape(model, self._latent)
        if shape[0] != batch:
            raise ValueError(f"Expected the generator to keep the batch size {batch}. Received: output shape={shape}")
        super().__init__(shape, [self._latent])
        self.reset(seed)

    def __call__(self):
        images = keras.ops.cast(self.model(keras.ops.convert_to_tensor(self._latent), training=False), "float32")
        return keras.ops.clip((images - self._low) / self._span, 0.0, 1.0)

    def _draw(self, rng, batch):
        return normal(rng, (batch, *self.latent_shape), self._sd)

    def _initialize(self, rng):
        self._latent.assign(self._draw(rng, self._latent.shape[0]))

    def _initialize_items(self, rngs):
        self._latent.assign(draw_items(self._draw, rngs, axis=0))

    def _assign(self, images):
        raise NotImplementedError(
            "A generator parameterisation cannot be set from images: inverting the generator would need "
            "its own optimisation. Start from random latent codes (reset) instead."
        )

    def __repr__(self):
        return f"GeneratorParam(model={getattr(self.model, 'name', self.model)!r}, shape={self.shape})"


def generator(model, *, batch=1, latent_shape=None, seed=None, sd=1.0, output_range=(-1, 1), w=None, h=None):
    """Parameterises images as the output of a Keras generator model (latent -> image).

    The latent codes are the variables; the output is rescaled from `output_range` to [0, 1] and
    clipped. The image size is the generator's: nothing is resized here.

    Args:
        model: a Keras model (or layer) mapping `(batch, *latent_shape)` to `(batch, h, w, 3)` images.
        batch: number of latent codes, one image each. Defaults to 1.
        latent_shape: shape of one latent code. Defaults to the model's input shape without the batch.
        seed: integer seed of the initial latent codes. Defaults to None (fresh random).
        sd: standard deviation of the initial latent codes. Defaults to 1.0.
        output_range: `(low, high)` of the generator's outputs, e.g. `(-1, 1)` for tanh or `(0, 1)`.
            Defaults to (-1, 1).
        w, h: image width and height the caller expects (the renderer passes them); when given they
            must match the generator's output. Defaults to None (not checked).

    Example:

    ```python
    renderer.render("block4_conv3:42", param=functools.partial(param.generator, my_gan), size=64)
    ```
    """
    param = GeneratorParam(model, batch=batch, latent_shape=latent_shape, seed=seed, sd=sd,
                           output_range=output_range)
    expected = (param.shape[1] if h is None else h, param.shape[2] if w is None else w)
    if expected != param.shape[1:3]:
        raise ValueError(
            f"The generator produces {param.shape[1]}x{param.shape[2]} (h x w) images and does not resize; "
            f"render at that size. Received: h={h}, w={w}"
        )
    return param


def _latent_shape(model, latent_shape) -> tuple:
    if latent_shape is None:
        try:
            latent_shape = tuple(model.input_shape[1:])
        except (AttributeError, ValueError, TypeError):
            raise ValueError(
                "Could not read the generator's input shape; pass `latent_shape`. Received: latent_shape=None"
            ) from None
    try:
        values = tuple(latent_shape)
    except TypeError:
        values = ()
    if not values or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                             for v in values):
        raise ValueError(f"Expected `latent_shape` to be positive integers. Received: latent_shape={latent_shape!r}")
    return tuple(int(v) for v in values)


def _output_range(output_range):
    try:
        low, high = (checks.real(v, "output_range") for v in output_range)
    except (TypeError, ValueError):
        low = high = None
    if low is None or not low < high:
        raise ValueError(f"Expected `output_range` to be two finite numbers, low < high. Received: "
                         f"output_range={output_range!r}")
    return low, high - low


def _output_shape(model, latent) -> tuple:
    """Runs the generator once on the initial latents and checks it returns RGB image batches."""
    try:
        images = model(keras.ops.convert_to_tensor(latent), training=False)
    except Exception as error:
        raise ValueError(
            f"The generator failed on latent codes of shape {tuple(latent.shape)}; check `latent_shape`. "
            f"Received: {type(error).__name__}: {error}"
        ) from error
    shape = tuple(getattr(images, "shape", ()))
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"Expected the generator to output images of shape (batch, height, width, 3). "
                         f"Received: output shape={shape}")
    return tuple(int(v) for v in shape)
