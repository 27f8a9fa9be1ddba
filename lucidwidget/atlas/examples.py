"""Dataset examples: the images of a folder that excite each unit most, found exactly and in parallel.

A unit's response to an image is its largest value over positions, read where objectives read it (the
pre-activation tap). A scan task (`scan_shard`) computes it for every image of a shard and keeps each
unit's `TOP_K` best; `TopK.merge` combines tasks. The merge is exact: the best k of a union are among
the best k of its parts, and ties are broken by the image's place in the folder's sorted file list, so
the result equals one pass over all the images in any shard order.

The crop shown for an example is a window around the position of that largest value, mapped back to the
image's pixels (see `crop_box`).
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
from keras import ops

from lucidwidget import imaging

TOP_K = 9
"""Examples kept per unit: a 3 x 3 grid, as OpenAI Microscope shows."""

CROP_CELLS = 6
"""A crop spans this many cells of the layer's grid (a cell is the image side over the grid side): wide
enough to show the context a deep unit's effective receptive field covers (it is far smaller than the
theoretical one: about 6 cells of block4_conv3 in vgg16-hed, 48 px at 128 px), narrow enough to point at
the part of the image that fired."""

MIN_CROP_FRACTION = 0.25
"""Crops are at least a quarter of the image side: early layers' cells of a pixel or two would give
crops too small to recognise anything in."""

SCAN_IMAGES_PER_UNIT = 4
"""Images per forward pass of the scan for each unit a render batch holds: a forward pass keeps no
gradients, about a quarter of what a render step holds per image (`batching.MEMORY_PER_ACTIVATION`)."""

EMPTY_INDEX = -1
"""Index of an empty slot of a `TopK` (fewer images than k), whose value is -inf."""


@dataclasses.dataclass
class TopK:
    """The best k images per unit of one layer, best first.

    Attributes:
        values: float32 (k, units): the unit's largest value over positions in that image.
        index: int64 (k, units): the image's place in the folder's sorted list (`EMPTY_INDEX` if none).
        row, col: int32 (k, units): the grid position of that largest value.
        grid: (rows, columns) of the layer's grid at the scanned size; (1, 1) for a vector layer.
    """

    values: np.ndarray
    index: np.ndarray
    row: np.ndarray
    col: np.ndarray
    grid: tuple

    @classmethod
    def empty(cls, k, units, grid):
        return cls(np.full((k, units), -np.inf, np.float32), np.full((k, units), EMPTY_INDEX, np.int64),
                   np.zeros((k, units), np.int32), np.zeros((k, units), np.int32), tuple(grid))

    def merge(self, other) -> "TopK":
        """The best k of both, ordered by value (highest first), then by image index (lowest first)."""
        if self.values.shape != other.values.shape or self.grid != other.grid:
            raise ValueError(f"Expected top-k tables of one layer. Received: shapes={self.values.shape}, "
                             f"{other.values.shape}")
        return _best(*(np.concatenate([a, b]) for a, b in zip(self.arrays(), other.arrays())),
                     k=self.values.shape[0], grid=self.grid)

    def arrays(self):
        return self.values, self.index, self.row, self.col

    def as_dict(self) -> dict:
        """Plain arrays, for `np.savez` and for sending between processes."""
        return {"values": self.values, "index": self.index, "row": self.row, "col": self.col,
                "grid": np.asarray(self.grid, np.int32)}

    @classmethod
    def from_dict(cls, arrays) -> "TopK":
        return cls(np.asarray(arrays["values"], np.float32), np.asarray(arrays["index"], np.int64),
                   np.asarray(arrays["row"], np.int32), np.asarray(arrays["col"], np.int32),
                   tuple(int(v) for v in arrays["grid"]))


def _best(values, index, row, col, k, grid) -> TopK:
    # Sort each unit's column by value descending, then index ascending (lexsort's last key is primary).
    order = np.lexsort((index, -values), axis=0)[:k]
    take = [np.take_along_axis(array, order, axis=0) for array in (values, index, row, col)]
    return TopK(*take, grid=tuple(grid))


def maxima(activations) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """Each image's largest value per unit and where it is, reduced where the activations live (on the
    accelerator, so only (n, units) arrays travel back).

    Args:
        activations: (n, rows, columns, units) or (n, units) tensor or array.

    Returns:
        NumPy values (n, units), row (n, units), col (n, units), and grid (rows, columns). The first
        position in row-major order wins a tie, as `np.argmax` does.
    """
    activations = ops.cast(ops.convert_to_tensor(activations), "float32")
    if len(activations.shape) == 2:
        values = ops.convert_to_numpy(activations)
        zeros = np.zeros(values.shape, np.int32)
        return values, zeros, zeros, (1, 1)
    count, rows, columns, units = activations.shape
    flat = ops.reshape(activations, (count, rows * columns, units))
    where = ops.convert_to_numpy(ops.argmax(flat, axis=1)).astype(np.int64)
    values = ops.convert_to_numpy(ops.max(flat, axis=1))
    return values, (where // columns).astype(np.int32), (where % columns).astype(np.int32), (rows, columns)


def top_k_of(values, numbers, row, col, grid, k=TOP_K) -> TopK:
    """The best k of a batch of images with folder indices `numbers` (see `maxima` for the arrays)."""
    units = values.shape[1]
    index = np.broadcast_to(np.asarray(numbers, np.int64)[:, None], values.shape)
    padded = [np.concatenate([array, filler]) for array, filler in zip(
        (values, index, row, col), TopK.empty(k, units, grid).arrays())]
    return _best(*padded, k=k, grid=grid)


def scan_shard(read, shard, folder, size, channels, batch, k=TOP_K):
    """The unit of work of the scan: the best k images of a shard per unit of each of its layers.

    Args:
        read: `read(images) -> {layer: maxima(activations)}`, images float32 (n, size, size, channels) in
            [0, 1].
        shard: a `plan.ScanShard`.
        folder: the folder its files are relative to.
        size: images are scaled to cover size x size and centre-cropped (`imaging.fit`).
        channels: the model's image channels (1 or 3).
        batch: images per forward pass.
        k: examples kept per unit. Defaults to `TOP_K`.

    Returns:
        ({layer: TopK}, [files that could not be read]).
    """
    found, unreadable = {}, []
    for start in range(0, len(shard.files), batch):
        names = shard.files[start:start + batch]
        images, numbers = [], []
        for offset, name in enumerate(names):
            try:
                images.append(imaging.load_images(os.path.join(folder, name), size=size, channels=channels)[0])
            except ValueError:
                unreadable.append(name)
                continue
            numbers.append(shard.first + start + offset)
        if not images:
            continue
        reduced = read(np.stack(images))
        for layer in shard.layers:
            values, row, col, grid = reduced[layer]
            best = top_k_of(values, numbers, row, col, grid, k)
            found[layer] = best if layer not in found else found[layer].merge(best)
    return found, unreadable


def crop_box(row, col, grid, size) -> tuple[int, int, int]:
    """The square window (top, left, side) in pixels of an image of `size` x `size` shown for a unit's
    largest value at grid cell (`row`, `col`): centred on the cell's centre, `CROP_CELLS` cells wide but at
    least `MIN_CROP_FRACTION` of the side and at most all of it, shifted inside the image at the border."""
    rows, columns = grid
    cell = size / min(rows, columns)
    side = int(min(size, max(math.ceil(MIN_CROP_FRACTION * size), round(CROP_CELLS * cell))))
    centre_y, centre_x = (row + 0.5) * size / rows, (col + 0.5) * size / columns
    top = int(min(max(round(centre_y - side / 2), 0), size - side))
    left = int(min(max(round(centre_x - side / 2), 0), size - side))
    return top, left, side
