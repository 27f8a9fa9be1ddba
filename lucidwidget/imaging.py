"""NumPy images to PNG/JPEG/WebP/GIF files, contact sheets and animated GIFs.

Plain NumPy and Pillow, no TensorFlow, so the CLI, the widget and notebooks can display results
without loading the engine. Images follow the engine's convention: float NHWC in [0, 1] (uint8 is
accepted too), with 1 (grey), 3 (RGB) or 4 (RGBA) channels; a single image may be given as HWC.

    sheet = tile(images, columns=4)          # (batch, h, w, c) -> one image
    data = png_bytes(images, scale=2)        # for IPython.display.Image or the widget
    save_image("sheet.jpg", images)          # the format follows the file name's extension
    save_gif("progress.gif", frames)         # one tiled frame per step snapshot
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
from PIL import Image

CHANNELS = (1, 3, 4)
"""Grey, RGB and RGBA: the channel counts an image can have."""

UINT8_MAX = 255

CHECKER_SIZE = 8
"""Side in pixels of a checkerboard square behind transparent images (the usual editor pattern)."""

CHECKER_SHADES = (0.8, 1.0)
"""Light grey and white squares: transparency shows without hiding pale content."""

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".gif": "GIF"}
"""File extensions `save_image` writes, and the Pillow format each one means."""

OPAQUE_FORMATS = ("JPEG", "GIF")
"""Formats without partial transparency: RGBA images are composited over white first."""

JPEG_QUALITY = 95
"""Pillow's default of 75 smears the fine, high-contrast texture of feature visualisations."""

GIF_FRAME_MS = 100
"""Default time per GIF frame: 10 frames per second, smooth enough for an optimisation replay."""


def as_batch(images) -> np.ndarray:
    """Returns `images` as an NHWC array, checking the rank and the channel count.

    Args:
        images: array-like of shape (h, w, c) or (batch, h, w, c).
    """
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(
            "Expected an image (height, width, channels) or a batch (batch, height, width, channels). "
            f"Received: images with shape={array.shape}"
        )
    if array.shape[-1] not in CHANNELS:
        raise ValueError(
            f"Expected {' or '.join(map(str, CHANNELS))} channels (grey, RGB, RGBA) in the last axis. "
            f"Received: images with shape={array.shape}"
        )
    if array.shape[0] == 0 or 0 in array.shape[1:3]:
        raise ValueError(f"Expected at least one non-empty image. Received: images with shape={array.shape}")
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"Expected float images in [0, 1] or uint8 images. Received: dtype={array.dtype}")
    return array


def to_float(images) -> np.ndarray:
    """Returns float32 images in [0, 1]; uint8 input is divided by 255."""
    array = np.asarray(images)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / UINT8_MAX
    return array.astype(np.float32)


def to_uint8(images) -> np.ndarray:
    """Converts float images in [0, 1] to uint8, clipping values outside and rounding half up.

    Args:
        images: float array of any shape, or a uint8 array (returned unchanged).

    Returns:
        A uint8 array of the same shape.
    """
    array = np.asarray(images)
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"Expected float images in [0, 1] or uint8 images. Received: dtype={array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError("Expected finite pixel values. Received: images containing NaN or infinity")
    return np.floor(np.clip(array, 0.0, 1.0) * UINT8_MAX + 0.5).astype(np.uint8)


def checkerboard(height, width, size=CHECKER_SIZE) -> np.ndarray:
    """A (height, width) grey checkerboard with squares of `size` pixels, light shade at the origin."""
    rows = (np.arange(height) // size)[:, None]
    cols = (np.arange(width) // size)[None, :]
    light, dark = CHECKER_SHADES[1], CHECKER_SHADES[0]
    return np.where((rows + cols) % 2 == 0, light, dark).astype(np.float32)


def composite_alpha(images, background="checkerboard") -> np.ndarray:
    """Composites RGBA images over a background and returns RGB; other images pass through as float.

    Args:
        images: (h, w, c) or (batch, h, w, c) in [0, 1] (or uint8).
        background: "checkerboard" (shows what is transparent), "white", "black", a grey level in
            [0, 1] or an RGB triple. Defaults to "checkerboard".

    Returns:
        float32 images with the input's rank: 3 channels for RGBA input, else unchanged channels.
    """
    array = as_batch(images)
    squeeze = np.ndim(images) == 3
    array = to_float(array)
    if array.shape[-1] == 4:
        height, width = array.shape[1:3]
        if isinstance(background, str):
            named = {"white": 1.0, "black": 0.0}
            if background == "checkerboard":
                back = checkerboard(height, width)[None, :, :, None]
            elif background in named:
                back = np.float32(named[background])
            else:
                raise ValueError(
                    "Expected background 'checkerboard', 'white', 'black', a grey level or an RGB triple. "
                    f"Received: background={background!r}"
                )
        else:
            back = np.asarray(background, np.float32)
            if back.shape not in ((), (3,)) or not np.all((back >= 0) & (back <= 1)):
                raise ValueError(
                    f"Expected a grey level or an RGB triple in [0, 1]. Received: background={background!r}"
                )
        alpha = array[..., 3:]
        array = array[..., :3] * alpha + back * (1.0 - alpha)
    return array[0] if squeeze else array


def tile(images, columns=None, padding=2, background=1.0) -> np.ndarray:
    """Lays a batch out as one contact-sheet image, row by row.

    Args:
        images: (batch, h, w, c) or a single (h, w, c) image.
        columns: images per row. Defaults to None: ceil(sqrt(batch)), a near-square sheet.
        padding: pixels between neighbouring images (none around the border). Defaults to 2.
        background: value in [0, 1] for the padding and empty cells. Defaults to 1.0 (white).

    Returns:
        (rows * h + (rows - 1) * padding, columns * w + (columns - 1) * padding, c) array with the
        input's dtype (uint8 stays uint8).
    """
    array = as_batch(images)
    count, height, width, channels = array.shape
    columns = math.ceil(math.sqrt(count)) if columns is None else columns
    if not isinstance(columns, int) or isinstance(columns, bool) or columns < 1:
        raise ValueError(f"Expected columns to be a positive integer. Received: columns={columns!r}")
    if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
        raise ValueError(f"Expected padding to be an integer >= 0. Received: padding={padding!r}")
    if not 0.0 <= background <= 1.0:
        raise ValueError(f"Expected background in [0, 1]. Received: background={background!r}")
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    fill = to_uint8(np.float32(background)) if array.dtype == np.uint8 else background
    sheet = np.full(
        (rows * height + (rows - 1) * padding, columns * width + (columns - 1) * padding, channels),
        fill,
        dtype=array.dtype,
    )
    for index, image in enumerate(array):
        top = (index // columns) * (height + padding)
        left = (index % columns) * (width + padding)
        sheet[top:top + height, left:left + width] = image
    return sheet


def resize(images, size) -> np.ndarray:
    """Resizes every image to `size` (height, width) with bilinear filtering; returns float32 NHWC.

    Args:
        images: (h, w, c) or (batch, h, w, c) in [0, 1] (or uint8).
        size: (height, width) in pixels.
    """
    array = to_float(as_batch(images))
    height, width = size
    if min(height, width) < 1:
        raise ValueError(f"Expected a size of at least 1x1 pixels. Received: size={size!r}")
    out = np.empty((array.shape[0], height, width, array.shape[-1]), np.float32)
    for index, image in enumerate(array):
        for channel in range(array.shape[-1]):
            plane = Image.fromarray(np.ascontiguousarray(image[..., channel]))
            out[index, ..., channel] = np.asarray(plane.resize((width, height), Image.Resampling.BILINEAR))
    return out


def _to_pil(images, scale, tile_kwargs) -> Image.Image:
    """One Pillow image: batches are tiled, then upscaled by an integer factor with nearest pixels."""
    sheet = to_uint8(tile(images, **tile_kwargs))
    if scale is not None:
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise ValueError(f"Expected scale to be a positive integer. Received: scale={scale!r}")
        sheet = sheet.repeat(scale, axis=0).repeat(scale, axis=1)
    return Image.fromarray(sheet[..., 0] if sheet.shape[-1] == 1 else sheet)


def image_format(path) -> str:
    """The Pillow format a file name asks for by its extension (`FORMATS`), e.g. "JPEG" for `a.jpg`.

    Raises:
        ValueError: the extension is not one of `FORMATS`.
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"Expected an image file name ending in {', '.join(list(FORMATS)[:-1])} or {list(FORMATS)[-1]}. "
            f"Received: path={os.fspath(path)!r}"
        )
    return FORMATS[suffix]


def image_bytes(images, format="PNG", scale=None, **tile_kwargs) -> bytes:
    """Encodes an image, or a batch as a contact sheet, in one of the `FORMATS`.

    PNG and WebP keep an RGBA image's transparency; JPEG and GIF show it over white.

    Args:
        images: (h, w, c) or (batch, h, w, c) in [0, 1] (or uint8).
        format: "PNG", "JPEG", "WEBP" or "GIF". Defaults to "PNG".
        scale: integer upscaling factor with nearest-neighbour pixels, for small images. Defaults to
            None (no scaling).
        **tile_kwargs: `columns`, `padding`, `background`, as for `tile`.
    """
    if format not in FORMATS.values():
        raise ValueError(f"Expected a format in {sorted(set(FORMATS.values()))}. Received: format={format!r}")
    if format in OPAQUE_FORMATS:
        images = composite_alpha(images, background="white")
    options = {"quality": JPEG_QUALITY} if format == "JPEG" else {}
    buffer = io.BytesIO()
    _to_pil(images, scale, tile_kwargs).save(buffer, format=format, **options)
    return buffer.getvalue()


def png_bytes(images, scale=None, **tile_kwargs) -> bytes:
    """`image_bytes` as PNG (RGBA keeps its transparency), e.g. for `IPython.display.Image`."""
    return image_bytes(images, "PNG", scale, **tile_kwargs)


def save_png(path, images, scale=None, **tile_kwargs) -> str:
    """Writes `png_bytes(images, scale, **tile_kwargs)` to `path` and returns the path."""
    return _write(path, png_bytes(images, scale, **tile_kwargs))


def save_image(path, images, scale=None, **tile_kwargs) -> str:
    """Writes an image or a contact sheet in the format of the path's extension (`image_format`).

    Args:
        path: file to write, ending in .png, .jpg, .jpeg, .webp or .gif.
        images, scale, **tile_kwargs: as for `image_bytes`.

    Returns:
        The path written.
    """
    return _write(path, image_bytes(images, image_format(path), scale, **tile_kwargs))


def _write(path, data) -> str:
    path = os.fspath(path)
    with open(path, "wb") as file:
        file.write(data)
    return path


def save_gif(path, frames, duration_ms=GIF_FRAME_MS, loop=0, scale=None, **tile_kwargs) -> str:
    """Writes an animated GIF, one tiled frame per entry (keras-vis's optimisation replay).

    GIF has no partial transparency, so RGBA frames are composited over white. Pillow merges
    consecutive identical frames into one longer frame.

    Args:
        path: file to write.
        frames: sequence of (batch, h, w, c) batches or (h, w, c) images, all the same shape.
        duration_ms: display time per frame in milliseconds. Defaults to 100.
        loop: times to repeat; 0 repeats forever. Defaults to 0.
        scale: integer upscaling factor, as for `png_bytes`. Defaults to None.
        **tile_kwargs: `columns`, `padding`, `background`, as for `tile`.

    Returns:
        The path written.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("Expected at least one frame. Received: frames=[]")
    shapes = {np.shape(frame) for frame in frames}
    if len(shapes) > 1:
        raise ValueError(f"Expected frames of one shape. Received: frame shapes={sorted(shapes)}")
    if isinstance(duration_ms, bool) or not (isinstance(duration_ms, (int, float)) and 0 < duration_ms < math.inf):
        raise ValueError(f"Expected a positive duration. Received: duration_ms={duration_ms!r}")
    pictures = [
        _to_pil(composite_alpha(frame, background="white"), scale, tile_kwargs).convert("RGB")
        for frame in frames
    ]
    path = os.fspath(path)
    pictures[0].save(path, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=duration_ms, loop=loop)
    return path


def read_image(source, channels=3) -> np.ndarray:
    """One image as float32 (height, width, channels) in [0, 1], from a file path, a PIL image, raw file
    bytes or an array (HWC, uint8 or float in [0, 1]).

    Grey files become RGB for a 3-channel model and colour files grey for a 1-channel one; transparency
    is composited over white.

    Args:
        source: `str`/`os.PathLike` path, `PIL.Image.Image`, `bytes` of an image file, or an array.
        channels: 1 (grey) or 3 (RGB). Defaults to 3.
    """
    if channels not in (1, 3):
        raise ValueError(f"Expected channels=1 (grey) or 3 (RGB). Received: channels={channels!r}")
    if isinstance(source, np.ndarray):
        array = to_float(as_batch(source))
        if array.shape[0] != 1:
            raise ValueError(f"Expected one image (height, width, channels). Received: shape={source.shape}")
        array = composite_alpha(array, "white") if array.shape[-1] == 4 else array
        if array.shape[-1] != channels:
            array = array.mean(axis=-1, keepdims=True) if channels == 1 else np.repeat(array, 3, axis=-1)
        return array[0]
    picture = _open(source)
    if picture.mode in ("RGBA", "LA", "P", "PA"):
        picture = picture.convert("RGBA")
        background = Image.new("RGBA", picture.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(background, picture)
    picture = picture.convert("L" if channels == 1 else "RGB")
    array = np.asarray(picture, np.float32) / UINT8_MAX
    return array[..., None] if channels == 1 else array


def _open(source) -> Image.Image:
    """A loaded PIL image from a path, bytes or a PIL image; anything else is one sentence."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (bytes, bytearray)):
        stream, shown = io.BytesIO(source), f"<{len(source)} bytes>"
    elif isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise ValueError(f"No image file at {os.fspath(source)!r}. Received: image={os.fspath(source)!r}")
        stream, shown = source, repr(os.fspath(source))
    else:
        raise TypeError(
            "Expected an image as a file path, a PIL image, file bytes or an array (height, width, channels). "
            f"Received: image of type {type(source).__name__}"
        )
    try:
        picture = Image.open(stream)
        picture.load()
    except (OSError, Image.DecompressionBombError, ValueError):
        raise ValueError(
            f"Could not read {shown} as an image: expected a PNG, JPEG, WebP, GIF or BMP file. "
            f"Received: image={shown}"
        ) from None
    return picture


def fit(image, size) -> np.ndarray:
    """`image` (HWC) scaled so that it covers `size` (height, width), then centre-cropped to it: the
    shorter side fills the frame and nothing is stretched. Returns float32 HWC."""
    height, width = image.shape[:2]
    target_h, target_w = size
    scale = max(target_h / height, target_w / width)
    scaled = (max(target_h, round(height * scale)), max(target_w, round(width * scale)))
    if scaled != (height, width):
        image = resize(image, scaled)[0]
    top, left = (scaled[0] - target_h) // 2, (scaled[1] - target_w) // 2
    return np.ascontiguousarray(image[top:top + target_h, left:left + target_w], dtype=np.float32)


def read_images(sources, channels=3) -> list[np.ndarray]:
    """Images from paths, PIL images, bytes or arrays, each at its own size: a list of float32 HWC arrays.

    Args:
        sources: one source (see `read_image`), a list of them, or an array (N, H, W, C) / (H, W, C).
        channels: 1 (grey) or 3 (RGB). Defaults to 3.
    """
    if isinstance(sources, np.ndarray) and sources.ndim == 4:
        sources = list(sources)
    elif not isinstance(sources, (list, tuple)):
        sources = [sources]
    if not sources:
        raise ValueError("Expected at least one image. Received: images=[]")
    return [read_image(source, channels) for source in sources]


def load_images(sources, size=None, channels=3) -> np.ndarray:
    """Images from paths, PIL images, bytes or arrays as one float32 batch (N, height, width, channels).

    Args:
        sources: one source (see `read_image`), a list of them, or an array (N, H, W, C) / (H, W, C) in
            [0, 1] (uint8 accepted).
        size: (height, width) or a side: each image is scaled to cover it and centre-cropped (`fit`).
            Defaults to None (keep the images' own size; they must then all have one size).
        channels: 1 (grey) or 3 (RGB). Defaults to 3.
    """
    if size is not None and not isinstance(size, (tuple, list)):
        size = (size, size)
    images = read_images(sources, channels)
    if size is not None:
        images = [fit(image, tuple(size)) for image in images]
    shapes = sorted({image.shape[:2] for image in images})
    if len(shapes) > 1:
        raise ValueError(f"Expected images of one size, or size= to bring them to one. Received: sizes={shapes}")
    return np.stack(images).astype(np.float32)
