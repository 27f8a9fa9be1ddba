"""Objectives that compare the render with a photo: caricature (feature inversion), content and style.

Each one holds a `Reference`: an image and what the objective needs of it, its activations at a layer
or a statistic of them (a Gram matrix). Those exist only once the model and the render's size are
known, so the renderer resolves them before compiling: it fits the images to the render's size (scaled
to cover it and centre-cropped), runs them through the same activation tap as the render (same
preprocessing, same pre-activation setting) and passes the values to the compiled step as arguments
after the knobs. Their shapes follow from the layer and the size, never from the photo, so a new photo
of any size reuses the compiled step.

An objective built without an image refers to the caller's image by a slot name: "image" for
`caricature` and `content`, "style" for `style`. `Objective.with_images(image=..., style=...)` binds
them; the expression `caricature(block4_conv3)` is such an objective, bound by whoever supplies the
image (the widget, the command line's `--image`).
"""

from __future__ import annotations

from keras import ops

from lucidwidget import checks, imaging
from lucidwidget.optvis.objectives.base import activation, check_layer_name, item_axes, layer_shape, leaf
from lucidwidget.optvis.objectives.library import _dot_cossim, gram

IMAGE_SLOT = "image"
"""The caller's image: what `caricature` and `content` compare with when given no image."""

STYLE_SLOT = "style"
"""The caller's style image: what `style` compares with when given no image."""

CARICATURE_COSSIM_POW = 4.0
"""`caricature`'s default power of the cosine. On vgg16-hed, chelsea at 128 px, block4_conv3, seed 0, 256
steps, the render's block4_conv3 activations (each channel's spatial mean removed) correlated with the
photo's 0.60 at power 0 (the plain dot product), 0.70 at 1, 0.77 at 2 and 0.85 at 4; with the "fast"
schedule (192 steps) 0.76, 0.83 and 0.86 at 2, 4 and 8. The same render's correlation with another photo
(coffee) stayed 0.21-0.30. At 4 the cat's eyes, nose and fur are plain to see; 8 adds little."""

STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
"""`style`'s layers when none are named: the first convolution of each of VGG16's five blocks, Gatys et
al.'s choice, and layers of the default model `vgg16-hed`. Name a model's own layers for another one."""

SCALE_FLOOR = 1e-12
"""Floor on a reference's squared norm in the relative errors, so an all-zero reference stays finite."""


class Reference:
    """An image an objective compares with, and the layer whose activations it needs.

    Args:
        layer: the layer whose activations of the images the objective reads.
        images: one image or several (one per rendered image) as anything `imaging.read_images` reads:
            file paths, PIL images, file bytes or arrays in [0, 1]. Defaults to None: the caller's image
            in `slot`, bound later with `Objective.with_images`.
        slot: the caller's image this stands for while `images` is None. Defaults to "image".
        statistic: a function of the activations `(N, ..., C)` computed once per render (e.g. `gram`),
            so the step receives its value rather than the raw activations. Defaults to None (the
            activations themselves).
    """

    def __init__(self, layer, images=None, *, slot=IMAGE_SLOT, statistic=None):
        self.layer = check_layer_name(layer)
        self.slot = slot
        self.statistic = statistic
        self.source = images
        self.images = None if images is None else tuple(imaging.read_images(images))

    @property
    def count(self):
        """How many images it holds; None until it has them."""
        return None if self.images is None else len(self.images)

    @property
    def signature(self) -> tuple:
        """What shapes the value in the compiled step: the layer, the statistic, the image count."""
        return ("reference", self.layer, self.statistic, self.count)

    def bound(self, images):
        """This reference with `images` when it has none yet (a new `Reference`), else itself."""
        if images is None or self.images is not None:
            return self
        return Reference(self.layer, images, slot=self.slot, statistic=self.statistic)

    def value(self, activations):
        """What the compiled step receives: the statistic of the images' activations, as float32."""
        activations = ops.cast(activations, "float32")
        return activations if self.statistic is None else self.statistic(activations)


def resolve(objective, size, channels, activations) -> list:
    """The values of `objective.references` for a render of `size`, in order.

    Args:
        objective: the `Objective`.
        size: (height, width) of the images the model sees.
        channels: the model's image channels (1 or 3; photos are converted to it).
        activations: `activations(images, layers) -> {layer: tensor}` for a float32 batch in [0, 1];
            the renderer's tap with its preprocessing. Called once per distinct set of images.
    """
    groups = {}
    for reference in objective.references:
        if reference.images is None:
            raise ValueError(
                f"No {reference.slot!r} image was given for the objective {objective.description}: pass image= "
                f"when building it, or bind one with `objective.with_images({reference.slot}=...)`. "
                f"Received: {reference.slot}=None"
            )
        # References made from one source (a style's layers, one `with_images` call) share one pass.
        groups.setdefault(id(reference.source), (reference.images, set()))[1].add(reference.layer)
    if groups and channels not in (1, 3):
        raise ValueError(
            f"The objective {objective.description} compares with photos, which are grey or RGB, so it needs a "
            f"model that takes 1 or 3 channels. Received: channels={channels}"
        )
    values = {}
    for key, (images, layers) in groups.items():
        batch = imaging.load_images(list(images), size=size, channels=channels)
        values[key] = activations(batch, layers)
    return [reference.value(values[id(reference.source)][reference.layer]) for reference in objective.references]


def _grid_check(layer, kind):
    def check(shapes, batch):
        shape = layer_shape(shapes, layer)
        if shape is not None and len(shape) != 3:
            raise ValueError(
                f"{kind} compares spatial activations (height, width, channels), but layer {layer!r} has "
                f"per-example shape {tuple(shape)}. Received: layer={layer!r}"
            )

    return check


def _relative_error(x, reference):
    """`|x - reference|² / |reference|²` per batch item, averaged: 0 for a match, 1 for all zeros."""
    error = ops.sum(ops.square(x - reference), axis=item_axes(x))
    scale = ops.sum(ops.square(reference), axis=item_axes(reference))
    return ops.mean(error / ops.maximum(scale, SCALE_FLOOR))


def caricature(layer, *, image=None, cossim_pow=CARICATURE_COSSIM_POW):
    """Feature inversion (Lucid's caricature): an image whose activations point the photo's way, only more.

    At every position of `layer`, the dot product of the render's activation vector with the photo's,
    times their cosine similarity (floored at 0.1) to the power `cossim_pow`, averaged. Rendered from
    noise, the picture shows what the layer keeps of the photo, exaggerated. Lucid's `dot_compare`.

    Args:
        layer: layer name, e.g. "block4_conv3".
        image: the photo (a path, PIL image, bytes or array in [0, 1]; several for a batch, one per
            image). Defaults to None: the caller's image (slot "image"; see `Objective.with_images`).
        cossim_pow: how strongly to reward pointing the photo's way rather than being large: 0 is the
            plain dot product. Defaults to `CARICATURE_COSSIM_POW` (4).
    """
    layer = check_layer_name(layer)
    cossim_pow = checks.real(cossim_pow, "cossim_pow", 0)
    reference = Reference(layer, image, slot=IMAGE_SLOT)

    def compute(T, cossim_pow, reference_acts):
        return _dot_cossim(activation(T, layer), reference_acts, cossim_pow)

    suffix = f", cossim_pow={cossim_pow:g}" if cossim_pow != CARICATURE_COSSIM_POW else ""
    return leaf("caricature", [layer], compute, [cossim_pow], references=[reference],
                description=f"caricature {layer}{suffix}",
                checks=[_grid_check(layer, "caricature")])


def content(layer, *, image=None):
    """Keep a photo's content: minus the relative squared difference of the activations at `layer`.

    `-|acts - photo's|² / |photo's|²` per image (0 when they match; -1 for an all-zero activation),
    Gatys et al.'s content term made scale-free, so its weight means the same at every layer. Add it to
    `style` for style transfer: `style(image=painting) + content("block4_conv2", image=photo)`.

    Args:
        layer: layer name, e.g. "block4_conv2".
        image: the photo. Defaults to None: the caller's image (slot "image").
    """
    layer = check_layer_name(layer)
    reference = Reference(layer, image, slot=IMAGE_SLOT)

    def compute(T, reference_acts):
        return -_relative_error(activation(T, layer), reference_acts)

    return leaf("content", [layer], compute, references=[reference],
                description=f"content {layer}")


def style(*layers, image=None):
    """Match a photo's style: minus the relative squared difference of Gram matrices, averaged over layers.

    The Gram matrix of a layer (`gram`: which channels fire together, wherever) keeps texture and
    colour and drops layout. Per layer, `-|G - G_photo|² / |G_photo|²`, so every layer counts alike
    whatever its scale; the value is their mean, in [-1, 0] for a render no worse than zeros.

    Args:
        *layers: layer names. Defaults to `STYLE_LAYERS` (the first convolution of each VGG16 block).
        image: the style photo or painting. Defaults to None: the caller's style image (slot "style").
    """
    layers = tuple(check_layer_name(name) for name in layers) or STYLE_LAYERS
    if len(set(layers)) != len(layers):
        raise ValueError(f"Expected each style layer once. Received: layers={layers}")
    references = [Reference(name, image, slot=STYLE_SLOT, statistic=gram) for name in layers]

    def compute(T, *reference_grams):
        errors = [_relative_error(gram(activation(T, name)), target) for name, target in zip(layers, reference_grams)]
        return -ops.mean(ops.stack(errors))

    shown = "" if layers == STYLE_LAYERS else f" {', '.join(layers)}"
    return leaf("style", layers, compute, references=references, description=f"style{shown}",
                checks=[_grid_check(name, "style") for name in layers])
