"""The widget's render thread: one daemon thread per widget owns the Renderers and runs renders.

The kernel's main thread only calls `request`, `stop` and `close`, which record what is wanted and
wake the thread; they never wait for TensorFlow. Each request bumps a *generation*; a running render
whose generation is out of date cancels itself at its next step, and the thread starts the newest
request once no newer one has arrived for `DEBOUNCE_SECONDS`. Results reach the widget through a
`publish(**changes)` function that the thread alone calls.
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import weakref

import numpy as np
from PIL import Image

from lucidwidget import imaging
from lucidwidget.errors import user_message
from lucidwidget.optvis.render import Renderer
from lucidwidget.widget import settings as settings_lib
from lucidwidget.widget.latest import LatestRequestThread

DEBOUNCE_SECONDS = 0.15
"""Quiet time after the last request before a render starts: slider bursts become one restart, while a
single change still restarts well within a second."""

MAX_LOSS_POINTS = 200
"""Objective values sent to the sparkline: longer runs are thinned evenly to about this many points."""

MAX_GIF_FRAMES = 120
"""Frames kept per run for `save_gif`: when full, every other one is dropped and from then on only every
other frame is kept, so the kept frames stay evenly spread over the run (12 s of animation at 10 fps)."""

MAX_HISTORY = 8
"""Past renders in the history strip; the oldest drops out."""

THUMBNAIL_SIDE = 64
"""Longest side in pixels of a history thumbnail (the strip's CSS shows it at this size)."""

CLOSE_TIMEOUT = 5.0
"""Seconds `close` waits for the thread to leave a compiled chunk before giving up on it."""

MAX_GATE_WAIT = 2.0
"""Longest a render waits at a step for its `gate` (the explain thread's heat map) to open."""

logger = logging.getLogger(__name__)


def _thin(values, limit):
    """Every k-th value, with k chosen so that at most `limit` remain; the last value always stays."""
    stride = math.ceil(len(values) / limit) if len(values) > limit else 1
    thinned = values[::stride]
    if stride > 1 and (len(values) - 1) % stride:
        thinned.append(values[-1])
    return thinned


def _displayable(images):
    """A grey model's tiles (grey, or grey + alpha in transparency mode) as RGB or RGBA; others unchanged."""
    if images.shape[-1] in (1, 2):
        return np.concatenate([np.repeat(images[..., :1], 3, axis=-1), images[..., 1:]], axis=-1)
    return images


def tile_sheet(images, background="checkerboard") -> np.ndarray:
    """The tiles as one uint8 RGBA image with transparent gaps, so the theme's colour shows between them.

    RGBA tiles (transparency mode) are first composited over `background` (see `imaging.composite_alpha`).
    """
    rgb = imaging.composite_alpha(_displayable(images), background)
    rgba = np.concatenate([rgb, np.ones_like(rgb[..., :1])], axis=-1)
    return imaging.to_uint8(imaging.tile(rgba, background=0.0))


def thumbnail(images, background="checkerboard") -> bytes:
    """A PNG of the tile sheet shrunk to fit in THUMBNAIL_SIDE pixels."""
    picture = Image.fromarray(tile_sheet(images, background))
    picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return imaging.png_bytes(np.asarray(picture))


class _RenderCallback:
    """One render's callback: records objective values and frames, publishes progress, cancels itself
    once a newer request (or `stop`) has made it obsolete."""

    def __init__(self, worker, renderer, settings, generation, run_id):
        self.worker = worker
        self.renderer = renderer
        self.settings = settings
        self.generation = generation
        self.run_id = run_id
        self.label = settings_lib.label(settings)
        self.stopped = False
        self.values = []
        self.frames = []
        self.images = None
        self.step = 0
        self.steps_per_sec = 0.0
        self.compiling = False
        self.warning = None
        self._frames_seen = 0
        self._stride = 1

    @property
    def frame_interval(self):
        return self.worker.frame_interval

    @property
    def obsolete(self):
        return self.worker.generation != self.generation

    def on_render_begin(self, logs):
        # Progress resets before the new settings and run id appear, so a reader never pairs the new
        # settings with the old run's step.
        self.compiling = logs["compiling"]
        self.worker.publish(
            step=0, losses=[], steps_per_sec=0.0, compiling=self.compiling, error="", stale=False,
            status=f"Starting {self.label}…", run_settings=dict(self.settings), run_id=self.run_id, running=True,
        )

    def on_step_end(self, step, logs):
        gate = self.worker.gate
        if gate is not None:
            gate.wait(MAX_GATE_WAIT)
        self.step = step
        self.values.append(float(logs["objective"]))
        rate = logs["steps_per_sec"]
        self.compiling = rate is None                   # the step's time was the compile's: no rate yet
        if rate is not None:
            self.steps_per_sec = float(rate)
        if self.obsolete:
            self.renderer.cancel()

    def on_render_end(self, logs):
        self.warning = logs["warning"]

    @property
    def note(self):
        """What a finished render needs said: an objective that never moved, or a unit that stayed off."""
        last = self.values[-1] if self.values else None
        return self.warning or settings_lib.never_on(self.settings, last, self.step)

    @property
    def gif_frames(self):
        """The kept frames as uint8 batches, always ending with the latest images."""
        if (self._frames_seen - 1) % self._stride == 0:
            return list(self.frames)
        return self.frames + [self.gif_frame(self.images)]

    def gif_frame(self, images):
        """uint8 frames as shown: a GIF has only on/off transparency, so RGBA tiles are composited."""
        images = _displayable(images)
        if images.shape[-1] == 4:
            images = imaging.composite_alpha(images, self.worker.background)
        return imaging.to_uint8(images)

    def on_frame(self, step, images):
        self.images = images
        if self._frames_seen % self._stride == 0:
            self.frames.append(self.gif_frame(images))
            if len(self.frames) > MAX_GIF_FRAMES:
                self.frames = self.frames[::2]
                self._stride *= 2
        self._frames_seen += 1
        self.worker.latest = self
        if not self.obsolete:
            self.worker.publish(
                frame=self.worker.sheet_png(images), step=step, losses=_thin(self.values, MAX_LOSS_POINTS),
                steps_per_sec=self.steps_per_sec, compiling=self.compiling,
                status=f"{self.label} · step {step}/{self.settings['steps']}",
            )


class RenderWorker(LatestRequestThread):
    """Runs renders for one widget on one daemon thread, started on the first request.

    Args:
        model: a `keras.Model` or a zoo name; loaded here, so layer lists are known at once.
        publish: called on the worker thread with trait changes, e.g. `publish(step=3, status="...")`.
        frame_rate: frames per second sent while rendering. Defaults to 10.
        **renderer_options: `preprocess` and `inputs` for every `Renderer` (one per pre-activation setting).

    Attributes:
        background: what RGBA tiles are shown over in frames, thumbnails and GIFs ("checkerboard",
            "white" or "black"); set by the widget.
        defaults: the widget's default settings; a history entry's summary lists what differs from them.
        gate: None, or a `threading.Event` a render waits for at each step (up to `MAX_GATE_WAIT` s): the
            explain thread clears it while it computes a heat map, to have the CPU to itself.
        last_exception: the exception of the last failed render, traceback included, for debugging.
    """

    debounce = DEBOUNCE_SECONDS
    thread_name = "lucidwidget-worker"

    def __init__(self, model, publish, frame_rate=10.0, **renderer_options):
        super().__init__()
        first = Renderer(model, preactivation=True, **renderer_options)
        self._options = {"preprocess": first.preprocess, "inputs": first.inputs}
        self._renderers = {True: first}
        self.model = first.model
        self.layers = first.layers
        self.input_size = first.input_size
        self.publish = publish
        self.frame_interval = 1.0 / frame_rate
        self.background = "checkerboard"
        self.defaults = {}
        self.gate = None
        self.last_exception = None
        self.latest = None
        self.history = []
        self._runs = 0
        self._active = None
        self._exit_hook = functools.partial(_close_if_alive, weakref.ref(self))
        atexit.register(self._exit_hook)

    def sheet_png(self, images) -> bytes:
        """The PNG frame of a batch of tiles, RGBA tiles shown over `background`."""
        return imaging.png_bytes(tile_sheet(images, self.background))

    def renderer(self, preactivation):
        """The Renderer for one pre-activation setting; both share the model, preprocessing and inputs, and
        keep their own steps."""
        key = bool(preactivation)
        with self._wake:
            if key not in self._renderers:
                self._renderers[key] = Renderer(self.model, preactivation=key, **self._options)
            return self._renderers[key]

    def request(self, settings, images=None):
        """Asks for a render of `settings` (a dict), replacing any render running or waiting; `images` are
        the widget's images for the modes that start from them (see `settings.build_objective`)."""
        self._post((dict(settings), images))

    def stop(self):
        """Cancels the running render and drops a waiting request; the tiles stay, and the render joins the
        history marked stopped."""
        with self._wake:
            self.generation += 1
            self._pending = None
            active = self._active
            if active is not None:
                active.stopped = True
            self._wake.notify_all()
        if active is not None:
            active.renderer.cancel()

    def close(self):
        """Stops the thread for good and waits (up to CLOSE_TIMEOUT s) for it to leave TensorFlow."""
        self._drop(closing=True)
        self.stop()
        self._join(CLOSE_TIMEOUT)
        atexit.unregister(self._exit_hook)

    def handle(self, request, generation):
        settings, images = request
        self._render(settings, images, generation)

    def _render(self, settings, images, generation):
        self._runs += 1
        try:
            renderer = self.renderer(settings["preactivation"])
            objective, kwargs = settings_lib.render_arguments(settings, self.layers, images)
            run = _RenderCallback(self, renderer, settings, generation, self._runs)
            with self._wake:
                self._active = run
            images = renderer.render(objective, callbacks=[run], **kwargs)
        except settings_lib.AwaitingInput as waiting:
            if not self._closing:
                self.publish(running=False, compiling=False, error="", stale=True, run_id=self._runs,
                             status=waiting.prompt)
            return
        except Exception as error:  # noqa: BLE001 - every failure is shown in the widget, the kernel lives on
            self.last_exception = error
            if not isinstance(error, ValueError):
                logger.exception("lucidwidget render failed")
            message = user_message(error)
            if not self._closing:
                self.publish(running=False, compiling=False, error=message, stale=True, run_id=self._runs,
                             status=f"Error in {settings_lib.label(settings)}")
            return
        finally:
            with self._wake:
                self._active = None
        if not self._closing:
            self._finish(run, images)

    def _finish(self, run, images):
        """Publishes the end of a run unless a newer request replaced it. Runs that completed or that the
        user stopped join the history (a stopped one marked so), even when a new request already waits."""
        run.images = images
        complete = run.step >= run.settings["steps"]
        if run.step > 0 and (complete or run.stopped or self._pending is None):
            self._remember(run, images, complete)
        if self._pending is not None:
            return
        if complete:
            status = f"Done: {run.label} · {run.step} steps"
        else:
            status = f"Stopped at step {run.step}/{run.settings['steps']}: {run.label}"
        self.publish(running=False, compiling=False, step=run.step, losses=_thin(run.values, MAX_LOSS_POINTS),
                     status=status, history=list(self.history), error=run.note)

    def _remember(self, run, images, complete):
        """Puts a run first in the history strip. A render of settings already in the strip replaces that
        entry, so each entry is distinct, except that a stopped render never replaces a completed one."""
        if not complete and any(e["settings"] == run.settings and not e["stopped"] for e in self.history):
            return
        others = [entry for entry in self.history if entry["settings"] != run.settings]
        self.history = [{
            "id": run.run_id,
            "label": run.label,
            "summary": settings_lib.summary(run.settings, self.defaults),
            "settings": dict(run.settings),
            "thumbnail": thumbnail(images, self.background),
            "step": run.step,
            "stopped": not complete,
        }] + others[:MAX_HISTORY - 1]
        if self._pending is not None:                   # the next render's messages follow at once
            self.publish(history=list(self.history))


def _close_if_alive(reference):
    """At interpreter exit, stops a worker that is still alive, so TensorFlow is not torn down under it."""
    worker = reference()
    if worker is not None:
        worker.close()
