"""Score-CAM (Wang et al. 2020) and Faster Score-CAM: channel weights from forward passes alone.

Each feature map `A_k` of the CAM layer is min-max normalised into a mask, the image is multiplied by
the mask (upsampled, bilinear, inside the compiled pass) and scored, and the map is
`ReLU(sum_k w_k A_k)` with `w = softmax_k(f(x * M_k))`, a softmax over the channels of the masked
images' scores (pytorch-grad-cam's normalisation). The score is the target as the explainer reads it,
for a class index its pre-softmax logit. A softmax over channels is positive and ignores a constant
offset in the score. Two other choices failed on `tests/scenes.py`: the paper's code and tf-keras-vis
weigh by the class's softmax probability, which on a confident model underflows to 0 for every masked
image (9 of 48 scenes got an all-zero map), and the increase over a black image, `f(x * M_k) - f(0)`,
is negative for every mask where the black image scores higher (5 of 48 all-zero maps).

Masked inputs are scored in batches of `batch_size` from one image at a time, so memory stays bounded
whatever the channel count (2048 for ResNet50's last block). Identical masks, such as those of channels
that are zero or constant on the image, are scored once, and `top_n` keeps only the channels whose maps
vary most over positions (Faster Score-CAM). Passes run only as far as the target's layers.
"""

from __future__ import annotations

import numpy as np

from lucidwidget import checks
from lucidwidget.attribution.images import resize_maps


def scorecam(explainer, images, target, layer=None, top_n=None, batch_size=None):
    """Score-CAM maps `(N, H, W)`; see the module docstring.

    Args:
        layer: the CAM layer. Defaults to the last spatial layer before the target.
        top_n: keep only this many channels per image, those with the largest standard deviation over
            positions (Faster Score-CAM). Defaults to None (every channel).
        batch_size: masked inputs per compiled call. Defaults to the explainer's.
    """
    size = images.shape[1:3]
    layer = explainer.cam_layer(target, size, layer)
    acts = explainer.activations(images, layer, batch_size=batch_size)
    channels = acts.shape[-1]
    top_n = channels if top_n is None else checks.whole(top_n, "top_n", 1)
    if top_n > channels:
        raise ValueError(f"Expected top_n <= {channels} (the channels of layer {layer!r}). Received: top_n={top_n}")
    batch = min(explainer.batch_size if batch_size is None else checks.whole(batch_size, "batch_size", 1), top_n)
    cams = []
    for i, (image, values) in enumerate(zip(images, acts)):
        kept = np.argsort(-values.std(axis=(0, 1)), kind="stable")[:top_n]
        values = values[..., kept]
        masks, inverse = _unique_masks(values)
        scores = _masked_scores(explainer, image, i, masks, target, batch)
        weights = _softmax(scores[inverse])
        cams.append(np.maximum((values * weights).sum(axis=-1), 0.0))
    return resize_maps(np.stack(cams), size)


def _unique_masks(values):
    """Masks `(U, h, w)`: each distinct min-max normalised feature map once; and for each channel the
    index of its mask. A constant map gives an all-zero mask."""
    low, high = values.min(axis=(0, 1)), values.max(axis=(0, 1))
    span = high - low
    masks = np.where(span > 0, (values - low) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)
    flat = np.moveaxis(masks, -1, 0).reshape(masks.shape[-1], -1)
    distinct, inverse = np.unique(flat, axis=0, return_inverse=True)
    return distinct.reshape(-1, *values.shape[:2]), inverse.reshape(-1)


def _masked_scores(explainer, image, item, masks, target, batch):
    """Scores of `image` times each mask, in calls of exactly `batch` masks (the last padded)."""
    count = len(masks)
    scores = []
    for start in range(0, count, batch):
        take = np.minimum(np.arange(start, start + batch), count - 1)
        repeated = np.broadcast_to(image, (batch, *image.shape))
        scores.append(explainer.scores(repeated, target, np.full(batch, item), masks=masks[take],
                                       batch_size=batch)[: min(batch, count - start)])
    return np.concatenate(scores)


def _softmax(scores):
    shifted = np.exp(np.asarray(scores, np.float64) - np.max(scores))
    return (shifted / shifted.sum()).astype(np.float32)
