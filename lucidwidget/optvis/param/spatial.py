"""Spatial parameterisations: one variable per pixel, or per 2D Fourier coefficient (Lucid's `spatial`).

The Fourier basis scaled by 1/frequency makes every coefficient move the image about as much as natural
images vary at that frequency, so gradient steps stop favouring high-frequency noise and the optimised
images look far more natural than with plain pixels (Olah et al., "Feature Visualization", 2017).
"""

from __future__ import annotations

import tensorflow as tf

from lucidwidget.optvis.param.base import ImageParam, check_float, check_sd, check_shape, normal

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
        self._pixels = tf.Variable(tf.zeros(shape), name="pixels")
        super().__init__(shape, [self._pixels])
        self.reset(seed)

    def __call__(self):
        return tf.identity(self._pixels)

    def _initialize(self, rng):
        self._pixels.assign(normal(rng, self.shape, self._sd))

    def _assign(self, images):
        self._pixels.assign(images)


class FFTImage(ImageParam):
    """Real and imaginary parts of each image's 2D spectrum, scaled by 1/frequency^decay_power.

    The image is the inverse real FFT of the scaled spectrum, so it is unbounded; wrap it with
    `to_valid_rgb` for colours. The spectrum scale is a constant computed once here.
    """

    def __init__(self, shape, sd=None, decay_power=1.0, seed=None):
        shape = check_shape(shape)
        self._sd = check_sd(sd)
        self.decay_power = check_float(decay_power, "decay_power")
        batch, height, width, channels = shape
        self._scale = tf.cast(spectrum_scale(height, width, self.decay_power), tf.complex64)
        self._spectrum = tf.Variable(tf.zeros((2, batch, channels) + tuple(self._scale.shape)), name="spectrum")
        super().__init__(shape, [self._spectrum])
        self.reset(seed)

    def __call__(self):
        return spectrum_to_image(self._spectrum, self._scale, self.shape[1], self.shape[2])

    def _initialize(self, rng):
        self._spectrum.assign(normal(rng, self._spectrum.shape, self._sd))

    def _assign(self, images):
        self._spectrum.assign(image_to_spectrum(images, self._scale))


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


def spectrum_scale(height, width, decay_power=1.0) -> tf.Tensor:
    """The float32 `(height, width // 2 + 1)` scale of each coefficient of a real 2D FFT.

    `sqrt(height * width) / max(f, 1 / min(max(height, width), LONGEST_WAVELENGTH))^decay_power`, with
    `f` the frequency in cycles per pixel: the floor keeps the constant term finite and stops the
    coarsest waves and the mean colour from dominating (see `LONGEST_WAVELENGTH`). `sqrt(height * width)`
    makes TF's inverse FFT (which divides by the pixel count) unitary, so learning rates carry over from
    pixel parameterisations. `height` and `width` may be tensors.
    """
    rows = _fft_frequencies(height)[:, None]
    columns = tf.cast(tf.range(width // 2 + 1), tf.float32) / tf.cast(width, tf.float32)
    frequency = tf.sqrt(rows**2 + columns[None, :] ** 2)
    longest = tf.minimum(tf.cast(tf.maximum(height, width), tf.float32), LONGEST_WAVELENGTH)
    pixels = tf.cast(height * width, tf.float32)
    return tf.sqrt(pixels) / tf.maximum(frequency, 1.0 / longest) ** decay_power


def spectrum_to_image(real_imag, scale, height, width) -> tf.Tensor:
    """Turns `(2, batch, channels, height, width // 2 + 1)` real/imaginary parts into NHWC images."""
    real, imag = tf.unstack(real_imag)  # whose gradient is a cheap stack, unlike indexing's
    spectrum = tf.complex(real, imag) * tf.cast(scale, tf.complex64)
    planes = tf.signal.irfft2d(spectrum, fft_length=tf.stack([height, width]))
    # With a size known only in the graph TF forgets even the leading (batch, channel) dimensions.
    planes.set_shape(spectrum.shape[:-2] + (tf.get_static_value(height), tf.get_static_value(width)))
    return tf.transpose(planes, (0, 2, 3, 1)) * FFT_OUTPUT_SCALE


def image_to_spectrum(images, scale) -> tf.Tensor:
    """The inverse of `spectrum_to_image`: NHWC images to stacked real/imaginary spectrum parts."""
    planes = tf.transpose(images, (0, 3, 1, 2)) / FFT_OUTPUT_SCALE
    spectrum = tf.signal.rfft2d(planes, fft_length=tf.shape(planes)[2:]) / tf.cast(scale, tf.complex64)
    return tf.stack([tf.math.real(spectrum), tf.math.imag(spectrum)])


def _fft_frequencies(n) -> tf.Tensor:
    """Float32 frequencies of an n-point FFT in cycles per pixel, like `numpy.fft.fftfreq(n)`."""
    k = tf.range(n)
    signed = tf.where(k < (n + 1) // 2, k, k - n)
    return tf.cast(signed, tf.float32) / tf.cast(n, tf.float32)
