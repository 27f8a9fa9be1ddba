"""Images in, maps out: the batch an `Explainer` feeds the model, and maps brought back to the images.

"The images' resolution" is the size of the images as given: an array keeps its own height and width
(when the model needs another size, or `size=` asks for one, the model sees it fitted: scaled to cover
and centre-cropped, and each map is mapped back onto the array's pixels, 0 where the crop cut them
off); paths, PIL images and bytes are loaded at `size` (else the model's fixed size, else their own
size) and the maps have that size.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lucidwidget import imaging

VALUE_TOLERANCE = 1e-3
"""How far float images may stray outside [0, 1] (rounding in a user's pipeline) before they are taken
to be in another range, such as 0..255, and refused."""


@dataclasses.dataclass(frozen=True)
class Batch:
    """Images as the model sees them, and how to bring maps back to the images as given.

    Attributes:
        images: float32 (N, H, W, C) in [0, 1].
        given: (height, width) of the arrays as given when the model sees them fitted to another size;
            None when maps already have the given size.
    """

    images: np.ndarray
    given: tuple | None = None

    @property
    def size(self):
        return tuple(self.images.shape[1:3])

    def restore(self, maps):
        """Maps `(N, h, w)` or `(N, h, w, C)` at the model's view, on the pixels of the images as given."""
        if self.given is None:
            return maps
        return np.stack([unfit(m, self.size, self.given) for m in maps])


def prepare(images, channels, size, model_name):
    """A `Batch` of `images` for a model with `channels` image channels.

    Args:
        images: an array (N, H, W, C) or (H, W, C), float in [0, 1] or uint8; or a path, PIL image,
            file bytes, or a list of them (see `imaging.load_images`).
        channels: the model's image channels.
        size: (height, width) the model sees, or None to keep the images' own size.
        model_name: for error messages.

    Raises:
        ValueError: a wrong rank, channel count or value range.
    """
    if not isinstance(images, np.ndarray) and not _is_array_like(images):
        return Batch(imaging.load_images(images, size=size, channels=channels))
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[0] == 0:
        raise ValueError(
            "Expected images as an array (N, height, width, channels) or one image (height, width, channels). "
            f"Received: images.shape={array.shape}"
        )
    if array.shape[-1] != channels:
        raise ValueError(
            f"Model {model_name!r} takes {channels}-channel images. Received: images.shape[-1]={array.shape[-1]}"
        )
    array = _to_unit_range(array)
    given = tuple(array.shape[1:3])
    if size is None or tuple(size) == given:
        return Batch(array)
    return Batch(np.stack([imaging.fit(image, tuple(size)) for image in array]), given)


def _is_array_like(images):
    """A NumPy array, or a backend tensor (anything with `__array__` that is not a PIL image)."""
    return hasattr(images, "__array__") and not hasattr(images, "getpixel")


def _to_unit_range(array):
    if array.dtype == np.uint8:
        return array.astype(np.float32) / imaging.UINT8_MAX
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"Expected float images in [0, 1] or uint8 images. Received: images.dtype={array.dtype}"
        )
    array = array.astype(np.float32)
    low, high = (float(array.min()), float(array.max())) if np.all(np.isfinite(array)) else (np.nan, np.nan)
    if not (low >= -VALUE_TOLERANCE and high <= 1 + VALUE_TOLERANCE):
        raise ValueError(
            "Expected float images in [0, 1] (uint8 is accepted too); a model trained on another range takes "
            f"preprocess=. Received: images with values in [{low:.4g}, {high:.4g}]"
        )
    return np.clip(array, 0.0, 1.0)


def resize_maps(maps, size):
    """Bilinear resize of maps `(N, h, w)` or `(N, h, w, C)` (any values) to `size` (height, width)."""
    maps = np.asarray(maps, np.float32)
    if tuple(maps.shape[1:3]) == tuple(size):
        return maps
    planes = maps[..., None] if maps.ndim == 3 else np.moveaxis(maps, -1, 1).reshape(-1, *maps.shape[1:3], 1)
    resized = imaging.resize(planes, size)[..., 0]
    if maps.ndim == 3:
        return resized
    return np.moveaxis(resized.reshape(maps.shape[0], maps.shape[-1], *size), 1, -1)


def unfit(values, seen, given):
    """One map over a model's view `seen` (height, width) of an image `given` (height, width) that
    `imaging.fit` scaled to cover and centre-cropped, mapped back onto the image's pixels (0 outside
    the crop)."""
    height, width = given
    scale = max(seen[0] / height, seen[1] / width)
    scaled = (max(seen[0], round(height * scale)), max(seen[1], round(width * scale)))
    top, left = (scaled[0] - seen[0]) // 2, (scaled[1] - seen[1]) // 2
    canvas = np.zeros((*scaled, *values.shape[2:]), np.float32)
    canvas[top:top + seen[0], left:left + seen[1]] = values
    return resize_maps(canvas[None], given)[0]
