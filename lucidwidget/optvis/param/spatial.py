"""Spatial parameterisations: one variable per pixel, or per 2D Fourier coefficient (Lucid's `spatial`).

The Fourier basis scaled by 1/frequency makes every coefficient move the image about as much as natural
images vary at that frequency, so gradient steps stop favouring high-frequency noise and the optimised
images look far more natural than with plain pixels (Olah et al., "Feature Visualization", 2017).
"""

from __future__ import annotations

import keras
import numpy as np

from lucidwidget import checks
from lucidwidget.optvis.param.base import ImageParam, check_sd, check_shape, draw_items, normal, variable

FFT_OUTPUT_SCALE = 0.25
"""Lucid's gain on the spectral image. The 1/f boost of low frequencies makes a spectral image about
6-9x (32 to 512 px) as strong as a pixel image drawn with the same `sd`; dividing by 4 brings it back
to the same order, so the same `sd` and learning rate suit both parameterisations."""

LONGEST_WAVELENGTH = 32
"""Waves longer than this many pixels (and the mean colour) get the gain of one this long; Lucid gives
every wave up to the image side its own 1/f gain.

Adam moves every coefficient by about the learning rate whatever its gradient, so under a 1/f gain the
few coarsest waves set the whole image's colour layout within the first steps, in the same place for
every seed and batch item (their gradient at a grey start is the model's fixed response to the image
border). Measured on vgg16-hed block4_conv3:42, 4 tiles of 96 px, 128 steps: the mean pixel correlation
between tiles fell from 0.20 (Lucid's gain; 0.21 for four separate renders, so not a batch effect) to
0.16, 0.090 and 0.087 with the gain capped at 48, 32 and 24 px waves (2, 3 and 4 cycles per side),
keeping 96%, 89% and 89% of the activation; capping all but the mean colour left it at 0.16. Images of
32 px or less keep Lucid's gain, so small models still learn their colours quickly."""


class PixelImage(ImageParam):
    """One variable per pixel and channel: the image is the variable itself (unbounded)."""

    def __init__(self, shape, sd=None, seed=None):
        shape = check_shape(shape)
        self._sd = check_sd(sd)
        self._pixels = variable(shape, "pixels")
        super().__init__(shape, [self._pixels])
        self.reset(seed)

    def __call__(self):
        return keras.ops.convert_to_tensor(self._pixels)

    def _draw(self, rng, batch):
        return normal(rng, (batch, *self.shape[1:]), self._sd)

    def _initialize(self, rng):
        self._pixels.assign(self._draw(rng, self.shape[0]))

    def _initialize_items(self, rngs):
        self._pixels.assign(draw_items(self._draw, rngs, axis=0))

    def _assign(self, images):
        self._pixels.assign(images)


class FFTImage(ImageParam):
    """Real and imaginary parts of each image's 2D spectrum, scaled by 1/frequency^decay_power.

    The image is the inverse real FFT of the scaled spectrum, so it is unbounded; wrap it with
    `to_valid_rgb` for colours. The spectrum scale is a constant computed once here. The variable holds
    the coefficients as `(2, batch, channels, width // 2 + 1, height)` (see `spectrum_to_image`).
    """

    def __init__(self, shape, sd=None, decay_power=1.0, seed=None):
        shape = check_shape(shape)
        self._sd = check_sd(sd)
        self.decay_power = checks.real(decay_power, "decay_power", 0)
        batch, height, width, channels = shape
        gain = coefficient_gain(height, width, self.decay_power)
        self._gain = keras.ops.convert_to_tensor(gain)
        self._spectrum = variable((2, batch, channels) + gain.shape, "spectrum")
        super().__init__(shape, [self._spectrum])
        self.reset(seed)

    def __call__(self):
        return spectrum_to_image(self._spectrum, self._gain, self.shape[2])

    def _draw(self, rng, batch):
        # Drawn in the (height, frequency) order of `numpy.fft.rfft2`, then transposed to the variable's.
        _, height, width, channels = self.shape
        return np.swapaxes(normal(rng, (2, batch, channels, height, width // 2 + 1), self._sd), -1, -2)

    def _initialize(self, rng):
        self._spectrum.assign(self._draw(rng, self.shape[0]))

    def _initialize_items(self, rngs):
        self._spectrum.assign(draw_items(self._draw, rngs, axis=1))

    def _assign(self, images):
        self._spectrum.assign(image_to_spectrum(images, self._gain))


def pixel_image(shape, sd=None, seed=None) -> PixelImage:
    """A raw pixel parameterisation (Lucid's `naive`), unbounded; wrap it with `to_valid_rgb`.

    Args:
        shape: `(batch, height, width, channels)`.
        sd: standard deviation of the initial values. Defaults to 0.01.
        seed: integer seed of the initial values. Defaults to None (fresh random).
    """
    return PixelImage(shape, sd=sd, seed=seed)


def fft_image(shape, sd=None, decay_power=1.0, seed=None) -> FFTImage:
    """A raw spectral parameterisation (Lucid's `fft_image`), unbounded; wrap it with `to_valid_rgb`.

    Args:
        shape: `(batch, height, width, channels)`.
        sd: standard deviation of the initial Fourier coefficients. Defaults to 0.01.
        decay_power: coefficients are scaled by 1 / frequency^decay_power; higher values give smoother
            images, 0 a white (pixel-like) spectrum. Defaults to 1.0.
        seed: integer seed of the initial values. Defaults to None (fresh random).
    """
    return FFTImage(shape, sd=sd, decay_power=decay_power, seed=seed)


def spectrum_scale(height, width, decay_power=1.0) -> np.ndarray:
    """The float32 `(height, width // 2 + 1)` scale of each coefficient of a real 2D FFT.

    `sqrt(height * width) / max(f, 1 / min(max(height, width), LONGEST_WAVELENGTH))^decay_power`, with
    `f` the frequency in cycles per pixel: the floor keeps the constant term finite and stops the
    coarsest waves and the mean colour from dominating (see `LONGEST_WAVELENGTH`). `sqrt(height * width)`
    makes the inverse FFT (which divides by the pixel count) unitary, so learning rates carry over from
    pixel parameterisations.
    """
    rows = np.fft.fftfreq(height)[:, None]
    columns = np.fft.rfftfreq(width)[None, :]
    frequency = np.sqrt(rows**2 + columns**2)
    longest = min(max(height, width), LONGEST_WAVELENGTH)
    return (np.sqrt(height * width) / np.maximum(frequency, 1.0 / longest) ** decay_power).astype(np.float32)


def coefficient_gain(height, width, decay_power=1.0) -> np.ndarray:
    """The constant `spectrum_to_image` multiplies the coefficients by: `spectrum_scale` in the
    coefficients' `(width // 2 + 1, height)` layout, times `FFT_OUTPUT_SCALE / height` (the inverse FFT
    along the height is an unnormalised forward FFT, see `spectrum_to_image`)."""
    return (spectrum_scale(height, width, decay_power).T * (FFT_OUTPUT_SCALE / height)).astype(np.float32)


def spectrum_to_image(coefficients, gain, width):
    """Turns `(2, batch, channels, width // 2 + 1, height)` real/imaginary parts into NHWC images.

    The inverse real 2D FFT of the scaled spectrum, in `keras.ops`' (real, imaginary) pairs: an inverse
    FFT along the height (the last axis, so no transpose before it), then an inverse real FFT along
    the width. The first is a forward FFT with real and imaginary parts swapped on the way in and out,
    `ifft(x) = swap(fft(swap(x))) / n`, with `1 / n` folded into `gain` (`coefficient_gain`).
    """
    real, imag = keras.ops.unstack(keras.ops.multiply(coefficients, gain), 2)
    imag, real = keras.ops.fft((imag, real))
    planes = keras.ops.irfft((keras.ops.swapaxes(real, -1, -2), keras.ops.swapaxes(imag, -1, -2)), fft_length=width)
    return keras.ops.transpose(planes, (0, 2, 3, 1))


def image_to_spectrum(images, gain) -> np.ndarray:
    """The inverse of `spectrum_to_image`, on the host: NHWC images to stacked real/imaginary parts."""
    gain = keras.ops.convert_to_numpy(gain)
    height = gain.shape[-1]
    spectrum = np.fft.rfft2(np.transpose(images, (0, 3, 1, 2))).swapaxes(-1, -2) / (gain * height)
    return np.stack([spectrum.real, spectrum.imag]).astype(np.float32)
