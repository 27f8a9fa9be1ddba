"""The compiled optimisation loop that `Renderer` caches per structure.

A `CompiledLoop` holds the stateful objects its compiled loop updates (the parameterisation's
variables, the optimizer's slots, a seed generator) together with the templates whose signatures it
was compiled for. Knob values arrive as tensor arguments, so one loop serves every run of its
structure. `lucidwidget.backend` compiles it for the backend Keras runs on.

With `item_seeds`, each batch item has a seed generator of its own and the random transforms are
applied to each item alone with it, so item i's transforms each step are the ones a batch of one seeded
alike would draw: an image does not depend on the batch it was rendered in.
"""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import ops

from lucidwidget import backend
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
            return ops.take(self._special[name], index, axis=-1)
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
class RunSettings:
    """What stays fixed during one render: knob tensors, thresholds and callbacks."""

    objective_knobs: list
    transform_knobs: list
    redirect_until: object
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


class CompiledLoop:
    """One compiled optimisation loop and the stateful objects it updates.

    Args:
        objective, transforms: the templates it is compiled for (their knobs are arguments).
        image_param: the `ImageParam` optimised.
        optimizer: an `optimizers.Optimizer` adapter; built here for the param's variables.
        tap: the `FeatureTap` reading the objective's layers.
        preprocess: the user's preprocessing function, or None.
        normalize_gradients: divide gradients by their standard deviation.
        redirect: compile Lucid's redirected ReLU gradient in, switched on for the first
            `redirect_until` steps of a run. Without it every ReLU is the layer's own, so the backend
            can fuse each convolution with its bias and ReLU.
        jit_compile: TensorFlow only: compile with XLA (JAX always does; PyTorch runs eagerly).
        item_seeds: one seed generator per batch item, seeded by `seed([s0, s1, ...])`, each drawing
            only its item's transforms. Defaults to False (one generator for the batch).
    """

    def __init__(self, objective, transforms, image_param, optimizer, tap, *, preprocess=None,
                 normalize_gradients=False, redirect=False, jit_compile=False, item_seeds=False):
        self.objective = objective
        self.transforms = list(transforms)
        self.param = image_param
        self.optimizer = optimizer
        self.tap = tap
        self.rng = keras.random.SeedGenerator(0)
        self.item_rngs = [keras.random.SeedGenerator(0) for _ in range(image_param.shape[0])] if item_seeds else []
        rng_states = [rng.state for rng in self.item_rngs or [self.rng]]
        self._collapse_alpha = transform_lib.collapse_alpha_random(background=param_lib.random_background)
        # The model sees a window the size of the image (for a fixed-size model, its input size):
        # padding only supplies what the random transforms move into view (Lucid's cropping jitter
        # does the same), so the model's work per step does not grow with the padding and nothing
        # is ever resized.
        self._window = tuple(image_param.shape[1:3])
        self._preprocess = preprocess
        self._normalize = normalize_gradients
        self._redirect = redirect
        self.optimizer.build(self.param.variables)
        self._gradient = backend.value_and_grad(self._loss, self.param.variables, rng_states)
        state = [*self.param.variables, *self.optimizer.variables, *rng_states]
        self.loop = backend.compile_loop(self._step, state, MAX_CHUNK_STEPS, jit_compile=jit_compile)

    @property
    def traces(self):
        """How many times the loop was compiled (a slider change must not add one)."""
        return self.loop.traces

    def seed(self, seed):
        """Restarts the random transforms' stream from `seed`: an int, or (with `item_seeds`) one per item."""
        pairs = zip(self.item_rngs, seed) if self.item_rngs else [(self.rng, seed)]
        for rng, value in pairs:
            rng.state.assign(ops.convert_to_tensor([value % 2**31, 0], dtype=rng.state.dtype))

    def _model_input(self, image, transform_knobs):
        if self.item_rngs:
            x = ops.concatenate([self._transformed(image[i:i + 1], rng, transform_knobs)
                                 for i, rng in enumerate(self.item_rngs)], axis=0)
        else:
            x = self._transformed(image, self.rng, transform_knobs)
        return fit_to_model(x, self._preprocess)

    def _transformed(self, image, rng, transform_knobs):
        x = transform_lib.apply_transforms(self.transforms, image, rng, transform_knobs, window=self._window)
        if x.shape[-1] == self.tap.channels + 1:      # alpha not composited by the user's transforms
            x = self._collapse_alpha(x, rng)
        return x

    def _loss(self, step, objective_knobs, transform_knobs, redirect_until):
        image = self.param()
        model_input = self._model_input(image, transform_knobs)
        redirect = ops.less(step, redirect_until) if self._redirect else False
        reading = self.tap.read(model_input, redirect_relu=redirect)
        value = self.objective.fn(Activations(reading, model_input, image), *objective_knobs)
        return -ops.cast(value, "float32")

    def _step(self, step, objective_knobs, transform_knobs, redirect_until):
        # Fused convolution + ReLU kernels turn NaN into 0, so a diverged image can leave the value
        # finite: report a step whose parameters are not finite as NaN, for the renderer to stop.
        finite = ops.all(ops.stack([ops.all(ops.isfinite(v)) for v in self.param.variables]))
        loss, grads = self._gradient(step, objective_knobs, transform_knobs, redirect_until)
        if self._normalize:
            grads = optimizers_lib.normalize_gradients(grads)
        self.optimizer.apply(grads, self.param.variables)
        return ops.where(finite, -loss, float("nan"))

    def run(self, count, first, settings):
        """Runs steps `first + 1 .. first + count` in one compiled call; returns their objective values."""
        values = self.loop(count, first, settings.objective_knobs, settings.transform_knobs,
                           settings.redirect_until)
        return ops.convert_to_numpy(values)
