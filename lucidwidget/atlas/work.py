"""The units of work of an atlas and the `Worker` that runs them: plain functions, no cluster needed.

`render_chunk` renders a chunk of one layer's units (unit i on batch item i) for every view;
`examples.scan_shard` finds a shard of images' best examples. A `Worker` loads the model once and runs
either; the local runner calls one in-process and the Ray runner wraps the same class as an actor.
Results are plain data (uint8 images, floats, NumPy arrays), written to disk by the driver only.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time

import numpy as np
from keras import ops

from lucidwidget import imaging
from lucidwidget.atlas import examples
from lucidwidget.atlas.plan import RenderChunk, ScanShard
from lucidwidget.models import FeatureTap
from lucidwidget.optvis import objectives
from lucidwidget.optvis.render import Renderer
from lucidwidget.optvis.step import fit_to_model

SCHEDULE = "fast"
"""The widget's schedule (`widget.settings.SCHEDULE`): a unit opened in the widget with its seed starts
from the atlas image's settings and matches it."""

DIVERSITY_IMAGES = 4
"""Images of the diversity view, optimised together (as the widget's 4 tiles)."""

DIVERSITY_WEIGHT = 10.0
"""Weight of the diversity term against the unit's channel mean in the diversity view: the widget's
default, the largest that kept every tile well alive in its measurement (4 tiles of block4_conv3:42
correlate 0.074 instead of 0.088, each keeping at least 91% of the activation)."""

OUT_OF_MEMORY = ("RESOURCE_EXHAUSTED", "out of memory", "OutOfMemory")
"""Words in the errors TensorFlow, JAX and PyTorch raise when a batch does not fit the device."""


@dataclasses.dataclass(frozen=True)
class Job:
    """What every worker needs to know, the same for all of them (picklable: it travels to Ray actors).

    Attributes:
        model: a zoo name or model file path (a `keras.Model` object only in-process).
        preprocess: a preprocessing preset name, or None.
        size: image side in pixels.
        steps: optimizer steps per render.
        views: the views to render (`settings.VIEWS` order).
        images: the folder of dataset images, or None.
        scan_batch: images per forward pass of the scan.
    """

    model: object
    preprocess: str | None
    size: int
    steps: int
    views: tuple
    images: str | None = None
    scan_batch: int = 32


@dataclasses.dataclass
class UnitResult:
    """One unit's views: `{view: (uint8 images (n, h, w, c), per-image values of the unit)}`."""

    channel: int
    seed: int
    views: dict


@dataclasses.dataclass
class ChunkResult:
    """A rendered chunk: its `UnitResult`s, the seconds it took and the worker (`host:pid`) that ran it."""

    chunk: RenderChunk
    units: list
    seconds: float
    worker: str


@dataclasses.dataclass
class ScanResult:
    """A scanned shard: `{layer: TopK.as_dict()}`, the files that could not be read, seconds, worker."""

    shard: ScanShard
    tables: dict
    unreadable: list
    seconds: float
    worker: str


def render_chunk(renderer, chunk, size, steps, views) -> list[UnitResult]:
    """Renders every view of a chunk's units.

    The channel and negative views render the whole chunk as one batch, unit i on batch item i with its
    own seed (`objectives.channel(layer, [c0, c1, ...])`, `seed=[s0, s1, ...]`), so each image is the
    one a batch of one would give. The diversity view renders `DIVERSITY_IMAGES` images of one unit
    together with `DIVERSITY_WEIGHT` times the diversity term, one unit per render because that term
    compares the images of its batch; the unit's seed seeds the render. Each view's values are the
    unit's channel mean on its images, untransformed.
    """
    layer, channels, seeds = chunk.layer, list(chunk.channels), list(chunk.seeds)
    target = objectives.channel(layer, channels)
    settings = {"size": size, "steps": steps, "schedule": SCHEDULE}
    found = {channel: {} for channel in channels}
    for view in views:
        if view == "diversity":
            for channel, seed in zip(channels, seeds):
                objective = objectives.channel(layer, channel) + DIVERSITY_WEIGHT * objectives.diversity(layer)
                images = renderer.render(objective, batch=DIVERSITY_IMAGES, seed=seed, **settings)
                values = renderer.evaluate(objectives.channel(layer, [channel] * DIVERSITY_IMAGES), images,
                                           per_item=True)
                found[channel][view] = (imaging.to_uint8(images), [float(v) for v in values])
            continue
        sign = 1.0 if view == "channel" else -1.0          # a weight, a knob: both views share one compiled step
        images = renderer.render(sign * target, batch=len(channels), seed=seeds, **settings)
        values = renderer.evaluate(target, images, per_item=True)
        for index, channel in enumerate(channels):
            found[channel][view] = (imaging.to_uint8(images[index:index + 1]), [float(values[index])])
    return [UnitResult(channel, seed, found[channel]) for channel, seed in zip(channels, seeds)]


def is_out_of_memory(error) -> bool:
    """Whether `error` says the device ran out of memory (then a smaller batch may fit)."""
    text = f"{type(error).__name__}: {error}"
    return any(word.lower() in text.lower() for word in OUT_OF_MEMORY)


class Worker:
    """Loads the model once and runs units of work (`RenderChunk`s and `ScanShard`s).

    Args:
        job: the `Job`.
        model: an already loaded `keras.Model` to use instead of loading `job.model`. Defaults to None.
    """

    def __init__(self, job, model=None):
        self.job = job
        self.renderer = Renderer(job.model if model is None else model, preprocess=job.preprocess)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._taps = {}

    def identity(self) -> str:
        """`host:pid` of the process running this worker, for logs."""
        return self.name

    def run(self, task):
        """Runs a `RenderChunk` (-> `ChunkResult`) or a `ScanShard` (-> `ScanResult`)."""
        started = time.perf_counter()
        if isinstance(task, RenderChunk):
            units = self._render(task)
            return ChunkResult(task, units, time.perf_counter() - started, self.name)
        if isinstance(task, ScanShard):
            tables, unreadable = examples.scan_shard(self._reader(task.layers), task, self.job.images,
                                                     self.job.size, self.renderer.channels, self.job.scan_batch)
            tables = {layer: table.as_dict() for layer, table in tables.items()}
            return ScanResult(task, tables, unreadable, time.perf_counter() - started, self.name)
        raise TypeError(f"Expected a RenderChunk or a ScanShard. Received: task={task!r}")

    def _render(self, chunk):
        """`render_chunk`, halving the batch while the device runs out of memory (images do not depend
        on the batch, so the halves give the same units)."""
        try:
            return render_chunk(self.renderer, chunk, self.job.size, self.job.steps, self.job.views)
        except Exception as error:                    # each backend raises its own out-of-memory type
            if len(chunk.channels) == 1 or not is_out_of_memory(error):
                raise
        half = len(chunk.channels) // 2
        parts = [RenderChunk(chunk.layer, chunk.channels[:half], chunk.seeds[:half]),
                 RenderChunk(chunk.layer, chunk.channels[half:], chunk.seeds[half:])]
        return [unit for part in parts for unit in self._render(part)]

    def _reader(self, layers):
        """`read(images) -> {layer: (values, row, col, grid)}` through a pre-activation tap of `layers`."""
        if layers not in self._taps:
            self._taps[layers] = FeatureTap(self.renderer.model, list(layers), preactivation=True,
                                            inputs=self.renderer.inputs)
        tap = self._taps[layers]
        preprocess = self.renderer.preprocess

        def read(images):
            activations = tap(fit_to_model(ops.convert_to_tensor(np.asarray(images, np.float32)), preprocess))
            return {layer: examples.maxima(activations[layer]) for layer in layers}

        return read
