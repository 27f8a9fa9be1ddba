"""The widget's explain thread: the heat map of the current target over the widget's image, the model's
top outputs, and the top channels of the chosen layer with their feature visualizations.

One daemon thread per widget, started by the first image, keeps one `attribution.Explainer` per
pre-activation setting warm (their compiled passes are reused for every new channel, class or weight),
and works through requests as the render thread does: each request replaces the one waiting, and the
newest starts once no newer one has arrived for `DEBOUNCE_SECONDS`. A request's work comes in the order
people look at it, each part published as soon as it is ready through the widget's `publish`:

1. the heat map (`heatmap`, a colour-mapped RGBA PNG the page draws over the image; `explain_status`
   says what it shows);
2. the top outputs (once per image);
3. the chosen layer's top channels (`attribution.summary.top_channels`);
4. their feature visualizations, rendered together (one channel per batch item, one compile per layer)
   and published as they sharpen; a newer request cancels them.

While parts 1-3 run, `quiet` is clear and the render thread waits at its next step (at most
`MAX_RENDER_PAUSE` seconds): on a laptop's few cores the heat map then takes the whole CPU, so a
slider move redraws it promptly even while tiles render.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading

import numpy as np

from lucidwidget import heatmap, imaging
from lucidwidget.attribution import Explainer, summary
from lucidwidget.errors import user_message
from lucidwidget.optvis import objectives, transform
from lucidwidget.optvis.render import Renderer
from lucidwidget.widget import settings as settings_lib
from lucidwidget.widget.latest import LatestRequestThread

EXPLAIN_SIDE = 224
"""Side in pixels the widget's image is fitted to (scaled to cover, centre-cropped) for a model that
takes any size: ImageNet's size, where VGG16's block4 keeps a 28x28 grid. A fixed-size model uses its own."""

DEBOUNCE_SECONDS = 0.05
"""Quiet time after the last request before explaining. The page already debounces slider drags
(300 ms) and sends a release at once; this only joins a burst of trait writes from one message."""

MAX_RENDER_PAUSE = 2.0
"""Longest the render thread waits at a step for a heat map to finish, so a slow method (SmoothGrad,
Score-CAM) slows the tiles down without stopping them."""

TOP_OUTPUTS = 5
TOP_CHANNELS = 8
"""Outputs listed, and channels shown as thumbnails (one row of the explain panel)."""

THUMBNAIL_SIDE = 64
THUMBNAIL_STEPS = 48
"""Feature visualizations of the top channels: small and short, so eight render together in about 11 s
on vgg16-hed's block4_conv3 on a busy 2-core CPU (0.24 s a step), sharp enough to recognise at 64 px
with the widget's "fast" schedule. A model with a fixed size renders at that size."""

THUMBNAIL_FRAME_SECONDS = 0.5
"""How often thumbnails being rendered are sent to the page."""

MAX_THUMBNAILS = 512
"""Thumbnails kept (by layer, channel and settings) so that a channel seen before shows at once."""

METHOD_OPTIONS = {
    "smoothgrad": {"samples": 16},
    "integrated_gradients": {"steps": 16},
    "scorecam": {"top_n": 32},
}
"""Lighter settings than the library's defaults, so a heat map stays a few seconds on a CPU: SmoothGrad
with 16 noisy copies (50 by default), Integrated Gradients with 16 path points (50), and Faster Score-CAM
with the 32 channels whose maps vary most (every channel: 512 masked images at block5 of VGG16)."""

METHOD_LABELS = {
    "gradient": "Gradient",
    "smoothgrad": "SmoothGrad (16 samples)",
    "integrated_gradients": "Integrated Gradients (16 steps)",
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "scorecam": "Faster Score-CAM (32 channels)",
}
"""How `explain_status` names each method, with the settings above."""

CAM_METHODS = ("gradcam", "gradcam++", "scorecam")

TARGET_SETTINGS = ("layer", "channel", "objective", "expression", "negative", "preactivation", "mode")
"""The settings `settings.target` reads (and `seed`, for a random direction)."""

EXPLAIN_SETTINGS = (*TARGET_SETTINGS, "seed", "fft", "decorrelate")
"""Settings whose change asks for a new explanation (the last two shape the thumbnails)."""

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Job:
    """One request: the image `(H, W, C)` in [0, 1] (None to clear the panel), its version, the settings
    (`EXPLAIN_SETTINGS`) and the attribution method."""

    image: np.ndarray | None
    image_id: int
    settings: dict
    method: str

    @property
    def preactivation(self):
        return bool(self.settings["preactivation"])

    def target_key(self):
        """What the heat map depends on."""
        values = [self.settings[name] for name in TARGET_SETTINGS]
        values[-1] = values[-1] == "interpolation"                  # the only mode that changes the target
        if self.settings["objective"] == "random_direction":
            values.append(self.settings["seed"])
        return (self.image_id, self.method, *values)


class ExplainWorker(LatestRequestThread):
    """Explains the widget's image on one daemon thread, started by the first request.

    Args:
        renderer: the widget's first `Renderer`, whose model, preprocessing and inputs the explainers
            and the thumbnails share.
        layers: the model's visualizable layers (`LayerInfo`).
        publish: called on this thread with trait changes, e.g. `publish(heatmap=b"...")`.
        class_names: `{index: name}` for the top outputs. Defaults to None.

    Attributes:
        quiet: set while no heat map is being computed; the render thread waits on it.
        latest_map: the last heat map's raw values `(H, W)` (before display scaling), or None.
        last_exception: the exception of the last failed explanation, for debugging.
    """

    debounce = DEBOUNCE_SECONDS
    thread_name = "lucidwidget-explain"

    def __init__(self, renderer, layers, publish, class_names=None):
        super().__init__()
        self._options = {"preprocess": renderer.preprocess, "inputs": renderer.inputs}
        self.model = renderer.model
        self.layers = layers
        self.publish = publish
        self.class_names = dict(class_names or {})
        self.quiet = threading.Event()
        self.quiet.set()
        self.latest_map = None
        self.last_exception = None
        self._explainers = {}
        self._thumbnail_renderers = {}
        self._thumbnails = collections.OrderedDict()
        self._done = {}
        self._explain_count = 0

    def explainer(self, preactivation) -> Explainer:
        """The `Explainer` for one pre-activation setting (kept, with its compiled passes)."""
        key = bool(preactivation)
        if key not in self._explainers:
            self._explainers[key] = Explainer(self.model, preactivation=key, **self._options)
        return self._explainers[key]

    def request(self, job):
        """Asks for `job` (a `Job`), replacing any job waiting; a thumbnail render in progress stops at its
        next step."""
        self._post(job)

    def close(self, timeout):
        """Stops the thread for good, waiting up to `timeout` seconds for it to leave the engine."""
        self._drop(closing=True)
        for renderer in list(self._thumbnail_renderers.values()):
            renderer.cancel()
        self.quiet.set()
        self._join(timeout)

    def handle(self, job, generation):
        try:
            if job.image is None:
                self._clear()
            else:
                self._explain(job, generation)
        except Exception as error:  # noqa: BLE001 - shown in the widget; the kernel lives on
            self.last_exception = error
            logger.exception("lucidwidget explain failed")
            self.quiet.set()
            if self.current(generation):
                self.publish(explaining=False, explain_error=user_message(error))

    def _clear(self):
        self._done = {}
        self.latest_map = None
        self.publish(heatmap=b"", explaining=False, explain_status="", explain_error="", explain_settings={},
                     top_outputs=[], outputs_note="", top_channels=[], channels_note="")

    # -- the work of one job ------------------------------------------------------------------

    def _explain(self, job, generation):
        explainer = self.explainer(job.preactivation)
        images = job.image[None]
        target = None
        self.quiet.clear()
        try:
            if self._done.get("heatmap") != job.target_key():
                target = self._heatmap(explainer, images, job, generation)
            elif self._done.get("target") is not None:
                target = self._done["target"]
            if not self.current(generation):
                return
            outputs_key = (job.image_id, job.preactivation)
            if self._done.get("outputs") != outputs_key:
                self._top_outputs(explainer, images)
                self._done["outputs"] = outputs_key
            if not self.current(generation):
                return
            channels = self._top_channels(explainer, images, job, target)
        finally:
            self.quiet.set()
        if channels is not None and self.current(generation):
            self._render_thumbnails(channels, job, generation)

    def _heatmap(self, explainer, images, job, generation):
        """Computes and publishes the heat map; returns the target (None when the settings give none)."""
        label = settings_lib.target_label(job.settings)
        method = job.method
        self.publish(explaining=True, explain_status=f"Computing {METHOD_LABELS[method]} of {label}…")
        self._done.pop("heatmap", None)
        try:
            target = settings_lib.target(job.settings, self.layers)
        except settings_lib.AwaitingInput as waiting:
            self._done.update(heatmap=job.target_key(), target=None)
            self.publish(explaining=False, explain_error="", explain_status=waiting.prompt)
            return None
        if target.references:
            raise ValueError(
                "The heat map explains a unit, a class or a direction; an objective that compares with a photo "
                f"(caricature, content, style) has nothing to explain here. Received: target={target.description!r}"
            )
        size = images.shape[1:3]
        note = ""
        at = ""
        if method in CAM_METHODS:
            try:
                at = f" at {explainer.cam_layer(explainer.target(target, 1, size), size)}"
            except ValueError:
                note = (f" ({METHOD_LABELS[method]} needs a layer with a spatial grid before "
                        f"{', '.join(sorted(target.layers))}: showing the gradient instead)")
                method = "gradient"
        maps = explainer.attribute(images, target, method, **METHOD_OPTIONS.get(method, {}))
        if not self.current(generation):
            return target
        self.latest_map = maps[0]
        self._explain_count += 1
        self._done.update(heatmap=job.target_key(), target=target)
        self.publish(
            heatmap=imaging.png_bytes(heatmap.colorize(maps[0])), explaining=False, explain_error="",
            explain_status=f"{METHOD_LABELS[method]} of {label}{at}{note}", explain_id=self._explain_count,
            explain_settings={**{name: job.settings[name] for name in TARGET_SETTINGS}, "method": job.method},
        )
        return target

    def _top_outputs(self, explainer, images):
        outputs = summary.top_outputs(explainer, images, TOP_OUTPUTS)
        entries = [{"index": int(index), "value": float(value), "name": self.class_names.get(int(index), ""),
                    "layer": outputs.layer, "classes": outputs.classes}
                   for index, value in zip(outputs.indices, outputs.values)]
        self.publish(top_outputs=entries, outputs_note=outputs.note)

    def _top_channels(self, explainer, images, job, target):
        """Ranks and publishes the chosen layer's top channels (thumbnails kept from before); returns them."""
        layer = job.settings["layer"]
        key = (job.image_id, job.preactivation, layer, job.target_key() if target is not None else None)
        if self._done.get("channels") == key:
            return self._done["ranked"]
        ranked = summary.top_channels(explainer, images, layer, target, TOP_CHANNELS)
        self._done.update(channels=key, ranked=ranked)
        self.publish(top_channels=self._channel_entries(ranked, job), channels_note=ranked.note)
        return ranked

    def _thumbnail_key(self, layer, channel, job):
        return (layer, int(channel), job.preactivation, job.settings["fft"], job.settings["decorrelate"])

    def _channel_entries(self, ranked, job, fresh=None):
        entries = []
        for i, channel in enumerate(ranked.channels):
            kept = self._thumbnails.get(self._thumbnail_key(ranked.layer, channel, job))
            entries.append({
                "channel": int(channel),
                "activation": float(ranked.activations[i]),
                "attribution": None if ranked.attributions is None else float(ranked.attributions[i]),
                "thumbnail": kept if kept is not None else (fresh[i] if fresh is not None else b""),
                "rendered": kept is not None,
            })
        return entries

    def _render_thumbnails(self, ranked, job, generation):
        """Renders the top channels' feature visualizations together unless all are kept, publishing
        frames as they come; keeps them once finished."""
        keys = [self._thumbnail_key(ranked.layer, c, job) for c in ranked.channels]
        if all(key in self._thumbnails for key in keys):
            return
        renderer = self._thumbnail_renderer(job.preactivation)
        objective = objectives.Objective.sum(
            [objectives.channel(ranked.layer, int(c), batch=i) for i, c in enumerate(ranked.channels)])
        schedule = settings_lib.SCHEDULE
        factory = settings_lib.parameterisation(job.settings, schedule)
        progress = _ThumbnailFrames(self, renderer, ranked, job, generation)
        try:
            images = renderer.render(objective, size=renderer.input_size or THUMBNAIL_SIDE, batch=len(keys),
                                     steps=THUMBNAIL_STEPS, seed=0, param=factory, transforms=transform.preset(),
                                     schedule=schedule, callbacks=[progress])
        except ValueError as error:                     # a layer too small to render at the thumbnail size
            if self.current(generation):
                self.publish(channels_note=f"{ranked.note} No feature visualizations: {user_message(error)}")
            return
        if progress.cancelled or not self.current(generation):
            return
        for key, picture in zip(keys, _pngs(images)):
            self._thumbnails[key] = picture
            self._thumbnails.move_to_end(key)
        while len(self._thumbnails) > MAX_THUMBNAILS:
            self._thumbnails.popitem(last=False)
        self.publish(top_channels=self._channel_entries(ranked, job))

    def _thumbnail_renderer(self, preactivation):
        """A Renderer of its own per setting, so thumbnails render while the tiles do."""
        key = bool(preactivation)
        if key not in self._thumbnail_renderers:
            self._thumbnail_renderers[key] = Renderer(self.model, preactivation=key, **self._options)
        return self._thumbnail_renderers[key]


def _pngs(images):
    """One PNG per image, shrunk to THUMBNAIL_SIDE pixels (for a fixed-size model's larger renders)."""
    pictures = []
    for image in images:
        if max(image.shape[:2]) > THUMBNAIL_SIDE:
            image = imaging.resize(image, (THUMBNAIL_SIDE, THUMBNAIL_SIDE))[0]
        shown = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
        pictures.append(imaging.png_bytes(shown))
    return pictures


class _ThumbnailFrames:
    """The thumbnail render's callback: publishes frames, and stops once a newer job is waiting."""

    frame_interval = THUMBNAIL_FRAME_SECONDS

    def __init__(self, worker, renderer, ranked, job, generation):
        self.worker, self.renderer, self.ranked, self.job, self.generation = worker, renderer, ranked, job, generation
        self.cancelled = False

    def on_step_end(self, step, logs):
        if not self.worker.current(self.generation):
            self.cancelled = True
            self.renderer.cancel()

    def on_frame(self, step, images):
        if self.worker.current(self.generation) and step < THUMBNAIL_STEPS:
            self.worker.publish(top_channels=self.worker._channel_entries(self.ranked, self.job, _pngs(images)))
