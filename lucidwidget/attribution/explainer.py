"""`Explainer`: attribution for one model, with its compiled passes cached per structure.

An explainer resolves targets through the objective grammar (`targets`), prepares images (`images`),
picks the layer a CAM reads, and runs the compiled passes (`passes`) in batches of bounded size. The
methods (`methods`, `scorecam`), the building blocks (`blocks`) and the metrics (`metrics`) are built
on its engine surface: `prepare`, `target`, `cam_layer`, `gradients`, `scores` and `activations`.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from lucidwidget import checks
from lucidwidget.attribution import images as images_lib
from lucidwidget.attribution import targets as targets_lib
from lucidwidget.attribution.passes import ActivationPass, GradientPass, ScorePass
from lucidwidget.models import FeatureTap, find_image_input
from lucidwidget.models.layers import POOLING_TYPES, graph_of, resolve_layer
from lucidwidget.optvis.render import Renderer

DEFAULT_BATCH_SIZE = 16
"""Images (or noisy copies, path points, masked inputs) per compiled call. A VGG16 gradient at 224 px
keeps about 0.1 GB of activations per image, so 16 stay near 2 GB however many images are explained;
lower it for larger models or inputs."""

POOLING_KINDS = frozenset(kind.__name__ for kind in POOLING_TYPES)
"""Layer kinds a CAM never picks on its own: Grad-CAM reads the last convolutional features, and a
pooling layer only coarsens them."""


class Explainer:
    """Attribution maps for one model: which pixels, channels and positions make a target fire.

    Keeps compiled passes per structure (target kind and layers, CAM layer, batch and image size), so a
    new image, class, channel or weight reuses them, as `Renderer` does for renders.

    Args:
        model: a `keras.Model` taking images in [0, 1] (or see `preprocess`), a zoo name such as
            `"vgg16-hed"`, or a `.keras`/`.h5` path; Functional, Sequential, nested or subclassed, with
            one image input (other inputs are fixed to `inputs`).
        preprocess: what the model expects instead of [0, 1] (a preset name or a function), as in
            `Renderer`. Defaults to None.
        inputs: values of a several-input model's other inputs by name, one example each, used for every
            image. Defaults to None (zeros).
        preactivation: targets read a fused activation's input (a class index is the pre-softmax logit,
            a channel is read before its ReLU), as objectives are. Defaults to True.
        batch_size: items per compiled call. Defaults to `DEFAULT_BATCH_SIZE` (16).

    Example:
        >>> explainer = Explainer(model)
        >>> maps = explainer.attribute(images, 3, method="gradcam")        # class 3
        >>> maps = explainer.attribute(images, 7, method="gradcam")        # reuses the compiled pass
    """

    def __init__(self, model, *, preprocess=None, inputs=None, preactivation=True, batch_size=DEFAULT_BATCH_SIZE):
        self.renderer = Renderer(model, preactivation=preactivation, preprocess=preprocess, inputs=inputs)
        self.batch_size = checks.whole(batch_size, "batch_size", 1)
        self._passes = {}
        self._taps = {}
        self._cam_layers = {}
        self._output = None
        self._known = None

    @property
    def model(self):
        return self.renderer.model

    @property
    def preprocess(self):
        return self.renderer.preprocess

    @property
    def channels(self):
        """The model's image channels."""
        return self.renderer.channels

    @property
    def input_size(self):
        """(height, width) the model requires, or None when it takes any size."""
        return self.renderer.input_size

    @property
    def trace_count(self):
        """How many times a pass was compiled: a new structure adds one, a new image or target none."""
        return sum(item.traces for item in self._passes.values())

    # -- images, targets and layers -------------------------------------------------------------

    def prepare(self, images, size=None):
        """`images` as an `images.Batch`: the model's view (fitted to the model's fixed size or
        `size`) and how maps return to the images as given (see `lucidwidget.attribution.images`)."""
        if size is not None:
            size = _size(size)
            if self.input_size is not None and size != self.input_size:
                raise ValueError(
                    f"Model {self.model.name!r} takes {self.input_size[0]}x{self.input_size[1]} images. "
                    f"Received: size={size}"
                )
        return images_lib.prepare(images, self.channels, size or self.input_size, self.model.name)

    def target(self, spec, count, size):
        """`spec` resolved for `count` images of `size` and checked against the model (a class or channel
        out of range, an unknown layer: one sentence each)."""
        layer_names = [info.name for info in self.renderer.layers]
        target = targets_lib.resolve(spec, count, layer_names, lambda: self.output_layer(size))
        if not target.layers:
            raise ValueError(
                f"Expected a target that reads a layer of the model. Received: target={target.description!r}"
            )
        target.validate(self._tap(target.layers).output_shapes(*size))
        return target

    def output_layer(self, size):
        """The layer a class index reads: the model's output layer (the last layer in forward order)."""
        if self._output is None:
            graph = graph_of(self.model)
            names = [info.name for info in self.renderer.layers]
            outputs = getattr(graph, "output_names", None) or []
            if outputs and outputs[0] in names:
                self._output = outputs[0]
            else:
                self._output = list(self._tap(names).output_shapes(*size))[-1]
        return self._output

    def cam_layer(self, target, size, layer=None):
        """The spatial layer a CAM reads for `target`: `layer`, checked, or the deepest layer with a
        spatial grid (not a pooling layer) that runs before every layer the target reads.

        Raises:
            ValueError: `layer` is unknown, not spatial, or not before the target; or no layer fits.
        """
        if layer is not None:
            return self.layer_before(target, size, layer, spatial=True)
        key = (target.layers, size)
        if key not in self._cam_layers:
            self._cam_layers[key] = self._deepest_before(target, size)
        return self._cam_layers[key]

    def layer_before(self, target, size, layer, spatial=False):
        """`layer`, checked: known, with a spatial grid when `spatial`, and run before every layer the
        target reads (so that the target depends on it).

        Raises:
            ValueError: one sentence for each of those.
        """
        if spatial:
            self.spatial_layer(layer, size)
        else:
            self.layer_shape(layer, size)
        if not self._runs_before(layer, target, size):
            raise ValueError(
                f"Expected a layer that runs before every layer the target reads ({', '.join(sorted(target.layers))}), "
                f"so that the target depends on it. Received: layer={layer!r}"
            )
        return layer

    def layer_shape(self, layer, size):
        """The per-example output shape of `layer` for images of `size` (an unknown name raises with
        close matches)."""
        if not isinstance(layer, str) or not layer:
            raise TypeError(f"Expected a layer name (a non-empty string). Received: layer={layer!r}")
        return self._tap([layer]).output_shapes(*size)[layer]

    def spatial_layer(self, layer, size):
        """`layer`, when its outputs have a spatial grid (height, width, channels); else a `ValueError`."""
        shape = self.layer_shape(layer, size)
        if len(shape) != 3:
            raise ValueError(
                f"Expected a layer with a spatial grid (height, width, channels); layer {layer!r} has per-example "
                f"shape {shape}. Received: layer={layer!r}"
            )
        return layer

    def _deepest_before(self, target, size):
        infos = self.renderer.layers
        position = {id(resolve_layer(self.model, info.name)[0]): i for i, info in enumerate(infos)}
        first = min(position.get(id(resolve_layer(self.model, name)[0]), len(infos)) for name in target.layers)
        for info in reversed(infos[:first] if graph_of(self.model) is not None else infos):
            if info.spatial and info.kind not in POOLING_KINDS and self._runs_before(info.name, target, size):
                return info.name
        raise ValueError(
            f"A CAM needs a layer with a spatial grid that runs before the target's layers "
            f"{sorted(target.layers)}, and model {self.model.name!r} has none. Received: target={target.description!r}"
        )

    def _runs_before(self, layer, target, size):
        """Whether `layer`'s first call comes before that of every layer the target reads."""
        if layer in target.layers:
            return False
        return list(self._tap(target.layers | {layer}).output_shapes(*size))[0] == layer

    # -- compiled passes, run in batches --------------------------------------------------------

    def gradients(self, images, target, index=None, *, layer=None, alpha=None, batch_size=None):
        """Scores and gradients of prepared `images` (N, H, W, C) in [0, 1].

        Args:
            images: the model's view of the images (see `prepare`).
            target: a `targets.Target`; item `j` is scored with the knobs of image `index[j]`.
            index: which target row each image uses. Defaults to `arange(N)`.
            layer: None for gradients with respect to the images; else a layer name.
            alpha: per-image factors on the layer's outputs as they flow on (a path integral at the
                layer); gradients are taken at the scaled outputs. Defaults to ones.
            batch_size: items per compiled call. Defaults to the explainer's.

        Returns:
            `(scores (N,), gradients (N, H, W, C))`, or at a layer `(scores, outputs, gradients)` with
            the layer's outputs (after its activation, unscaled) and the gradients shaped like them.
        """
        count = len(images)
        batch = min(self._batch(batch_size), count)
        size = tuple(images.shape[1:3])
        layers = target.layers | ({layer} if layer else set())
        alpha = np.ones(count, np.float32) if alpha is None else np.asarray(alpha, np.float32)
        index = np.arange(count) if index is None else np.asarray(index)
        known = () if layer is None else (self._layer_outputs(images, layer, batch_size),)
        compiled = self._pass(
            ("gradient", target.signature, layer, batch, size),
            lambda: GradientPass(self._tap(layers), target, batch, size, self.channels, self.preprocess, layer,
                                 self._state(), given=layer is not None),
        )
        return _batched(count, batch, lambda take: compiled.run(images[take], target.item_knobs(index[take]),
                                                                alpha[take], *(values[take] for values in known)))

    def _layer_outputs(self, images, layer, batch_size):
        """`activations(images, layer)`, kept for the last images and layer asked: a gradient at a layer
        takes them as given, so for a new target on the same images only the model after the layer
        runs (what a slider move in the widget costs). They are computed eagerly, once per image, so a
        gradient at a layer still compiles one pass in all."""
        key = (layer, _digest(images))
        if self._known is None or self._known[0] != key:
            self._known = (key, self.activations(images, layer, batch_size=batch_size, eagerly=True))
        return self._known[1]

    def scores(self, images, target, index=None, *, masks=None, batch_size=None):
        """Each prepared image's score `(N,)`; with `masks` `(N, h, w)`, of the image times its mask
        upsampled (bilinear) to the image's size. `index` as in `gradients`."""
        count = len(images)
        batch = min(self._batch(batch_size), count)
        size = tuple(images.shape[1:3])
        masked = masks is not None
        compiled = self._pass(
            ("score", target.signature, masked, None if masks is None else masks.shape[1:], batch, size),
            lambda: ScorePass(self._tap(target.layers), target, batch, size, self.preprocess, masked, self._state()),
        )
        index = np.arange(count) if index is None else np.asarray(index)
        extra = () if masks is None else (np.asarray(masks, np.float32)[..., None],)
        (scores,) = _batched(count, batch, lambda take: (compiled.run(
            images[take], target.item_knobs(index[take]), *(m[take] for m in extra)),))
        return scores

    def activations(self, images, layer, *, batch_size=None, eagerly=False):
        """A layer's outputs (after its activation) for prepared `images`: `(N, *layer shape)`; with
        `eagerly`, without compiling (for a pass run once per image)."""
        count = len(images)
        batch = min(self._batch(batch_size), count)
        size = tuple(images.shape[1:3])
        compiled = self._pass(
            ("activations", layer, batch, size),
            lambda: ActivationPass(self._tap([layer], preactivation=False), layer, self.preprocess, self._state()),
        )
        run = compiled.run_eagerly if eagerly else compiled.run
        (values,) = _batched(count, batch, lambda take: (run(images[take]),))
        return values

    def _pass(self, key, build):
        if key not in self._passes:
            self._passes[key] = build()
        return self._passes[key]

    def _batch(self, batch_size):
        return self.batch_size if batch_size is None else checks.whole(batch_size, "batch_size", 1)

    def _state(self):
        return list(self.model.weights)

    def _tap(self, layers, preactivation=None):
        preactivation = self.renderer.preactivation if preactivation is None else preactivation
        key = (frozenset(layers), preactivation)
        if key not in self._taps:
            image_input = dataclasses.replace(find_image_input(self.model), size=self.input_size)
            self._taps[key] = FeatureTap(self.model, sorted(layers), preactivation=preactivation,
                                         image_input=image_input, inputs=self.renderer.inputs)
        return self._taps[key]

    # -- the user's entry points ------------------------------------------------------------------

    def attribute(self, images, target, method="gradcam", *, size=None, **options):
        """Attribution maps of `target` on `images`; see `lucidwidget.attribution.attribute`."""
        from lucidwidget.attribution import methods

        return methods.attribute(self, images, target, method, size=size, **options)

    def evaluate(self, images, target, *, size=None):
        """Each image's score for `target` (what the maps explain), float32 `(N,)`."""
        batch = self.prepare(images, size)
        return self.scores(batch.images, self.target(target, len(batch.images), batch.size))


def _size(size):
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return (checks.whole(size[0], "size", 1), checks.whole(size[1], "size", 1))
    side = checks.whole(size, "size", 1)
    return (side, side)


def _digest(images):
    """A key for an image batch's exact values (its layer outputs are kept for the next target)."""
    values = np.ascontiguousarray(images)
    return values.shape, values.dtype.str, hashlib.blake2b(values.tobytes(), digest_size=16).hexdigest()


def _batched(count, batch, run):
    """Runs `run(take)` on index arrays of `batch` items (the last padded with the last item, so every
    call has the compiled shape) and concatenates each output's first `count` rows."""
    parts = []
    for start in range(0, count, batch):
        take = np.minimum(np.arange(start, start + batch), count - 1)
        outputs = run(take)
        parts.append([np.asarray(output)[: min(batch, count - start)] for output in outputs])
    return tuple(np.concatenate(group) for group in zip(*parts))
