"""The compiled optimisation step that `Renderer` caches per structure.

A `Plan` holds the stateful objects its `tf.function` captured (the parameterisation's variables,
the optimizer's slots, a random generator) together with the templates whose signatures it was
traced for. Knob values arrive as tensor arguments, so a plan serves every run of its structure.
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from lucidwidget.optvis import optimizers as optimizers_lib
from lucidwidget.optvis import param as param_lib
from lucidwidget.optvis import transform as transform_lib

MAX_CHUNK_SECONDS = 0.25
"""Longest stretch of compiled steps between two returns to Python when no frame is due: it bounds how
long `cancel()` waits, at a per-call overhead that stays far below one optimizer step."""

MAX_CHUNK_STEPS = 64
"""Upper bound on steps per compiled call, so a fast model still reports progress regularly."""


class Activations:
    """The `T` handed to objectives: layer activations, plus the model input and the raw image.

    `T(name)` is a whole activation; `T.units(name, index)` is `T(name)[..., index]`, computed alone
    when the tap deferred that layer (see `lucidwidget.models.units`).
    """

    def __init__(self, reading, model_input, image):
        self._reading = reading
        self._special = {"input": model_input, "image": image}

    def __call__(self, name):
        if name in self._special:
            return self._special[name]
        self._check(name)
        return self._reading[name]

    def units(self, name, index):
        if name in self._special:
            return tf.gather(self._special[name], index, axis=-1)
        self._check(name)
        return self._reading.units(name, index)

    def _check(self, name):
        if name not in self._reading:
            raise ValueError(
                f"The objective reads layer {name!r} but does not list it in its `layers`. "
                f"Listed: {sorted(self._reading)}. Received: name={name!r}"
            )


def fit_to_model(images, preprocess):
    """Applies the optional user preprocessing (the images already have the model's size and channels)."""
    return preprocess(images) if preprocess is not None else images


@dataclasses.dataclass
class Run:
    """What stays fixed during one render: knob tensors, thresholds and callbacks."""

    objective_knobs: list
    transform_knobs: list
    redirect_until: tf.Tensor
    thresholds: list | None
    callbacks: list
    frame_callbacks: list

    def chunk_length(self, step, end, seconds_per_step, seconds_to_frame=None):
        """Steps for the next compiled call: 1 until the step time is known, then enough to reach the
        next due frame (rounded up, so the frame is never a chunk late), at most `MAX_CHUNK_SECONDS`
        worth so cancellation stays prompt, and never past the next threshold."""
        if seconds_per_step is None:
            return 1
        budget = MAX_CHUNK_SECONDS if seconds_to_frame is None else min(MAX_CHUNK_SECONDS, seconds_to_frame)
        count = max(1, min(MAX_CHUNK_STEPS, math.ceil(budget / max(seconds_per_step, 1e-9)), end - step))
        upcoming = [t for t in self.thresholds or () if t > step]
        return min(count, upcoming[0] - step) if upcoming else count


class Plan:
    """One compiled optimisation step and the stateful objects it captured."""

    def __init__(self, renderer, objective, transforms, image_param, optimizer, tap, normalize_gradients, redirect):
        """Builds the optimizer's slots for the param's variables and wraps the step in `tf.function`.

        `redirect` compiles Lucid's redirected ReLU gradient in, switched on for the first
        `redirect_until` steps of a run. Without it every ReLU is the layer's own, which lets
        TensorFlow fuse each convolution with its bias and ReLU.
        """
        self.objective = objective
        self.transforms = list(transforms)
        self.param = image_param
        self.optimizer = optimizer
        self.tap = tap
        self.rng = tf.random.Generator.from_seed(0)
        self._collapse_alpha = transform_lib.collapse_alpha_random(background=param_lib.random_background)
        # The model sees a window the size of the image (for a fixed-size model, its input size):
        # padding only supplies what the random transforms move into view (Lucid's cropping jitter
        # does the same), so the model's work per step does not grow with the padding and nothing
        # is ever resized.
        self._window = tuple(image_param.shape[1:3])
        self.optimizer.build(self.param.variables)
        self._renderer = renderer
        self._normalize = normalize_gradients
        self._redirect = redirect
        self.run_chunk = tf.function(self._run_chunk, jit_compile=renderer.jit_compile)

    def _model_input(self, image, transform_knobs):
        x = transform_lib.apply_transforms(self.transforms, image, self.rng, transform_knobs, window=self._window)
        if x.shape[-1] == self.tap.channels + 1:      # alpha not composited by the user's transforms
            x = self._collapse_alpha(x, self.rng)
        return fit_to_model(x, self._renderer.preprocess)

    def _step(self, step, objective_knobs, transform_knobs, redirect_until):
        with tf.GradientTape() as tape:
            image = self.param()
            model_input = self._model_input(image, transform_knobs)
            reading = self.tap.read(model_input, redirect_relu=self._redirect and step < redirect_until)
            value = tf.cast(self.objective.fn(Activations(reading, model_input, image), *objective_knobs),
                            tf.float32)
            loss = -value
        # Fused convolution + ReLU kernels turn NaN into 0, so a diverged image can leave the value
        # finite: report such a step as NaN, for the renderer to stop.
        value = tf.where(tf.reduce_all(tf.math.is_finite(image)), value, float("nan"))
        grads = tape.gradient(loss, self.param.variables)
        if self._normalize:
            grads = optimizers_lib.normalize_gradients(grads)
        self.optimizer.apply(grads, self.param.variables)
        return value

    def _run_chunk(self, count, first_step, objective_knobs, transform_knobs, redirect_until):
        self._renderer.trace_count += 1

        def body(i, values):
            value = self._step(first_step + i, objective_knobs, transform_knobs, redirect_until)
            return i + 1, values.write(i, value)

        _, values = tf.while_loop(
            lambda i, _: i < count,
            body,
            (tf.constant(0), tf.TensorArray(tf.float32, size=count)),
        )
        return values.stack(), self.param()
