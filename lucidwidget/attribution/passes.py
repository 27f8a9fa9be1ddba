"""The compiled passes an `Explainer` caches per structure.

Each pass is one `backend.compile` call on a batch of a fixed size. Images, the knobs of a target of
the same structure (another class, channel or weight), path positions and masks are arguments, so all
of them reuse it: moving a slider never recompiles. The model runs in inference mode, so the items of
a batch do not interact.

- `GradientPass`: each item's score and the gradient of their sum with respect to the images, or with
  respect to a layer's outputs (optionally scaled per item as they flow on, for a path integral at the
  layer), together with those outputs. Given the layer's outputs for these images (`given`), the pass
  uses them in place of the computed ones: what only fed that layer is then dead code, which the
  compilers of TensorFlow and JAX drop, so a new target costs the rest of the model only.
- `ScorePass`: each item's score, optionally of the images multiplied by low-resolution masks that it
  upsamples itself (Score-CAM's masked inputs).
- `ActivationPass`: a layer's outputs (after its activation).

Gradients are taken with respect to a zero "probe" variable added to the images or to the layer's
outputs (`models.plans.ForwardPass` edits), so a layer deep inside a nested or subclassed model is
reached through the same plans as any tap.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from lucidwidget import backend
from lucidwidget.optvis.step import Activations, fit_to_model


class _Pass:
    """A compiled function of NumPy arrays returning NumPy arrays; `traces` counts its compiles (it
    compiles on the first `run`). `run_eagerly` calls the function as it is, compiling nothing."""

    def __init__(self, function, state):
        self._function = function
        self._compiled = backend.compile(function, state)

    @property
    def traces(self):
        return self._compiled.traces

    def run(self, *arguments):
        return self._call(self._compiled, arguments)

    def run_eagerly(self, *arguments):
        return self._call(self._function, arguments)

    @staticmethod
    def _call(function, arguments):
        tensors = keras.tree.map_structure(ops.convert_to_tensor, arguments)
        return keras.tree.map_structure(ops.convert_to_numpy, function(*tensors))


def _model_input(images, preprocess):
    return fit_to_model(images, preprocess)


def _scale(values, alpha):
    """`values` (batch first) times each item's `alpha`."""
    return values * ops.reshape(ops.cast(alpha, values.dtype), (-1,) + (1,) * (len(values.shape) - 1))


class GradientPass(_Pass):
    """Scores and their gradients for a batch of `batch` images of `size`.

    Args:
        tap: a `FeatureTap` of the target's layers (and `layer`).
        target: the `targets.Target` whose structure is compiled.
        batch, size, channels: the batch's static shape.
        preprocess: the model's preprocessing function, or None.
        layer: None for the gradient with respect to the images; else a tapped layer's name.
        state: the model's variables (read, never written).
        given: with `layer`, `run` takes the layer's outputs for the images as a fourth argument and uses
            them instead of computing them. Defaults to False.

    `run(images, knobs, alpha)` returns `(scores (B,), gradients)` with gradients shaped like the
    images, or `(scores, outputs, gradients)` at a layer, where the layer's outputs flow on scaled by
    each item's `alpha` (ones for plain gradients) and the gradients are taken at the scaled values.
    """

    def __init__(self, tap, target, batch, size, channels, preprocess, layer=None, state=(), given=False):
        shape = (batch, *size, channels) if layer is None else (batch, *tap.output_shapes(*size)[layer])
        self.probe = keras.Variable(np.zeros(shape, "float32"), name="attribution_probe")
        probe = self.probe

        def total(images, knobs, alpha, *known):
            captured = {}

            def edit(outputs):
                if known:
                    outputs = ops.cast(known[0], outputs.dtype)
                captured["outputs"] = outputs
                return _scale(outputs, alpha) + ops.cast(probe.value, outputs.dtype)

            if layer is None:
                images = images + probe.value
            model_input = _model_input(images, preprocess)
            reading = tap.read(model_input, edits=None if layer is None else {layer: edit})
            scores = target.scores(Activations(reading, model_input, images), knobs, batch)
            return ops.sum(scores), (scores, captured.get("outputs"))

        gradient = backend.value_and_grad(total, [probe], has_aux=True)

        def function(images, knobs, alpha, *known):
            (_, (scores, outputs)), (grads,) = gradient(images, knobs, alpha, *known)
            return (scores, grads) if layer is None else (scores, ops.cast(outputs, "float32"), grads)

        super().__init__(function, [*state, probe])


class ScorePass(_Pass):
    """Each item's score; with `masked`, of the images times masks upsampled (bilinear) to their size.

    `run(images, knobs)`, or `run(images, knobs, masks)` with masks `(B, h, w, 1)`, returns `(B,)`.
    """

    def __init__(self, tap, target, batch, size, preprocess, masked=False, state=()):

        def function(images, knobs, *masks):
            if masked:
                images = images * ops.image.resize(masks[0], size, interpolation="bilinear")
            model_input = _model_input(images, preprocess)
            return target.scores(Activations(tap.read(model_input), model_input, images), knobs, batch)

        super().__init__(function, state)


class ActivationPass(_Pass):
    """A layer's outputs: `run(images)` returns `(B, *layer shape)` float32.

    Args:
        tap: a `FeatureTap` of the layer, reading outputs (`preactivation=False`).
    """

    def __init__(self, tap, layer, preprocess, state=()):

        def function(images):
            return ops.cast(tap(_model_input(images, preprocess))[layer], "float32")

        super().__init__(function, state)
