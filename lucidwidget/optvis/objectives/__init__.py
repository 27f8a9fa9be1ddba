"""Objectives: what a visualisation maximises (Lucid's `optvis.objectives`).

An objective scores the activations of a batch of images; the renderer makes it grow. Objectives
combine linearly and may mix layers freely:

```python
obj = channel("block4_conv3", 42) - 0.5 * channel("block5_conv1", 7) - 1e-3 * total_variation()
```

Conventions shared by the whole package:
- Higher is better. Penalties (`total_variation`, `L1`, `L2`, `Lp`, `blur_input_each_step`,
  `alpha_penalty`) return a positive amount to reduce, so they are subtracted; `diversity` and
  `alignment` are already "higher is better" and are added.
- Values are averaged over the batch, so weights mean the same at any batch size. `batch=i` scores
  only batch item `i` instead.
- Every number a user may change (channel, position, weight, direction vector) is a knob: a new value
  reuses the compiled step. Positions follow the image: `x` is the column, `y` the row. (Lucid indexes
  `layer[:, x, y]`, i.e. its `x` is the row.)
- Objectives are written with `keras.ops`, so they run on every Keras backend.

Objectives that compare with a photo (`caricature`, `content`, `style`) hold a `Reference`; the renderer
computes its activations at the render's size and feeds them to the compiled step like knobs, so a new
photo never retraces. Without an image they compare with the caller's (`Objective.with_images`).

Modules: `base` (the `Objective` class, its algebra, `wrap_objective` and the helpers objectives are
built from), `library` (the feature objectives), `reference` (objectives that compare with a photo),
`penalties` (the terms to subtract), `centre` (`at_centre`: any objective read at the centre of the
image) and `expression` (the parser behind `as_objective`).
"""

from lucidwidget.optvis.objectives.base import Objective, units, wrap_objective
from lucidwidget.optvis.objectives.centre import at_centre
from lucidwidget.optvis.objectives.expression import as_objective
from lucidwidget.optvis.objectives.library import (
    alignment,
    channel,
    channel_interpolate,
    class_logit,
    deepdream,
    direction,
    direction_neuron,
    diversity,
    feature_mask,
    layer,
    neuron,
    random_direction,
)
from lucidwidget.optvis.objectives.penalties import L1, L2, Lp, alpha_penalty, blur_input_each_step, total_variation
from lucidwidget.optvis.objectives.reference import Reference, caricature, content, style

__all__ = [
    "L1", "L2", "Lp", "Objective", "Reference", "alignment", "alpha_penalty", "as_objective",
    "at_centre", "blur_input_each_step", "caricature", "channel", "channel_interpolate", "class_logit", "content", "deepdream",
    "direction", "direction_neuron", "diversity", "feature_mask", "layer", "neuron", "random_direction", "style",
    "total_variation", "units", "wrap_objective",
]
