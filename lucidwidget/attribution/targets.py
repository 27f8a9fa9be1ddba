"""What a map explains: a per-image score, built from the objective grammar.

A target is a class index, a `"layer:channel"` string, an expression or any `Objective`, for all images
or one per image. Objectives score a whole batch (a mean over it); attribution needs each image's own
score `f_i(x_i)`, so the objective's function is evaluated on each batch item as a batch of one (as an
objective's `batch=` index does) after one batched forward pass. In inference mode the items do not
interact, so the gradient of the sum of the scores with respect to item `i` is the gradient of `f_i`.

Per-image targets must share one structure (e.g. `channel("mixed4d", c)` for several `c`): their numbers
are stacked into per-item knobs, so a new class, channel or weight reuses the compiled function.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from keras import ops

from lucidwidget import checks
from lucidwidget.optvis import objectives
from lucidwidget.optvis.objectives.base import _BatchItem, activation, channel_check, leaf


@dataclasses.dataclass(frozen=True)
class Target:
    """One objective structure and each image's knob values.

    Attributes:
        template: the objective whose `fn` scores every image (the first image's objective).
        knobs: one array per knob of `template`, shaped `(images, *knob shape)`.
        objectives: each image's objective (for validation and descriptions).
        output_layer: for class-index targets, the layer whose unit is the class (read before its
            activation); else None.
        classes: for class-index targets, each image's class as an int array; else None.
    """

    template: objectives.Objective
    knobs: tuple
    objectives: tuple
    output_layer: str | None = None
    classes: np.ndarray | None = None

    @property
    def signature(self):
        return self.template.signature

    @property
    def layers(self):
        """The model layers the score reads."""
        return self.template.layers

    @property
    def description(self):
        texts = sorted({objective.description for objective in self.objectives})
        return texts[0] if len(texts) == 1 else f"{len(self.objectives)} per-image targets"

    def item_knobs(self, index):
        """The knob arrays for batch items that score images `index` (an int array)."""
        return [knob[index] for knob in self.knobs]

    def validate(self, shapes):
        """Raises the objectives' own `ValueError` (a channel or class out of range, a missing layer)."""
        for objective in self.objectives:
            objective.validate(shapes, 1)

    def scores(self, T, knobs, count):
        """Each batch item's score, `(count,)` float32: the template's function on item `i` (a batch of
        one) with item `i`'s knobs."""
        values = []
        for i in range(count):
            item = _BatchItem(T, np.array([i], np.int32))
            value = self.template.fn(item, *[ops.take(knob, i, axis=0) for knob in knobs])
            values.append(ops.reshape(ops.cast(value, "float32"), ()))
        return ops.stack(values)

    def probability(self):
        """For a class-index target, the same classes read as softmax probabilities over the output
        layer's units (Score-CAM's and the deletion metric's score); else None."""
        if self.classes is None:
            return None
        return _stack([class_probability(self.output_layer, int(c)) for c in self.classes], self.output_layer,
                      self.classes)


def class_probability(layer, label):
    """The softmax probability of unit `label` of `layer` (its units read as logits)."""

    def compute(T, label):
        return ops.mean(ops.take(ops.softmax(activation(T, layer), axis=-1), label, axis=-1))

    return leaf("class_probability", [layer], compute, [label], description=f"probability {layer}:{label}",
                checks=[channel_check(layer, label, "label")])


def resolve(spec, count, layer_names, output_layer):
    """`spec` as a `Target` for `count` images.

    Args:
        spec: an int (a unit of `output_layer`: a class), a `"layer:channel"` string or expression, an
            `Objective`, or a list/array of them with one per image.
        count: the number of images.
        layer_names: the model's layer names, so expressions need no quotes around odd names.
        output_layer: the name of the layer a class index reads (called only for int targets).

    Raises:
        ValueError: a per-image list of the wrong length, or of targets with different structures.
        TypeError: a target of another type.
    """
    several = isinstance(spec, (list, tuple)) or (isinstance(spec, np.ndarray) and spec.ndim > 0)
    specs = list(spec) if several else [spec] * count
    if several and len(specs) != count:
        raise ValueError(
            f"Expected one target, or one per image ({count}). Received: len(target)={len(specs)}"
        )
    if not specs:
        raise ValueError("Expected a target. Received: target=[]")
    classes = [checks.is_whole(s) for s in specs]
    if any(classes) and not all(classes):
        raise ValueError(
            "Expected per-image targets of one kind: all class indices, or all objectives. "
            f"Received: target={spec!r}"
        )
    if all(classes):
        layer = output_layer()
        labels = np.array([checks.whole(s, "target", 0) for s in specs], np.int32)
        return _stack([objectives.class_logit(layer, int(c)) for c in labels], layer, labels)
    return _stack([_objective(s, layer_names) for s in specs])


def _objective(spec, layer_names):
    if isinstance(spec, (str, objectives.Objective)):
        return objectives.as_objective(spec, layer_names)
    raise TypeError(
        "Expected a target: a class index (int), a 'layer:channel' string, an objective expression or an "
        f"Objective. Received: target={spec!r}"
    )


def _stack(items, output_layer=None, classes=None):
    template = items[0]
    for other in items[1:]:
        if other.signature != template.signature:
            raise ValueError(
                "Per-image targets must differ only in their numbers (class, channel, weights), so that one "
                f"compiled function serves them all. Received: targets {template.description!r} and "
                f"{other.description!r}"
            )
    knobs = tuple(np.stack([item.knobs[j] for item in items]) for j in range(len(template.knobs)))
    return Target(template, knobs, tuple(items), output_layer, classes)
