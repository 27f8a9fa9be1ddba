"""Finding layers by name in nested models, and listing the layers worth visualising.

Models nest: a Functional model can contain another Functional or Sequential model, and a subclassed
model tracks its sublayers as attributes. Users type a bare layer name (`"block4_conv3"`), which must
be unique across the nesting, or a `/`-separated path ending in it (`"inner/conv"`) to disambiguate.
"""

import collections
import dataclasses
import difflib

import keras

from lucidwidget.models.activations import ACTIVATION_LAYER_TYPES, FUSED_ACTIVATION_TYPES
from lucidwidget.models.zoo import Preprocess

MERGE_TYPES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
)

POOLING_TYPES = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalAveragePooling2D,
)

VISUALIZABLE_TYPES = FUSED_ACTIVATION_TYPES + ACTIVATION_LAYER_TYPES + MERGE_TYPES + POOLING_TYPES
"""Keras layers whose outputs are features: conv-like, dense, activations, merges and pooling.

Other Keras layers (inputs, dropout, normalisation, reshaping, padding, preprocessing) and
`Preprocess` are plumbing. Layers defined outside Keras count as features when their output is rank
2 or 4."""

SPATIAL_RANK = 4
"""Rank of a feature map output (batch, height, width, channels)."""

VECTOR_RANK = 2
"""Rank of a feature vector output (batch, channels)."""

MAX_CLOSE_MATCHES = 3
"""How many similar names an unknown-layer error suggests."""


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """A visualisable layer as the user sees it.

    Attributes:
        name: the name to type: bare when unique in the model, else the shortest unique path.
        channels: size of the last output dimension.
        spatial: True for a feature map (rank-4 output), False for a vector (rank 2).
        kind: the layer's class name, e.g. `"Conv2D"`.
    """

    name: str
    channels: int
    spatial: bool
    kind: str


def graph_of(model):
    """The Functional graph that runs `model`, or None when its `call` is Python code."""
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    return model if hasattr(model, "_nodes_by_depth") else None


def children(layer):
    """Direct sublayers of a model (forward order for graphs) or of a user's composite layer.

    Keras' own composite layers (attention, RNN wrappers) count as single layers.
    """
    if isinstance(layer, keras.Model):
        return layer.layers
    if _is_keras_class(layer):
        return []
    return layer._flatten_layers(include_self=False, recursive=False)


def _is_keras_class(layer):
    return type(layer).__module__.split(".")[0] == "keras"


def walk(model):
    """Yields `(models, layer)` for every layer nested in `model`, in forward order.

    `models` is the tuple of enclosing models (or composite layers) from `model` down to the layer's
    parent. A nested model is yielded before its own layers.
    """
    yield from _walk(model, (model,))


def _walk(model, parents):
    for layer in children(model):
        yield parents, layer
        yield from _walk(layer, parents + (layer,))


def _key(models, layer):
    return tuple(m.name for m in models) + (layer.name,)


def resolve_layer(model, name):
    """Finds a layer by bare name or path; returns `(layer, enclosing models)`.

    Raises:
        ValueError: no layer, or several, match `name`.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"Expected a layer name (non-empty string). Received: name={name!r}")
    parts = tuple(name.strip("/").split("/"))
    found = {}
    for models, layer in walk(model):
        if _key(models, layer)[-len(parts):] == parts:
            found.setdefault(id(layer), (layer, models))
    if len(found) == 1:
        return next(iter(found.values()))
    if found:
        paths = sorted("/".join(_key(models, layer)) for layer, models in found.values())
        raise ValueError(
            f"Layer name {name!r} is ambiguous in model {model.name!r}: it matches {paths}. "
            f"Use a longer path. Received: name={name!r}"
        )
    candidates = sorted({layer.name for _, layer in walk(model)} | set(_unique_names(model).values()))
    close = difflib.get_close_matches(name, candidates, n=MAX_CLOSE_MATCHES)
    hint = f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise ValueError(
        f"No layer {name!r} in model {model.name!r}. {hint}"
        f"`lucidwidget.models.visualizable_layers(model)` lists the layers to visualise. Received: name={name!r}"
    )


def find_layer(model, name):
    """Finds a layer anywhere in a (possibly nested) model.

    Args:
        model: a `keras.Model` (Functional, Sequential or subclassed, possibly nested).
        name: a bare layer name, unique in the whole model, or a path such as `"outer/inner/conv"`
            whose last parts match the enclosing model names and the layer name.

    Returns:
        `(layer, path)`: the layer and the names of its enclosing models, outermost first.

    Example:
        >>> layer, path = find_layer(load_model("vgg16-hed"), "block4_conv3")
        >>> path
        ('vgg16',)
    """
    layer, models = resolve_layer(model, name)
    return layer, tuple(m.name for m in models)


def _unique_names(model):
    """Maps `id(layer)` to the shortest name suffix that identifies it in `model`."""
    keys = {}
    for models, layer in walk(model):
        keys.setdefault(id(layer), _key(models, layer))
    counts = collections.Counter(key[-length:] for key in keys.values() for length in range(1, len(key) + 1))
    names = {}
    for layer_id, key in keys.items():
        length = next((n for n in range(1, len(key) + 1) if counts[key[-n:]] == 1), len(key))
        names[layer_id] = "/".join(key[-length:])
    return names


def _is_visualizable(layer):
    if isinstance(layer, (keras.Model, keras.layers.InputLayer, Preprocess)):
        return False
    if isinstance(layer, VISUALIZABLE_TYPES):
        return True
    return not _is_keras_class(layer)


def _output_shape(layer):
    """The layer's output shape: from its first symbolic call (`layer.output`), else from its build shape."""
    try:
        return tuple(keras.tree.flatten(layer.output)[0].shape)
    except (AttributeError, ValueError):  # never called symbolically (a subclassed model's sublayer)
        pass
    build_shape = (layer.get_build_config() or {}).get("input_shape")
    if build_shape is None:
        return None
    try:
        shape = layer.compute_output_shape(build_shape)
    except (NotImplementedError, ValueError, TypeError):
        return None
    return tuple(shape) if all(isinstance(d, (int, type(None))) for d in shape) else None


def visualizable_layers(model):
    """The layers of `model` that produce features worth visualising, in forward order.

    Nested models are searched too. Conv-like, dense, activation, merge and pooling layers count;
    inputs, preprocessing, dropout, normalisation and reshaping layers do not, and neither do
    layers whose output is not a feature map (rank 4) or vector (rank 2).

    Returns:
        A list of `LayerInfo`.
    """
    names = _unique_names(model)
    infos, seen = [], set()
    for _, layer in walk(model):
        if id(layer) in seen or not _is_visualizable(layer):
            continue
        seen.add(id(layer))
        shape = _output_shape(layer)
        if shape is None or len(shape) not in (SPATIAL_RANK, VECTOR_RANK) or shape[-1] is None:
            continue
        infos.append(LayerInfo(names[id(layer)], int(shape[-1]), len(shape) == SPATIAL_RANK, type(layer).__name__))
    return infos
