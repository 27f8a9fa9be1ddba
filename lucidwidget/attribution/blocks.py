"""Lucid's building blocks: which channels of a layer fire on this image, where, and for what target.

- `contributions`: each unit's share of the target's score at a layer, activation times gradient
  (Lucid's linear approximation), or activation times the gradient averaged along the path from zero
  activations (`integrated=True`; then the shares add up to the score's change from zeroing the layer).
- `channel_attribution` sums them over positions `(N, C)`; `spatial_attribution` over channels
  `(N, h, w)`.
- `semantic_dictionary`: the top channels at each position, by activation or by contribution.
- `neuron_groups`: a non-negative matrix factorisation (scikit-learn's `NMF`) of a layer's activations
  into a few groups of channels, each a direction in activation space that `objectives.direction` renders.

Layer values are the layer's outputs, after its activation (the feature maps a CAM combines).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lucidwidget import checks
from lucidwidget.attribution.methods import DEFAULT_STEPS, path_points
from lucidwidget.optvis import objectives

DEFAULT_TOP = 4
"""Channels a semantic dictionary lists per position (Lucid's building blocks show four)."""

DEFAULT_GROUPS = 6
"""Neuron groups per factorisation (Lucid's building-blocks notebooks use six)."""

NMF_MAX_ITER = 1000
"""Iterations scikit-learn's NMF may take (its default is 200); it stops earlier once it converges."""


def contributions(explainer, images, target, layer, integrated=False, steps=DEFAULT_STEPS, batch_size=None):
    """Each unit's contribution to each image's score at `layer`: `(N, *layer shape)`.

    Args:
        images: prepared images (the model's view); target: a resolved `Target`.
        integrated: average the gradient along the straight path from zero activations to the layer's
            own (midpoint rule, `steps` points), so the contributions add up to the score minus the score
            with the layer's outputs zeroed. Defaults to False (the gradient at the image).
    """
    if not integrated:
        _, acts, grads = explainer.gradients(images, target, layer=layer, batch_size=batch_size)
        return acts * grads
    steps = checks.whole(steps, "steps", 1)
    alphas = path_points(steps)
    shares = []
    for i, image in enumerate(images):
        repeated = np.broadcast_to(image, (steps, *image.shape))
        _, acts, grads = explainer.gradients(repeated, target, np.full(steps, i), layer=layer, alpha=alphas,
                                             batch_size=batch_size)
        shares.append(acts[0] * grads.mean(axis=0))
    return np.stack(shares)


def channel_attribution(explainer, images, target, layer, integrated=False, steps=DEFAULT_STEPS,
                        batch_size=None):
    """Each channel's contribution summed over positions `(N, C)` (see `contributions`)."""
    values = contributions(explainer, images, target, layer, integrated, steps, batch_size)
    return values.reshape(len(values), -1, values.shape[-1]).sum(axis=1)


def spatial_attribution(explainer, images, target, layer, integrated=False, steps=DEFAULT_STEPS,
                        batch_size=None):
    """Each position's contribution summed over channels `(N, h, w)` at the layer's grid."""
    return contributions(explainer, images, target, layer, integrated, steps, batch_size).sum(axis=-1)


@dataclasses.dataclass(frozen=True)
class SemanticDictionary:
    """The top channels at each position of a layer.

    Attributes:
        layer: the layer's name.
        channels: int `(N, h, w, top)`, best first.
        values: float32 `(N, h, w, top)`: their activations, or their contributions to the target.
    """

    layer: str
    channels: np.ndarray
    values: np.ndarray

    def objectives(self, image, y, x):
        """`objectives.channel` for each top channel at row `y`, column `x` of image `image`, to render."""
        return [objectives.channel(self.layer, int(c)) for c in self.channels[image, y, x]]


def semantic_dictionary(layer, values, top=DEFAULT_TOP):
    """A `SemanticDictionary` from per-unit `values` `(N, h, w, C)` (activations or contributions)."""
    top = checks.whole(top, "top", 1)
    if top > values.shape[-1]:
        raise ValueError(f"Expected top <= {values.shape[-1]} (the channels of layer {layer!r}). Received: top={top}")
    order = np.argsort(-values, axis=-1, kind="stable")[..., :top]
    return SemanticDictionary(layer, order.astype(np.int32), np.take_along_axis(values, order, -1).astype(np.float32))


@dataclasses.dataclass(frozen=True)
class NeuronGroups:
    """Groups of channels that fire together on the images, found by NMF of a layer's activations.

    Attributes:
        layer: the layer's name.
        directions: float32 `(groups, C)`: each group's channel weights.
        maps: float32 `(N, h, w, groups)`: how much of each group every position holds.
    """

    layer: str
    directions: np.ndarray
    maps: np.ndarray

    @property
    def objectives(self):
        """One `objectives.direction(layer, weights)` per group, to render: `render(model, g.objectives[0])`."""
        return [objectives.direction(self.layer, vector) for vector in self.directions]


def neuron_groups(layer, acts, groups=DEFAULT_GROUPS, seed=0):
    """`NeuronGroups` from a spatial layer's activations `(N, h, w, C)`.

    Raises:
        ValueError: negative activations (NMF needs a layer after a ReLU), or too many groups.
    """
    from sklearn.decomposition import NMF

    groups = checks.whole(groups, "groups", 1)
    if groups > acts.shape[-1]:
        raise ValueError(f"Expected groups <= {acts.shape[-1]} (the channels of layer {layer!r}). Received: groups={groups}")
    if acts.min() < 0:
        raise ValueError(
            f"Neuron groups factorise non-negative activations; layer {layer!r} has values down to "
            f"{acts.min():.3g}: pick a layer after a ReLU. Received: layer={layer!r}"
        )
    flat = acts.reshape(-1, acts.shape[-1]).astype(np.float64)
    factorisation = NMF(n_components=groups, random_state=checks.whole(seed, "seed", 0), max_iter=NMF_MAX_ITER)
    maps = factorisation.fit_transform(flat).astype(np.float32)
    return NeuronGroups(layer, factorisation.components_.astype(np.float32), maps.reshape(*acts.shape[:-1], groups))
