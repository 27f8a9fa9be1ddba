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
from lucidwidget.optvis import transform as transform_lib

MAX_CHUNK_SECONDS = 0.25
"""Longest stretch of compiled steps between two returns to Python when no frame is due: it bounds how
long `cancel()` waits, at a per-call overhead that stays far below one optimizer step."""

MAX_CHUNK_STEPS = 64
"""Upper bound on steps per compiled call, so a fast model still reports progress regularly."""


class Activations:
    """The `T` handed to objectives: layer activations, plus the model input and the raw image."""

    def __init__(self, activations, model_input, image):
        self._activations = activations
        self._special = {"input": model_input, "image": image}

    def __call__(self, name):
        if name in self._special:
            return self._special[name]
        try:
            return self._activations[name]
        except KeyError:
            raise ValueError(
                f"The objective reads layer {name!r} but does not list it in its `layers`. "
                f"Listed: {sorted(self._activations)}. Received: name={name!r}"
            ) from None


def fit_to_model(images, tap, preprocess):
    """Resizes to a fixed-size model's input and applies the optional user preprocessing."""
    fixed = tap.input_size
    if fixed is not None and tuple(images.shape[1:3]) != tuple(fixed):
        images = tf.image.resize(images, fixed, method="bilinear")
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

    def __init__(self, renderer, objective, transforms, image_param, optimizer, tap, normalize_gradients):
        """Builds the optimizer's slots for the param's variables and wraps the step in `tf.function`."""
        self.objective = objective
        self.transforms = list(transforms)
        self.param = image_param
        self.optimizer = optimizer
        self.tap = tap
        self.rng = tf.random.Generator.from_seed(0)
        self._collapse_alpha = transform_lib.collapse_alpha_random()
        # The model sees a window the size of the image: padding only supplies what the random
        # transforms move into view (Lucid's cropping jitter does the same), so the model's work
        # per step does not grow with the padding.
        self._window = transform_lib.crop_or_pad_to(*image_param.shape[1:3])
        self.optimizer.build(self.param.variables)
        self._renderer = renderer
        self._normalize = normalize_gradients
        self.run_chunk = tf.function(self._run_chunk, jit_compile=renderer.jit_compile)

    def _model_input(self, image, transform_knobs):
        x = transform_lib.apply_transforms(self.transforms, image, self.rng, transform_knobs)
        if x.shape[-1] == 4:
            x = self._collapse_alpha(x, self.rng)
        if self.tap.input_size is None:
            x = self._window(x, self.rng)
        return fit_to_model(x, self.tap, self._renderer.preprocess)

    def _step(self, step, objective_knobs, transform_knobs, redirect_until):
        with tf.GradientTape() as tape:
            image = self.param()
            model_input = self._model_input(image, transform_knobs)
            activations = self.tap(model_input, redirect_relu=step < redirect_until)
            value = tf.cast(self.objective.fn(Activations(activations, model_input, image), *objective_knobs),
                            tf.float32)
            loss = -value
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
