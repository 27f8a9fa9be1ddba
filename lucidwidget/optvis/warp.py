"""One differentiable affine warp and the random draws that drive it, shared by the spatial transforms.

`jitter`, `random_scale` and `random_rotate` differ only in the per-example matrix they draw, so they all
resample through `affine_warp`. The warp is written as gathers of the four bilinear neighbours from the
flattened batch rather than with an image-transform op such as TensorFlow's
`ImageProjectiveTransformV3`, whose registered gradient warps the incoming gradient back by the inverse
transform, which is not its adjoint: pixels pushed out of view by a shift receive gradient that belongs
to other pixels, and reflected border pixels lose theirs. Autodiff through the gather gives the exact
adjoint of bilinear interpolation and reflection on every backend, and also runs under XLA. The forward
pass equals that op's with `interpolation="BILINEAR"` and `fill_mode="REFLECT"`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def affine_warp(images, linear, shift, window=None):
    """Resamples images through a per-example affine map about the image centre.

    Output pixel `p` (x, y) reads the input at `centre + linear @ (p - centre) - shift`, interpolated
    bilinearly; positions outside the image are reflected back in about the half-pixel edge
    (`d c b a | a b c d`), so the output has no constant-coloured corners. With `linear` the
    identity, the content moves by `shift` pixels.

    Args:
        images: float tensor `(batch, height, width, channels)` of static shape.
        linear: `(batch, 2, 2)` matrices mapping output offsets from the centre to input offsets.
        shift: `(batch, 2)` translations `(dx, dy)` in pixels, applied after `linear`.
        window: optional `(height, width)` no larger than the image: compute only that centred
            window of the output, exactly what a centre crop (`transform.crop_or_pad_to`) would cut
            from the full result (an odd margin loses its extra row or column at the bottom/right),
            at the window's cost.

    Returns:
        A tensor with the dtype of `images`, the shape of `images` or of the window.
    """
    images = ops.convert_to_tensor(images)
    batch, height, width, channels = images.shape
    if window is not None and (window[0] > height or window[1] > width):
        raise ValueError(
            f"Expected a window no larger than the images ({height}x{width}, height x width). "
            f"Received: window={tuple(window)}"
        )
    out_height, out_width = (height, width) if window is None else window
    # Offsets of the output pixels from the centre: host-side constants of shape (1, pixels), which
    # broadcast over the batch.
    rows, cols = np.meshgrid(
        np.arange(out_height) + (height - out_height) // 2,
        np.arange(out_width) + (width - out_width) // 2,
        indexing="ij",
    )
    off_x = ops.convert_to_tensor((cols.reshape(1, -1) - (width - 1) / 2).astype(np.float32))
    off_y = ops.convert_to_tensor((rows.reshape(1, -1) - (height - 1) / 2).astype(np.float32))
    linear = ops.cast(linear, "float32")
    shift = ops.cast(shift, "float32")
    # Explicit multiply-adds rather than a matmul: GPUs may run float32 matmuls in TF32, whose 10-bit
    # mantissa would move sample positions by a tenth of a pixel on a 224-pixel image.
    src_x = linear[:, 0, 0:1] * off_x + linear[:, 0, 1:2] * off_y + ((width - 1) / 2 - shift[:, 0:1])
    src_y = linear[:, 1, 0:1] * off_x + linear[:, 1, 1:2] * off_y + ((height - 1) / 2 - shift[:, 1:2])
    src_x = _reflect(src_x, width)
    src_y = _reflect(src_y, height)

    x0, y0 = ops.floor(src_x), ops.floor(src_y)
    wx, wy = src_x - x0, src_y - y0
    x0, y0 = ops.cast(x0, "int32"), ops.cast(y0, "int32")
    # After reflection a position lies in [-0.5, size - 0.5]; clipping the neighbours to the image
    # reproduces the half-pixel mirror at the edge.
    x_lo, x_hi = ops.clip(x0, 0, width - 1), ops.clip(x0 + 1, 0, width - 1)
    y_lo, y_hi = ops.clip(y0, 0, height - 1), ops.clip(y0 + 1, 0, height - 1)
    # Row offsets of each example in the flattened batch, so one gather serves every example.
    first = ops.convert_to_tensor(np.arange(batch, dtype=np.int32)[:, None] * (height * width))
    rows_lo, rows_hi = y_lo * width + first, y_hi * width + first
    flat = ops.reshape(images, (batch * height * width, channels))

    def read(rows, cols):
        return ops.take(flat, rows + cols, axis=0)

    wx, wy = wx[..., None], wy[..., None]
    top_left, bottom_left = read(rows_lo, x_lo), read(rows_hi, x_lo)
    top = top_left + wx * (read(rows_lo, x_hi) - top_left)
    bottom = bottom_left + wx * (read(rows_hi, x_hi) - bottom_left)
    return ops.reshape(top + wy * (bottom - top), (batch, out_height, out_width, channels))


def _reflect(position, size):
    """Folds positions into [-0.5, size - 0.5] by mirroring about the half-pixel edges."""
    period = 2.0 * size
    folded = ops.mod(position + 0.5, period)
    return ops.where(folded > size, period - folded, folded) - 0.5


def rotation_matrices(angles):
    """`(batch, 2, 2)` output-to-input maps that rotate content counter-clockwise on screen by `angles`.

    Image rows grow downwards, so a counter-clockwise turn on screen reads the input through
    `[[cos, -sin], [sin, cos]]`.
    """
    angles = ops.convert_to_tensor(angles, "float32")
    cos, sin = ops.cos(angles), ops.sin(angles)
    return ops.stack([ops.stack([cos, -sin], -1), ops.stack([sin, cos], -1)], -2)


def scale_matrices(scales):
    """`(batch, 2, 2)` output-to-input maps that enlarge content by `scales` about the centre."""
    inverse = 1.0 / ops.convert_to_tensor(scales, "float32")
    zeros = ops.zeros_like(inverse)
    return ops.stack([ops.stack([inverse, zeros], -1), ops.stack([zeros, inverse], -1)], -2)


def identity_matrices(batch):
    return ops.convert_to_tensor(np.broadcast_to(np.eye(2, dtype=np.float32), (batch, 2, 2)))


def random_index(count, batch, rng):
    """`(batch,)` int32 indices uniform in [0, count), drawn with the `keras.random.SeedGenerator` `rng`.

    `count` may be a tensor. Drawn as floats and scaled (no backend's integer draw takes tensor
    bounds everywhere); the clip keeps `u * count` from rounding up to `count` itself.
    """
    count = ops.cast(count, "float32")
    index = ops.floor(keras.random.uniform((batch,), seed=rng) * count)
    return ops.cast(ops.minimum(index, count - 1.0), "int32")


def random_choice(values, batch, rng):
    """Draws one entry of the 1-D `values` per example, uniformly, with `rng`."""
    values = ops.convert_to_tensor(values)
    return ops.take(values, random_index(values.shape[0], batch, rng), axis=0)


def random_offsets(distance, batch, rng):
    """`(batch, 2)` whole-pixel offsets, each uniform in [-floor(distance), floor(distance)]."""
    reach = ops.floor(ops.convert_to_tensor(distance, "float32"))
    index = ops.reshape(random_index(2.0 * reach + 1.0, 2 * batch, rng), (batch, 2))
    return ops.cast(index, "float32") - reach
