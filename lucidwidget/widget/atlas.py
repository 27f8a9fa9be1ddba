"""`Atlas`: an atlas folder's grid of units in a notebook; a click opens the unit in a live `LucidWidget`.

The kernel reads the folder (manifests and image files) and sends one page of thumbnails at a time as
binary buffers, so a layer of thousands of units costs the page's worth. A click on a unit sends an
`open` message; `Atlas.open_unit` steers the live widget (`atlas.widget`) to that layer, channel and seed, so
it renders the unit as the atlas did and the sliders take it from there.
"""

from __future__ import annotations

import math
import os

import anywidget
import traitlets

from lucidwidget.atlas.settings import parse_channels
from lucidwidget.atlas.store import open_atlas
from lucidwidget.widget.core import LucidWidget, _asset

PAGE_SIZE = 48
"""Thumbnails per page: eight rows of six, about 1 MB of PNGs at 128 px."""


class Atlas(anywidget.AnyWidget):
    """The units of an atlas folder (made by `lucidwidget.atlas` or `lucidwidget atlas`), page by page.

    Pick a layer, filter channels (`"42"`, `"0-63,100"`), page through the grid; click a unit to open it
    in the live widget (`atlas.widget`, created on the first click from the atlas's model unless given).

    Args:
        directory: the atlas folder.
        widget: a `LucidWidget` to steer instead of creating one. Defaults to None.
        on_select: called as `on_select(layer, channel)` after a unit is opened. Defaults to None.

    Example:
        >>> atlas = lw.Atlas("atlas")
        >>> atlas                 # the grid; click a unit
        >>> atlas.widget          # the live widget on that unit
    """

    _esm = _asset("atlas.js")
    _css = _asset("atlas.css")

    directory = traitlets.Unicode(help="The atlas folder.").tag(sync=True)
    model_name = traitlets.Unicode(help="The model the atlas shows.").tag(sync=True)
    layers = traitlets.List(traitlets.Dict(), help="Layers: name, units, planned.").tag(sync=True)
    layer = traitlets.Unicode(help="The layer shown.").tag(sync=True)
    channels = traitlets.Unicode("", help="Channel filter such as '42' or '0-63,100'; empty for all.").tag(sync=True)
    page = traitlets.Int(0, help="Page of the grid, from 0.").tag(sync=True)
    pages = traitlets.Int(0, help="Pages the filtered layer fills.").tag(sync=True)
    units = traitlets.List(traitlets.Dict(), help="This page's units: channel, value, thumbnail (PNG).").tag(sync=True)
    error = traitlets.Unicode("", help="Why the filter or the last click did nothing; else empty.").tag(sync=True)
    selected = traitlets.Dict(help="The unit last opened: layer, channel, seed.").tag(sync=True)

    def __init__(self, directory, *, widget=None, on_select=None):
        settings, manifests = open_atlas(directory)
        if not manifests:
            raise ValueError(f"The atlas in {os.fspath(directory)!r} has no finished layer yet. "
                             f"Received: directory={os.fspath(directory)!r}")
        self._settings, self._manifests = settings, manifests
        self._widget, self._on_select = widget, on_select
        layers = [{"name": name, "units": len(m["units"]), "planned": m["planned"]} for name, m in manifests.items()]
        super().__init__(directory=os.path.abspath(os.fspath(directory)), model_name=str(settings["model"]),
                         layers=layers, layer=layers[0]["name"])
        self.observe(self._refresh, names=["layer", "channels", "page"])
        self.on_msg(self._on_message)
        self._refresh()

    @property
    def widget(self):
        """The `LucidWidget` a click steers (None before the first click unless one was given)."""
        return self._widget

    def open_unit(self, layer, channel):
        """Shows unit `channel` of `layer` in the live widget, with the atlas's seed, steps and size."""
        manifest = self._manifests.get(layer)
        unit = next((u for u in manifest["units"] if u["channel"] == channel), None) if manifest else None
        if unit is None:
            raise ValueError(f"No finished unit {channel} of layer {layer!r} in this atlas. "
                             f"Received: layer={layer!r}, channel={channel!r}")
        settings = {"layer": layer, "channel": channel, "seed": unit["seed"], "steps": self._settings["steps"],
                    "size": self._settings["size"], "objective": "channel", "negative": False, "tiles": 1,
                    "mode": "standard"}
        if self._widget is None:
            model = self._settings["model"]
            self._widget = LucidWidget(model, preprocess=self._settings.get("preprocess"), **settings)
        else:
            with self._widget.hold_trait_notifications():
                for name, value in settings.items():
                    setattr(self._widget, name, value)
        self.selected = {"layer": layer, "channel": channel, "seed": unit["seed"]}
        if self._on_select is not None:
            self._on_select(layer, channel)
        return self._widget

    def _refresh(self, change=None):
        """Sends the page of the chosen layer that the filter and `page` select."""
        if change is not None and change["name"] != "page" and self.page != 0:
            self.page = 0                                    # observed again, and sent then
            return
        manifest = self._manifests[self.layer]
        try:
            wanted = set(parse_channels(self.channels)) if self.channels.strip() else None
        except (TypeError, ValueError):
            self.error = f"Type channels as 42 or 0-63,100. Received: channels={self.channels!r}"
            return
        units = [unit for unit in manifest["units"] if wanted is None or unit["channel"] in wanted]
        pages = max(1, math.ceil(len(units) / PAGE_SIZE))
        page = min(self.page, pages - 1)
        folder = os.path.join(self.directory, manifest["folder"])
        shown = []
        for unit in units[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]:
            with open(os.path.join(folder, unit["image"]), "rb") as file:
                shown.append({"channel": unit["channel"], "value": unit["objective"], "thumbnail": file.read()})
        with self.hold_sync():
            self.error = ""
            self.pages = pages
            self.units = shown

    def _on_message(self, widget, content, buffers):
        if content.get("event") != "open":
            return
        try:
            self.open_unit(content.get("layer"), content.get("channel"))
        except (ValueError, TypeError) as error:
            self.error = str(error)
