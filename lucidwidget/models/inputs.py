"""The model's image input: which input it is, its channels and size, and what the other inputs get.

A Functional model declares its inputs, so the image is the one 4-D input (batch, height, width,
channels); any other inputs (a metadata vector, say) are fed zeros unless the user gives values. A
subclassed model declares nothing: its channels come from the shape it was built with, and a fixed size
from shape inference (see `infer_fixed_size`).
"""

from __future__ import annotations

import dataclasses
import difflib

import keras
import numpy as np
from keras import ops

from lucidwidget import backend
from lucidwidget.models.layers import graph_of

IMAGE_RANK = 4
"""Rank of an image input: (batch, height, width, channels)."""

DEFAULT_CHANNELS = 3
"""Channels assumed for a subclassed model that records no build shape and has no built convolution."""

CANDIDATE_SIDES = (8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 72, 80, 96, 112, 128, 160, 192, 224, 227, 256, 299)
"""Square sides tried by shape inference when a subclassed model's call fails at its default size and
it records no build shape: the sizes small models and the usual ImageNet models are trained at. Each
try infers shapes only (`backend.eval_shape`: no weights are created, nothing is computed)."""


@dataclasses.dataclass(frozen=True)
class ImageInput:
    """Where the image goes into a model.

    Attributes:
        index: position of the image among the model's flat inputs (0 for a single-input model).
        channels: the image's channel count.
        size: `(height, width)` the model requires, or None when it takes any size.
        others: `(name, shape without batch, dtype)` of every other input, in input order.
    """

    index: int
    channels: int
    size: tuple | None
    others: tuple


def _name(tensor):
    return getattr(tensor, "name", "").split(":")[0]


def find_image_input(model) -> ImageInput:
    """The image input of `model` (Functional, Sequential or subclassed).

    Raises:
        ValueError: the model has no 4-D input, several, or an extra input whose shape is not fully known.
    """
    graph = graph_of(model)
    if graph is None:
        return _subclassed_input(model)
    images = [i for i, t in enumerate(graph.inputs) if len(t.shape) == IMAGE_RANK]
    shapes = {_name(t): tuple(t.shape) for t in graph.inputs}
    if len(images) != 1:
        found = "no" if not images else "several"
        raise ValueError(
            f"Model {model.name!r} has {found} image inputs (4-D: batch, height, width, channels); feature "
            f"visualization needs exactly one. Received: inputs={shapes}"
        )
    image = graph.inputs[images[0]]
    if image.shape[-1] is None:
        raise ValueError(
            f"The image input of {model.name!r} has no fixed channel count. Received: input_shape={tuple(image.shape)}"
        )
    others = []
    for tensor in graph.inputs:
        if tensor is image:
            continue
        if any(d is None for d in tensor.shape[1:]):
            raise ValueError(
                f"Input {_name(tensor)!r} of {model.name!r} has a shape that is not fully known, so it cannot "
                f"be filled. Received: input_shape={tuple(tensor.shape)}"
            )
        others.append((_name(tensor), tuple(int(d) for d in tensor.shape[1:]), tensor.dtype))
    height, width = image.shape[1:3]
    size = (int(height), int(width)) if height is not None and width is not None else None
    return ImageInput(images[0], int(image.shape[-1]), size, tuple(others))


def _built_shape(model):
    shape = (model.get_build_config() or {}).get("input_shape") if model.built else None
    if isinstance(shape, dict) or shape is None or len(shape) != IMAGE_RANK:
        return None
    return tuple(shape)


def _first_conv_channels(model):
    for layer in model._flatten_layers(include_self=False, recursive=True):
        kernel = getattr(layer, "kernel", None)
        if isinstance(layer, keras.layers.Conv2D) and kernel is not None and len(kernel.shape) == IMAGE_RANK:
            return int(kernel.shape[2])
    return None


def _subclassed_input(model):
    shape = _built_shape(model)
    channels = shape[-1] if shape is not None and shape[-1] is not None else None
    channels = channels or _first_conv_channels(model) or DEFAULT_CHANNELS
    return ImageInput(0, int(channels), None, ())


def _traces(model, height, width, channels):
    """Whether the model's call runs on a (1, height, width, channels) image (shape inference only)."""
    try:
        backend.eval_shape(lambda x: model(x, training=False), ((1, height, width, channels), "float32"))
    except Exception:  # noqa: BLE001 - any failure means "this size does not work"
        return False
    return True


def infer_fixed_size(model, channels, default_side):
    """The input size a built subclassed model requires, or None when it takes `default_side` too.

    A model that traces at `default_side` is taken as free-size. Otherwise its build shape is used when
    it traces, else the single working side of `CANDIDATE_SIDES`.

    Raises:
        ValueError: no size could be inferred; the message asks for `size=`.
    """
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} has not been built, so its input size is unknown; call it once on an image "
            f"batch, e.g. model(np.zeros((1, height, width, channels))). Received: model.built=False"
        )
    if _traces(model, default_side, default_side, channels):
        return None
    shape = _built_shape(model)
    if shape is not None and shape[1] is not None and shape[2] is not None:
        if _traces(model, shape[1], shape[2], channels):
            return (int(shape[1]), int(shape[2]))
    working = [side for side in CANDIDATE_SIDES if _traces(model, side, side, channels)]
    if len(working) == 1:
        return (working[0], working[0])
    raise ValueError(
        f"Cannot tell which image size model {model.name!r} takes (it fails at {default_side}x{default_side}); "
        f"pass its input size as size=. Received: size=None"
    )


def other_input_values(image_input, values, batch):
    """Tensors for the non-image inputs: the user's `values` by input name, broadcast over `batch` (an
    int), else zeros.

    Args:
        values: dict from input name to an array of one example's shape (or a batch of 1).
    """
    tensors = []
    for name, shape, dtype in image_input.others:
        if name in values:
            value = ops.cast(ops.convert_to_tensor(values[name]), dtype)
            if len(value.shape) == len(shape):
                value = value[None]
            tensors.append(ops.broadcast_to(value, (batch, *shape)))
        else:
            tensors.append(ops.zeros((batch, *shape), dtype))
    return tensors


def check_input_values(model, image_input, values):
    """Validates `inputs=` values against the model's other inputs; returns them as a dict of arrays."""
    values = dict(values or {})
    names = [name for name, _, _ in image_input.others]
    for name, value in values.items():
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            expected = f"one of {names}" if names else "none (the model has only its image input)"
            raise ValueError(
                f"Model {model.name!r} has no extra input {name!r}.{hint} Expected {expected}. "
                f"Received: inputs={{{name!r}: ...}}"
            )
        shape = dict((n, s) for n, s, _ in image_input.others)[name]
        array = np.asarray(value)
        if array.shape not in (shape, (1,) + shape):
            raise ValueError(
                f"Expected a value of shape {shape} (one example, used for every image) for input {name!r}. "
                f"Received: inputs[{name!r}].shape={array.shape}"
            )
        values[name] = array
    return values
