"""What a model makes of one image, in a few numbers: its top outputs and a layer's top channels.

Both take an `Explainer` and images as `Explainer.prepare` reads them, and run its compiled passes, so a
new image, target or channel reuses them. The widget's explain panel and `lucidwidget explain
--top-channels` show these.

- `top_outputs`: a classifier's most likely classes (probabilities: the output layer's own when it ends
  in a softmax, else a softmax of its outputs); for a model whose output is a feature map (or one
  unit), the output layer's strongest channels by mean activation, said so in `note`.
- `top_channels`: a layer's channels ranked by their attribution to a target (activation times
  gradient, summed over positions) when the layer runs before the target's layers, else by mean
  activation on the image; both numbers are given where they exist.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lucidwidget import checks
from lucidwidget.attribution import blocks

DEFAULT_TOP = 8
"""Channels `top_channels` returns: a row of thumbnails in the widget, a short table on the command line."""

DEFAULT_TOP_OUTPUTS = 5
"""Classes `top_outputs` returns (ImageNet's customary top-5)."""

PROBABILITY_TOLERANCE = 1e-3
"""How far from 1 non-negative outputs may sum and still be read as a softmax's probabilities."""


@dataclasses.dataclass(frozen=True)
class Outputs:
    """A model's top outputs on one image.

    Attributes:
        layer: the output layer's name.
        indices: int `(top,)`, best first: classes, or channels of a feature-map output.
        values: float32 `(top,)`: probabilities, or mean activations for a feature map.
        kind: "probability" (the model's own softmax), "softmax" (a softmax of its outputs), "score"
            (outputs in [0, 1] that do not sum to 1, such as sigmoids, shown as they are) or "channel" (a
            feature-map output's mean activations).
        note: a sentence saying what the numbers are.
    """

    layer: str
    indices: np.ndarray
    values: np.ndarray
    kind: str
    note: str

    @property
    def classes(self):
        """True when the indices are classes (a class index is a target), False for channels."""
        return self.kind != "channel"


@dataclasses.dataclass(frozen=True)
class Channels:
    """A layer's top channels on one image.

    Attributes:
        layer: the layer's name.
        channels: int `(top,)`, best first.
        activations: float32 `(top,)`: each channel's mean activation (after its activation function).
        attributions: float32 `(top,)` or None: each channel's attribution to the target.
        ranked_by: "attribution" or "activation".
        note: a sentence saying how they were ranked.
    """

    layer: str
    channels: np.ndarray
    activations: np.ndarray
    attributions: np.ndarray | None
    ranked_by: str
    note: str


def _mean_per_channel(values):
    """(N, ..., C) -> (N, C): the mean over positions (a dense layer's values pass as they are)."""
    return values.reshape(len(values), -1, values.shape[-1]).mean(axis=1)


def _best(scores, top):
    return np.argsort(-scores, kind="stable")[:min(top, len(scores))]


def top_outputs(explainer, images, top=DEFAULT_TOP_OUTPUTS, *, size=None) -> Outputs:
    """The first image's top outputs (see the module docstring).

    Args:
        explainer: an `Explainer`.
        images: one image or a batch (only the first is read), as `Explainer.prepare` takes them.
        top: how many. Defaults to `DEFAULT_TOP_OUTPUTS` (5).
        size: as for `Explainer.prepare`. Defaults to None.
    """
    top = checks.whole(top, "top", 1)
    batch = explainer.prepare(images, size)
    layer = explainer.output_layer(batch.size)
    values = np.asarray(explainer.activations(batch.images[:1], layer)[0], np.float64)
    if values.ndim > 1 or values.size == 1:
        means = _mean_per_channel(values[None])[0]
        order = _best(means, top)
        shape = "a feature map" if values.ndim > 1 else "a single unit"
        note = (f"The output of model {explainer.model.name!r}, layer {layer!r}, is {shape}, not classes: its "
                "strongest channels on this image (mean activation).")
        return Outputs(layer, order.astype(np.int32), means[order].astype(np.float32), "channel", note)
    if values.min() >= 0 and abs(values.sum() - 1) <= PROBABILITY_TOLERANCE:
        kind, probabilities, note = "probability", values, f"Probabilities of layer {layer!r} (its softmax)."
    elif values.min() >= 0 and values.max() <= 1:
        kind, probabilities, note = "score", values, f"Outputs of layer {layer!r} (in [0, 1], not a softmax)."
    else:
        shifted = np.exp(values - values.max())
        kind, probabilities = "softmax", shifted / shifted.sum()
        note = f"Probabilities: a softmax of layer {layer!r}'s outputs."
    order = _best(probabilities, top)
    return Outputs(layer, order.astype(np.int32), probabilities[order].astype(np.float32), kind, note)


def top_channels(explainer, images, layer, target=None, top=DEFAULT_TOP, *, size=None) -> Channels:
    """The first image's top channels of `layer` (see the module docstring).

    Args:
        explainer: an `Explainer`.
        images: one image or a batch (only the first is read), as `Explainer.prepare` takes them.
        layer: a layer name.
        target: what the attribution explains (a class index, `"layer:channel"`, an expression or an
            `Objective`), or None to rank by activation. Defaults to None.
        top: how many. Defaults to `DEFAULT_TOP` (8).
        size: as for `Explainer.prepare`. Defaults to None.

    Raises:
        ValueError: an unknown layer or target (one sentence, with close matches).
    """
    top = checks.whole(top, "top", 1)
    batch = explainer.prepare(images, size)
    images = batch.images[:1]
    explainer.layer_shape(layer, batch.size)
    means = _mean_per_channel(np.asarray(explainer.activations(images, layer), np.float32))[0]
    attributions = None
    if target is not None:
        resolved = explainer.target(target, 1, batch.size)
        if _runs_before(explainer, resolved, batch.size, layer):
            attributions = blocks.channel_attribution(explainer, images, resolved, layer)[0].astype(np.float32)
    if attributions is None:
        order = _best(means, top)
        reason = "" if target is None else f" ({layer!r} does not run before the target's layers)"
        note = f"Channels of {layer!r} by mean activation on this image{reason}."
        return Channels(layer, order.astype(np.int32), means[order], None, "activation", note)
    order = _best(attributions, top)
    note = (f"Channels of {layer!r} by attribution to the target (activation times gradient, summed over "
            "positions).")
    return Channels(layer, order.astype(np.int32), means[order], attributions[order], "attribution", note)


def _runs_before(explainer, target, size, layer):
    """Whether the target depends on `layer` (it runs before every layer the target reads)."""
    try:
        explainer.layer_before(target, size, layer)
    except ValueError:
        return False
    return True
