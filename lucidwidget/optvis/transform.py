"""Differentiable random transforms that make visualisations robust (Lucid's `optvis.transform`).

Each step the renderer shows the model a randomly jittered, scaled and rotated copy of the image, and the
gradient flows back through the transforms to the parameterisation, so only features that survive the
perturbations are reinforced. A `Transform` is configured once and then applied:

```python
t = transform.compose(transform.standard_transforms)
images = t(images, rng=keras.random.SeedGenerator(0))
```

Every strength a slider can move (jitter distance, scale and angle lists, blur sigma, pad value) is a
knob, so the renderer's compiled step takes it as a tensor and a new value never retraces. Unlike Lucid,
the spatial transforms keep the image's shape; see `jitter`.

Distances (`jitter`, `pad`, and `preset`'s `jitter` and `pad`) follow one rule: a number in (0, 1) is a
fraction of the image's shorter side, anything else (0, or >= 1) is pixels. The defaults are fractions, so
a 28-px model is moved as gently, relatively, as a 224-px one. The side is that of the image handed to the
transforms (the render, before any padding); `pad` measures the image it pads.
"""

from __future__ import annotations

import functools
import math

import keras
import numpy as np
from keras import ops

from lucidwidget.optvis import warp
from lucidwidget import checks
from lucidwidget.checks import is_number
from lucidwidget.optvis.knobs import Knobbed, split_knobs

PAD_MODES = ("constant", "reflect", "symmetric")
ANGLE_UNITS = ("degrees", "radians")
# Gaussian kernels reach this many sigmas either side: the tail beyond holds < 0.3% of the weight.
BLUR_TRUNCATE = 3.0
# Blurs up to this sigma share one kernel size, so a blur slider within it never retraces.
BLUR_MAX_SIGMA = 3.0
# Floor for sigma so that sigma = 0 gives a unit impulse (the identity) instead of 0 / 0.
BLUR_MIN_SIGMA = 1e-3
# `preset` spreads its scale and angle ranges over this many evenly spaced values (Lucid's lists).
PRESET_SCALE_STEPS = 11
PRESET_ANGLE_STEPS = 21
# Lucid's rotation list repeats 0 five extra times, so 6 of its 26 draws leave the image upright.
PRESET_EXTRA_ZERO_ANGLES = 5
# Lucid's standard transforms pad 12 and jitter 8 (then 4) pixels of its default 128-px image; as fractions
# of the side they give exactly those pixels at 128 px and scale with the image: 3 and 1 px at 28 px.
PAD_FRACTION = 12 / 128
JITTER_FRACTION = 8 / 128


class Transform(Knobbed):
    """A random image transform `fn(images, rng, *knobs) -> images` with a structural signature.

    Args:
        fn: the computation; receives a float32 NHWC batch of static shape, a
            `keras.random.SeedGenerator` and one tensor (or array) per knob. It must be traceable and
            must not branch on knob values in Python.
        knobs: numeric strengths that may change without recompiling.
        key: hashable description of the structure (kind, pad width, ...).
    """

    def __call__(self, images, rng=None):
        """Applies the transform with its own knobs, drawing with the `keras.random.SeedGenerator` `rng`.

        `rng=None` draws with a fresh unseeded generator, which only works eagerly (JAX refuses
        unseeded draws in a compiled function).
        """
        images = ops.convert_to_tensor(images, "float32")
        rng = keras.random.SeedGenerator() if rng is None else rng
        return self.fn(images, rng, *(ops.convert_to_tensor(k) for k in self.knobs))

    def __repr__(self):
        knobs = ", ".join(np.array2string(k, precision=4, separator=", ") for k in self.knobs)
        return f"Transform({self.key!r}, knobs=({knobs}))"


class AffineTransform(Transform):
    """A transform that resamples through a random per-example affine map.

    Args:
        draw: `draw(batch, side, rng, *knobs) -> (linear, shift)`, the maps for `warp.affine_warp`;
            `side` is the shorter side of the transforms' input image in pixels (a float), for fractional
            distances.
        knobs: as for `Transform`.
        key: as for `Transform`.

    `apply_transforms` chains consecutive affine transforms into one map and resamples once, which is
    both faster (one warp instead of four for `standard_transforms`) and sharper (one interpolation).
    """

    def __init__(self, draw, knobs=(), key=None):
        self.draw = draw
        super().__init__(functools.partial(_warp_with, draw), knobs, key)


def _warp_with(draw, images, rng, *knobs):
    linear, shift = draw(images.shape[0], _shorter_side(images), rng, *knobs)
    return warp.affine_warp(images, linear, shift)


def _shorter_side(images):
    return float(min(images.shape[1:3]))


def _chain(first, then):
    """The single map equal to resampling by `first`, then by `then`.

    Resampling by (L1, s1) then (L2, s2) reads the input at `c + L1 L2 (p - c) - (L1 s2 + s1)`. Written as
    multiply-adds rather than matmuls for the reason given in `warp.affine_warp` (TF32 on GPUs).
    """
    (linear, shift), (next_linear, next_shift) = first, then
    chained = ops.sum(linear[:, :, :, None] * next_linear[:, None, :, :], axis=2)
    return chained, shift + ops.sum(linear * next_shift[:, None, :], axis=-1)


def apply_transforms(transforms, images, rng, knobs, window=None):
    """Applies `transforms` in order, taking their knobs from the flat sequence `knobs`.

    Runs of consecutive `AffineTransform`s are chained into one map and resampled once; the random
    draws happen in the same order as applying each transform on its own.

    Args:
        window: optional `(height, width)`: return the centred window of that size (see
            `crop_or_pad_to`). When the transforms end with an affine run, only the window is
            resampled, so padding added for the transforms costs no resampling work.
    """
    images = ops.convert_to_tensor(images)
    pending, side = None, _shorter_side(images)
    for t, own in zip(transforms, split_knobs(knobs, transforms)):
        if isinstance(t, AffineTransform):
            step = t.draw(images.shape[0], side, rng, *own)
            pending = step if pending is None else _chain(pending, step)
            continue
        if pending is not None:
            images, pending = warp.affine_warp(images, *pending), None
        images = t.fn(images, rng, *own)
    inside = window is not None and window[0] <= images.shape[1] and window[1] <= images.shape[2]
    if inside and pending is not None:
        return warp.affine_warp(images, *pending, window=window)
    if pending is not None:
        images = warp.affine_warp(images, *pending)
    if window is not None:
        images = _crop_or_pad(images, *window)
    return images


def _crop_or_pad(images, height, width):
    """Centre-crops or zero-pads `images` to `height` x `width`; an odd difference is cut or added at the
    bottom/right."""
    rows, cols = images.shape[1:3]
    top, left = max(rows - height, 0) // 2, max(cols - width, 0) // 2
    images = images[:, top:top + height, left:left + width]
    extra_rows, extra_cols = max(height - rows, 0), max(width - cols, 0)
    if not (extra_rows or extra_cols):
        return images
    return ops.pad(images, [(0, 0), _halves(extra_rows), _halves(extra_cols), (0, 0)])


def _halves(extra):
    """Splits a margin into (before, after), the odd pixel after."""
    return extra // 2, extra - extra // 2


def compose(transforms) -> Transform:
    """Chains transforms into one that applies each in order; knobs and signatures concatenate."""
    transforms = list(transforms)
    for t in transforms:
        if not isinstance(t, Transform):
            raise TypeError(
                "Expected Transform objects; wrap a plain function as "
                f"`Transform(lambda images, rng: f(images))`. Received: transform={t!r}"
            )

    def apply(images, rng, *knobs):
        return apply_transforms(transforms, images, rng, knobs)

    knobs = [k for t in transforms for k in t.knobs]
    return Transform(apply, knobs, key=("compose", tuple(t.signature for t in transforms)))


def _is_fraction(value):
    return 0 < value < 1


def _check_distance(name, value, whole=False):
    """A distance: a fraction of the side in (0, 1), or pixels (>= 0; whole pixels when `whole`)."""
    fractional_pixels = whole and value >= 1 and not float(value).is_integer() if is_number(value) else False
    if not is_number(value) or math.isnan(value) or value < 0 or fractional_pixels:
        kind = "a whole number of pixels" if whole else "a number of pixels >= 0"
        raise ValueError(
            f"Expected `{name}` to be {kind} or a fraction of the image side in (0, 1). Received: {name}={value!r}"
        )
    return value


def _jitter_draw(batch, side, rng, pixels, fraction):
    return warp.identity_matrices(batch), warp.random_offsets(pixels + fraction * side, batch, rng)


def jitter(d) -> Transform:
    """Random translation of each example by up to `d` (whole pixels) in x and in y.

    Lucid's jitter takes a random `(h - d, w - d)` crop, so every jitter shrinks the image and `d` is part
    of the output shape. This one shifts by `[-d, d]` and fills the vacated border by reflection, keeping
    the shape: `d` is a knob (pixels and fraction are two knobs, so switching between them never
    retraces either) and `d = 0` is the identity.

    Args:
        d: largest shift: a fraction of the image's shorter side in (0, 1), or pixels (0, or >= 1). The
            distance in pixels is rounded down.
    """
    if not is_number(d):
        raise TypeError(f"Expected a number for `d`. Received: d={d!r}")
    _check_distance("d", d)
    return _jitter(0.0, d) if _is_fraction(d) else _jitter(d, 0.0)


def _jitter(pixels, fraction):
    """A jitter by up to `pixels + fraction * side`."""
    return AffineTransform(_jitter_draw, (np.float32(pixels), np.float32(fraction)), key=("jitter",))


def _random_scale_draw(batch, side, rng, scales):
    return warp.scale_matrices(warp.random_choice(scales, batch, rng)), ops.zeros((batch, 2))


def random_scale(scales) -> Transform:
    """Scales each example about its centre by a factor drawn uniformly from `scales`.

    Lucid resizes the whole image (changing its shape); this zooms within the frame (reflecting at the
    border when shrinking), so the list's values are a knob: new values of the same length never retrace.

    Args:
        scales: list of positive factors; `1.1` enlarges content by 10%.
    """
    scales = checks.reals(scales, "scales", 0, exclusive=True)
    return AffineTransform(_random_scale_draw, (scales,), key=("random_scale",))


def _random_rotate_draw(batch, side, rng, angles):
    return warp.rotation_matrices(warp.random_choice(angles, batch, rng)), ops.zeros((batch, 2))


def random_rotate(angles, units="degrees") -> Transform:
    """Rotates each example about its centre, counter-clockwise, by an angle drawn from `angles`.

    Args:
        angles: list of angles; repeat a value to draw it more often. Stored as radians in the knob.
        units: `"degrees"` or `"radians"`. Defaults to `"degrees"`.
    """
    units = checks.choice(units, "units", ANGLE_UNITS)
    radians = checks.reals(angles, "angles")
    if units == "degrees":
        radians = np.deg2rad(radians).astype(np.float32)
    return AffineTransform(_random_rotate_draw, (radians,), key=("random_rotate",))


def pad(w, mode="reflect", constant_value=0.5) -> Transform:
    """Pads `w` on every side (Lucid's `pad`); the output grows by twice that.

    Args:
        w: pad width: whole pixels, or a fraction in (0, 1) of the shorter side of the image it pads
            (rounded to pixels); part of the structure, since it changes the shape.
        mode: `"constant"`, `"reflect"` (`c b | a b c`) or `"symmetric"` (`b a | a b c`), any case.
            Defaults to `"reflect"`.
        constant_value: fill for `mode="constant"`: a number (a knob) or `"uniform"` for a fresh uniform
            random value in [0, 1) on every call. Not used by the other modes. Defaults to 0.5.
    """
    w = _check_distance("w", w, whole=True)
    w = float(w) if _is_fraction(w) else int(w)
    mode = checks.choice(mode, "mode", PAD_MODES)
    uniform = isinstance(constant_value, str) and constant_value.lower() == "uniform"
    if not (uniform or is_number(constant_value)):
        raise ValueError(
            f"Expected a number or 'uniform' for `constant_value`. Received: constant_value={constant_value!r}"
        )

    def pixels(images):
        return round(w * _shorter_side(images)) if isinstance(w, float) else w

    if mode != "constant":
        return Transform(lambda images, rng: _pad_mirrored(images, pixels(images), mode), key=("pad", w, mode))
    if uniform:
        return Transform(
            lambda images, rng: _pad_constant(images, pixels(images), keras.random.uniform((), seed=rng)),
            key=("pad", w, mode, "uniform"),
        )
    return Transform(
        lambda images, rng, value: _pad_constant(images, pixels(images), value),
        (np.float32(constant_value),),
        key=("pad", w, mode),
    )


def _pad_constant(images, width, value):
    """Pads with zeros, then adds `value` (a tensor, maybe traced) on the border only."""
    padded = ops.pad(images, [(0, 0), (width, width), (width, width), (0, 0)])
    border = np.pad(np.zeros((1, *images.shape[1:3], 1), np.float32), [(0, 0), (width, width), (width, width), (0, 0)],
                    constant_values=1.0)
    return padded + ops.convert_to_tensor(border) * ops.cast(value, "float32")


def _pad_mirrored(images, width, mode):
    """`"reflect"` or `"symmetric"` padding as a gather of rows, then of columns, from NumPy's index tables:
    the same on every backend, where `keras.ops.pad` on PyTorch pads "symmetric" by replication and
    reflects only the trailing dimensions."""
    rows = np.pad(np.arange(images.shape[1], dtype=np.int32), width, mode=mode)
    cols = np.pad(np.arange(images.shape[2], dtype=np.int32), width, mode=mode)
    return ops.take(ops.take(images, rows, axis=1), cols, axis=2)


def gaussian_blur(sigma, size=None) -> Transform:
    """Depthwise separable Gaussian blur with standard deviation `sigma` pixels (a knob).

    The kernel is built in the graph from `sigma`, with a fixed number of taps so that moving `sigma`
    never retraces. Near the border each output is the weighted mean of the pixels inside the image, so
    edges do not darken, and any image size works. `sigma = 0` is the identity.

    Args:
        sigma: standard deviation in pixels, >= 0.
        size: odd kernel size in taps. Defaults to the size that spans `BLUR_TRUNCATE` sigmas of
            `max(sigma, BLUR_MAX_SIGMA)`, which all blurs up to `BLUR_MAX_SIGMA` share.
    """
    checks.real(sigma, "sigma", 0)
    if size is None:
        size = 2 * math.ceil(BLUR_TRUNCATE * max(sigma, BLUR_MAX_SIGMA)) + 1
    size = checks.whole(size, "size", 1, integral_floats=True)
    if size % 2 == 0:
        raise ValueError(f"Expected an odd kernel `size`. Received: size={size}")
    radius = size // 2

    def blur(images, rng, sigma):
        taps = ops.convert_to_tensor(np.arange(-radius, radius + 1, dtype=np.float32))
        spread = ops.maximum(ops.cast(sigma, "float32"), BLUR_MIN_SIGMA)
        kernel = ops.exp(-0.5 * ops.square(taps / spread))
        kernel = kernel / ops.sum(kernel)

        def smooth(x):
            channels = x.shape[-1]
            row = ops.tile(ops.reshape(kernel, (1, size, 1, 1)), (1, 1, channels, 1))
            column = ops.tile(ops.reshape(kernel, (size, 1, 1, 1)), (1, 1, channels, 1))
            return ops.depthwise_conv(ops.depthwise_conv(x, row, padding="same"), column, padding="same")

        # Normalised convolution: near the border divide by the kernel weight that fell inside the image.
        return smooth(images) / smooth(ops.ones((1, *images.shape[1:3], 1)))

    return Transform(blur, (np.float32(sigma),), key=("gaussian_blur", size))


def crop_or_pad_to(height, width) -> Transform:
    """Centre-crops or zero-pads to exactly `height` x `width`, for models with a fixed input size.

    Use it last in a transform list. With an odd difference the extra row or column is added or cut at
    the bottom/right.
    """
    height = checks.whole(height, "height", 1, integral_floats=True)
    width = checks.whole(width, "width", 1, integral_floats=True)
    return Transform(
        lambda images, rng: _crop_or_pad(images, height, width),
        key=("crop_or_pad_to", height, width),
    )


def _noisy_colour(shape, rng, sd):
    """A uniform random colour per example plus per-pixel Gaussian noise of `sd`, clipped to [0, 1]."""
    colour = keras.random.uniform((shape[0], 1, 1, shape[3]), seed=rng)
    return ops.clip(colour + keras.random.normal(shape, seed=rng) * ops.cast(sd, "float32"), 0.0, 1.0)


def collapse_alpha_random(sd=None, background=None) -> Transform:
    """Composites RGBA images over a random background, returning RGB (Lucid's `collapse_alpha_random`).

    The last channel is the alpha, so grey + alpha images (a grey model's) composite to grey.

    A fresh background per example and step means only opaque pixels can carry the features, which is how
    alpha-channel visualisations learn transparency.

    Args:
        sd: noise level of the default background (a uniform random colour per example plus Gaussian
            noise of this standard deviation per pixel); a knob. Defaults to 0.5.
        background: optional callable `(shape, rng) -> colours in [0, 1]` of that shape, where `shape` is
            the static `(batch, h, w, colours)` of the images without alpha and `rng` a
            `keras.random.SeedGenerator`, e.g. `param.random_background`; it replaces the default
            background, so `sd` must not be given with it.
    """
    if background is not None:
        if sd is not None:
            raise TypeError(
                "`sd` only applies to the default background; leave it out when passing `background`. "
                f"Received: sd={sd!r}"
            )
        if not callable(background):
            raise TypeError(f"Expected a callable `(shape, rng) -> RGB images`. Received: background={background!r}")

    def composite(images, rng, *knobs):
        if images.shape[-1] < 2:
            raise ValueError(
                "Expected images with an alpha channel last (RGBA, or grey + alpha). "
                f"Received: images.shape={tuple(images.shape)}"
            )
        rgb, alpha = images[..., :-1], images[..., -1:]
        shape = tuple(rgb.shape)
        backdrop = background(shape, rng) if background is not None else _noisy_colour(shape, rng, *knobs)
        backdrop = ops.cast(backdrop, rgb.dtype)
        colours = shape[-1]
        if backdrop.shape[-1] != colours:
            # An RGB background behind grey (or other) images: its mean in every channel.
            backdrop = ops.repeat(ops.mean(backdrop, axis=-1, keepdims=True), colours, axis=-1)
        return alpha * rgb + (1.0 - alpha) * backdrop

    if background is not None:
        return Transform(composite, key=("collapse_alpha_random", background))
    sd = checks.real(0.5 if sd is None else sd, "sd", 0)
    return Transform(composite, (np.float32(sd),), key=("collapse_alpha_random", None))


# `preset` names its arguments after this factory, which hides it inside it.
_pad_factory = pad


def preset(jitter=JITTER_FRACTION, scale=0.1, rotate=10, pad=PAD_FRACTION, blur=0.0) -> list[Transform]:
    """Lucid's standard transforms with slider-sized strengths, always in the same structure.

    Returns `[pad(pad, "constant", 0.5), jitter(jitter), random_scale(11 factors over 1 -+ scale),
    random_rotate(21 angles over -+rotate plus five extra 0s), jitter(jitter / 2), gaussian_blur(blur)]`.
    A zero switches a stage off by making it neutral (no shift, all scales 1, all angles 0, sigma 0)
    rather than dropping it, so a slider moving between 0 and any other value never retraces; only `pad`
    (it changes the shape) and a blur above `BLUR_MAX_SIGMA` change the structure. With the defaults the
    first five stages are `standard_transforms` and the blur is the identity.

    Args:
        jitter: largest shift of the first jitter, a fraction of the side in (0, 1) or pixels; the last
            jitters half as far. Defaults to `JITTER_FRACTION` (8 px at 128 px).
        scale: the factors span `[1 - scale, 1 + scale]`, with 0 <= scale < 1. Defaults to 0.1.
        rotate: the angles span `[-rotate, rotate]` degrees. Defaults to 10.
        pad: constant (0.5 grey) padding, a fraction of the side in (0, 1) or whole pixels. Defaults to
            `PAD_FRACTION` (12 px at 128 px).
        blur: Gaussian blur sigma in pixels applied last. Defaults to 0.
    """
    _check_distance("jitter", jitter)
    checks.real(scale, "scale", 0)
    if scale >= 1:
        raise ValueError(f"Expected `scale` in [0, 1) so every factor stays positive. Received: scale={scale!r}")
    checks.real(rotate, "rotate", 0)
    _check_distance("pad", pad, whole=True)
    checks.real(blur, "blur", 0)
    scales = np.linspace(1 - scale, 1 + scale, PRESET_SCALE_STEPS)
    angles = np.concatenate([np.linspace(-rotate, rotate, PRESET_ANGLE_STEPS), np.zeros(PRESET_EXTRA_ZERO_ANGLES)])
    pixels, fraction = (0.0, jitter) if _is_fraction(jitter) else (jitter, 0.0)
    return [
        _pad_factory(pad, mode="constant", constant_value=0.5),
        _jitter(pixels, fraction),
        random_scale(scales),
        random_rotate(angles),
        _jitter(pixels / 2, fraction / 2),
        gaussian_blur(blur),
    ]


standard_transforms = preset()[:5]
"""Lucid's standard transforms, with its distances as fractions of the side (`preset()` without the blur):
`[pad(PAD_FRACTION, "constant", 0.5), jitter(JITTER_FRACTION), random_scale(0.9 .. 1.1 in 11 steps),
random_rotate(-10 .. 10 degrees, plus five extra 0s), jitter(JITTER_FRACTION / 2)]`."""
