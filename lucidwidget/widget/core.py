"""`LucidWidget`: live feature visualization in a notebook, driven from the UI or from code.

Every control is a synced trait, so `w.channel = 7` moves the slider and the slider sets `w.channel`.
A change to any setting (see `settings.SETTING_NAMES`) asks the widget's render thread for a new
render; the observers only record the request, so the kernel stays free while the tiles update. Output
traits (`frame`, `step`, `status`, `error`, `history`, ...) are written by the render thread alone, one
comm message per update. With an image (`image`), the explain panel (`panel.ExplainPanel`) shows the
heat map of the current target over it, the model's top outputs and the layer's top channels, computed
on a second thread (`explain.ExplainWorker`). Observers run on whichever thread handles the page's
messages (a kernel subshell's, with JupyterLab's comms over subshells); `sync.ThreadSafeWidget` keeps
every sync whole.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import random
import re
import time

import traitlets

from lucidwidget import imaging
from lucidwidget.optvis import transform
from lucidwidget.widget import esm
from lucidwidget.widget import settings as settings_lib
from lucidwidget.widget.panel import ExplainPanel
from lucidwidget.widget.sync import ThreadSafeWidget
from lucidwidget.widget.worker import CLOSE_TIMEOUT, RenderWorker

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]


def _asset(name) -> pathlib.Path:
    """A front-end file: shipped in the wheel as `lucidwidget/static/`, else the repository's `js/` (its
    siblings are beside it, for `esm.compose`)."""
    shipped = _PACKAGE / "static" / name
    return shipped if shipped.exists() else _PACKAGE.parent / "js" / name


DEFAULT_SIZE = 128
"""Tile side in pixels for models that take any size: Lucid's default, quick enough to watch live."""

DEFAULT_DIVERSITY = 10.0
"""Weight of the diversity term (minus the mean style similarity of the tiles, in [-1, 1]) against a
channel mean. Measured on vgg16-hed block4_conv3:42, 4 tiles (mean pixel correlation between tiles;
activation kept against no diversity): at 96 px, 128 steps, weight 0, 3, 10, 30 gave 0.087, 0.067,
0.059, 0.032 keeping 100%, 99%, 86%, 34% (one tile dead at 30); at 128 px, 256 steps, weight 0, 3, 10
gave 0.088, 0.100, 0.074, keeping 100%, 98%, 95% (the weakest tile 91%); with the widget's "fast"
schedule, weight 0 and 10 gave 0.046 and 0.045, keeping 98% (weakest tile 94%). 10 is the largest
weight that keeps every tile well alive."""

INTERPOLATION_TILES = 5
"""Frames an interpolation gets when it is picked with fewer than 2 tiles: both ends and three steps."""

BACKGROUNDS = ("checkerboard", "white", "black")
"""Backgrounds for showing RGBA tiles (`imaging.composite_alpha`); the checkerboard shows what is clear."""

MAX_SEED = 2**31 - 1
"""Reset draws seeds in [0, MAX_SEED], the range of the seed entry (a 32-bit signed integer)."""

OUTPUT_NAMES = (
    "layers", "frame", "step", "running", "status", "error", "losses", "steps_per_sec", "compiling", "run_id",
    "run_settings", "history", "notice", "stale", "photos", "heatmap", "explaining", "explain_status",
    "explain_error", "explain_id", "explain_settings", "top_outputs", "outputs_note", "top_channels",
    "channels_note",
)
"""Traits the widget reports; they are not constructor arguments."""

DISPLAY_NAMES = ("frame_rate", "live", "background", "image", "style_image", "method", "heatmap_opacity")
"""Traits that are constructor arguments but not render settings."""


def _default_layer(layers):
    """The deepest layer with a spatial map: a reasonable first thing to look at in any CNN."""
    spatial = [info for info in layers if info.spatial]
    return (spatial or layers)[-1].name


class LucidWidget(ExplainPanel, ThreadSafeWidget):
    """Feature visualization that renders live as you move the sliders, and explains an image.

    Displaying the widget shows the tiles, a progress bar, an objective sparkline, buttons (Run, Stop,
    Reset, Save PNG, Save GIF), the controls and a strip of past renders (click one to restore its
    settings). Setting a trait from code does the same as moving its control.

    With an image (`image=`, `w.image = ...`, or a file dropped on the widget or picked with "Explain an
    image"), an explain panel shows the image with the heat map of the current target over it (the
    objective kind on the chosen layer: a channel, neuron, class logit, direction or expression; method
    menu and opacity slider), the model's top outputs (classes with probabilities and `class_names`, or
    for a model whose output is a feature map, its strongest channels), and the chosen layer's top
    channels for the image as feature-visualization thumbnails (ranked by attribution to the target when
    the layer runs before it, else by activation); clicking one renders it in the tiles. Moving the
    channel or class redraws the heat map without recompiling. The modes "caricature", "style" (with
    `style_image`) and "dream" optimise from the image.

    Constructor arguments are checked at once: an unknown keyword raises `TypeError`, an unknown layer
    or an out-of-range channel raises `ValueError`. Later invalid settings (from the UI or from code)
    do not raise; they show in `error` and in the widget, the last good tiles stay (marked `stale`),
    and the next valid change renders again. An empty expression box is a prompt in `status`, not an
    error.

    Args:
        model: a `keras.Model` taking images in [0, 1] (see `preprocess`), a zoo name such as
            `"vgg16-hed"`, or a `.keras`/`.h5` file path. Grey (1-channel) models show grey tiles.
        layer: layer to visualize. Defaults to the model's deepest layer with a spatial map.
        channel: channel (or class index for `objective="class_logit"`). Defaults to 0.
        autostart: start rendering at once. Defaults to True.
        preprocess: what the model expects instead of [0, 1]: a preset name ("caffe", "torch",
            "[-1, 1]", "[0, 255]", ...) or a function; kept for every render. Defaults to None.
        inputs: values of a several-input model's other inputs by name (see `Renderer`). Defaults to
            None (zeros).
        image: an image to explain: a path, a bundled photo's name ("chelsea", "coffee", "astronaut"),
            a PIL image, an array in [0, 1] or file bytes; fitted (cover, centre-crop) to the model's size
            or 224 px. Defaults to None (no explain panel until one is given).
        class_names: names of the model's output classes, a list or `{index: name}`, for the top
            outputs. Defaults to None (the model's `class_names` attribute, if any).
        **settings: initial values of the other setting traits: `objective`, `expression`, `mode`,
            `channel_b`, `opacity`, `background`, `negative`,
            `preactivation`, `steps`, `learning_rate`, `size`, `tiles`, `diversity`, `fft`,
            `decorrelate`, `seed`, `jitter`, `scale`, `rotate`, `use_jitter`, `use_scale`,
            `use_rotate`, `frame_rate`, `live`, `style_image`, `method`, `heatmap_opacity`.

    Example:
        >>> w = LucidWidget("vgg16-hed", layer="block4_conv3", channel=42)
        >>> w                 # in a notebook: renders live
        >>> w.channel = 7     # restarts with channel 7, reusing the compiled step
        >>> w.wait(timeout=60); w.save("tiles.png"); w.save_gif("run.gif")
        >>> w.objective = "expression"; w.expression = "block4_conv3:42 - 0.5*block5_conv1:7"
        >>> w.mode = "transparency"   # RGBA tiles, shown over `w.background`
        >>> w.mode = "interpolation"; w.channel_b = 99   # tiles morph from channel 42 to 99
        >>> w.image = "chelsea"       # explain a photo: heat map of block4_conv3:42, top channels
        >>> w.method = "integrated_gradients"; w.attribution_map.shape   # (224, 224)
        >>> w.mode = "caricature"     # what block4_conv3 keeps of the photo
    """

    _esm = esm.compose(_asset("widget.js"))
    _css = _asset("widget.css")

    # Settings: each one is a control in the UI.
    layer = traitlets.Unicode(help="Layer to visualize.").tag(sync=True)
    channel = traitlets.Int(0, help="Channel, neuron's channel or class index.").tag(sync=True)
    objective = traitlets.Unicode("channel", help=f"One of {settings_lib.OBJECTIVE_KINDS}.").tag(sync=True)
    expression = traitlets.Unicode(
        "", help="Objective expression such as 'conv3:4 - 0.5*conv2:7', used when objective='expression'."
    ).tag(sync=True)
    mode = traitlets.Unicode("standard", help=f"One of {settings_lib.MODES}.").tag(sync=True)
    channel_b = traitlets.Int(1, help="Channel the interpolation ends at (mode='interpolation').").tag(sync=True)
    opacity = traitlets.Float(0.25, help="Mean opacity the transparency mode aims for, in [0, 1].").tag(sync=True)
    negative = traitlets.Bool(False, help="Minimise instead of maximise.").tag(sync=True)
    preactivation = traitlets.Bool(True, help="Read a fused activation's input (pre-ReLU).").tag(sync=True)
    steps = traitlets.Int(256, help="Optimizer steps per render.").tag(sync=True)
    learning_rate = traitlets.Float(0.05, help="Adam step size.").tag(sync=True)
    size = traitlets.Int(DEFAULT_SIZE, help="Tile side in pixels.").tag(sync=True)
    tiles = traitlets.Int(1, help="Images optimised together (the batch).").tag(sync=True)
    diversity = traitlets.Float(DEFAULT_DIVERSITY, help="Weight of the diversity term when tiles > 1.").tag(sync=True)
    fft = traitlets.Bool(True, help="FFT (spectrum) parameterization instead of pixels.").tag(sync=True)
    decorrelate = traitlets.Bool(True, help="Decorrelated colour space.").tag(sync=True)
    seed = traitlets.Int(0, help="Random start; Reset draws a new one.").tag(sync=True)
    jitter = traitlets.Float(
        transform.JITTER_FRACTION, help="Largest random shift: a fraction of the tile side in (0, 1), or pixels (>= 1)."
    ).tag(sync=True)
    scale = traitlets.Float(0.1, help="Random scaling spans 1 - scale .. 1 + scale.").tag(sync=True)
    rotate = traitlets.Float(10.0, help="Random rotation spans -rotate .. rotate degrees.").tag(sync=True)
    use_jitter = traitlets.Bool(True).tag(sync=True)
    use_scale = traitlets.Bool(True).tag(sync=True)
    use_rotate = traitlets.Bool(True).tag(sync=True)
    frame_rate = traitlets.Float(10.0, help="Most frames per second sent while rendering.").tag(sync=True)
    live = traitlets.Bool(True, help="Start a new render whenever a setting changes.").tag(sync=True)
    background = traitlets.Enum(
        BACKGROUNDS, "checkerboard", help="What transparent tiles are shown over; display only, no re-render."
    ).tag(sync=True)

    # Outputs: written by the worker thread (`notice` by the main thread).
    layers = traitlets.List(traitlets.Dict(), help="Visualizable layers: name, channels, kind.").tag(sync=True)
    frame = traitlets.Bytes(b"", help="The latest tiles as one PNG.").tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode(
        "", help="Why the last render failed or made no progress, in one sentence; else empty."
    ).tag(sync=True)
    losses = traitlets.List(traitlets.Float(), help="Objective values of the run, thinned.").tag(sync=True)
    steps_per_sec = traitlets.Float(0.0, help="Optimizer steps per second, measured without compiling.").tag(sync=True)
    compiling = traitlets.Bool(
        False, help="True while the render compiles its loop (new settings' structure or size): no rate yet."
    ).tag(sync=True)
    run_id = traitlets.Int(0, help="Counts renders started.").tag(sync=True)
    run_settings = traitlets.Dict(help="Settings of the render running or last run.").tag(sync=True)
    history = traitlets.List(
        traitlets.Dict(), help="Past renders: id, label, summary, settings, thumbnail, step reached, stopped."
    ).tag(sync=True)
    stale = traitlets.Bool(
        False, help="True while the tiles shown are from an earlier render: the latest settings failed or "
                    "wait for input."
    ).tag(sync=True)
    notice = traitlets.Unicode("", help="Result of the last button action (a saved file).").tag(sync=True)

    def __init__(self, model, layer=None, channel=0, *, autostart=True, preprocess=None, inputs=None, image=None,
                 class_names=None, **settings):
        allowed = set(settings_lib.SETTING_NAMES) | set(DISPLAY_NAMES)
        for name in settings:
            if name not in allowed:
                close = difflib.get_close_matches(name, sorted(allowed), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise TypeError(
                    f"LucidWidget got an unexpected keyword argument {name!r}.{hint} "
                    f"Received: {name}={settings[name]!r}"
                )
        worker = RenderWorker(model, self._publish, preprocess=preprocess, inputs=inputs)
        size = worker.input_size[0] if worker.input_size else DEFAULT_SIZE
        layers = [{"name": info.name, "channels": info.channels, "kind": info.kind} for info in worker.layers]
        self._worker = worker
        self._prepare_panel(worker.renderer(True), worker.layers, class_names)
        try:
            super().__init__(layers=layers, layer=layer or _default_layer(worker.layers), channel=channel,
                             image=image, **{"size": size, **settings})
            settings_lib.check(self.settings, worker.layers)
        except (ValueError, TypeError):
            self.close()
            raise
        worker.frame_interval = 1.0 / self.frame_rate
        worker.background = self.background
        worker.defaults = self.trait_defaults(*settings_lib.SETTING_NAMES)
        worker.gate = self._explain.quiet
        self.observe(self._on_layer, names="layer")
        self.observe(self._on_mode, names="mode")
        self.observe(self._on_setting, names=list(settings_lib.SETTING_NAMES))
        self.on_msg(self._on_message)
        self._start_panel()
        if autostart:
            self.run()

    @property
    def settings(self) -> dict:
        """A snapshot of the current settings as a plain dict."""
        return {name: getattr(self, name) for name in settings_lib.SETTING_NAMES}

    @property
    def model(self):
        """The `keras.Model` being visualized."""
        return self._worker.model

    @property
    def renderer(self):
        """The `Renderer` for the current `preactivation` setting (it keeps the compiled steps)."""
        return self._worker.renderer(self.preactivation)

    @property
    def images(self):
        """The latest tiles: float32 (tiles, height, width, channels) in [0, 1] with the model's channel count
        (3 for RGB, 1 for grey; one more, alpha, in transparency mode), or None before the first frame."""
        latest = self._worker.latest
        return None if latest is None else latest.images

    @property
    def last_exception(self):
        """The exception behind the last `error`, with its traceback, for debugging; None if none."""
        return self._worker.last_exception

    @property
    def worker_thread(self):
        """The render thread (one per widget, started by the first render), or None."""
        return self._worker.thread

    def run(self):
        """Starts a render with the current settings, replacing one in progress."""
        self._worker.request(self.settings, self.images_for_render())

    def stop(self):
        """Stops the render; the tiles so far stay."""
        self._worker.stop()

    def reset(self):
        """Starts again from a new random image (a new seed)."""
        self.seed = random.randint(0, MAX_SEED)
        if not self.live:
            self.run()

    def wait(self, timeout=None):
        """Blocks until the current render (and any waiting restart) has ended, and the explain panel's
        work too (heat map, top outputs and channels, their thumbnails).

        Args:
            timeout: seconds to wait at most. Defaults to None (no limit).

        Raises:
            TimeoutError: the render or the explanation was still going after `timeout` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for work, waiter in (("render", self._worker.wait), ("explanation", self._explain.wait)):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not waiter(left):
                raise TimeoutError(f"The {work} was still running after {timeout} s. Received: timeout={timeout}")

    def restore(self, history_id):
        """Restores the settings of a past render from `history` (by its `id`) and renders them."""
        for entry in self.history:
            if entry["id"] == history_id:
                with self._sync_lock, self.hold_trait_notifications():
                    for name, value in entry["settings"].items():
                        setattr(self, name, value)
                return
        ids = [entry["id"] for entry in self.history]
        raise ValueError(f"No history entry with this id. Expected one of {ids}. Received: history_id={history_id!r}")

    def save(self, path=None) -> str:
        """Writes the latest tiles as one image and returns its path.

        Args:
            path: file to write; its extension picks the format (.png, .jpg, .webp, .gif). Defaults to a
                PNG named from the settings, e.g. `lucid_conv3_7.png`.
        """
        latest = self._latest_or_raise()
        return imaging.save_image(path or self._default_path(latest, ".png"), latest.images)

    def save_gif(self, path=None, duration_ms=imaging.GIF_FRAME_MS) -> str:
        """Writes the latest run's frames (up to 120, evenly spread) as an animated GIF; returns its path.

        Args:
            path: file to write. Defaults to a name made from the settings, e.g. `lucid_conv3_7.gif`.
            duration_ms: display time per frame. Defaults to 100.
        """
        latest = self._latest_or_raise()
        return imaging.save_gif(path or self._default_path(latest, ".gif"), latest.gif_frames, duration_ms=duration_ms)

    def close(self):
        """Stops the render and explain threads, then closes the widget."""
        worker = getattr(self, "_worker", None)
        if worker is not None:
            worker.close()
        explain = getattr(self, "_explain", None)
        if explain is not None:
            explain.close(CLOSE_TIMEOUT)
        super().close()

    def _latest_or_raise(self):
        latest = self._worker.latest
        if latest is None:
            raise ValueError("Nothing has been rendered yet; call run() and wait() first. Received: images=None")
        return latest

    @staticmethod
    def _default_path(run, suffix) -> str:
        stem = re.sub(r"[^A-Za-z0-9]+", "_", f"lucid {run.label}").strip("_")
        return os.path.join(os.getcwd(), stem + suffix)

    def _publish(self, **changes):
        """Applies the worker's output changes as one comm message."""
        with self.hold_sync():
            for name, value in changes.items():
                setattr(self, name, value)

    @traitlets.validate("frame_rate")
    def _check_frame_rate(self, proposal):
        if not proposal["value"] > 0:
            raise traitlets.TraitError(f"Expected a frame rate > 0. Received: frame_rate={proposal['value']!r}")
        return proposal["value"]

    @traitlets.observe("frame_rate")
    def _on_frame_rate(self, change):
        worker = getattr(self, "_worker", None)
        if worker is not None:
            worker.frame_interval = 1.0 / change["new"]

    @traitlets.observe("background")
    def _on_background(self, change):
        """Shows the latest tiles over the new background at once when no render will do it."""
        worker = getattr(self, "_worker", None)
        if worker is None:
            return
        worker.background = change["new"]
        if not worker.busy and worker.latest is not None:
            self.frame = worker.sheet_png(worker.latest.images)

    def _on_layer(self, change):
        """Keeps the channels inside a newly picked layer's range, as the sliders do."""
        for info in self._worker.layers:
            if info.name == change["new"]:
                for name in ("channel", "channel_b"):
                    if getattr(self, name) >= info.channels:
                        setattr(self, name, info.channels - 1)

    def _on_mode(self, change):
        """An interpolation needs frames: picking it with a single tile asks for INTERPOLATION_TILES. Dream
        mode takes small, few steps (`settings.DREAM_STEPS`, `DREAM_LEARNING_RATE`) in place of the
        defaults, and leaving it puts the defaults back (values the user chose stay)."""
        if change["new"] == "interpolation" and self.tiles < 2:
            self.tiles = INTERPOLATION_TILES
        defaults = {name: self.trait_defaults(name) for name in ("steps", "learning_rate")}
        dream = {"steps": settings_lib.DREAM_STEPS, "learning_rate": settings_lib.DREAM_LEARNING_RATE}
        swap = None
        if change["new"] == "dream":
            swap = (defaults, dream)
        elif change["old"] == "dream":
            swap = (dream, defaults)
        if swap and all(getattr(self, name) == value for name, value in swap[0].items()):
            for name, value in swap[1].items():
                setattr(self, name, value)

    def _on_setting(self, change):
        if self.live:
            self.run()

    def _on_message(self, widget, content, buffers):
        """Buttons, history clicks and the explain panel's messages from the front end."""
        event = content.get("event")
        try:
            if self._panel_message(content, buffers):
                return
            if event == "run":
                self.run()
            elif event == "stop":
                self.stop()
            elif event == "reset":
                self.reset()
            elif event == "restore":
                self.restore(content.get("id"))
            elif event in ("save_png", "save_gif"):
                path = self.save() if event == "save_png" else self.save_gif()
                self.notice = f"Saved {path}"
        except (ValueError, TypeError) as error:
            self.notice = str(error)
