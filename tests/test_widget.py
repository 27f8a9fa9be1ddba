"""LucidWidget without a browser: traits, errors, the worker thread's lifecycle, frames, history, files,
and compiled steps reused across slider changes. Front-end messages are simulated with `set_state`
(what the browser's writes call) and `_handle_custom_msg` (what its buttons send)."""

import io
import threading
import time
import types

import numpy as np
import pytest
import traitlets
from PIL import Image

from lucidwidget import LucidWidget, backend
from lucidwidget.widget import settings as settings_lib
from lucidwidget.widget import worker as worker_lib

FAST = dict(layer="conv3", size=32, steps=24, seed=0, frame_rate=50.0, autostart=False)
LONG_STEPS = 100_000
"""Steps of a render that must still be running when the test changes something."""
TIMEOUT = 60.0


@pytest.fixture
def make_widget(seq_model):
    """Builds widgets on the tiny sequential model and closes them after the test."""
    made = []

    def make(**kwargs):
        widget = LucidWidget(seq_model, **{**FAST, **kwargs})
        made.append(widget)
        return widget

    yield make
    for widget in made:
        widget.close()


def worker_threads():
    return [t for t in threading.enumerate() if t.name.startswith("lucidwidget-worker")]


def wait_for(predicate, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def rendering(widget, **settings):
    """True once a render with these settings has produced a frame."""
    return all(widget.run_settings.get(k) == v for k, v in settings.items()) and widget.step > 0


def png_size(data):
    return Image.open(io.BytesIO(data)).size


def test_defaults_and_layer_list(seq_model):
    widget = LucidWidget(seq_model, autostart=False)
    try:
        assert (widget.layer, widget.channel, widget.objective, widget.negative) == ("conv3", 0, "channel", False)
        assert (widget.steps, widget.learning_rate, widget.size, widget.tiles) == (256, 0.05, 128, 1)
        assert (widget.fft, widget.decorrelate, widget.preactivation, widget.frame_rate) == (True, True, True, 10.0)
        assert (widget.jitter, widget.scale, widget.rotate) == (8 / 128, 0.1, 10.0)
        assert {"name": "conv3", "channels": 12} in [{k: d[k] for k in ("name", "channels")} for d in widget.layers]
        assert widget.worker_thread is None and not widget.running and widget.images is None
        assert widget.settings == {name: getattr(widget, name) for name in settings_lib.SETTING_NAMES}
        assert LucidWidget.frame.metadata["sync"] and LucidWidget.channel.metadata["sync"]
    finally:
        widget.close()


def test_constructor_rejects_bad_arguments(seq_model):
    with pytest.raises(TypeError, match="unexpected keyword argument 'chanel'. Did you mean 'channel'"):
        LucidWidget(seq_model, layer="conv3", chanel=3, autostart=False)
    with pytest.raises(ValueError, match="No visualizable layer 'conv33'. Did you mean 'conv3'"):
        LucidWidget(seq_model, layer="conv33", autostart=False)
    with pytest.raises(ValueError, match=r"Expected a channel in \[0, 11\] .* Received: channel=12"):
        LucidWidget(seq_model, layer="conv3", channel=12, autostart=False)
    with pytest.raises(traitlets.TraitError, match="frame_rate"):
        LucidWidget(seq_model, layer="conv3", frame_rate=0, autostart=False)
    assert worker_threads() == []


def test_run_streams_png_frames_then_finishes(make_widget):
    widget = make_widget(tiles=4, steps=48)
    frames, compiling = [], []
    widget.observe(lambda change: frames.append(change["new"]), names="frame")
    widget.observe(lambda change: compiling.append(change["new"]), names="compiling")
    widget.run()
    widget.wait(TIMEOUT)
    assert compiling == [True, False]                                  # "compiling…", then a measured rate
    assert len(frames) >= 2 and len(set(frames)) == len(frames)      # every frame is new
    assert all(png_size(frame) == (66, 66) for frame in frames)        # 2 x 2 tiles of 32 px, 2 px apart
    assert Image.open(io.BytesIO(widget.frame)).mode == "RGBA"
    assert (widget.step, widget.running, widget.error) == (48, False, "")
    assert widget.status == "Done: conv3:0 · 48 steps"
    assert widget.images.shape == (4, 32, 32, 3)
    assert 2 <= len(widget.losses) <= 48 and widget.steps_per_sec > 0
    assert widget.losses[-1] > widget.losses[0]                        # the objective went up


def test_images_save_and_save_gif_write_real_files(make_widget, tmp_path):
    widget = make_widget(tiles=2)
    with pytest.raises(ValueError, match="Nothing has been rendered yet"):
        widget.save(tmp_path / "none.png")
    widget.run()
    widget.wait(TIMEOUT)
    png = widget.save(tmp_path / "tiles.png")
    assert Image.open(png).size == (66, 32)                            # 2 tiles side by side
    assert Image.open(widget.save(tmp_path / "tiles.jpg")).format == "JPEG"   # the extension picks the format
    gif = Image.open(widget.save_gif(tmp_path / "run.gif"))
    assert gif.size == (66, 32) and gif.n_frames == len(widget._worker.latest.gif_frames) >= 2


def test_invalid_settings_show_an_error_and_the_widget_recovers(make_widget):
    widget = make_widget()
    widget.run()
    widget.wait(TIMEOUT)
    good = widget.frame
    assert not widget.stale
    widget.channel = 50
    widget.wait(TIMEOUT)
    assert widget.error == "Expected a channel in [0, 11] for layer 'conv3'. Received: channel=50"
    assert widget.status == "Error in conv3:50" and not widget.running and widget.frame == good
    assert widget.stale                                                # the tiles shown are the last good ones
    widget.learning_rate = -1.0                                        # rejected by the engine itself
    widget.channel = 3
    widget.wait(TIMEOUT)
    assert "learning_rate" in widget.error and "Received: learning_rate=-1.0" in widget.error
    widget.learning_rate = 0.05
    widget.wait(TIMEOUT)
    assert widget.error == "" and widget.run_settings["channel"] == 3 and widget.frame != good
    assert not widget.stale


def test_an_empty_expression_box_is_a_prompt_not_an_error(make_widget):
    widget = make_widget()
    widget.run()
    widget.wait(TIMEOUT)
    widget.objective = "expression"                                    # picked from the menu: the box is empty
    widget.wait(TIMEOUT)
    assert widget.error == "" and widget.status == "Type an objective expression in the box and press Enter."
    assert widget.stale and not widget.running
    widget.expression = "conv3:2"
    widget.wait(TIMEOUT)
    assert widget.status == "Done: conv3:2 · 24 steps" and not widget.stale
    widget.expression = "   "
    assert settings_lib.label(widget.settings) == "expression"          # never an empty caption


def test_a_stopped_render_joins_the_history_marked_stopped(make_widget):
    widget = make_widget(steps=LONG_STEPS)
    widget.run()
    wait_for(lambda: rendering(widget))
    widget.stop()
    widget.channel = 4                                                 # a new render starts at once
    wait_for(lambda: rendering(widget, channel=4))
    stopped, = widget.history
    assert stopped["stopped"] and 0 < stopped["step"] < LONG_STEPS and stopped["settings"]["channel"] == 0
    widget.stop()
    widget.wait(TIMEOUT)
    assert [(entry["label"], entry["stopped"]) for entry in widget.history] == [("conv3:4", True), ("conv3:0", True)]
    widget.steps = 24                                                  # completes
    widget.wait(TIMEOUT)
    assert widget.history[0]["stopped"] is False and widget.history[0]["step"] == 24
    done = widget.history[0]
    again = types.SimpleNamespace(run_id=99, label=done["label"], settings=done["settings"], step=5)
    widget._worker._remember(again, widget.images, complete=False)   # the same settings, stopped at step 5
    assert widget.history[0] == done, "a stopped render never replaces a completed one of the same settings"


def test_one_worker_thread_run_stop_close(make_widget):
    widget = make_widget(steps=LONG_STEPS)
    assert widget.worker_thread is None
    widget.run()
    wait_for(lambda: rendering(widget))
    assert worker_threads() == [widget.worker_thread] and widget.running
    widget.stop()
    widget.wait(TIMEOUT)
    step = widget.step
    assert not widget.running and widget.status.startswith(f"Stopped at step {step}/")
    time.sleep(0.3)
    assert widget.step == step
    widget.run()
    wait_for(lambda: widget.running)
    assert worker_threads() == [widget.worker_thread]
    thread = widget.worker_thread
    widget.close()
    assert not thread.is_alive() and worker_threads() == []


def test_channel_change_restarts_and_reuses_the_compiled_step(make_widget):
    widget = make_widget(steps=LONG_STEPS)
    widget.run()
    wait_for(lambda: rendering(widget, channel=0))
    traces = widget.renderer.trace_count
    compiling = []
    widget.observe(lambda change: compiling.append(change["new"]), names="compiling")
    widget.channel = 7
    wait_for(lambda: rendering(widget, channel=7))
    widget.learning_rate = 0.02
    widget.use_jitter = False
    widget.rotate = 5.0
    widget.negative = True
    wait_for(lambda: rendering(widget, learning_rate=0.02, rotate=5.0, negative=True, use_jitter=False))
    assert widget.renderer.trace_count == traces and True not in compiling   # never shown as compiling
    assert widget.status.startswith("-conv3:7")
    assert worker_threads() == [widget.worker_thread]


def test_rapid_changes_from_the_front_end_are_debounced_into_one_restart(make_widget):
    widget = make_widget(steps=LONG_STEPS)
    widget.run()
    wait_for(lambda: rendering(widget))
    starts = []
    widget.observe(lambda change: starts.append(widget.run_settings["channel"]), names="run_id")
    for channel in range(1, 7):
        widget.set_state({"channel": channel})                         # what a slider drag sends
    wait_for(lambda: rendering(widget, channel=6))
    time.sleep(0.3)
    assert starts == [6]


def test_history_records_runs_and_restores_their_settings(make_widget):
    widget = make_widget()
    widget.channel = 2
    widget.run()
    widget.wait(TIMEOUT)
    widget.channel = 5
    widget.wait(TIMEOUT)
    assert [entry["label"] for entry in widget.history] == ["conv3:5", "conv3:2"]
    assert all(max(png_size(entry["thumbnail"])) <= 64 for entry in widget.history)
    old = widget.history[1]
    widget._handle_custom_msg({"event": "restore", "id": old["id"]}, [])   # a click on the thumbnail
    assert widget.channel == 2
    widget.wait(TIMEOUT)
    assert widget.run_settings == old["settings"]
    assert [entry["label"] for entry in widget.history] == ["conv3:2", "conv3:5"], "no entry twice"
    with pytest.raises(ValueError, match="No history entry"):
        widget.restore(-1)


def test_history_summary_names_only_what_sets_a_render_apart(make_widget):
    widget = make_widget(steps=12, tiles=2)
    widget.run()
    widget.wait(TIMEOUT)
    summary = widget.history[0]["summary"]
    assert summary.startswith("conv3:0 · ")
    assert {"steps=12", "tiles=2", "size=32"} <= set(summary.split(" · ")[1].split(", "))
    assert "fft" not in summary and "decorrelate" not in summary, "settings at their defaults stay out"


def test_buttons_and_layer_change(make_widget, tmp_path, monkeypatch):
    widget = make_widget(channel=11)
    widget._handle_custom_msg({"event": "run"}, [])
    widget.wait(TIMEOUT)
    seed = widget.seed
    widget._handle_custom_msg({"event": "reset"}, [])
    assert widget.seed != seed
    widget.wait(TIMEOUT)
    assert widget.run_settings["seed"] == widget.seed
    monkeypatch.chdir(tmp_path)
    widget._handle_custom_msg({"event": "save_png"}, [])
    assert widget.notice == f"Saved {tmp_path / 'lucid_conv3_11.png'}"
    widget.layer = "conv1"                                              # 8 channels: 11 is clamped
    assert widget.channel == 7
    widget.wait(TIMEOUT)
    assert widget.run_settings["layer"] == "conv1" and widget.status.startswith("Done: conv1:7")


def test_settings_map_to_one_structure_whatever_the_slider_values(seq_model):
    widget = LucidWidget(seq_model, **FAST)
    layers = widget._worker.layers
    base = {**widget.settings, "tiles": 3}
    widget.close()
    varied = {**base, "channel": 9, "negative": True, "diversity": 0.0, "use_jitter": False, "use_scale": False,
              "use_rotate": False, "learning_rate": 0.5, "seed": 7}
    (objective_a, kwargs_a), (objective_b, kwargs_b) = (
        settings_lib.render_arguments(settings, layers) for settings in (base, varied)
    )
    assert objective_a.signature == objective_b.signature
    assert [t.signature for t in kwargs_a["transforms"]] == [t.signature for t in kwargs_b["transforms"]]
    params = [(kwargs["param"].func, kwargs["param"].keywords) for kwargs in (kwargs_a, kwargs_b)]
    assert params[0] == params[1] and kwargs_b["batch"] == 3
    assert "diversity conv3" in objective_b.description and objective_b.description.startswith("-")
    assert objective_a.knobs[0].tolist() == [1.0, base["diversity"]] and objective_b.knobs[0].tolist() == [-1.0, 0.0]
    with pytest.raises(ValueError, match="Unknown objective kind"):
        settings_lib.check({**base, "objective": "neurons"}, layers)


def test_gif_frames_stay_evenly_spread_and_end_with_the_latest(monkeypatch):
    monkeypatch.setattr(worker_lib, "MAX_GIF_FRAMES", 4)
    worker = types.SimpleNamespace(generation=0, latest=None, frame_interval=0.1)
    settings = {"objective": "channel", "layer": "l", "channel": 0, "negative": False}
    run = worker_lib._RenderCallback(worker, None, settings, generation=-1, run_id=1)   # obsolete: publishes nothing
    for index in range(11):
        run.on_frame(index, np.full((1, 1, 1, 3), index / 10, np.float32))
    kept = [round(frame[0, 0, 0, 0] / 25.5) for frame in run.gif_frames]
    assert kept == [0, 4, 8, 10] and worker.latest is run


def test_expression_renders_and_a_bad_one_shows_its_column_while_the_widget_keeps_working(make_widget):
    widget = make_widget(steps=LONG_STEPS, objective="expression", expression="conv3:4 - 0.5*conv2:7")
    widget.run()
    wait_for(lambda: rendering(widget, expression="conv3:4 - 0.5*conv2:7"))
    traces = widget.renderer.trace_count
    widget.expression = "conv3:9 - 2.5*conv2:1"                       # only numbers change: no retrace
    wait_for(lambda: rendering(widget, expression="conv3:9 - 2.5*conv2:1"))
    assert widget.renderer.trace_count == traces
    assert widget.status.startswith("conv3:9 - 2.5*conv2:1 · step")
    widget.stop()
    widget.wait(TIMEOUT)
    good = widget.frame
    widget.steps = 24
    widget.expression = "conv3:4 - * conv2:7"
    widget.wait(TIMEOUT)
    assert "column 11" in widget.error and "^" in widget.error and widget.status.startswith("Error")
    assert widget.frame == good and not widget.running
    widget.expression = "conv3:4 * conv2:7"                            # rejected by the objective algebra
    widget.wait(TIMEOUT)
    assert widget.error and widget.frame == good
    widget.expression = "conv33:4"
    widget.wait(TIMEOUT)
    assert "conv33" in widget.error and "conv3" in widget.error
    widget.expression = "conv3:2 + 0.1*conv1:0"
    widget.wait(TIMEOUT)
    assert widget.error == "" and widget.frame != good and widget.step == 24
    with pytest.raises(ValueError, match="Type an objective expression"):
        make_widget(objective="expression")


def test_transparency_mode_gives_rgba_images_shown_over_the_background(make_widget, tmp_path):
    widget = make_widget(mode="transparency", tiles=2, steps=32)
    widget.run()
    widget.wait(TIMEOUT)
    assert widget.error == "" and widget.images.shape == (2, 32, 32, 4)
    alpha = widget.images[..., 3]
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0 and alpha.std() > 0
    frame = Image.open(io.BytesIO(widget.frame))
    assert frame.size == (66, 32) and frame.mode == "RGBA"
    tile = np.asarray(frame)[:, :32, :3]
    widget.background = "white"                                         # display only: no new render
    shown = np.asarray(Image.open(io.BytesIO(widget.frame)))[:, :32, :3]
    assert widget.run_id == 1 and not np.array_equal(tile, shown)
    expected = np.round(255 * (widget.images[0, ..., :3] * alpha[0, ..., None] + (1 - alpha[0, ..., None])))
    assert np.abs(shown.astype(float) - expected).max() <= 1
    assert Image.open(widget.save(tmp_path / "alpha.png")).mode == "RGBA"
    assert widget.status.endswith("· alpha · 32 steps")
    widget.opacity = 1.5
    widget.wait(TIMEOUT)
    assert widget.error == "Expected an opacity in [0, 1]. Received: opacity=1.5"


def test_interpolation_mode_gives_distinct_frames_and_checks_channel_b(make_widget):
    widget = make_widget(channel=2, channel_b=9, steps=32)
    widget.mode = "interpolation"
    assert widget.tiles == 5                                            # picked with one tile: frames added
    widget.run()
    widget.wait(TIMEOUT)
    assert widget.error == "" and widget.images.shape == (5, 32, 32, 3)
    frames = widget.images.reshape(5, -1)
    assert min(np.abs(frames[i] - frames[j]).mean() for i in range(5) for j in range(i)) > 1e-3
    assert widget.status == "Done: interpolate conv3:2→9 · 32 steps"
    traces = widget.renderer.trace_count
    widget.channel_b = 12
    widget.wait(TIMEOUT)
    assert widget.error == "Expected a channel in [0, 11] for layer 'conv3'. Received: channel_b=12"
    widget.channel_b = 4
    widget.wait(TIMEOUT)
    assert widget.error == "" and widget.run_settings["channel_b"] == 4
    assert widget.renderer.trace_count == traces
    widget.tiles = 1
    widget.wait(TIMEOUT)
    assert widget.error == "Interpolation needs at least 2 tiles (its frames). Received: tiles=1"
    widget.layer = "conv1"                                              # 8 channels
    assert widget.channel_b == 4


def test_expression_box_takes_layer_names_with_a_minus_or_spaces():
    import keras

    spaced = "conv 1b" if backend.name == "torch" else "conv 1.b"    # Keras on PyTorch refuses "." in names
    model = keras.Sequential([
        keras.Input((None, None, 3)),
        keras.layers.Conv2D(4, 3, activation="relu", name="fc6-3"),
        keras.layers.Conv2D(5, 3, activation="relu", name=spaced),
    ])
    widget = LucidWidget(model, layer="fc6-3", objective="expression", expression=f"{spaced}:4 - 0.5*fc6-3:1",
                         size=24, steps=6, seed=0, autostart=False)
    try:
        widget.run()
        widget.wait(TIMEOUT)
        assert widget.error == "" and widget.step == 6
        assert widget.images.shape == (1, 24, 24, 3)
    finally:
        widget.close()


def test_a_dead_unit_is_explained_and_the_next_change_clears_it(dead_unit_model):
    widget = LucidWidget(dead_unit_model, layer="conv", channel=1, preactivation=False, size=16, steps=12, seed=0,
                         autostart=False)
    try:
        widget.run()
        widget.wait(TIMEOUT)
        assert widget.step == 12 and "dead unit" in widget.error and "preactivation=True" in widget.error
        widget.channel = 0
        widget.wait(TIMEOUT)
        assert widget.error == "" and widget.run_settings["channel"] == 0
    finally:
        widget.close()


def test_a_unit_that_never_turns_on_is_explained(dead_unit_model):
    widget = LucidWidget(dead_unit_model, layer="conv", channel=1, size=16, steps=12, seed=0, autostart=False)
    try:
        widget.run()
        widget.wait(TIMEOUT)
        assert widget.step == 12 and widget.losses[-1] < 0
        assert widget.error.startswith("conv:1 stayed off: after 12 steps its pre-activation is -")
        widget.channel = 0                                    # fires on every image
        widget.wait(TIMEOUT)
        assert widget.error == "" and widget.losses[-1] > 0
    finally:
        widget.close()
