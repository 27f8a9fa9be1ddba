"""Explain an image: which pixels, channels and positions make a target fire, on every Keras backend.

```python
import lucidwidget as lw

maps = lw.attribute(model, images, 3)                              # Grad-CAM of class 3, (N, H, W)
maps = lw.attribute(model, "cat.jpg", "block5_conv3:42", method="smoothgrad")
explainer = lw.Explainer(model)                                    # keeps the compiled passes
for label in range(10):
    maps = explainer.attribute(images, label)                      # one compile for all ten
shares = lw.channel_attribution(model, images, 3, "block5_conv3")  # (N, 512)
groups = lw.neuron_groups(model, images, "block5_conv3")
lw.render(model, groups.objectives[0])                             # what group 0 looks for
```

Targets go through the objective grammar: an int is a unit of the model's output layer read before
its activation (a class's pre-softmax logit), a string is `"layer:channel"` or an expression, and any
`Objective` works; give one for all images or one per image. Images are arrays `(N, H, W, C)` in
[0, 1] (uint8 accepted), or paths, PIL images or file bytes; see `images` for the size rules. Every
function takes a model (a `keras.Model`, a zoo name or a file) or an `Explainer`; for a model it keeps
one explainer per model and settings, so repeated calls reuse the compiled passes.
"""

from __future__ import annotations

import weakref

from lucidwidget.attribution import blocks, metrics
from lucidwidget.attribution.explainer import DEFAULT_BATCH_SIZE, Explainer
from lucidwidget.attribution.methods import METHODS, normalize

__all__ = [
    "DEFAULT_BATCH_SIZE", "METHODS", "Explainer", "NeuronGroups", "SemanticDictionary", "attribute",
    "channel_attribution", "deletion", "insertion", "neuron_groups", "normalize", "semantic_dictionary",
    "spatial_attribution",
]

NeuronGroups = blocks.NeuronGroups
SemanticDictionary = blocks.SemanticDictionary

_explainers = weakref.WeakKeyDictionary()
"""model -> {settings: Explainer}: the explainers the functions below keep, released with the model."""
_named = {}
"""zoo name or path -> {settings: Explainer}."""


def explainer(model, *, preprocess=None, inputs=None, preactivation=True):
    """The `Explainer` the functions use for `model`: `model` itself when it is one, else one kept per
    model and settings (`inputs` always gets a new one)."""
    if isinstance(model, Explainer):
        if preprocess is not None or inputs is not None or preactivation is not True:
            raise ValueError(
                "Settings belong to the Explainer itself: pass preprocess=, inputs= and preactivation= when "
                f"creating it. Received: preprocess={preprocess!r}, inputs={inputs!r}, preactivation={preactivation!r}"
            )
        return model
    if inputs is not None:
        return Explainer(model, preprocess=preprocess, inputs=inputs, preactivation=preactivation)
    key = (preprocess if isinstance(preprocess, str) or preprocess is None else ("id", id(preprocess)),
           bool(preactivation))
    store = _named.setdefault(model, {}) if isinstance(model, str) else _explainers.setdefault(model, {})
    if key not in store:
        store[key] = Explainer(model, preprocess=preprocess, preactivation=preactivation)
    return store[key]


def attribute(model, images, target, method="gradcam", *, preprocess=None, inputs=None, preactivation=True,
              size=None, **options):
    """Attribution maps: how much each pixel of each image counts for `target`.

    Args:
        model: a `keras.Model`, a zoo name, a model file, or an `Explainer`.
        images: an array `(N, H, W, C)` or `(H, W, C)` in [0, 1] (or uint8), or a path, PIL image or
            file bytes, or a list of them. The maps have the images' resolution: an array's own height
            and width (a fixed-size model sees it fitted, scaled to cover and centre-cropped, and the map
            is mapped back, 0 where the crop cut pixels off); files are loaded at `size`, else the
            model's size, else their own.
        target: a class index (a unit of the output layer, before its softmax), a `"layer:channel"`
            string, an expression, an `Objective`, or a list with one of these per image (of one kind,
            differing only in numbers).
        method: one of `METHODS`: "gradient", "smoothgrad", "integrated_gradients" (magnitudes: the
            maximum over the image's channels of the absolute value), "gradcam", "gradcam++", "scorecam"
            (CAMs, upsampled bilinearly). Defaults to "gradcam".
        preprocess, inputs, preactivation: the model's settings, as for `Explainer`.
        size: (height, width) or a side the model sees the images at, for a model that takes any size.
            Defaults to None (the model's fixed size, else the images' own).
        **options: for the method (unknown ones raise a `TypeError` listing the valid ones):
            `signed` (gradient family): return signed values per channel `(N, H, W, C)`. Defaults to False.
            `samples`, `noise`, `seed` (SmoothGrad): noisy copies (50), their standard deviation as a
                fraction of the image's value range (0.2), the noise's seed (0).
            `steps`, `baseline` (Integrated Gradients): path points (50) and the baseline: a number or
                an image (0.0: black).
            `layer` (CAMs): the layer whose feature maps are combined. Defaults to the last layer with a
                spatial grid, other than pooling, that runs before the target's layers.
            `top_n` (Score-CAM): keep the channels whose maps vary most (Faster Score-CAM). Defaults to all.
            `batch_size`: items (images, noisy copies, path points, masked inputs) per compiled call.

    Returns:
        float32 maps `(N, H, W)`, raw (not rescaled; see `normalize`), or `(N, H, W, C)` with `signed`.

    Example:
        >>> maps = lw.attribute(model, images, 3, method="gradcam")
        >>> maps = lw.attribute(model, images, [3, 5], method="integrated_gradients", steps=32)
    """
    chosen = explainer(model, preprocess=preprocess, inputs=inputs, preactivation=preactivation)
    return chosen.attribute(images, target, method, size=size, **options)


def _prepared(model, images, target, size, settings):
    chosen = explainer(model, **settings)
    batch = chosen.prepare(images, size)
    return chosen, batch, chosen.target(target, len(batch.images), batch.size)


def channel_attribution(model, images, target, layer, *, integrated=False, steps=blocks.DEFAULT_STEPS, size=None,
                        batch_size=None, **settings):
    """How much each channel of `layer` counts for `target` on each image: float32 `(N, C)`.

    Activation times the gradient of the image's score, summed over positions (Lucid's linear
    approximation; exact for a global-average-pool + dense head, where it equals the score's drop when
    the channel is zeroed). `integrated=True` averages the gradient along the path from zero
    activations (`steps` points), so the channels add up to the score minus its value with the layer
    zeroed. `layer` must run before the target's layers. `settings`: `preprocess`, `inputs`,
    `preactivation` as for `attribute`.
    """
    chosen, batch, resolved = _prepared(model, images, target, size, settings)
    layer = chosen.layer_before(resolved, batch.size, layer)
    return blocks.channel_attribution(chosen, batch.images, resolved, layer, integrated, steps, batch_size)


def spatial_attribution(model, images, target, layer, *, integrated=False, steps=blocks.DEFAULT_STEPS, size=None,
                        batch_size=None, **settings):
    """How much each position of a spatial `layer` counts for `target`: float32 `(N, h, w)` at the
    layer's grid (activation times gradient, summed over channels; `integrated` as in
    `channel_attribution`)."""
    chosen, batch, resolved = _prepared(model, images, target, size, settings)
    layer = chosen.layer_before(resolved, batch.size, layer, spatial=True)
    return blocks.spatial_attribution(chosen, batch.images, resolved, layer, integrated, steps, batch_size)


def semantic_dictionary(model, images, layer, *, top=blocks.DEFAULT_TOP, target=None, size=None, batch_size=None,
                        **settings):
    """The `top` channels at each position of a spatial `layer`, by activation, or by contribution to
    `target` when one is given: a `SemanticDictionary` (channels and values `(N, h, w, top)`;
    `.objectives(i, y, x)` renders them)."""
    chosen = explainer(model, **settings)
    batch = chosen.prepare(images, size)
    if target is None:
        values = chosen.activations(batch.images, chosen.spatial_layer(layer, batch.size), batch_size=batch_size)
    else:
        resolved = chosen.target(target, len(batch.images), batch.size)
        layer = chosen.layer_before(resolved, batch.size, layer, spatial=True)
        values = blocks.contributions(chosen, batch.images, resolved, layer, batch_size=batch_size)
    return blocks.semantic_dictionary(layer, values, top)


def neuron_groups(model, images, layer, *, groups=blocks.DEFAULT_GROUPS, seed=0, size=None, batch_size=None,
                  **settings):
    """Groups of channels of a spatial `layer` that fire together on `images` (NMF of its activations,
    scikit-learn): a `NeuronGroups` with each group's channel weights, its map on every image, and
    `.objectives`, one `objectives.direction` per group to render."""
    chosen = explainer(model, **settings)
    batch = chosen.prepare(images, size)
    acts = chosen.activations(batch.images, chosen.spatial_layer(layer, batch.size), batch_size=batch_size)
    return blocks.neuron_groups(layer, acts, groups, seed)


def deletion(model, images, target, maps, *, steps=metrics.DEFAULT_STEPS, baseline=0.0, size=None, batch_size=None,
             **settings):
    """Area under the Deletion curve for each image, float64 `(N,)` (xplique's definition; lower is
    better): see `lucidwidget.attribution.metrics`. `maps` are the images' maps at the model's view."""
    chosen, batch, resolved = _prepared(model, images, target, size, settings)
    return metrics.area(metrics.curves(chosen, batch.images, resolved, maps, "deletion", steps, baseline, batch_size))


def insertion(model, images, target, maps, *, steps=metrics.DEFAULT_STEPS, baseline=0.0, size=None, batch_size=None,
              **settings):
    """Area under the Insertion curve for each image, float64 `(N,)` (higher is better); see `deletion`."""
    chosen, batch, resolved = _prepared(model, images, target, size, settings)
    return metrics.area(metrics.curves(chosen, batch.images, resolved, maps, "insertion", steps, baseline, batch_size))
