"""How many units an atlas renders per batch when the user does not say.

Images do not depend on the batch (one seed and one unit per item), so the batch only trades memory
for speed: the default is an estimate of what fits, capped by what runs fastest, and a worker halves a
batch that runs out of device memory anyway (`work.Worker`).
"""

from __future__ import annotations

import os

from lucidwidget import backend
from lucidwidget.models import FeatureTap

CPU_BATCH = 4
"""Units per batch on a CPU: the fastest in each of four runs of benchmarks/bench_atlas.py (vgg16-hed
block4_conv3, 128 px, 32 steps; this project's 2-core CPU, shared with other jobs at load averages of 4
to 11): against one unit at a time, B = 4 rendered 1.09x, 1.66x, 1.22x and 1.08x the units per minute,
B = 8 0.49x, 1.40x, 1.13x and 0.95x (B = 16, once: 0.71x). Larger batches only add memory on a CPU."""

ACCELERATOR_BATCH = 64
"""Most units per batch on a GPU or TPU: enough to fill a large device at 128 px; more would only make
each chunk (and the work lost with a worker) longer."""

ACCELERATOR_BUDGET = 8 * 2**30
"""Device memory an atlas batch may plan on: 8 GiB, half of the smallest common training GPU (16 GiB:
T4, V100), leaving the rest to the model's weights and the framework."""

HOST_MEMORY_FRACTION = 0.5
"""Share of the host's available memory a CPU batch may plan on."""

MEMORY_PER_ACTIVATION = 4 * 4
"""Bytes per activation value a render step holds: float32 (4 bytes) for the forward value, its
gradient and the backend's temporaries of the backward pass (about 3 more copies)."""


def activation_values(model, layers, size) -> int:
    """Activation values per image of every visualisable layer up to the deepest of `layers`, at
    `size` x `size`: what one batch item costs in memory, to a constant."""
    from lucidwidget.models import visualizable_layers

    names = [info.name for info in visualizable_layers(model)]
    deepest = max(names.index(layer) for layer in layers)
    shapes = FeatureTap(model, names[:deepest + 1], preactivation=False).output_shapes(size, size)
    total = 0
    for shape in shapes.values():
        count = 1
        for dimension in shape:
            count *= dimension
        total += count
    return total


def on_accelerator() -> bool:
    """Whether the backend computes on a GPU or TPU."""
    return backend.on_accelerator()


def host_memory():
    """Available host memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_batch(model, layers, size) -> int:
    """Units per batch: the most that fit the memory budget, at most `CPU_BATCH` on a CPU (measured
    fastest) or `ACCELERATOR_BATCH` on an accelerator."""
    per_item = activation_values(model, layers, size) * MEMORY_PER_ACTIVATION
    if on_accelerator():
        budget, cap = ACCELERATOR_BUDGET, ACCELERATOR_BATCH
    else:
        memory = host_memory()
        budget, cap = (memory * HOST_MEMORY_FRACTION if memory else None), CPU_BATCH
    fits = cap if budget is None else int(budget // max(per_item, 1))
    return max(1, min(cap, fits))
