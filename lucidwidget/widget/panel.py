"""The widget's explain panel, kernel side: the image traits, the panel's outputs, and what the page's
image, thumbnail and output messages do.

`ExplainPanel` is a mixin of `LucidWidget`. The image lives in the synced `image` trait as the PNG of
the image fitted to the explain size, so a re-opened view rebuilds itself; assigning a path, a bundled
photo's name, a PIL image, an array or file bytes stores that. The page sends a dropped or picked file's
bytes in a custom message (`{"event": "image", "name": ...}` plus one binary buffer); a file that is not
an image gets one sentence in `explain_error`, and the previous image stays.
"""

from __future__ import annotations

import io
import os

import numpy as np
import traitlets
from PIL import Image

from lucidwidget import data, heatmap, imaging
from lucidwidget.attribution import METHODS
from lucidwidget.widget import settings as settings_lib
from lucidwidget.widget.explain import EXPLAIN_SETTINGS, EXPLAIN_SIDE, ExplainWorker, Job

IMAGE_SLOTS = {"image": "image", "style": "style_image"}
"""The objective's image slots (`objectives.reference`) and the traits that hold their images."""


class Photo(traitlets.Bytes):
    """PNG bytes of an image fitted to the widget's explain size (b"" for none). Assigning a file path, a
    bundled photo's name (`lucidwidget.data.photo_names()`), a PIL image, an array in [0, 1] or an image
    file's bytes stores that image, scaled to cover the size and centre-cropped; None clears it. Anything
    else raises a one-sentence `ValueError` or `TypeError`."""

    def validate(self, obj, value):
        if value is None or (isinstance(value, (bytes, bytearray, memoryview)) and len(value) == 0):
            return b""
        if isinstance(value, memoryview):
            value = value.tobytes()
        if isinstance(value, str) and not os.path.exists(value) and value.lower() in data.PHOTOS:
            value = data.photo_path(value)
        channels = obj._photo_channels
        if channels not in (1, 3):
            raise ValueError(
                f"Model {obj.model.name!r} takes {channels}-channel images, and a photo is grey or RGB, so the "
                f"widget cannot show one to it. Received: {self.name}={_shown(value)}"
            )
        return imaging.png_bytes(imaging.load_images(value, size=obj._photo_size, channels=channels)[0])


def _shown(value):
    return f"<{len(value)} bytes>" if isinstance(value, (bytes, bytearray)) else repr(value)


def _decode(png) -> np.ndarray | None:
    """The float32 (H, W, C) image of a `Photo` value, or None for b""."""
    if not png:
        return None
    picture = Image.open(io.BytesIO(png))
    array = np.asarray(picture, np.float32) / imaging.UINT8_MAX
    return array[..., None] if array.ndim == 2 else array


def class_names_of(model, class_names):
    """`{index: name}` from `class_names` (a list, or a dict of index to name), else from the model's
    `class_names` attribute, else empty."""
    names = class_names if class_names is not None else getattr(model, "class_names", None)
    if names is None:
        return {}
    if isinstance(names, dict):
        return {int(index): str(name) for index, name in names.items()}
    if isinstance(names, (list, tuple)) and all(isinstance(name, str) for name in names):
        return dict(enumerate(names))
    raise TypeError(
        "Expected class_names as a list of names (one per output unit) or a dict of index to name. "
        f"Received: class_names of type {type(names).__name__}"
    )


class ExplainPanel(traitlets.HasTraits):
    """The explain panel's traits and behaviour (see the module docstring); mixed into `LucidWidget`."""

    image = Photo(help="The image being explained (PNG of it fitted to the explain size); b'' for none.").tag(sync=True)
    style_image = Photo(help="The image whose style the style mode matches; b'' for none.").tag(sync=True)
    method = traitlets.Enum(METHODS, "gradcam", help=f"Attribution method of the heat map, one of {METHODS}.").tag(
        sync=True)
    heatmap_opacity = traitlets.Float(
        heatmap.DEFAULT_OPACITY, help="How much of the heat map's colour covers the image; display only."
    ).tag(sync=True)

    # Outputs: written by the explain thread (`photos` once, `explain_error` also by the page's messages).
    photos = traitlets.List(traitlets.Unicode(), help="Bundled photos the page offers.").tag(sync=True)
    heatmap = traitlets.Bytes(b"", help="The heat map as a colour-mapped RGBA PNG, drawn over the image.").tag(
        sync=True)
    explaining = traitlets.Bool(False, help="True while a heat map is being computed.").tag(sync=True)
    explain_status = traitlets.Unicode("", help="What the heat map shows, or what it waits for.").tag(sync=True)
    explain_error = traitlets.Unicode("", help="Why the last explanation or image failed, in one sentence.").tag(
        sync=True)
    explain_id = traitlets.Int(0, help="Counts heat maps published.").tag(sync=True)
    explain_settings = traitlets.Dict(help="The settings and method the heat map explains.").tag(sync=True)
    top_outputs = traitlets.List(traitlets.Dict(), help="The model's top outputs on the image.").tag(sync=True)
    outputs_note = traitlets.Unicode("", help="What the top outputs' numbers are.").tag(sync=True)
    top_channels = traitlets.List(
        traitlets.Dict(), help="The layer's top channels on the image, with feature-visualization thumbnails."
    ).tag(sync=True)
    channels_note = traitlets.Unicode("", help="How the top channels are ranked.").tag(sync=True)

    def _prepare_panel(self, renderer, layers, class_names):
        """Called before the traits get their first values: the image size and channels `Photo` fits to."""
        self._photo_size = renderer.input_size or (EXPLAIN_SIDE, EXPLAIN_SIDE)
        self._photo_channels = renderer.channels
        self._images = {"image": None, "style": None}
        self._image_version = 0
        self._panel_shown = False
        self._explain = ExplainWorker(renderer, layers, self._publish, class_names_of(renderer.model, class_names))

    def _start_panel(self):
        """Called once the traits have their first values: decodes them and starts observing."""
        self.photos = data.photo_names()
        for slot, name in IMAGE_SLOTS.items():
            self._images[slot] = _decode(getattr(self, name))
        self.observe(self._on_image, names="image")
        self.observe(self._on_style_image, names="style_image")
        self.observe(self._request_explain, names=[*EXPLAIN_SETTINGS, "method"])
        self._request_explain()

    @property
    def attribution_map(self):
        """The latest heat map's raw values, float32 (height, width) over `image`, or None."""
        return self._explain.latest_map

    @property
    def image_array(self):
        """The image being explained as float32 (height, width, channels) in [0, 1], or None."""
        return self._images["image"]

    def images_for_render(self) -> dict:
        """`{"image": array or None, "style": array or None}` for the render modes that start from them."""
        return dict(self._images)

    def show_channel(self, channel, layer=None):
        """Sends the main tiles to a channel (what clicking a top-channel thumbnail does): the channel of
        `layer` (default: the current one), as a channel objective unless a neuron is shown; the
        caricature and style modes, which ignore the channel, go back to standard."""
        with self._sync_lock, self.hold_trait_notifications():
            if layer is not None:
                self.layer = layer
            self.channel = int(channel)
            if self.objective not in ("channel", "neuron"):
                self.objective = "channel"
            if self.mode in ("caricature", "style"):
                self.mode = "standard"

    def show_output(self, index):
        """Sends the main tiles to one of the top outputs (what clicking it does): a class's logit, or a
        channel of a feature-map output."""
        for entry in self.top_outputs:
            if entry["index"] == index:
                break
        else:
            shown = [entry["index"] for entry in self.top_outputs]
            raise ValueError(f"Expected one of the top outputs {shown}. Received: index={index!r}")
        settings_lib.layer_info(entry["layer"], self._worker.layers)
        with self._sync_lock, self.hold_trait_notifications():
            self.show_channel(index, layer=entry["layer"])
            self.objective = "class_logit" if entry["classes"] else "channel"

    def _on_image(self, change):
        self._images["image"] = _decode(change["new"])
        self._image_version += 1
        self._request_explain()
        if self.live and self.mode in settings_lib.IMAGE_MODES:
            self.run()

    def _on_style_image(self, change):
        self._images["style"] = _decode(change["new"])
        if self.live and self.mode == "style":
            self.run()

    def _request_explain(self, change=None):
        image = self._images["image"]
        if image is None and not self._panel_shown:
            return
        self._panel_shown = image is not None
        settings = {name: getattr(self, name) for name in EXPLAIN_SETTINGS}
        self._explain.request(Job(image, self._image_version, settings, self.method))

    def _panel_message(self, content, buffers) -> bool:
        """Handles the page's image, thumbnail and output messages; False for other messages."""
        event = content.get("event")
        if event in ("image", "style_image"):
            self._image_message(event, content, buffers)
        elif event == "clear_image":
            self.image = None
        elif event == "channel":
            self.show_channel(content.get("channel"))
        elif event == "output":
            self.show_output(content.get("index"))
        else:
            return False
        return True

    def _image_message(self, name, content, buffers):
        """A bundled photo's name, or a file's bytes in the first buffer; a file that is not an image
        (or none) gets one sentence in `explain_error`, and the image stays as it was."""
        if content.get("photo") is not None:
            setattr(self, name, str(content["photo"]))
            return
        shown = str(content.get("name") or "the file")
        try:
            picture = imaging.read_image(bytes(buffers[0]), self._photo_channels) if buffers else None
        except (ValueError, TypeError):
            picture = None
        if picture is None:
            self.explain_error = (f"Could not read {shown!r} as an image: expected a PNG, JPEG, WebP, GIF or BMP "
                                  f"file. Received: {name}={shown!r}")
            return
        setattr(self, name, picture)
        self.explain_error = ""
