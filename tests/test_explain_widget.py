"""The widget's explain panel without a browser: the image setter and the page's uploads, the heat map
following the target without recompiling, the top outputs and channels with their thumbnails and clicks,
and the modes that optimise from the image. Page messages are simulated with `_handle_custom_msg`, which
is what the front end's `model.send(content, undefined, buffers)` reaches."""

import io
import threading
import types

import numpy as np
import pytest
from PIL import Image

import lucidwidget as lw
from lucidwidget import LucidWidget, data, heatmap, imaging
from lucidwidget.widget import esm
from lucidwidget.widget import settings as settings_lib
from lucidwidget.widget import worker as worker_lib
from lucidwidget.widget.core import _asset
from lucidwidget.widget.explain import EXPLAIN_SIDE, THUMBNAIL_SIDE, TOP_CHANNELS

FAST = dict(layer="conv3", size=32, steps=12, seed=0, frame_rate=50.0, autostart=False)
TIMEOUT = 120.0


@pytest.fixture
def make_widget(seq_model):
    """Builds widgets on the tiny sequential model and closes them after the test."""
    made = []

    def make(model=seq_model, **kwargs):
        widget = LucidWidget(model, **{**FAST, **kwargs})
        made.append(widget)
        return widget

    yield make
    for widget in made:
        widget.close()


def decoded(png):
    return np.asarray(Image.open(io.BytesIO(png)))


def test_the_image_setter_takes_paths_photos_arrays_bytes_and_none(make_widget, tmp_path):
    widget = make_widget()
    assert widget.image == b"" and widget.image_array is None and widget.photos == data.photo_names()
    expected = imaging.to_uint8(data.photo("coffee", size=EXPLAIN_SIDE))
    path = tmp_path / "coffee.jpg"
    path.write_bytes(open(data.photo_path("coffee"), "rb").read())
    for source in ("coffee", str(path), path.read_bytes(), Image.open(path), data.photo("coffee")):
        widget.image = source
        assert decoded(widget.image).shape == (EXPLAIN_SIDE, EXPLAIN_SIDE, 3)
        np.testing.assert_array_equal(decoded(widget.image), expected)
    assert widget.image_array.dtype == np.float32 and widget.image_array.shape == (224, 224, 3)
    kept = widget.image
    with pytest.raises(ValueError, match=r"^No image file at 'nowhere.jpg'. Received: image='nowhere.jpg'$"):
        widget.image = "nowhere.jpg"
    with pytest.raises(ValueError, match="Could not read <5 bytes> as an image"):
        widget.image = b"hello"
    with pytest.raises(TypeError, match="Received: image of type int"):
        widget.image = 7
    assert widget.image == kept                                        # a failed assignment keeps the image
    widget.image = None
    assert widget.image == b"" and widget.image_array is None


def test_a_file_from_the_page_that_is_not_an_image_is_one_sentence_and_the_image_stays(make_widget, tmp_path):
    widget = make_widget(image="chelsea")
    kept = widget.image
    widget._handle_custom_msg({"event": "image", "name": "notes.txt"}, [memoryview(b"not an image")])
    assert widget.explain_error == ("Could not read 'notes.txt' as an image: expected a PNG, JPEG, WebP, GIF or BMP "
                                    "file. Received: image='notes.txt'")
    assert widget.image == kept
    picture = io.BytesIO()
    Image.fromarray(imaging.to_uint8(data.photo("astronaut", size=50))).save(picture, format="PNG")
    widget._handle_custom_msg({"event": "image", "name": "astronaut.png"}, [memoryview(picture.getvalue())])
    assert widget.explain_error == "" and widget.image != kept
    widget._handle_custom_msg({"event": "image", "photo": "coffee"}, [])
    widget._handle_custom_msg({"event": "style_image", "photo": "chelsea"}, [])
    assert decoded(widget.style_image).shape == (224, 224, 3)
    widget._handle_custom_msg({"event": "clear_image"}, [])
    assert widget.image == b""


def test_the_heat_map_follows_the_channel_without_recompiling(make_widget, seq_model):
    widget = make_widget(channel=4, image="chelsea")
    widget.wait(TIMEOUT)
    assert widget.explain_error == "" and widget.explain_id >= 1
    assert widget.explain_status == "Grad-CAM of conv3:4 at conv2"
    assert widget.explain_settings["channel"] == 4 and widget.explain_settings["method"] == "gradcam"
    expected = lw.attribute(seq_model, widget.image_array[None], "conv3:4")[0]
    np.testing.assert_allclose(widget.attribution_map, expected, rtol=1e-4, atol=1e-6 * expected.max())
    picture = decoded(widget.heatmap)
    assert picture.shape == (224, 224, 4)
    np.testing.assert_array_equal(picture, imaging.to_uint8(heatmap.colorize(expected)))
    explainer = widget._explain.explainer(True)
    traces, first = explainer.trace_count, widget.attribution_map
    widget.set_state({"channel": 9})                                  # what the slider sends
    widget.wait(TIMEOUT)
    assert widget.explain_settings["channel"] == 9 and widget.explain_status == "Grad-CAM of conv3:9 at conv2"
    assert not np.allclose(widget.attribution_map, first)
    assert explainer.trace_count == traces                            # a new channel reuses the compiled pass
    widget.method = "integrated_gradients"
    widget.wait(TIMEOUT)
    assert widget.explain_status == "Integrated Gradients (16 steps) of conv3:9"
    ids = widget.explain_id
    widget.steps = 20                                                  # the heat map does not depend on it
    widget.wait(TIMEOUT)
    assert widget.explain_id == ids


def test_top_channels_render_their_thumbnails_and_a_click_sends_the_tiles_there(make_widget, seq_model):
    widget = make_widget(layer="conv2", objective="expression", expression="conv3:4", image="chelsea")
    widget.wait(TIMEOUT)
    shares = lw.channel_attribution(seq_model, widget.image_array[None], "conv3:4", "conv2")[0]
    assert [entry["channel"] for entry in widget.top_channels] == list(np.argsort(-shares, kind="stable")[:8])
    assert widget.channels_note.startswith("Channels of 'conv2' by attribution to the target")
    assert all(entry["rendered"] for entry in widget.top_channels)
    thumbnails = [decoded(entry["thumbnail"]) for entry in widget.top_channels]
    assert all(picture.shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3) for picture in thumbnails)
    assert len({picture.tobytes() for picture in thumbnails}) == TOP_CHANNELS     # each its own channel
    chosen = widget.top_channels[2]["channel"]
    widget._handle_custom_msg({"event": "channel", "channel": chosen}, [])       # a click on the thumbnail
    assert (widget.layer, widget.channel, widget.objective) == ("conv2", chosen, "channel")
    widget.wait(TIMEOUT)
    assert widget.run_settings["channel"] == chosen and widget.status == f"Done: conv2:{chosen} · 12 steps"
    assert widget.channels_note.startswith("Channels of 'conv2' by mean activation")   # the target is conv2 now


def test_top_outputs_of_a_classifier_name_its_classes_and_a_click_renders_the_class(make_widget, classifier_model):
    names = ["cat", "dog", "cup", "car", "tree"]
    widget = make_widget(classifier_model, layer="c2", class_names=names, image="chelsea")
    widget.wait(TIMEOUT)
    outputs = widget.top_outputs
    assert len(outputs) == 5 and widget.outputs_note == "Probabilities of layer 'predictions' (its softmax)."
    assert sum(entry["value"] for entry in outputs) == pytest.approx(1.0, abs=1e-5)
    assert [entry["name"] for entry in outputs] == [names[entry["index"]] for entry in outputs]
    assert decoded(widget.image).shape == (32, 32, 3)                  # a fixed-size model's own size
    best = outputs[0]["index"]
    widget._handle_custom_msg({"event": "output", "index": best}, [])
    assert (widget.layer, widget.channel, widget.objective) == ("predictions", best, "class_logit")
    widget.wait(TIMEOUT)
    assert widget.explain_status == f"Grad-CAM of class_logit predictions:{best} at c2"


def test_a_cam_with_no_layer_before_the_target_shows_the_gradient(make_widget):
    widget = make_widget(layer="conv1", channel=3, image="coffee")
    widget.wait(TIMEOUT)
    assert widget.explain_error == "" and widget.attribution_map.shape == (224, 224)
    assert widget.explain_status == ("Gradient of conv1:3 (Grad-CAM needs a layer with a spatial grid before conv1: "
                                     "showing the gradient instead)")


def test_image_modes_prompt_without_an_image_then_render_from_it(make_widget):
    widget = make_widget(layer="conv2", steps=6)
    widget.mode = "caricature"
    widget.run()
    widget.wait(TIMEOUT)
    assert widget.error == "" and widget.stale and widget.status.startswith("Drop an image on the widget")
    widget.image = "chelsea"                                           # the waiting mode starts by itself
    widget.wait(TIMEOUT)
    assert widget.status == "Done: caricature conv2 · 6 steps" and widget.losses[-1] > widget.losses[0]
    widget.mode = "style"
    widget.wait(TIMEOUT)
    assert widget.status == "Pick a style image (next to the mode menu) for the style mode." and widget.stale
    widget.style_image = "coffee"
    widget.wait(TIMEOUT)
    assert widget.status == "Done: style · content conv2 · 6 steps" and not widget.stale
    widget.steps, widget.learning_rate = 256, 0.05
    widget.mode = "dream"                                              # small, few steps in place of the defaults
    assert (widget.steps, widget.learning_rate) == (settings_lib.DREAM_STEPS, settings_lib.DREAM_LEARNING_RATE)
    widget.steps, widget.learning_rate, widget.use_jitter, widget.use_scale, widget.use_rotate = 1, 1e-4, 0, 0, 0
    widget.wait(TIMEOUT)
    assert widget.status == "Done: dream conv2:0 · 1 steps"
    start = imaging.fit(widget.image_array, (32, 32))
    assert np.abs(widget.images[0] - start).mean() < 0.02             # it started from the image
    widget.steps, widget.learning_rate = settings_lib.DREAM_STEPS, settings_lib.DREAM_LEARNING_RATE
    widget.mode = "standard"                                           # leaving dream puts the defaults back
    assert (widget.steps, widget.learning_rate) == (256, 0.05)


def test_clearing_the_image_empties_the_panel(make_widget):
    widget = make_widget(image="chelsea")
    widget.wait(TIMEOUT)
    assert widget.heatmap and widget.top_channels and widget.top_outputs
    widget.image = None
    widget.wait(TIMEOUT)
    assert (widget.heatmap, widget.top_channels, widget.top_outputs, widget.explain_status) == (b"", [], [], "")
    assert widget.attribution_map is None


def test_a_render_waits_at_its_next_step_while_the_heat_map_is_computed():
    gate = threading.Event()
    worker = types.SimpleNamespace(gate=gate, generation=0)
    run = worker_lib._RenderCallback(worker, None, {"objective": "channel", "layer": "l", "channel": 0,
                                                    "negative": False}, generation=0, run_id=1)
    stepped = threading.Event()
    thread = threading.Thread(target=lambda: (run.on_step_end(1, {"objective": 1.0, "steps_per_sec": 2.0}),
                                              stepped.set()))
    thread.start()
    assert not stepped.wait(0.3)                                       # held while the gate is closed
    gate.set()
    assert stepped.wait(5) and run.step == 1
    thread.join()


def test_the_front_end_modules_compose_into_one_module(tmp_path):
    text = esm.compose(_asset("widget.js"))
    assert text.count("export default") == 1 and "\nimport " not in text
    for name in ("function explainView", "function numberControl", "function render"):
        assert text.count(name) == 1
    (tmp_path / "a.js").write_text('import { b } from "./b.js";\nexport default { b };\n')
    (tmp_path / "b.js").write_text("export function b() {}\nexport const lifetime = 1;\n")
    assert esm.compose(tmp_path / "a.js") == "// ---- b.js ----\nfunction b() {}\nconst lifetime = 1;\n\n" \
                                             "// ---- a.js ----\nexport default { b };\n"
    (tmp_path / "b.js").write_text('import { c } from "./c.js";\nexport function b() {}\n')
    (tmp_path / "c.js").write_text("export function b() {}\n")
    with pytest.raises(ValueError, match="'b' is declared in both c.js and b.js"):
        esm.compose(tmp_path / "a.js")
