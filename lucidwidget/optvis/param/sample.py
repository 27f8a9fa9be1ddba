"""Random natural-looking images with no variables (Lucid's `image_sample`), e.g. random backgrounds."""

from __future__ import annotations

import keras

from lucidwidget import checks
from lucidwidget.optvis.param.base import check_sd, check_shape
from lucidwidget.optvis.param.color import to_valid_rgb
from lucidwidget.optvis.param.spatial import coefficient_gain, spectrum_to_image

BACKGROUND_DECAY_POWER = 1.5
"""Spectrum decay of `random_background`: Lucid's transparency notebook draws its backgrounds at 1.5."""

BACKGROUND_SD = 0.4 * 20 ** (1 - BACKGROUND_DECAY_POWER)
"""Coefficient spread of `random_background`, the notebook's `base_sd * 20 ** (1 - decay_power)` with
`base_sd = 0.4`: smooth blotches of colour that fill the range without saturating."""


class ImageSampler:
    """Draws random 1/f-spectrum images, decorrelated and squashed into [0, 1] (see `image_sample`).

    Attributes:
        shape: `(batch, height, width, channels)` that calling the sampler draws.
    """

    def __init__(self, shape, decorrelate=True, sd=None, decay_power=1.0):
        self.shape = check_shape(shape)
        if self.shape[-1] not in (3, 4):
            raise ValueError(f"Expected 3 (RGB) or 4 (RGBA) channels. Received: shape={shape!r}")
        self.decorrelate = bool(decorrelate)
        self.sd = check_sd(sd)
        self.decay_power = checks.real(decay_power, "decay_power", 0)

    def __call__(self, rng=None):
        """A fresh float32 batch of `self.shape` in [0, 1].

        Args:
            rng: a `keras.random.SeedGenerator`; inside a compiled loop pass one whose `state` the loop
                carries. Defaults to None (a fresh unseeded generator: new values on every eager call).
        """
        return self.sample(self.shape, rng)

    def sample(self, shape, rng=None):
        """Like calling the sampler, at another batch size and image size.

        Its `(shape, rng)` signature fits `transform.collapse_alpha_random(background=sampler.sample)`.

        Args:
            shape: `(batch, height, width, channels)`, Python integers (a traced tensor's static
                `shape`). The channels entry is ignored: the sampler always draws its own channel count.
            rng: a `keras.random.SeedGenerator`. Defaults to None (a fresh unseeded generator).
        """
        batch, height, width, _ = check_shape(shape)
        rng = keras.random.SeedGenerator() if rng is None else rng
        noise_shape = (2, batch, self.shape[3], width // 2 + 1, height)
        noise = keras.random.normal(noise_shape, stddev=self.sd, seed=rng)
        raw = spectrum_to_image(noise, coefficient_gain(height, width, self.decay_power), width)
        return to_valid_rgb(raw, decorrelate=self.decorrelate, sigmoid=True)

    def __repr__(self):
        return (f"ImageSampler(shape={self.shape}, decorrelate={self.decorrelate}, sd={self.sd}, "
                f"decay_power={self.decay_power})")


def image_sample(shape, *, decorrelate=True, sd=None, decay_power=1.0) -> ImageSampler:
    """A callable that returns a new random natural-looking image batch on every call.

    The images are Gaussian Fourier coefficients scaled like `fft_image`, mapped through `to_valid_rgb`;
    nothing is trainable. Lucid's alpha experiments use `sd` around 0.2-0.8 with `decay_power=1.5` for
    backgrounds; the default `sd` gives nearly grey images, like an un-optimised `image()`.

    Args:
        shape: `(batch, height, width, channels)`, with 3 or 4 channels.
        decorrelate: draw in decorrelated colour space. Defaults to True.
        sd: standard deviation of the Fourier coefficients. Defaults to 0.01.
        decay_power: spectrum decay, 1 / frequency^decay_power. Defaults to 1.0.

    Example:

    ```python
    background = param.image_sample((1, 64, 64, 3), sd=0.3, decay_power=1.5)
    images = background(rng=keras.random.SeedGenerator(0))
    ```
    """
    return ImageSampler(shape, decorrelate=decorrelate, sd=sd, decay_power=decay_power)


_BACKGROUNDS = ImageSampler((1, 1, 1, 3), sd=BACKGROUND_SD, decay_power=BACKGROUND_DECAY_POWER)


def random_background(shape, rng=None):
    """A fresh random RGB background batch of `shape` (Lucid's transparency recipe): 1/f^1.5 noise.

    The renderer composites RGBA images over it each step (`transform.collapse_alpha_random`), so only
    opaque pixels carry the features. Measured on vgg16-hed block4_conv3:42, 96 px, 192 steps, alpha
    penalty weight 1e2: over these backgrounds the object stays in the middle (mean opacity 0.44,
    keeping 66% of an opaque render's activation over such backgrounds), where a random colour plus
    per-pixel noise pushed the opaque parts to the borders (0.44, 19%).

    Args:
        shape: `(batch, height, width, channels)`; the channels entry is ignored (always RGB; the
            compositing takes the mean for grey images).
        rng: a `keras.random.SeedGenerator`; the renderer passes the one its compiled loop carries.
            Defaults to None (a fresh unseeded generator: eager calls only).
    """
    return _BACKGROUNDS.sample(shape, rng)
