"""One differentiable affine warp and the random draws that drive it, shared by the spatial transforms.

`jitter`, `random_scale` and `random_rotate` differ only in the per-example matrix they draw, so they all
resample through `affine_warp`. The warp is written with plain gathers rather than
`tf.raw_ops.ImageProjectiveTransformV3` because that op's registered gradient warps the incoming gradient
back by the inverse transform, which is not its adjoint: pixels pushed out of view by a shift receive
gradient that belongs to other pixels, and reflected border pixels lose theirs. Autodiff through gathers
gives the exact adjoint of bilinear interpolation and reflection, and also runs under XLA. The forward pass
equals that op's with `interpolation="BILINEAR"` and `fill_mode="REFLECT"`.
"""

from __future__ import annotations

import tensorflow as tf


def affine_warp(images, linear, shift, window=None):
    """Resamples images through a per-example affine map about the image centre.

    Output pixel `p` (x, y) reads the input at `centre + linear @ (p - centre) - shift`, interpolated
    bilinearly; positions outside the image are reflected back in about the half-pixel edge
    (`d c b a | a b c d`), so the output has no constant-coloured corners. With `linear` the
    identity, the content moves by `shift` pixels.

    Args:
        images: float tensor `(batch, height, width, channels)`.
        linear: `(batch, 2, 2)` matrices mapping output offsets from the centre to input offsets.
        shift: `(batch, 2)` translations `(dx, dy)` in pixels, applied after `linear`.
        window: optional `(height, width)` no larger than the image: compute only that centred
            window of the output, exactly what `tf.image.resize_with_crop_or_pad` would cut from the
            full result (an odd margin loses its extra row or column at the bottom/right), at the
            window's cost.

    Returns:
        A tensor with the dtype of `images`, the shape of `images` or of the window.
    """
    images = tf.convert_to_tensor(images)
    static = tuple(images.shape[1:3])
    if window is not None and any(side is not None and w > side for w, side in zip(window, static)):
        raise ValueError(
            f"Expected a window no larger than the images ({static[0]}x{static[1]}, height x width). "
            f"Received: window={tuple(window)}"
        )
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    height_f, width_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    out_height, out_width = (height, width) if window is None else window
    rows, cols = tf.meshgrid(
        tf.cast(tf.range(out_height) + (height - out_height) // 2, tf.float32),
        tf.cast(tf.range(out_width) + (width - out_width) // 2, tf.float32),
        indexing="ij",
    )
    # Offsets from the centre, flattened to (1, height * width) so they broadcast over the batch.
    off_x = tf.reshape(cols - (width_f - 1.0) / 2.0, [1, -1])
    off_y = tf.reshape(rows - (height_f - 1.0) / 2.0, [1, -1])
    linear = tf.cast(linear, tf.float32)
    shift = tf.cast(shift, tf.float32)
    # Explicit multiply-adds rather than a matmul: GPUs may run float32 matmuls in TF32, whose 10-bit
    # mantissa would move sample positions by a tenth of a pixel on a 224-pixel image.
    src_x = linear[:, 0, 0:1] * off_x + linear[:, 0, 1:2] * off_y + (width_f - 1.0) / 2.0 - shift[:, 0:1]
    src_y = linear[:, 1, 0:1] * off_x + linear[:, 1, 1:2] * off_y + (height_f - 1.0) / 2.0 - shift[:, 1:2]
    src_x = _reflect(src_x, width_f)
    src_y = _reflect(src_y, height_f)

    x0, y0 = tf.floor(src_x), tf.floor(src_y)
    wx, wy = (src_x - x0)[..., None], (src_y - y0)[..., None]
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    # After reflection a position lies in [-0.5, size - 0.5]; clipping the neighbours to the image
    # reproduces the half-pixel mirror at the edge.
    x_lo, x_hi = tf.clip_by_value(x0, 0, width - 1), tf.clip_by_value(x0 + 1, 0, width - 1)
    y_lo, y_hi = tf.clip_by_value(y0, 0, height - 1), tf.clip_by_value(y0 + 1, 0, height - 1)
    flat = tf.reshape(images, [batch, height * width, channels])

    def read(y, x):
        return tf.gather(flat, y * width + x, batch_dims=1)

    top = (1.0 - wx) * read(y_lo, x_lo) + wx * read(y_lo, x_hi)
    bottom = (1.0 - wx) * read(y_hi, x_lo) + wx * read(y_hi, x_hi)
    return tf.reshape((1.0 - wy) * top + wy * bottom, [batch, out_height, out_width, channels])


def _reflect(position, size):
    """Folds positions into [-0.5, size - 0.5] by mirroring about the half-pixel edges."""
    period = 2.0 * size
    folded = tf.math.floormod(position + 0.5, period)
    return tf.where(folded > size, period - folded, folded) - 0.5


def rotation_matrices(angles):
    """`(batch, 2, 2)` output-to-input maps that rotate content counter-clockwise on screen by `angles`.

    Image rows grow downwards, so a counter-clockwise turn on screen reads the input through
    `[[cos, -sin], [sin, cos]]`.
    """
    cos, sin = tf.cos(angles), tf.sin(angles)
    return tf.stack([tf.stack([cos, -sin], -1), tf.stack([sin, cos], -1)], -2)


def scale_matrices(scales):
    """`(batch, 2, 2)` output-to-input maps that enlarge content by `scales` about the centre."""
    inverse = 1.0 / scales
    zeros = tf.zeros_like(inverse)
    return tf.stack([tf.stack([inverse, zeros], -1), tf.stack([zeros, inverse], -1)], -2)


def identity_matrices(batch):
    return tf.eye(2, batch_shape=[batch])


def random_choice(values, batch, rng):
    """Draws one entry of the 1-D tensor `values` per example, uniformly, with `rng`."""
    index = rng.uniform([batch], minval=0, maxval=tf.shape(values)[0], dtype=tf.int32)
    return tf.gather(values, index)


def random_offsets(distance, batch, rng):
    """`(batch, 2)` whole-pixel offsets, each uniform in [-floor(distance), floor(distance)]."""
    reach = tf.cast(tf.floor(distance), tf.int32)
    offsets = rng.uniform([batch, 2], minval=-reach, maxval=reach + 1, dtype=tf.int32)
    return tf.cast(offsets, tf.float32)
