"""The render loop: optimise an image parameterisation so that an objective grows.

`Renderer` owns a model and a cache of compiled *plans*. A plan is everything whose structure shapes
the compiled step: the parameterisation (its variables), the optimizer (its slots), the transforms'
and the objective's signatures and the activation tap. Everything a slider changes between runs (the
channel, objective weights, transform strengths, learning rate, seed) is fed to the compiled step as
tensors or assigned to existing variables, so those changes reuse the plan without a recompile.

Steps run in chunks inside one compiled loop (`lucidwidget.backend`: a `tf.while_loop` on TensorFlow,
a `lax.while_loop` under `jax.jit` on JAX, eager steps on PyTorch): the image stays on the device and
only the per-step objective values, plus the frames a callback asks for, are copied to the host.
"""

from __future__ import annotations

import functools
import threading
import time
import warnings

import numpy as np
from keras import ops

from lucidwidget import checks, imaging
from lucidwidget.models import FeatureTap, load_model, preprocessing, visualizable_layers
from lucidwidget.models.inputs import ImageInput, check_input_values, find_image_input, infer_fixed_size
from lucidwidget.models.layers import graph_of
from lucidwidget.optvis import objectives as objectives_lib
from lucidwidget.optvis.objectives import reference as reference_lib
from lucidwidget.optvis import optimizers as optimizers_lib
from lucidwidget.optvis import param as param_lib
from lucidwidget.optvis import schedules
from lucidwidget.optvis import transform as transform_lib
from lucidwidget.optvis.step import Activations, CompiledLoop, RunSettings, fit_to_model

DEFAULT_STEPS = 256
"""Optimizer steps when neither `steps` nor `thresholds` say otherwise (Lucid's default)."""

MIN_STEPS_TO_CALL_STILL = 8
"""Steps an objective must stay exactly constant before a render calls its unit dead: a few steps can
repeat a value by chance, eight identical float32 values cannot."""

DEFAULT_SIZE = 128
"""Image side used when the model accepts any size and the caller gives none (Lucid's default)."""

OCTAVE_SCALE = 1.4
"""Size ratio between consecutive octaves of progressive upscaling (the blog seed's octave idea)."""


def _factory_key(factory):
    """A structural key for a param factory, so an equal `functools.partial` reuses a plan."""
    if isinstance(factory, functools.partial):
        try:
            key = (factory.func, factory.args, tuple(sorted(factory.keywords.items())))
            hash(key)
            return key
        except TypeError:
            return ("id", id(factory))
    return factory


def _image_size(size, default):
    if size is None:
        return default
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return (checks.whole(size[0], "size", 1), checks.whole(size[1], "size", 1))
    side = checks.whole(size, "size", 1)
    return (side, side)


def _start_images(images, size, channels):
    """`init_images` for a grey or RGB model: photos (paths, PIL images, bytes, lists of them) and arrays
    with the model's channel count, fitted to `size` (scaled to cover it, centre-cropped); other arrays
    (an alpha parameterisation's RGBA) as they are."""
    shape = getattr(images, "shape", None)
    if channels not in (1, 3) or (shape is not None and shape[-1] != channels):
        return images
    return imaging.load_images(np.asarray(images) if shape is not None else images, size=size, channels=channels)


def _resize(images, size):
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    return ops.clip(ops.image.resize(images, size, interpolation="bilinear", antialias=True), 0.0, 1.0)


class Renderer:
    """Feature visualisation for one model, with compiled steps cached across runs.

    Args:
        model: a `keras.Model` taking images in [0, 1] (or see `preprocess`), a zoo name such as
            `"vgg16-hed"` (see `lucidwidget.models.list_models()`), or a `.keras`/`.h5` file path. The
            image input is the model's 4-D input; its channel count (1 for grey, 3 for RGB, or any
            other) is the rendered images' and a fixed input size is the render size.
        preactivation: objectives read a fused activation's input (Lucid's pre-ReLU, a classifier's
            pre-softmax logit). Defaults to True.
        preprocess: what the model expects instead of [0, 1]: a preset name such as "caffe", "torch",
            "[-1, 1]" or "[0, 255]" (see `lucidwidget.models.PRESET_NAMES`), or a function of the [0, 1]
            images (with the model's channel count). Defaults to None (the model takes [0, 1]).
        inputs: values of a several-input model's other inputs by input name, one example each (e.g.
            `{"meta": np.array([...])}`), used for every image. Defaults to None (zeros).
        jit_compile: on TensorFlow, compile steps with XLA. Defaults to False (see benchmarks/ for
            when it pays). JAX always compiles with XLA; PyTorch runs eagerly.

    Example:
        >>> renderer = Renderer("vgg16-hed")
        >>> images = renderer.render("block4_conv3:42", steps=128)
        >>> images = renderer.render("block4_conv3:7", steps=128)   # reuses the compiled step
    """

    def __init__(self, model, *, preactivation=True, preprocess=None, inputs=None, jit_compile=False):
        self.model = load_model(model) if isinstance(model, str) else model
        self.preactivation = bool(preactivation)
        self.preprocess = preprocessing(preprocess)
        self.jit_compile = bool(jit_compile)
        self._image_input = find_image_input(self.model)
        self._size_known = graph_of(self.model) is not None
        self._size_error = None
        self.inputs = check_input_values(self.model, self._image_input, inputs)
        self._plans = {}
        self._taps = {}
        self._layers = None
        self._cancel = threading.Event()
        self._busy = threading.Lock()

    @property
    def trace_count(self):
        """How many times a render loop was compiled: a new structure adds one, a slider change none."""
        return sum(plan.traces for plan in self._plans.values())

    @property
    def layers(self):
        """Visualisable layers (`LayerInfo`) in forward order."""
        if self._layers is None:
            self._layers = visualizable_layers(self.model)
        return self._layers

    @property
    def input_size(self):
        """(height, width) the model requires, or None when it accepts any size.

        For a subclassed model, whose size Keras cannot know, it is inferred (see
        `lucidwidget.models.inputs.infer_fixed_size`) on first use.
        """
        self._infer_size()
        return self._image_input.size

    def _infer_size(self):
        """Infers a subclassed model's size once; a failure is kept, to raise when a render needs the size."""
        if self._size_known:
            return
        self._size_known = True
        try:
            size = infer_fixed_size(self.model, self.channels, DEFAULT_SIZE)
        except ValueError as error:
            self._size_error = error
        else:
            self._image_input = ImageInput(0, self.channels, size, ())
            self._taps.clear()

    @property
    def channels(self):
        """The model's image channel count: the rendered images have it too."""
        return self._image_input.channels

    def check_size(self, size, objective=None):
        """Raises a one-sentence `ValueError` when `size` cannot be rendered, before any optimisation.

        Args:
            size: image side or (height, width); None for the size `render` would use.
            objective: optional objective (or `"layer:channel"` / expression) whose layers must keep at
                least one pixel at that size. Defaults to None (only the model's fixed size is checked).

        Returns:
            The size as (height, width).
        """
        size = self._final_size(size)
        layers = self.objective(objective).layers if objective is not None else ()
        self._tap(frozenset(layers)).output_shapes(*size)
        return size

    def _final_size(self, size):
        """(height, width) of a render: `size`, else the model's fixed size, else `DEFAULT_SIZE`."""
        fixed = self.input_size
        if size is None and fixed is None and self._size_error is not None:
            raise self._size_error
        return _image_size(size, fixed or (DEFAULT_SIZE, DEFAULT_SIZE))

    def objective(self, spec):
        """`spec` as an `Objective`: an `Objective`, `"layer:channel"` or an expression, in which this
        model's layer names need no quotes even when they hold `-` or spaces."""
        if isinstance(spec, str):
            return objectives_lib.as_objective(spec, [info.name for info in self.layers])
        return objectives_lib.as_objective(spec)

    def cancel(self):
        """Asks the running `render` to stop after its current chunk; safe from any thread."""
        self._cancel.set()

    def evaluate(self, objective, images, *, per_item=False):
        """The objective's value on given images in [0, 1], without transforms.

        Useful to compare a visualisation with a photo, or a render with noise.

        Args:
            objective: an `Objective`, `"layer:channel"` or an expression.
            images: a batch, or one image, with the model's channel count (and its size, for a
                fixed-size model).
            per_item: return each image's own score (`Objective.per_item`) instead of the
                objective's value, e.g. each unit's value after a render with one unit per batch
                item. Defaults to False.

        Returns:
            A float, or a float32 array with one value per image when `per_item`.
        """
        objective = self.objective(objective)
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[None]
        self._check_channels(images.shape[-1], "images.shape[-1]")
        fixed = self.input_size
        if fixed is not None and tuple(images.shape[1:3]) != fixed:
            raise ValueError(
                f"Model {self.model.name!r} takes {fixed[0]}x{fixed[1]} images; crop or resize them first. "
                f"Received: images.shape={tuple(images.shape)}"
            )
        tap = self._tap(frozenset(objective.layers))
        objective.validate(tap.output_shapes(*images.shape[1:3]), images.shape[0])
        references = self._reference_values(objective, tuple(images.shape[1:3]))
        images = ops.convert_to_tensor(images)
        model_input = fit_to_model(images, self.preprocess)
        T = Activations(tap.read(model_input), model_input, images)
        if per_item:
            return ops.convert_to_numpy(objective.per_item(T)).astype(np.float32)
        knobs = [ops.convert_to_tensor(k) for k in objective.knobs]
        return float(ops.convert_to_numpy(objective.fn(T, *knobs, *references)))

    def _reference_values(self, objective, size):
        """The values of the objective's references at `size` (see `objectives.reference`): its photos
        through this renderer's taps, with its preprocessing and pre-activation setting."""
        if not objective.references:
            return []

        def activations(images, layers):
            return self._tap(frozenset(layers))(fit_to_model(ops.convert_to_tensor(images), self.preprocess))

        return reference_lib.resolve(objective, size, self.channels, activations)

    def _check_channels(self, channels, name):
        if channels != self.channels:
            raise ValueError(
                f"Model {self.model.name!r} takes {self.channels}-channel images. Received: {name}={channels}"
            )

    def _tap(self, layers):
        if layers not in self._taps:
            self._taps[layers] = FeatureTap(self.model, sorted(layers), preactivation=self.preactivation,
                                            image_input=self._image_input, inputs=self.inputs)
        return self._taps[layers]

    def _plan(self, objective, transforms, factory, size, batch, optimizer, normalize_gradients, redirect,
              schedule=None, item_seeds=False):
        key = (
            objective.signature,
            tuple(t.signature for t in transforms),
            _factory_key(factory),
            size,
            batch,
            optimizer if isinstance(optimizer, str) else ("id", id(optimizer)),
            bool(normalize_gradients),
            redirect,
            schedule,
            item_seeds,
        )
        plan = self._plans.get(key)
        if plan is None:
            image_param = self._make_param(factory, size, batch)
            adapter = optimizers_lib.get(optimizer)
            adapter = schedules.scheduled(adapter, schedule)
            plan = CompiledLoop(
                objective,
                transforms,
                image_param,
                adapter,
                self._tap(frozenset(objective.layers)),
                preprocess=self.preprocess,
                normalize_gradients=normalize_gradients,
                redirect=redirect,
                jit_compile=self.jit_compile,
                item_seeds=item_seeds,
            )
            self._plans[key] = plan
        return plan

    def _make_param(self, factory, size, batch):
        """Calls the factory, with `channels=` for a model whose images are not RGB."""
        extra = {} if self.channels == 3 else {"channels": self.channels}
        try:
            image_param = factory(w=size[1], h=size[0], batch=batch, seed=None, **extra)
        except TypeError as error:
            if extra and "channels" in str(error):
                raise TypeError(
                    f"Model {self.model.name!r} takes {self.channels}-channel images, so the param factory must "
                    f"accept channels=. Received: param={factory!r}"
                ) from None
            raise
        channels = image_param.shape[-1]
        if channels not in (self.channels, self.channels + 1):
            raise ValueError(
                f"Expected a parameterisation with {self.channels} channels (or {self.channels + 1} with alpha) "
                f"for model {self.model.name!r}. Received: param channels={channels}"
            )
        return image_param

    def render(
        self,
        objective,
        *,
        size=None,
        batch=1,
        steps=None,
        seed=None,
        param=None,
        transforms=None,
        optimizer="adam",
        learning_rate=None,
        thresholds=None,
        callbacks=(),
        normalize_gradients=False,
        redirect_relu_steps=0,
        octaves=None,
        init_images=None,
        schedule=None,
    ):
        """Optimises images for `objective` and returns them.

        Args:
            objective: an `Objective`, `"layer:channel"`, or an expression such as
                `"block4_conv3:42 - 0.5*block5_conv1:7"`.
            size: image side or (height, width). Defaults to the model's fixed input size, else 128.
            batch: images optimised together. Defaults to 1.
            steps: optimizer steps. Defaults to the largest of `thresholds` when they are given, else
                `DEFAULT_STEPS` (256).
            seed: makes the run deterministic. A list of one seed per batch item seeds each item on its
                own: its random start and its random transforms each step are those of a batch of one
                rendered with that seed, so with objectives that treat items independently (such as
                `objectives.channel(layer, [c0, c1, ...])`) each image matches its batch-of-one render
                up to float rounding, whatever batch it shares. Defaults to None (a fresh random start).
            param: a parameterisation factory called as `factory(w=, h=, batch=, seed=)` (plus
                `channels=` for a model whose images are not RGB), e.g.
                `functools.partial(param.image, fft=False)`. Defaults to `param.image` (FFT spectrum,
                with colour decorrelation for RGB), with the schedule's `PARAM_OPTIONS`.
            transforms: list of `Transform`s applied each step. Defaults to
                `transform.standard_transforms`; `[]` applies none.
            optimizer: "adam", "sgd", "lbfgs" or a Keras optimizer. Defaults to "adam".
            learning_rate: step size. Defaults to the optimizer's default (0.05 for Adam).
            thresholds: steps at which to keep a copy of the images; the result is then a list with
                one array per threshold and `steps` defaults to the largest. Defaults to None.
            callbacks: objects with any of `on_render_begin(logs)`, `on_step_end(step, logs)`,
                `on_frame(step, images)` (needs a `frame_interval` attribute, in seconds) and
                `on_render_end(logs)`. Begin logs: `steps`, `batch`, `size`, `objective` and
                `compiling` (True when the first steps compile the loop: a structure or size this
                Renderer has not run yet; on PyTorch, its first run). Step logs: `objective` and
                `steps_per_sec`, the rate of the compiled call the step ran in, or None for a call that
                also compiled the loop (its time is mostly the compile's). The end's `logs["warning"]`
                is a sentence when the objective never moved (a dead unit; the image stays the random
                start), else None; `lucidwidget.render` raises it as a `StillObjectiveWarning`.
            normalize_gradients: divide gradients by their standard deviation. Defaults to False.
            redirect_relu_steps: use Lucid's redirected ReLU gradient for this many first steps, to
                wake up dead units. Defaults to 0.
            octaves: optimise in this many stages of growing size (each 1.4x the last), each
                starting from the previous result. Defaults to None (one stage).
            init_images: images to start from instead of noise (keras-vis's seed image; deep dream
                from a photo): anything `imaging.load_images` reads (paths, PIL images, bytes, arrays
                in [0, 1]), scaled to cover the render's size and centre-cropped. Defaults to None.
            schedule: `"fast"` ramps the steps up over a short warm-up, then makes them larger,
                decaying to the optimizer's own, with a steeper default spectrum (a good, clean image
                in fewer steps; the widget's default).
                Defaults to None (constant steps).

        Returns:
            float32 array (batch, height, width, channels) with the model's channel count (3 for
            RGB, 1 for grey), one more for an alpha parameterisation, with values in [0, 1]; a list
            of such arrays when `thresholds` is given.
        """
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("This Renderer is already rendering; call cancel() or wait for it to finish.")
        try:
            self._cancel.clear()
            return self._render(
                self.objective(objective), size, batch, steps, seed, param, transforms,
                optimizer, learning_rate, thresholds, list(callbacks), normalize_gradients,
                redirect_relu_steps, octaves, init_images, schedules.check_schedule(schedule),
            )
        finally:
            self._busy.release()

    def _render(self, objective, size, batch, steps, seed, factory, transforms, optimizer, learning_rate,
                thresholds, callbacks, normalize_gradients, redirect_relu_steps, octaves, init_images, schedule):
        batch = checks.whole(batch, "batch", 1)
        if thresholds is not None:
            thresholds = sorted({checks.whole(t, "thresholds", 1) for t in thresholds})
            if not thresholds:
                raise ValueError("Expected at least one threshold. Received: thresholds=()")
        if steps is None:
            steps = DEFAULT_STEPS if thresholds is None else thresholds[-1]
        steps = checks.whole(steps, "steps", 1)
        if thresholds is not None and thresholds[-1] > steps:
            raise ValueError(f"Expected thresholds <= steps={steps}. Received: thresholds={thresholds}")
        redirect_relu_steps = checks.whole(redirect_relu_steps, "redirect_relu_steps", 0)
        if learning_rate is not None:
            learning_rate = optimizers_lib.check_learning_rate(learning_rate)
        item_seeds = param_lib.is_seed_list(seed)
        if item_seeds:
            seed = param_lib.check_item_seeds(seed, batch)
        final_size = self._final_size(size)
        transforms = list(transform_lib.standard_transforms if transforms is None else transforms)
        if factory is None:
            factory = functools.partial(param_lib.image, **schedules.PARAM_OPTIONS[schedule])
        stages = self._stages(final_size, steps, octaves)

        tap = self._tap(frozenset(objective.layers))
        shapes = tap.output_shapes(*stages[0][0])
        objective.validate(shapes, batch)
        knobs = [ops.convert_to_tensor(k) for k in objective.knobs]
        references = {stages[0][0]: self._reference_values(objective, stages[0][0])}
        if init_images is not None:
            init_images = _start_images(init_images, final_size, self.channels)

        watch = _StillWatch()
        callbacks = [watch, *callbacks]
        run = RunSettings(
            objective_knobs=knobs,
            transform_knobs=[ops.convert_to_tensor(k) for t in transforms for k in t.knobs],
            redirect_until=ops.convert_to_tensor(redirect_relu_steps, dtype="int32"),
            thresholds=thresholds,
            callbacks=callbacks,
            frame_callbacks=[c for c in callbacks if getattr(c, "frame_interval", None) is not None],
        )
        plans = [self._plan(objective, transforms, factory, stage_size, batch, optimizer, normalize_gradients,
                            redirect=redirect_relu_steps > 0, schedule=schedule, item_seeds=item_seeds)
                 for stage_size, _ in stages]
        _call(callbacks, "on_render_begin", {
            "steps": steps, "batch": batch, "size": final_size, "objective": objective.description,
            "compiling": plans[0].traces == 0,
        })

        started = time.perf_counter()
        kept, images, done, value, cancelled = [], init_images, 0, float("nan"), False
        for plan, (stage_size, stage_steps) in zip(plans, stages):
            if stage_size not in references:
                references[stage_size] = self._reference_values(objective, stage_size)
            run.objective_knobs = [*knobs, *references[stage_size]]
            plan.param.reset(seed)
            plan.seed(seed if seed is not None else int(np.random.default_rng().integers(2**31)))
            plan.optimizer.reset()
            if learning_rate is not None:
                plan.optimizer.set_learning_rate(learning_rate)
            if images is not None:
                plan.param.assign_image(_resize(images, stage_size))
            done, value, cancelled, stage_kept, last = self._run_stage(plan, run, done, done + stage_steps)
            kept += stage_kept
            images = last if last is not None else ops.convert_to_numpy(plan.param())
            if cancelled:
                break

        _call(callbacks, "on_render_end", {
            "steps": done, "cancelled": cancelled, "objective": value,
            "seconds": time.perf_counter() - started,
            "warning": watch.warning(objective, self.preactivation, redirect_relu_steps),
        })
        if thresholds is not None:
            return kept if kept else [images]
        return images

    def _stages(self, final_size, steps, octaves):
        """(size, steps) per octave, smallest first; steps are shared out evenly."""
        if octaves is None or octaves == 1:
            return [(final_size, steps)]
        octaves = checks.whole(octaves, "octaves", 1)
        if self.input_size is not None:
            raise ValueError(
                f"Octaves need a model that accepts any image size; this one requires {self.input_size}. "
                f"Received: octaves={octaves}"
            )
        if octaves > steps:
            raise ValueError(f"Expected octaves <= steps={steps}. Received: octaves={octaves}")
        stages = []
        for index in range(octaves):
            factor = OCTAVE_SCALE ** (octaves - 1 - index)
            stage_size = tuple(max(1, round(side / factor)) for side in final_size)
            stage_steps = steps // octaves + (1 if index < steps % octaves else 0)
            stages.append((stage_size, stage_steps))
        return stages

    def _run_stage(self, plan, run, step, end):
        """Runs steps (step, end] in compiled chunks.

        Returns (steps done, last value, cancelled, kept images, last image array or None).
        """
        kept, value, image = [], float("nan"), None
        next_frame = {id(c): 0.0 for c in run.frame_callbacks}
        seconds_per_step = None
        while step < end:
            if self._cancel.is_set():
                return step, value, True, kept, image
            due_in = min(next_frame.values()) - time.monotonic() if next_frame else None
            count = run.chunk_length(step, end, seconds_per_step, due_in)
            traces, began = plan.traces, time.perf_counter()
            values = plan.run(count, step, run)
            elapsed = time.perf_counter() - began
            compiled = plan.traces > traces
            if seconds_per_step is not None or step > 0:
                seconds_per_step = elapsed / count
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise ValueError(
                    f"The optimisation diverged: the objective or the image became {values[bad[0]]} at step "
                    f"{step + bad[0] + 1}. The learning rate is "
                    f"probably too high for this objective; try a smaller one. "
                    f"Received: learning_rate={plan.optimizer.learning_rate:g}"
                )
            # A chunk that compiled the loop took the compile's time, not the steps': no rate for it.
            steps_per_sec = None if compiled else count / elapsed if elapsed > 0 else float("inf")
            for offset, value in enumerate(values.tolist(), start=1):
                _call(run.callbacks, "on_step_end", step + offset,
                      {"objective": value, "steps_per_sec": steps_per_sec})
            step += count
            now = time.monotonic()
            keep = run.thresholds is not None and step in run.thresholds
            due = [c for c in run.frame_callbacks if step == end or now >= next_frame[id(c)]]
            image = ops.convert_to_numpy(plan.param()) if keep or due else None
            if keep:
                kept.append(image)
            for callback in due:
                next_frame[id(callback)] = now + callback.frame_interval
                callback.on_frame(step, image)
        return step, value, False, kept, image


class _StillWatch:
    """Notices an objective that never moved: its unit does not respond to the image, so the image
    stays the random start (a dead unit, or a filter whose weights are all zero)."""

    def __init__(self):
        self.values = set()
        self.steps = 0

    def on_step_end(self, step, logs):
        self.steps = step
        if len(self.values) < 2:
            self.values.add(logs["objective"])

    def warning(self, objective, preactivation, redirect_relu_steps):
        """A sentence saying why the image stayed flat and what helps, or None when it moved."""
        if self.steps < MIN_STEPS_TO_CALL_STILL or len(self.values) != 1:
            return None
        (value,) = self.values
        if preactivation:
            hint = "its input is constant here (a filter with all-zero weights, or a layer after dead units)"
        elif redirect_relu_steps:
            hint = "it stays off even with the redirected ReLU gradient"
        else:
            hint = ("it never fires, so no gradient reaches the image (a dead unit): read it before its "
                    "activation (preactivation=True) or wake it up with redirect_relu_steps=64")
        return (f"The objective {objective.description} stayed at {value:.4g} for all {self.steps} steps, so the "
                f"image did not change: {hint}.")


def _call(callbacks, method, *args):
    for callback in callbacks:
        hook = getattr(callback, method, None)
        if hook is not None:
            hook(*args)


@functools.lru_cache(maxsize=4)
def _named_renderer(name, preactivation):
    return Renderer(name, preactivation=preactivation)


def render(model, objective, *, preactivation=True, preprocess=None, inputs=None, **kwargs):
    """Renders `objective` on `model` and returns float32 images in [0, 1].

    A thin wrapper around `Renderer(model, preactivation=, preprocess=, inputs=).render(objective,
    **kwargs)`; see `Renderer` and `Renderer.render` for the arguments. Zoo names share a cached
    Renderer, so repeated calls reuse compiled steps.

    Example:
        >>> import lucidwidget as lw
        >>> images = lw.render("vgg16-hed", "block4_conv3:42", steps=256, seed=0)
        >>> images.shape
        (1, 128, 128, 3)
    """
    if isinstance(model, str) and preprocess is None and inputs is None:
        renderer = _named_renderer(model, bool(preactivation))
    else:
        renderer = Renderer(model, preactivation=preactivation, preprocess=preprocess, inputs=inputs)
    watch = _Warn()
    result = renderer.render(objective, **{**kwargs, "callbacks": [*kwargs.get("callbacks", ()), watch]})
    if watch.message:
        warnings.warn(watch.message, StillObjectiveWarning, stacklevel=2)
    return result


class StillObjectiveWarning(UserWarning):
    """`render` made no progress: the objective never changed (see the message for why and what helps)."""


class _Warn:
    """Keeps the warning a render ends with, for `render` to raise as a Python warning."""

    message = None

    def on_render_end(self, logs):
        self.message = logs.get("warning")
