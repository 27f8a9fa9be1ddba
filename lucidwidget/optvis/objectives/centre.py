"""`at_centre`: any objective read at the centre of the image, for one object in the middle.

Lucid's transparent visualisations optimise one neuron at the centre: a channel mean rewards features
everywhere, so when only a quarter of an RGBA image may be opaque it spreads fragments over the whole
tile. Reading every layer at its centre turns a channel into its centre neuron, DeepDream into the
centre position and a direction into its centre neuron, and does the same for any sum of them (an
expression), so one object in the middle carries the objective.
"""

from __future__ import annotations

from keras import ops

from lucidwidget.optvis.knobs import Knobbed
from lucidwidget.optvis.objectives.base import SPECIAL_INPUTS, Objective, units


def at_centre(objective):
    """`objective` with every spatial layer read at its centre.

    Each layer's activation map is replaced, at every position, by the mean of its middle cell (the
    middle two rows or columns of an even grid), so a mean over positions becomes the centre's value
    and a position (a neuron's `x`, `y`) reads the centre too. Shapes do not change, so the objective's
    checks still hold. The model input, the raw image and layers without a grid are read as they are.
    The knobs, per-item values and references are the objective's own, so a new channel or weight
    reuses the compiled step; a reference's photo activations are compared as they are, not centred.

    Args:
        objective: an `Objective`.

    Example:

    ```python
    obj = at_centre(channel("block5_conv1", 7)) - 1e3 * alpha_penalty(0.25)
    renderer.render(obj, param=functools.partial(param.image, alpha=True, alpha_prior=4))
    ```
    """
    if not isinstance(objective, Objective):
        raise TypeError(f"Expected an Objective to read at the centre. Received: objective={objective!r}")

    def fn(T, *arguments):
        return objective.fn(_Centre(T), *arguments)

    def items(T, *knobs):
        return objective._items(_Centre(T), *knobs)

    # The key holds the objective's structure without its references, which the result carries (and
    # `with_images` binds) itself.
    return Objective(fn, objective.knobs, key=("at_centre", Knobbed.signature.fget(objective)),
                     description=f"at_centre({objective.description})", layers=objective.layers,
                     checks=(objective.validate,), references=objective.references,
                     items=items if objective.has_items else None)


class _Centre:
    """`T` with every grid `(batch, height, width, ...)` replaced by the mean of its middle cells."""

    def __init__(self, T):
        self._T = T

    def __call__(self, name):
        return self._centre(name, self._T(name), 4)

    def units(self, name, index):
        return self._centre(name, units(self._T, name, index), 3 + len(getattr(index, "shape", ())))

    @staticmethod
    def _centre(name, values, grid_rank):
        if name in SPECIAL_INPUTS or len(values.shape) != grid_rank:
            return values
        height, width = values.shape[1], values.shape[2]
        middle = values[:, (height - 1) // 2:height // 2 + 1, (width - 1) // 2:width // 2 + 1]
        return ops.broadcast_to(ops.mean(middle, axis=(1, 2), keepdims=True), values.shape)
