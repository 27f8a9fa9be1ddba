"""`atlas()`: every unit of chosen layers rendered once, with dataset examples, resumable, local or on Ray.

The driver checks every argument, plans what is missing from the output folder, hands the units of work
to a runner (this process, or Ray actors) and writes each result as it arrives. The folder is the
state: kill the run at any moment and run it again, and it finishes only what is missing.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time

import keras

import lucidwidget
from lucidwidget.atlas import batching, examples, plan, settings as settings_lib
from lucidwidget.atlas.runners import LocalRunner
from lucidwidget.atlas.store import Store, folder_digest, layer_summary
from lucidwidget.atlas.work import Job
from lucidwidget.models import load_model
from lucidwidget.optvis import objectives
from lucidwidget.optvis.render import Renderer

LOG = logging.getLogger("lucidwidget.atlas")

SCAN_STATE_INTERVAL = 10.0
"""Seconds between saves of a scan in progress: a kill loses at most this much scanning, and a folder of
a million images in shards of 256 does not rewrite the state 4,000 times."""


@dataclasses.dataclass
class AtlasResult:
    """What a run did.

    Attributes:
        directory: the atlas folder (open `index.html` in it).
        rendered: units rendered by this run.
        skipped: units already finished by an earlier run.
        scanned: images scanned for dataset examples by this run.
        batch: units per batch.
        seconds: wall time of the run.
        workers: `{worker: {"units", "seconds", "units_per_minute"}}` for the render phase.
        lost_workers: Ray workers that died and were replaced.
    """

    directory: str
    rendered: int
    skipped: int
    scanned: int
    batch: int
    seconds: float
    workers: dict
    lost_workers: int


def atlas(model, layers, output, *, channels=None, steps=settings_lib.DEFAULT_STEPS, size=None, batch=None,
          views=settings_lib.DEFAULT_VIEWS, images=None, ray=None, workers=None, seed=0, format="png",
          preprocess=None, ray_options=None, verbose=1) -> AtlasResult:
    """Renders every unit of `layers` once into `output`, with a gallery to browse them.

    Each unit (a channel) gets its image (`views`) and, with `images`, its top 9 images of that folder
    with a crop around where it fired most. Units of one layer are rendered `batch` at a time, unit i on
    batch item i with a seed of its own (from `seed`, the layer and the channel), so each image depends
    only on its unit and these settings. Every argument is checked before any work. Rerunning the same
    call finishes what is missing and renders nothing twice; other `steps`, `size`, `views`, `seed`,
    `format` or model for the same folder are refused.

    Args:
        model: a zoo name (`"vgg16-hed"`), a model file, or (without `ray`) a `keras.Model`.
        layers: layer names, or one name.
        output: the atlas folder (created if missing; its parent must exist).
        channels: units of every layer: `"0-63,100"`, a number or a list. Defaults to None (all).
        steps: optimizer steps per render. Defaults to 256.
        size: image side in pixels. Defaults to the model's input size, else 128.
        batch: units per batch. Defaults to None (`batching.default_batch`: what fits memory, at most
            the fastest on a CPU).
        views: some of `"channel"`, `"negative"`, `"diversity"` (a list or `"channel,negative"`).
            Defaults to `"channel"`.
        images: a folder of images (searched recursively) for dataset examples. Defaults to None.
        ray: `"auto"` (this machine's Ray cluster, else a new local one) or a Ray address
            (`"head:6379"`, `"ray://head:10001"`) to run on Ray actors. Defaults to None (this process).
        workers: Ray actors. Defaults to None (one per GPU, else one per 4 CPUs).
        seed: base of every unit's seed. Defaults to 0.
        format: `"png"` or `"webp"` for unit images. Defaults to `"png"`.
        preprocess: the model's input convention, a preset name such as `"caffe"` (see
            `lucidwidget.models.PRESET_NAMES`). Defaults to None (images in [0, 1]).
        ray_options: extra options for each Ray actor, e.g. `{"num_gpus": 0.5}`. Defaults to None.
        verbose: 0 silent; 1 a progress bar (units done, units/min) and a line per worker. Defaults to 1.

    Returns:
        An `AtlasResult`.

    Example:
        >>> lw.atlas("vgg16-hed", ["block4_conv3"], "atlas", channels="0-63", images="photos/")
    """
    started = time.monotonic()
    args = settings_lib.check_arguments(
        model, layers, output, channels=channels, steps=steps, size=size, batch=batch, views=views,
        images=images, ray=ray, workers=workers, seed=seed, format=format, preprocess=preprocess)
    loaded = load_model(args.model) if isinstance(args.model, str) else args.model
    renderer = Renderer(loaded, preprocess=args.preprocess)
    model_name = args.model if isinstance(args.model, str) else loaded.name
    units = settings_lib.resolve_units(args.layers, renderer.layers, args.channels, model_name)
    side = _check_size(renderer, args.size, args.layers)
    if args.images is not None and renderer.channels not in (1, 3):
        raise ValueError(f"Dataset examples need a model of grey or RGB images; this one takes "
                         f"{renderer.channels} channels. Received: images={args.images!r}")
    store = Store(args.output)
    shared = {"model": model_name, "preprocess": args.preprocess, "steps": args.steps, "size": side,
              "views": list(args.views), "seed": args.seed, "format": args.format}
    digest = folder_digest(args.images, args.image_files) if args.images is not None else None
    store.check(shared)
    _check_examples(store, args, digest)
    store.claim(shared, args.layers)
    batch = args.batch or batching.default_batch(loaded, args.layers, side)
    meta = {**shared, "version": lucidwidget.__version__, "batch": batch}
    report = _Report(verbose)
    if store.clean():
        report.log("Removed the temporary files of an interrupted run")

    records = {layer: store.records(layer) for layer in args.layers}
    chunks = [chunk for layer in args.layers
              for chunk in plan.render_chunks(layer, [c for c in units[layer] if c not in records[layer]],
                                              batch, args.seed)]
    skipped = sum(len(set(units[layer]) & set(records[layer])) for layer in args.layers)
    manifests = {layer: store.write_manifest(layer, meta, units[layer], records[layer]) for layer in args.layers}
    _write_index(store, meta, manifests)

    job = Job(args.model, args.preprocess, side, args.steps, args.views, args.images,
              scan_batch=batch * examples.SCAN_IMAGES_PER_UNIT)
    todo = sum(len(chunk.channels) for chunk in chunks)
    report.log(f"Atlas of {model_name}: {todo} units to render, {skipped} already done, batch {batch}")
    runner = _Lazy(lambda: _runner(job, args, loaded, ray_options))
    scanned = 0
    try:
        if chunks:
            _render(runner, chunks, store, args, meta, units, records, manifests, report)
        if args.images is not None:
            scanned = _scan(runner, store, args, units, records, manifests, meta, digest, side, renderer.channels,
                            report)
    finally:
        runner.close()
    _write_index(store, meta, manifests)
    seconds = time.monotonic() - started
    report.log(f"Atlas written to {args.output} (index.html) in {seconds:.0f} s")
    return AtlasResult(args.output, todo, skipped, scanned, batch, seconds, report.throughput(), runner.lost)


def _check_size(renderer, size, layers) -> int:
    """The image side: `size`, else the model's fixed size, else 128; every layer must keep a grid."""
    side = None
    for layer in layers:
        height, width = renderer.check_size(size, objectives.channel(layer, 0))
        if height != width:
            raise ValueError(f"An atlas renders square images; model {renderer.model.name!r} takes "
                             f"{height}x{width}. Received: size={size!r}")
        side = height
    return side


def _check_examples(store, args, digest):
    """Refuses examples from another folder (or changed files) than the ones already in the atlas."""
    if args.images is None:
        return
    for layer in args.layers:
        found = store.read_examples(layer)
        if found is not None and found["digest"] != digest:
            raise ValueError(
                f"The dataset examples of layer {layer!r} in {store.root!r} come from {found['images']} images of "
                f"{found['folder']!r}, not these; rerun with that folder or write to another output. "
                f"Received: images={args.images!r}"
            )


class _Lazy:
    """A runner started on first use, so a run with nothing left to do starts no Ray actor."""

    def __init__(self, start):
        self._start, self._runner = start, None

    def map(self, tasks):
        if self._runner is None:
            self._runner = self._start()
        return self._runner.map(tasks)

    @property
    def lost(self):
        return 0 if self._runner is None else self._runner.lost

    def close(self):
        if self._runner is not None:
            self._runner.close()


def _runner(job, args, loaded, ray_options):
    if args.ray is None:
        return LocalRunner(job, loaded)
    from lucidwidget.atlas.ray_runner import RayRunner

    return RayRunner(job, args.ray, args.workers, ray_options)


def _render(runner, chunks, store, args, meta, units, records, manifests, report):
    """Writes each chunk's units as they arrive, with the layer's manifest and the index."""
    total = sum(len(chunk.channels) for chunk in chunks)
    report.start("units", total)
    for result in runner.map(chunks):
        layer = result.chunk.layer
        share = result.seconds / len(result.units)
        for unit in result.units:
            records[layer][unit.channel] = store.write_unit(layer, unit, args.format, share, result.worker)
        manifests[layer] = store.write_manifest(layer, meta, units[layer], records[layer])
        _write_index(store, meta, manifests)
        report.advance(len(result.units), result.worker, result.seconds)
    report.finish()
    report.log_workers()


def _scan(runner, store, args, units, records, manifests, meta, digest, side, image_channels, report) -> int:
    """Finds every layer's dataset examples (resuming a scan in progress), then writes the crops."""
    files = args.image_files
    tables, done = {}, {}
    for layer in args.layers:
        if store.read_examples(layer) is None:
            tables[layer], done[layer] = store.read_scan(layer, digest)
    shards = plan.scan_shards(files, done)
    scanned = sum(len(shard.files) for shard in shards)
    if shards:
        report.start("images", scanned)
        saved = time.monotonic()
        for result in runner.map(shards):
            for layer, arrays in result.tables.items():
                table = examples.TopK.from_dict(arrays)
                tables[layer] = table if tables[layer] is None else tables[layer].merge(table)
            for layer in result.shard.layers:
                done[layer].add(result.shard.index)
            for name in result.unreadable:
                report.log(f"Skipped {name}: not a readable image")
            if time.monotonic() - saved > SCAN_STATE_INTERVAL:
                for layer in tables:
                    if tables[layer] is not None:
                        store.write_scan(layer, digest, tables[layer], done[layer])
                saved = time.monotonic()
            report.advance(len(result.shard.files), result.worker, result.seconds, count=False)
        report.finish()
    for layer in args.layers:
        found = store.read_examples(layer)
        if found is None:
            if tables[layer] is None:
                continue                                     # every image was unreadable
            found = store.finish_examples(layer, tables[layer], files, args.images, digest, side, image_channels)
        store.write_crops(layer, found, units[layer], image_channels)
        manifests[layer] = store.write_manifest(layer, meta, units[layer], records[layer])
    return scanned


def _write_index(store, meta, manifests):
    store.write_index(meta, [layer_summary(manifest) for manifest in manifests.values()])


class _Stderr(logging.Handler):
    """Writes a record's message to the current `sys.stderr` (looked up at each line, so a notebook's or a
    test's replacement stream receives it)."""

    def emit(self, record):
        print(self.format(record), file=sys.stderr, flush=True)


class _Report:
    """The driver's progress bar (`keras.utils.Progbar`: done, and per minute) and log lines.

    Log lines go to the `lucidwidget.atlas` logger; with `verbose` and no handler of the user's on it,
    they are written to stderr (and not passed on to the root logger, which would repeat them).
    """

    def __init__(self, verbose):
        self.verbose = verbose
        self._workers = {}
        self._bar = None
        if verbose and not LOG.handlers:
            LOG.addHandler(_Stderr())
            LOG.setLevel(logging.INFO)
            LOG.propagate = False

    def log(self, message):
        if self.verbose:
            LOG.info(message)

    def start(self, what, total):
        self._what, self._done, self._began = what, 0, time.monotonic()
        if self.verbose:
            self._bar = keras.utils.Progbar(total, unit_name=what[:-1], stateful_metrics=[f"{what}/min"])

    def advance(self, done, worker, seconds, count=True):
        self._done += done
        if count:
            units, busy = self._workers.get(worker, (0, 0.0))
            self._workers[worker] = (units + done, busy + seconds)
        if self._bar is not None:
            elapsed = max(time.monotonic() - self._began, 1e-9)
            self._bar.update(self._done, values=[(f"{self._what}/min", 60.0 * self._done / elapsed)])

    def finish(self):
        self._bar = None

    def log_workers(self):
        """A line per worker with its render throughput."""
        if self.verbose:
            for worker, line in self.throughput().items():
                LOG.info("worker %s: %d units in %.0f s busy, %.1f units/min", worker, line["units"],
                         line["seconds"], line["units_per_minute"])

    def throughput(self) -> dict:
        return {worker: {"units": units, "seconds": busy, "units_per_minute": 60.0 * units / max(busy, 1e-9)}
                for worker, (units, busy) in self._workers.items()}
