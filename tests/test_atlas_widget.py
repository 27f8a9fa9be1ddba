"""`lw.Atlas` in the kernel: it pages through an atlas's units, filters them, and a click (the front
end's `open` message) opens the unit in the live widget, which then renders the atlas's image."""

import os

import numpy as np
import pytest
from PIL import Image

import lucidwidget as lw
from atlas_support import manifest, save_tiny_model
from lucidwidget.widget import atlas as atlas_widget

TIMEOUT = 120


@pytest.fixture(scope="module")
def atlas_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("widget-atlas")
    model = save_tiny_model(folder)
    directory = str(folder / "atlas")
    lw.atlas(model, ["conv2", "conv3"], directory, channels="0-9", steps=8, size=32, batch=5, verbose=0)
    return directory


def test_pages_and_filters_send_the_units_thumbnails(atlas_dir, monkeypatch):
    monkeypatch.setattr(atlas_widget, "PAGE_SIZE", 4)
    view = lw.Atlas(atlas_dir)
    assert [layer["name"] for layer in view.layers] == ["conv2", "conv3"] and view.layer == "conv2"
    assert view.pages == 3 and [unit["channel"] for unit in view.units] == [0, 1, 2, 3]
    with open(os.path.join(atlas_dir, "conv2", "2.png"), "rb") as file:
        assert view.units[2]["thumbnail"] == file.read()
    view.page = 2
    assert [unit["channel"] for unit in view.units] == [8, 9]
    view.layer = "conv3"                                  # a new layer starts at its first page
    assert view.page == 0 and [unit["channel"] for unit in view.units] == [0, 1, 2, 3]
    view.channels = "1,7-9"
    assert view.pages == 1 and [unit["channel"] for unit in view.units] == [1, 7, 8, 9]
    assert view.units[0]["value"] == manifest(atlas_dir, "conv3")["units"][1]["objective"]
    view.channels = "7-"
    assert "Type channels as 42 or 0-63,100" in view.error
    assert [unit["channel"] for unit in view.units] == [1, 7, 8, 9]        # the last good page stays
    view.channels = ""
    assert view.error == "" and view.pages == 3
    view.close()


def test_a_click_opens_the_unit_in_the_live_widget_which_renders_the_atlas_image(atlas_dir):
    selected = []
    view = lw.Atlas(atlas_dir, on_select=lambda layer, channel: selected.append((layer, channel)))
    assert view.widget is None
    view._handle_custom_msg({"event": "open", "layer": "conv3", "channel": 6}, [])
    widget = view.widget
    try:
        unit = manifest(atlas_dir, "conv3")["units"][6]
        assert (widget.layer, widget.channel, widget.seed) == ("conv3", 6, unit["seed"])
        assert (widget.steps, widget.size, widget.tiles) == (8, 32, 1)
        assert view.selected == {"layer": "conv3", "channel": 6, "seed": unit["seed"]}
        assert selected == [("conv3", 6)]
        widget.wait(TIMEOUT)
        live = np.round(widget.images[0] * 255)
        stored = np.asarray(Image.open(os.path.join(atlas_dir, "conv3", unit["image"])), np.float64)
        assert np.abs(live - stored).max() <= 2                 # the same render, up to float rounding

        view._handle_custom_msg({"event": "open", "layer": "conv2", "channel": 3}, [])
        assert view.widget is widget                            # steered, not replaced
        assert (widget.layer, widget.channel) == ("conv2", 3)
        assert widget.seed == manifest(atlas_dir, "conv2")["units"][3]["seed"]

        view._handle_custom_msg({"event": "open", "layer": "conv2", "channel": 42}, [])
        assert "No finished unit 42 of layer 'conv2'" in view.error
        assert view.selected["channel"] == 3
    finally:
        widget.close()
        view.close()


def test_a_folder_without_an_atlas_is_one_sentence(tmp_path):
    with pytest.raises(ValueError, match=r"No atlas in .* make one with lucidwidget.atlas"):
        lw.Atlas(str(tmp_path))
