"""The feature objectives: units, layers, directions in activation space, and batch-wide terms.

Every objective here is "higher is better" and added; the conventions shared with the penalties are
in the package docstring (`lucidwidget.optvis.objectives`).
"""

from __future__ import annotations

import numpy as np
from keras import ops

from lucidwidget import checks
from lucidwidget.optvis.objectives.base import (
    activation,
    batch_size_check,
    channel_check,
    check_in_range,
    check_layer_name,
    layer_shape,
    leaf,
    per_item_mean,
    require_grid,
    units,
)

COSSIM_FLOOR = 0.1
"""Lucid floors the cosine at 0.1 before raising it to `cossim_pow`, so anti-aligned activations still
get a gradient pushing them towards the direction."""

COSSIM_EPSILON = 1e-4
"""Added inside vector norms so a cosine stays finite, with a defined gradient, where activations are 0."""

GRAM_EPSILON = 1e-10
"""Floor on a Gram matrix's squared norm when `diversity` normalises it (an all-zero Gram stays 0)."""

ALIGNMENT_MAX_DISTANCE = 4
"""`alignment` compares each batch item with the next four, as Lucid does."""


def _grid_point(acts, layer, kind, has_x, has_y, position):
    """Activations at one grid position, `(B, H, W, C) -> (B, C)`; a missing x or y means the centre."""
    require_grid(tuple(acts.shape[1:]), layer, kind)
    x = position[0] if has_x else acts.shape[2] // 2
    y = position[-1] if has_y else acts.shape[1] // 2
    return ops.take(ops.take(acts, y, axis=1), x, axis=1)


def _position(x, y):
    """Checked `x` and `y`, the knobs of those given, and the position as text for a description."""
    x = None if x is None else checks.whole(x, "x", 0)
    y = None if y is None else checks.whole(y, "y", 0)
    text = f"x={'centre' if x is None else x}, y={'centre' if y is None else y}"
    return x, y, [v for v in (x, y) if v is not None], text


def _grid_check(layer, kind, x, y):
    def check(shapes, batch):
        shape = layer_shape(shapes, layer)
        require_grid(shape, layer, kind)
        if shape is None:
            return
        height, width = shape[0], shape[1]
        where = f" (its grid is {height}x{width}, height x width)"
        if x is not None:
            check_in_range("x", x, width, layer, where)
        if y is not None:
            check_in_range("y", y, height, layer, where)

    return check


def neuron(layer, n_channel, x=None, y=None, batch=None):
    """Visualise a single neuron: one channel at one spatial position.

    Args:
        layer: layer name.
        n_channel: channel index.
        x: column of the neuron. Defaults to the centre of the layer's grid.
        y: row of the neuron. Defaults to the centre of the layer's grid.
        batch: index of the batch item to optimise. Defaults to `None` (all items).
    """
    layer = check_layer_name(layer)
    n_channel = checks.whole(n_channel, "n_channel", 0)
    x, y, position, where = _position(x, y)
    has_x, has_y = x is not None, y is not None

    def compute(T, channel, *position):
        plane = units(T, layer, ops.reshape(channel, (1,)))
        return ops.mean(_grid_point(plane, layer, "neuron", has_x, has_y, position))

    return leaf("neuron", [layer], compute, [n_channel, *position], batch=batch, structure=(has_x, has_y),
                description=f"neuron {layer}:{n_channel} at {where}",
                checks=[channel_check(layer, n_channel), _grid_check(layer, "neuron", x, y)])


def _unit_mean(layer, index, arg, noun, kind, batch):
    """Mean of one unit of the last axis: a channel of a conv layer, a logit of a dense layer; a list of
    units is one per batch item (`_unit_per_item`)."""
    layer = check_layer_name(layer)
    if isinstance(index, (list, tuple, np.ndarray)):
        if batch is not None:
            raise TypeError(f"A list of {noun}s already gives one per batch item; leave `batch` out. "
                            f"Received: batch={batch!r}")
        return _unit_per_item(layer, index, arg, noun, kind)
    index = checks.whole(index, arg, 0)

    def compute(T, index):
        return ops.mean(units(T, layer, index))

    return leaf("unit_mean", [layer], compute, [index], batch=batch, description=f"{kind} {layer}:{index}",
                checks=[channel_check(layer, index, noun)])


MAX_DESCRIBED_UNITS = 8
"""A per-item objective's description lists at most this many units, then how many more."""


def _unit_per_item(layer, indices, arg, noun, kind):
    """One unit per batch item: item i's value is unit `indices[i]` averaged over its positions, and the
    objective is their sum, Lucid's `sum(channel(layer, c, batch=i))` in one term."""
    values = list(np.asarray(indices).reshape(-1)) if isinstance(indices, np.ndarray) else list(indices)
    if not values:
        raise ValueError(f"Expected at least one {noun} in the list. Received: {arg}={indices!r}")
    values = np.asarray([checks.whole(value, arg, 0) for value in values], np.int32)
    count = len(values)

    def mine(T, index):
        plane = units(T, layer, index)                       # (batch, ..., units): every item's units
        means = ops.mean(plane, axis=tuple(range(1, len(plane.shape) - 1))) if len(plane.shape) > 2 else plane
        return ops.sum(means * ops.eye(count), axis=-1)       # item i's own unit

    def compute(T, index):
        return ops.sum(mine(T, index))

    def check(shapes, batch):
        if batch != count:
            raise ValueError(f"Expected one {noun} per batch item: {count} {noun}s for batch={batch}. "
                             f"Received: batch={batch}")
        shape = layer_shape(shapes, layer)
        if shape is not None:
            for value in values:
                check_in_range(noun, int(value), shape[-1], layer)

    shown = ", ".join(str(v) for v in values[:MAX_DESCRIBED_UNITS])
    more = f", ... ({count} in all)" if count > MAX_DESCRIBED_UNITS else ""
    return leaf("unit_per_item", [layer], compute, [values], items=mine, checks=[check],
                description=f"{kind} {layer}:[{shown}{more}] (one per batch item)")


def channel(layer, n_channel, batch=None):
    """Visualise a channel: its activation averaged over every spatial position.

    With a list of channels, batch item i visualises channel `n_channel[i]` (Lucid's
    `sum(channel(layer, c, batch=i) for i, c in enumerate(channels))`): the value is the sum of each
    item's own channel mean, so each item's gradient is exactly that of rendering it alone, and
    `Objective.per_item` gives each item's value. The list is one knob: another list of the same
    length (the next chunk of a layer's channels) reuses the compiled step.

    Args:
        layer: layer name.
        n_channel: channel index, or a list of one channel index per batch item.
        batch: index of the batch item to optimise. Defaults to `None` (all items).

    Example:

    ```python
    images = renderer.render(channel("block4_conv3", [0, 1, 2, 3]), batch=4, seed=[10, 11, 12, 13])
    values = renderer.evaluate(channel("block4_conv3", [0, 1, 2, 3]), images, per_item=True)
    ```
    """
    return _unit_mean(layer, n_channel, "n_channel", "channel", "channel", batch)


def class_logit(layer, label, batch=None):
    """Visualise a class: the value of unit `label` of a layer, e.g. the pre-softmax logit of `predictions`.

    On a spatial layer this is the same as `channel`.

    Args:
        layer: layer name, typically the classifier head read before its softmax.
        label: class index, or a list of one class index per batch item (as for `channel`).
        batch: index of the batch item to optimise. Defaults to `None` (all items).
    """
    return _unit_mean(layer, label, "label", "label", "class_logit", batch)


def _layer_mean(layer, kind, square, batch):
    layer = check_layer_name(layer)

    def compute(T):
        acts = activation(T, layer)
        return ops.mean(ops.square(acts) if square else acts)

    return leaf(kind, [layer], compute, batch=batch, description=f"{kind} {layer}")


def deepdream(layer, batch=None):
    """DeepDream: the mean of the squared activations of a whole layer, amplifying whatever it sees.

    Args:
        layer: layer name.
        batch: index of the batch item to optimise. Defaults to `None` (all items).
    """
    return _layer_mean(layer, "deepdream", True, batch)


def layer(layer, batch=None):
    """The mean activation of a whole layer (unsquared; `deepdream` squares it first).

    Args:
        layer: layer name.
        batch: index of the batch item to optimise. Defaults to `None` (all items).
    """
    return _layer_mean(layer, "layer", False, batch)


def _dot_cossim(acts, vec, cossim_pow):
    """Mean of `dot(acts, vec) * max(0.1, cossim(acts, vec)) ** cossim_pow` over all positions.

    `vec` is one vector for every position (shape `(channels,)`) or one per position (any shape that
    broadcasts against `acts`, e.g. a reference image's activations). With `cossim_pow = 0` this is the
    plain dot product; larger powers favour activations pointing the same way as `vec` over ones that
    are merely large.
    """
    dot = ops.sum(acts * vec, axis=-1)
    acts_norm = ops.sqrt(ops.sum(ops.square(acts), axis=-1) + COSSIM_EPSILON**2)
    vec_norm = ops.sqrt(ops.sum(ops.square(vec), axis=-1) + COSSIM_EPSILON**2)
    cossim = ops.maximum(COSSIM_FLOOR, dot / (acts_norm * vec_norm))
    return ops.mean(dot * ops.power(cossim, cossim_pow))


def _check_vector(vec):
    array = np.asarray(vec)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"Expected a 1-D vector of numbers, one per channel. Received: vec={vec!r}")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or not np.any(array):
        raise ValueError(f"Expected a finite, non-zero direction vector. Received: vec={vec!r}")
    return array


def _vector_check(layer, vec):
    def check(shapes, batch):
        shape = layer_shape(shapes, layer)
        if shape is not None and shape[-1] != vec.size:
            raise ValueError(
                f"Expected a direction vector of length {shape[-1]} (the channels of layer {layer!r}). "
                f"Received: len(vec)={vec.size}"
            )

    return check


def _direction(layer, vec, batch, cossim_pow, description):
    layer = check_layer_name(layer)
    vec = _check_vector(vec)
    cossim_pow = checks.real(cossim_pow, "cossim_pow", 0)
    suffix = f" (cossim_pow={cossim_pow:g})" if cossim_pow else ""

    def compute(T, vec, cossim_pow):
        return _dot_cossim(activation(T, layer), vec, cossim_pow)

    return leaf("direction", [layer], compute, [vec, cossim_pow], batch=batch,
                description=description + suffix, checks=[_vector_check(layer, vec)])


def direction(layer, vec, batch=None, cossim_pow=0):
    """Visualise a direction in activation space: the dot product with `vec` at every position, averaged.

    Args:
        layer: layer name.
        vec: one weight per channel of the layer.
        batch: index of the batch item to optimise. Defaults to `None` (all items).
        cossim_pow: how strongly to reward pointing the same way as `vec` rather than being large.
            Defaults to 0 (plain dot product).
    """
    return _direction(layer, vec, batch, cossim_pow, f"direction {layer}")


def random_direction(layer, channels, seed=0, batch=None, cossim_pow=0):
    """`direction` along a seeded random unit vector: a look at what mixtures of channels encode.

    Args:
        layer: layer name.
        channels: number of channels of the layer (the vector's length).
        seed: picks the vector; the same seed always gives the same direction. Defaults to 0.
        batch: index of the batch item to optimise. Defaults to `None` (all items).
        cossim_pow: see `direction`. Defaults to 0.
    """
    channels = checks.whole(channels, "channels", 1)
    seed = checks.whole(seed, "seed", 0)
    vec = np.random.default_rng(seed).standard_normal(channels)
    return _direction(layer, vec / np.linalg.norm(vec), batch, cossim_pow,
                      f"random_direction {layer} (seed {seed})")


def direction_neuron(layer, vec, x=None, y=None, batch=None, cossim_pow=0):
    """`direction` at a single spatial position instead of averaged over all of them.

    Args:
        layer: layer name.
        vec: one weight per channel of the layer.
        x: column. Defaults to the centre of the layer's grid.
        y: row. Defaults to the centre of the layer's grid.
        batch: index of the batch item to optimise. Defaults to `None` (all items).
        cossim_pow: see `direction`. Defaults to 0.
    """
    layer = check_layer_name(layer)
    vec = _check_vector(vec)
    cossim_pow = checks.real(cossim_pow, "cossim_pow", 0)
    x, y, position, where = _position(x, y)
    has_x, has_y = x is not None, y is not None

    def compute(T, vec, cossim_pow, *position):
        point = _grid_point(activation(T, layer), layer, "direction_neuron", has_x, has_y, position)
        return _dot_cossim(point, vec, cossim_pow)

    return leaf("direction_neuron", [layer], compute, [vec, cossim_pow, *position], batch=batch,
                structure=(has_x, has_y), description=f"direction_neuron {layer} at {where}",
                checks=[_vector_check(layer, vec), _grid_check(layer, "direction_neuron", x, y)])


def gram(acts):
    """The Gram matrix of a layer's channels, averaged over positions: `(B, ..., C) -> (B, C, C)`.

    What a layer's features occur together, wherever they are: Gatys et al.'s "style" of an image,
    normalised by the number of positions as Lucid's `gram_style` is, so it does not grow with the size.
    """
    flat = ops.reshape(acts, (acts.shape[0], -1, acts.shape[-1]))
    return ops.matmul(ops.transpose(flat, (0, 2, 1)), flat) / flat.shape[1]


def diversity(layer):
    """Encourage the images of a batch to differ in style: add it, `obj + w * diversity(layer)`.

    Each image's Gram matrix of the layer's channels (its "style") is flattened and normalised; the
    value is minus the mean cosine similarity over all pairs of distinct images, in [-1, 1] (Lucid's
    diversity divided by batch - 1, so its weight does not depend on the batch size). Needs batch >= 2.

    Args:
        layer: layer name.
    """
    layer = check_layer_name(layer)

    def compute(T):
        acts = activation(T, layer)
        count = acts.shape[0]
        grams = ops.reshape(gram(acts), (count, -1))
        grams = grams / ops.sqrt(ops.maximum(ops.sum(ops.square(grams), axis=1, keepdims=True), GRAM_EPSILON))
        similarity = ops.matmul(grams, ops.transpose(grams))
        pairs = max(count * (count - 1), 1)  # a batch of one has no pairs, and scores 0
        return -(ops.sum(similarity) - ops.trace(similarity)) / pairs

    return leaf("diversity", [layer], compute, description=f"diversity {layer}",
                checks=[batch_size_check("diversity")], items=False)


def alignment(layer, decay_ratio=2):
    """Encourage neighbouring images of a batch to look alike (for interpolations): add it.

    Minus the sum, over pairs of batch items at most four apart, of the mean squared difference of
    their activations, each divided by `decay_ratio ** distance`. Needs batch >= 2.

    Args:
        layer: layer name.
        decay_ratio: how much less pairs further apart count. Defaults to 2.
    """
    layer = check_layer_name(layer)
    decay_ratio = checks.real(decay_ratio, "decay_ratio", 0, exclusive=True)

    def compute(T, decay_ratio):
        acts = activation(T, layer)
        total = ops.zeros(())
        for distance in range(1, min(ALIGNMENT_MAX_DISTANCE, acts.shape[0] - 1) + 1):
            gaps = per_item_mean(ops.square(acts[distance:] - acts[:-distance]))
            total = total + ops.sum(gaps) / ops.power(decay_ratio, float(distance))
        return -total

    return leaf("alignment", [layer], compute, [decay_ratio], description=f"alignment {layer}",
                checks=[batch_size_check("alignment")], items=False)


def channel_interpolate(layer1, n_channel1, layer2, n_channel2):
    """Interpolate between two channels across the batch.

    Batch item `i` of `B` maximises `(1 - t) * channel1 + t * channel2` with `t = i / (B - 1)`: the
    first image shows channel 1, the last channel 2. Averaged over the batch (Lucid sums). Needs
    batch >= 2; add `alignment` to keep neighbouring images alike.

    Args:
        layer1: layer of the first channel.
        n_channel1: first channel index.
        layer2: layer of the second channel.
        n_channel2: second channel index.
    """
    layer1, layer2 = check_layer_name(layer1), check_layer_name(layer2)
    n_channel1 = checks.whole(n_channel1, "n_channel1", 0)
    n_channel2 = checks.whole(n_channel2, "n_channel2", 0)

    def compute(T, channel1, channel2):
        first = per_item_mean(units(T, layer1, channel1))
        second = per_item_mean(units(T, layer2, channel2))
        count = first.shape[0]
        t = ops.convert_to_tensor(np.arange(count, dtype=np.float32) / max(count - 1, 1))
        return ops.mean((1.0 - t) * first + t * second)

    return leaf("channel_interpolate", [layer1, layer2], compute, [n_channel1, n_channel2],
                description=f"channel_interpolate {layer1}:{n_channel1} -> {layer2}:{n_channel2}",
                checks=[channel_check(layer1, n_channel1), channel_check(layer2, n_channel2),
                        batch_size_check("channel_interpolate")], items=False)


def _mask_check(layer, mask):
    def check(shapes, batch):
        shape = layer_shape(shapes, layer)
        if shape is not None and tuple(shape) != mask.shape:
            raise ValueError(
                f"Expected a feature mask of shape {tuple(shape)} (one example of layer {layer!r}). "
                f"Received: mask.shape={mask.shape}"
            )

    return check


def feature_mask(layer, mask, batch=None):
    """The MEAN activation of the units a binary mask selects (cnnpref's "units chosen by a feature mask").

    Args:
        layer: layer name.
        mask: 0/1 array with the shape of one example of the layer, e.g. `(14, 14, 512)` or `(1000,)`;
            1 marks a target unit. At least one unit must be selected.
        batch: index of the batch item to optimise. Defaults to `None` (all items).
    """
    layer = check_layer_name(layer)
    array = np.asarray(mask)
    if array.ndim == 0 or not np.isin(array, (0, 1)).all():
        raise ValueError(f"Expected a binary (0/1) mask array. Received: mask={mask!r}")
    if not array.any():
        raise ValueError("Expected a mask that selects at least one unit. Received: a mask of zeros")
    array = array.astype(np.float32)

    def compute(T, mask):
        acts = activation(T, layer)
        selected_units = acts.shape[0] * ops.sum(mask)
        return ops.sum(acts * mask) / selected_units

    return leaf("feature_mask", [layer], compute, [array], batch=batch,
                description=f"feature_mask {layer} ({int(array.sum())} units)", checks=[_mask_check(layer, array)])

