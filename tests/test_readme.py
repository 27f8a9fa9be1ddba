"""The README's Python blocks run, in order and in one namespace as a reader would paste them, on every
backend (this file is in the `backends` subset).

Three things keep them quick and offline, each stated here rather than edited into the README:
- every render the blocks ask for runs at most `STEPS` steps (`LUCIDWIDGET_STEPS`, 8 in CI; the widget's
  256 too), by a wrapper around `Renderer.render`;
- the files a block loads that the repository does not ship are written first as small stand-ins with
  the shape the README describes (`STAND_INS`); a block that loads any other file fails the test; the
  folder of photos the atlas block reads holds the bundled photos (`lw.data`);
- the bundled `vgg16-hed` is a small stand-in with the layers the README reads: a VGG16 step takes
  seconds on PyTorch's CPU, and JAX compiles each of the blocks' eight structures for long. The real
  model's layers and channels are exercised by the `vgg` tests and the browser's quickstart test.
"""

import functools
import json
import os
import pathlib
import re
import shutil
import textwrap

import keras
import numpy as np
import pytest

import lucidwidget as lw
from lucidwidget.models import zoo
from lucidwidget.optvis import render as render_lib

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
STEPS = int(os.environ.get("LUCIDWIDGET_STEPS", 8))
BLOCK = re.compile(r"^(?P<indent>[ ]*)```python\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
LOADED_FILE = re.compile(r"""load_model\(["']([^"']+\.(?:h5|hdf5|keras))["']\)""")


def python_blocks():
    return [textwrap.dedent(match["body"]) for match in BLOCK.finditer(README.read_text())]


def emotion_net():
    """A 64x64 grey-input model with a layer 'fc6-3', as the README's emotion_net.h5."""
    return keras.Sequential([
        keras.Input((64, 64, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv1"),
        keras.layers.Conv2D(4, 3, activation="relu", name="fc6-3"),
    ])


def lesions():
    """An RGB model with a second input 'meta' of three numbers, as the README's lesions.keras."""
    image, meta = keras.Input((32, 32, 3), name="image"), keras.Input((3,), name="meta")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(image)
    x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(x), meta])
    return keras.Model([image, meta], keras.layers.Dense(2, name="head")(x))


def flowers():
    """A 10-class classifier with a `block5_conv3` layer of 16 channels, as the README's flowers.keras."""
    return keras.Sequential([
        keras.Input((64, 64, 3)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="block1_conv1"),
        keras.layers.Conv2D(16, 3, activation="relu", name="block5_conv3"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax", name="predictions"),
    ])


STAND_INS = {"emotion_net.h5": emotion_net, "lesions.keras": lesions, "flowers.keras": flowers}
"""Files the README's blocks load that the repository does not ship, and how to build each."""


def vgg16_names(weights=None):
    """A small stand-in for `vgg16-hed` with the layers the README reads (`block4_conv3`, with 64 of its
    512 channels, `block5_conv1`, `block5_conv3` with 64, and the first conv layer of each block that style transfer reads by
    default), pooling steps apart as in VGG16."""
    del weights
    return keras.Sequential([
        keras.Input((None, None, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block1_conv1"),
        keras.layers.MaxPooling2D(name="block1_pool"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block2_conv1"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block3_conv1"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block4_conv1"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block4_conv2"),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="block4_conv3"),
        keras.layers.MaxPooling2D(name="block4_pool"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="block5_conv1"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block5_conv2"),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="block5_conv3"),
    ], name="vgg16-hed")


@pytest.fixture
def readme_run(monkeypatch, tmp_path):
    """Runs the README's blocks in a temporary folder with renders capped at `STEPS` steps; returns the
    namespace they shared. Widgets they made are closed after the test."""
    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    for name in lw.data.photo_names():
        shutil.copy(lw.data.photo_path(name), "photos")
    original = render_lib.Renderer.render

    @functools.wraps(original)
    def capped(self, objective, **kwargs):
        kwargs["steps"] = min(kwargs.get("steps") or render_lib.DEFAULT_STEPS, STEPS)
        return original(self, objective, **kwargs)

    monkeypatch.setattr(render_lib.Renderer, "render", capped)
    render_lib._named_renderer.cache_clear()
    widgets = []

    def run():
        """The namespace after each block, in order."""
        namespace, after = {}, []
        for block in python_blocks():
            for name in LOADED_FILE.findall(block):
                assert name in STAND_INS, f"the README loads {name!r}; add a stand-in to STAND_INS"
                if not os.path.exists(name):
                    STAND_INS[name]().save(name)
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
            widgets.extend(value for value in namespace.values() if isinstance(value, (lw.LucidWidget, lw.Atlas)))
            after.append(dict(namespace))
        return after

    yield run
    for widget in widgets:
        widget.close()
    render_lib._named_renderer.cache_clear()


def test_readme_python_blocks_run_and_give_what_their_comments_say(readme_run, monkeypatch):
    monkeypatch.setattr(zoo, "_load_hed", vgg16_names)
    widget, api, custom, photo, explain, own_model, atlas = readme_run()
    assert widget["w"].channel == 7 and widget["w"].images.shape == (1, 128, 128, 3)
    assert os.path.getsize("tiles.png") > 0 and os.path.getsize("run.gif") > 0
    assert api["images"].shape == (1, 128, 128, 3) and api["images"].dtype == np.float32
    assert custom["renderer"].trace_count == 2        # one compile for eight channels, one for eight custom
    for name in ("caricature", "styled", "dream"):
        assert photo[name].shape == (1, 128, 128, 3)
    assert np.abs(photo["dream"] - lw.data.photo("chelsea", size=128)).mean() < 0.1   # it started from the photo
    assert explain["maps"].shape == (2, 224, 224) and explain["maps"].dtype == np.float32
    assert explain["explainer"].trace_count == 1      # one compile for all ten classes
    assert explain["shares"].shape == (2, 16) and explain["where"].shape == explain["top"].channels.shape[:3]
    assert len(explain["groups"].objectives) == 6
    assert own_model["images"].shape == (1, 64, 64, 1)
    assert (own_model["renderer"].input_size, own_model["renderer"].channels) == ((64, 64), 1)
    assert (atlas["result"].rendered, atlas["result"].scanned) == (64, 3)
    manifest = json.loads(pathlib.Path("atlas/block4_conv3/manifest.json").read_text())
    assert len(manifest["units"]) == 64 and all(len(unit["examples"]) == 3 for unit in manifest["units"])
