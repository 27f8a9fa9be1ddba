"""Low-resolution parameterisations, linearly upsampled to full size (Lucid's `lowres_tensor`).

Every axis (batch, height, width, channels) is resampled by its own small interpolation matrix with
aligned corners: the first and last low-resolution samples land exactly on the first and last output
positions. An axis of size 1 in the underlying shape is broadcast, which shares its parameters across
that axis (across the batch, say). Because the upsampling is linear and separable, `assign_image` can
invert it exactly by least squares with the matrices' pseudo-inverses.
"""

from __future__ import annotations

import string

import keras
import numpy as np

from lucidwidget.optvis.param.base import ImageParam, check_shape, check_sd, draw_items, normal, variable


class LowresTensor(ImageParam):
    """A variable of `underlying_shape`, resampled to `shape` (see `lowres_tensor`)."""

    def __init__(self, shape, underlying_shape, offset=None, sd=None, seed=None):
        shape = check_shape(shape)
        underlying_shape = check_shape(underlying_shape, "underlying_shape")
        offsets = _offsets(offset, shape, underlying_shape)
        self._sd = check_sd(sd)
        self.underlying_shape = underlying_shape
        matrices = [_shift_matrix(n, pad) @ _interpolation_matrix(n, m)
                    for n, m, pad in zip(shape, underlying_shape, offsets)]
        # Axes whose matrix is the identity cost nothing and are skipped.
        self._axes = [(axis, keras.ops.convert_to_tensor(matrix),
                       keras.ops.convert_to_tensor(np.linalg.pinv(matrix).astype(np.float32)))
                      for axis, matrix in enumerate(matrices) if not _is_identity(matrix)]
        self._low = variable(underlying_shape, "lowres")
        super().__init__(shape, [self._low])
        self.reset(seed)

    def __call__(self):
        return _resample(keras.ops.convert_to_tensor(self._low), [(axis, up) for axis, up, _ in self._axes])

    def _draw(self, rng, batch):
        return normal(rng, (batch, *self.underlying_shape[1:]), self._sd)

    def _initialize(self, rng):
        self._low.assign(self._draw(rng, self.underlying_shape[0]))

    def _initialize_items(self, rngs):
        if self.underlying_shape[0] != self.shape[0]:
            super()._initialize_items(rngs)     # values shared or resampled across the batch: refused
        self._low.assign(draw_items(self._draw, rngs, axis=0))

    def _assign(self, images):
        self._low.assign(_resample(images, [(axis, down) for axis, _, down in self._axes]))

    def __repr__(self):
        return f"LowresTensor(shape={self.shape}, underlying_shape={self.underlying_shape})"


def lowres_tensor(shape, underlying_shape, offset=None, sd=None, seed=None) -> LowresTensor:
    """A low-resolution variable linearly upsampled to `shape` (raw values, unbounded).

    Args:
        shape: `(batch, height, width, channels)` of the output.
        underlying_shape: shape of the variable; a 1 on an axis shares the parameters across that axis,
            e.g. `(1, h // 4, w // 4, 3)` gives every batch item the same quarter-resolution image.
        offset: shift of the upsampled grid towards higher indices, in output pixels, with symmetric
            reflection at the start: an int for every axis, or one entry per axis; True means half a
            low-resolution cell (`shape / underlying_shape / 2`, rounded down), False or None no shift.
            Defaults to None.
        sd: standard deviation of the initial values. Defaults to 0.01.
        seed: integer seed of the initial values. Defaults to None (fresh random).
    """
    return LowresTensor(shape, underlying_shape, offset=offset, sd=sd, seed=seed)


def _resample(t, axis_matrices):
    """Applies `out = matrix @ t` along each listed axis of a rank-4 tensor."""
    letters = string.ascii_lowercase[:4]
    for axis, matrix in axis_matrices:
        source = letters.replace(letters[axis], "z")
        t = keras.ops.einsum(f"{letters[axis]}z,{source}->{letters}", matrix, t)
    return t


def _interpolation_matrix(n, m) -> np.ndarray:
    """The `(n, m)` matrix of aligned-corner linear interpolation from m samples to n."""
    matrix = np.zeros((n, m), np.float64)
    if m == 1:
        matrix[:, 0] = 1.0
        return matrix.astype(np.float32)
    positions = np.arange(n) * (m - 1) / max(n - 1, 1)
    below = np.minimum(np.floor(positions).astype(int), m - 2)
    fraction = positions - below
    matrix[np.arange(n), below] = 1.0 - fraction
    matrix[np.arange(n), below + 1] += fraction
    return matrix.astype(np.float32)


def _shift_matrix(n, pad) -> np.ndarray:
    """The `(n, n)` permutation-like matrix that shifts by `pad` with symmetric reflection at the start:
    output i reads input `pad - 1 - i` for i < pad, else `i - pad`."""
    i = np.arange(n)
    source = np.where(i < pad, pad - 1 - i, i - pad)
    matrix = np.zeros((n, n), np.float32)
    matrix[i, source] = 1.0
    return matrix


def _offsets(offset, shape, underlying_shape) -> list[int]:
    entries = list(offset) if isinstance(offset, (list, tuple)) else [offset] * 4
    if len(entries) != 4:
        raise ValueError(f"Expected one offset or one per axis (4). Received: offset={offset!r}")
    offsets = []
    for entry, n, m in zip(entries, shape, underlying_shape):
        if entry is True:
            entry = int(n / m / 2)
        elif entry is None or entry is False:
            entry = 0
        if not isinstance(entry, (int, np.integer)) or not 0 <= entry <= n:
            raise ValueError(
                f"Expected offsets to be True, False, None or integers in [0, axis size]. Received: offset={offset!r}"
            )
        offsets.append(int(entry))
    return offsets


def _is_identity(matrix) -> bool:
    return matrix.shape[0] == matrix.shape[1] and np.array_equal(matrix, np.eye(matrix.shape[0]))
