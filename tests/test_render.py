"""The render loop: optimisation really raises the target, compiled steps are reused, runs are
deterministic, cancellable and report progress, and bad settings fail clearly before any step."""

import functools
import threading

import keras
import numpy as np
import pytest

import lucidwidget as lw
from lucidwidget.optvis import objectives, param, transform
from lucidwidget.optvis.render import Renderer

FAST = dict(steps=48, seed=0)
SMALL_TRANSFORMS = transform.preset(jitter=2, scale=0.05, rotate=5, pad=2)
"""Lucid's standard transforms scaled to 32 px images (its 12 px pad would dominate them)."""


def noise_baseline(renderer, objective, size, count=4):
    """The objective on uniform noise images: what a render must beat by far."""
    size = size or renderer.input_size[0]
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(count, size, size, 3)).astype(np.float32)
    return np.array([renderer.evaluate(objective, images[i:i + 1]) for i in range(count)])


def assert_raises_far_above_noise(renderer, objective, size=32, **kwargs):
    settings = {"size": size, "transforms": SMALL_TRANSFORMS, "learning_rate": 0.1, **FAST, **kwargs}
    images = renderer.render(objective, **settings)
    rendered = renderer.evaluate(objective, images)
    baseline = noise_baseline(renderer, objective, size)
    spread = max(baseline.std(), 1e-3 * np.abs(baseline).max())
    assert rendered > baseline.max() + 5 * spread, (rendered, baseline)
    return images


@pytest.mark.parametrize(
    "fixture, objective",
    [
        ("seq_model", "conv3:5"),
        ("resnet_model", "res_out:2"),
        ("resnet_model", "stem_bn:2"),
        ("nested_model", "inner_conv:4"),
        ("nested_model", "inner/inner_conv:4 + top_conv:1"),
        ("subclassed_model", "res_a:1"),
    ],
)
def test_render_raises_target_far_above_noise(request, fixture, objective):
    renderer = Renderer(request.getfixturevalue(fixture))
    images = assert_raises_far_above_noise(renderer, objective)
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_class_logit_of_fixed_size_softmax_classifier(classifier_model):
    renderer = Renderer(classifier_model)
    assert renderer.input_size == (32, 32)
    objective = objectives.class_logit("predictions", 3)
    images = assert_raises_far_above_noise(renderer, objective, size=None)
    assert images.shape == (1, 32, 32, 3)


def test_keras_applications_architecture_without_weights():
    keras.utils.set_random_seed(7)
    model = lw.load_model("MobileNetV2", weights=None, include_top=False, input_shape=(48, 48, 3), alpha=0.35)
    renderer = Renderer(model)
    assert_raises_far_above_noise(renderer, "block_3_expand:7", size=48, steps=32)


@pytest.mark.vgg
def test_vgg16_hed_channel_and_batch(vgg16_hed):
    renderer = Renderer(vgg16_hed)
    images = assert_raises_far_above_noise(renderer, "block3_conv1:10", size=48, steps=32)
    assert images.shape == (1, 48, 48, 3)


def test_preactivation_is_the_default_and_can_be_switched(seq_model):
    image = np.random.default_rng(1).uniform(size=(1, 16, 16, 3)).astype(np.float32)
    conv1 = seq_model.get_layer("conv1")
    linear = keras.ops.convert_to_numpy(keras.ops.conv(image, conv1.kernel, padding="same") + conv1.bias)
    pre = Renderer(seq_model).evaluate("conv1:2", image)
    post = Renderer(seq_model, preactivation=False).evaluate("conv1:2", image)
    np.testing.assert_allclose(pre, linear[..., 2].mean(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(post, np.maximum(linear[..., 2], 0).mean(), rtol=1e-4, atol=1e-5)


def test_slider_values_reuse_the_compiled_step(seq_model):
    renderer = Renderer(seq_model)
    jitter = lambda d: [transform.jitter(d), transform.random_scale([0.9, 1.0, 1.1])]  # noqa: E731
    renderer.render("conv3:1 - 0.5*conv2:3", transforms=jitter(2), learning_rate=0.05, size=32, **{**FAST, "steps": 3})
    traces = renderer.trace_count
    assert traces >= 1
    renderer.render("conv3:7 - 0.25*conv2:9", transforms=jitter(5), learning_rate=0.1, size=32, steps=3, seed=9)
    renderer.render(objectives.channel("conv3", 2) - 0.1 * objectives.channel("conv2", 0),
                    transforms=[transform.jitter(1), transform.random_scale([1.0, 1.05, 1.2])], size=32, steps=3)
    assert renderer.trace_count == traces
    renderer.render("conv2:1", size=32, steps=2)
    assert renderer.trace_count == traces + 1


def test_seed_makes_runs_deterministic(seq_model):
    renderer = Renderer(seq_model)
    first = renderer.render("conv2:3", size=32, steps=6, seed=0)
    again = renderer.render("conv2:3", size=32, steps=6, seed=0)
    other = renderer.render("conv2:3", size=32, steps=6, seed=1)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3


def test_thresholds_return_one_image_per_threshold(seq_model):
    recorder = Recorder()
    result = Renderer(seq_model).render("conv2:3", size=32, seed=0, thresholds=(5, 2), callbacks=[recorder])
    assert isinstance(result, list) and len(result) == 2
    assert np.abs(result[0] - result[1]).max() > 0
    steps = [event[1] for event in recorder.events if event[0] == "step"]
    assert steps == [1, 2, 3, 4, 5], "steps default to the largest threshold"


def test_thresholds_beyond_steps_are_refused(seq_model):
    with pytest.raises(ValueError, match=r"thresholds <= steps=4.*Received: thresholds=\[2, 8\]"):
        Renderer(seq_model).render("conv2:3", size=32, steps=4, thresholds=(2, 8))


class Recorder:
    frame_interval = 0.0

    def __init__(self):
        self.events = []

    def on_render_begin(self, logs):
        self.events.append(("begin", logs))

    def on_step_end(self, step, logs):
        self.events.append(("step", step, logs))

    def on_frame(self, step, images):
        self.events.append(("frame", step, images))

    def on_render_end(self, logs):
        self.events.append(("end", logs))


def test_callbacks_report_steps_frames_and_the_end(seq_model):
    recorder = Recorder()
    Renderer(seq_model).render("conv2:3", callbacks=[recorder], size=32, steps=5, seed=0)
    kinds = [event[0] for event in recorder.events]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    assert [e[1] for e in recorder.events if e[0] == "step"] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(e[2]["objective"]) for e in recorder.events if e[0] == "step")
    frames = [e for e in recorder.events if e[0] == "frame"]
    assert frames and frames[-1][1] == 5 and frames[-1][2].shape == (1, 32, 32, 3)
    end = recorder.events[-1][1]
    assert end["steps"] == 5 and end["cancelled"] is False


def test_steps_that_compiled_report_no_rate_and_a_reused_loop_reports_rates_at_once(seq_model):
    renderer = Renderer(seq_model)
    first, again = Recorder(), Recorder()
    renderer.render("conv2:3", callbacks=[first], size=32, steps=4, seed=0)
    renderer.render("conv2:5", callbacks=[again], size=32, steps=4, seed=0)     # same structure: no compile
    rates = [[e[2]["steps_per_sec"] for e in r.events if e[0] == "step"] for r in (first, again)]
    assert first.events[0][1]["compiling"] is True and again.events[0][1]["compiling"] is False
    assert rates[0][0] is None and all(rate > 0 for rate in rates[0][1:])   # step 1 ran in the compiling call
    assert all(rate > 0 for rate in rates[1])


def test_cancel_from_another_thread_returns_current_images(seq_model):
    renderer = Renderer(seq_model)
    renderer.render("conv2:3", size=32, steps=1)
    first_frame = threading.Event()

    class CancelOnFirstFrame(Recorder):
        def on_frame(self, step, images):
            super().on_frame(step, images)
            first_frame.set()

    recorder = CancelOnFirstFrame()
    result = {}
    worker = threading.Thread(
        target=lambda: result.setdefault("images", renderer.render(
            "conv2:3", size=32, steps=100_000, callbacks=[recorder])))
    worker.start()
    assert first_frame.wait(60)
    renderer.cancel()
    worker.join(60)
    assert not worker.is_alive()
    end = recorder.events[-1][1]
    assert end["cancelled"] is True and end["steps"] < 100_000
    assert result["images"].shape == (1, 32, 32, 3)


def test_octaves_and_init_images(seq_model):
    renderer = Renderer(seq_model)
    images = renderer.render("conv2:3", size=40, steps=6, octaves=3, seed=0)
    assert images.shape == (1, 40, 40, 3)
    start = np.full((1, 32, 32, 3), 0.25, np.float32)
    start[:, :16] = 0.75
    kept = renderer.render("conv2:3", size=32, steps=1, learning_rate=1e-4, init_images=start, transforms=[])
    np.testing.assert_allclose(kept, start, atol=0.02)


def test_alpha_parameterisation_returns_rgba(seq_model):
    alpha_image = functools.partial(param.image, alpha=True)
    images = Renderer(seq_model).render("conv2:3", param=alpha_image, size=32, steps=4, seed=0)
    assert images.shape == (1, 32, 32, 4)


def test_lbfgs_and_sgd_raise_the_target(seq_model):
    renderer = Renderer(seq_model)
    for optimizer in ("lbfgs", "sgd"):
        assert_raises_far_above_noise(renderer, "conv3:5", optimizer=optimizer, transforms=[])


def test_diversity_keeps_a_batch_apart(seq_model):
    objective = objectives.channel("conv3", 5) + 10.0 * objectives.diversity("conv2")
    images = Renderer(seq_model).render(objective, batch=3, size=32, **FAST)
    assert images.shape == (3, 32, 32, 3)
    assert np.abs(images[0] - images[1]).mean() > 0.01


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(objective="conv_3:1"), "Did you mean 'conv3'"),
        (dict(objective="conv3:12"), r"\[0, 11\]"),
        (dict(objective="conv3:1", batch=0), "batch"),
        (dict(objective="conv3:1", steps=0), "steps"),
        (dict(objective="conv3:1", size=-3), "size"),
        (dict(objective="conv3:1", learning_rate=-1.0), "learning_rate"),
        (dict(objective="conv3:1", optimizer="adamw2"), "adamw2"),
        (dict(objective=objectives.diversity("conv3"), batch=1), "batch"),
    ],
)
def test_bad_settings_fail_clearly_before_any_step(seq_model, kwargs, message):
    renderer = Renderer(seq_model)
    objective = kwargs.pop("objective")
    with pytest.raises(ValueError, match=message):
        renderer.render(objective, **{"size": 32, "steps": 2, **kwargs})
    assert renderer.trace_count == 0
    renderer.render("conv3:1", size=32, steps=1)


def test_too_small_a_size_names_the_minimum():
    with pytest.raises(ValueError, match="too small"):
        Renderer(lw.load_model("VGG16", weights=None, include_top=False)).render("block5_conv3:0", size=8, steps=1)


def test_diverging_optimisation_names_the_step(seq_model):
    with pytest.raises(ValueError, match=r"became nan at step \d+.*learning_rate=1e\+38"):
        Renderer(seq_model).render("conv3:1", size=32, steps=20, learning_rate=1e38, transforms=[])


def test_render_wrapper_accepts_zoo_names_and_models(seq_model):
    images = lw.render(seq_model, "conv2:1", size=24, steps=2)
    assert images.shape == (1, 24, 24, 3)



def dead_relu_model():
    """`top` is the mean of relu(r + g + b - 2): off, with a zero gradient, for any image near grey."""
    return keras.Sequential([
        keras.Input((None, None, 3)),
        keras.layers.Conv2D(1, 1, activation="relu", name="dead", kernel_initializer="ones",
                            bias_initializer=keras.initializers.Constant(-2.0)),
        keras.layers.Conv2D(1, 1, name="top", kernel_initializer="ones"),
    ])


def test_redirected_relu_wakes_units_that_plain_gradients_cannot_reach():
    renderer = Renderer(dead_relu_model())
    start = renderer.render("top:0", size=16, steps=1, learning_rate=1e-9, seed=0, transforms=[])
    start_value = renderer.evaluate("top:0", start)
    plain = renderer.render("top:0", size=16, steps=64, learning_rate=0.1, seed=0, transforms=[])
    redirected = renderer.render("top:0", size=16, steps=64, learning_rate=0.1, seed=0, transforms=[],
                                 redirect_relu_steps=48)
    np.testing.assert_allclose(plain, start, atol=1e-6)
    assert renderer.evaluate("top:0", plain) == pytest.approx(start_value)
    assert start_value == 0.0
    assert renderer.evaluate("top:0", redirected) > 0.1


@objectives.wrap_objective
def channel_above_layer(layer, n_channel, weight):
    """A user's custom objective in Lucid's style, for the no-retrace check."""

    def inner(T):
        acts = T(layer)
        return keras.ops.mean(acts[..., n_channel]) - weight * keras.ops.mean(acts)

    return inner


def test_wrapped_custom_objective_rises_and_never_retraces(seq_model):
    renderer = Renderer(seq_model)
    assert_raises_far_above_noise(renderer, channel_above_layer("conv3", 4, 0.5))
    traces = renderer.trace_count
    for channel, weight in ((1, 0.1), (7, 1.0)):
        renderer.render(channel_above_layer("conv3", channel, weight), size=32, steps=3, transforms=SMALL_TRANSFORMS)
    assert renderer.trace_count == traces


def test_a_dead_unit_is_named_with_what_helps(dead_unit_model):
    with pytest.warns(lw.optvis.render.StillObjectiveWarning, match=r"stayed at 0 .*dead unit.*preactivation=True"):
        images = lw.render(dead_unit_model, "conv:1", preactivation=False, size=16, steps=10, seed=0, transforms=[])
    assert images.shape == (1, 16, 16, 3)
    with pytest.warns(lw.optvis.render.StillObjectiveWarning, match="all-zero weights"):
        lw.render(dead_unit_model, "conv:2", size=16, steps=10, seed=0, transforms=[])


def test_a_unit_that_responds_raises_no_warning(dead_unit_model, recwarn):
    lw.render(dead_unit_model, "conv:1", size=16, steps=10, seed=0, transforms=[])   # pre-activation moves
    lw.render(dead_unit_model, "conv:0", preactivation=False, size=16, steps=10, seed=0, transforms=[])
    still = [str(w.message) for w in recwarn if issubclass(w.category, lw.optvis.render.StillObjectiveWarning)]
    assert still == []


def test_one_seed_per_item_renders_each_item_as_it_would_render_alone(seq_model):
    """The atlas's contract: with one channel and one seed per batch item, an image depends only on its
    channel and seed, never on the batch it shares; a new chunk of the same size reuses the step."""
    renderer = Renderer(seq_model)
    settings = dict(size=32, steps=12, transforms=SMALL_TRANSFORMS)
    channels, seeds = [5, 0, 9], [101, 7, 55]
    objective = objectives.channel("conv3", channels)
    batch = renderer.render(objective, batch=3, seed=seeds, **settings)
    values = renderer.evaluate(objective, batch, per_item=True)
    traces = renderer.trace_count
    for index, (channel, seed) in enumerate(zip(channels, seeds)):
        alone = renderer.render(objectives.channel("conv3", channel), seed=seed, **settings)
        # Float rounding only: batched and single convolutions may sum in another order.
        assert np.abs(alone[0] - batch[index]).max() < 1e-3
        assert values[index] == pytest.approx(renderer.evaluate(f"conv3:{channel}", alone), rel=1e-3, abs=1e-4)
    renderer.render(objectives.channel("conv3", [1, 2, 3]), batch=3, seed=[1, 2, 3], **settings)
    assert renderer.trace_count == traces + 1                     # the batch-of-one plan, then no more
    shuffled = renderer.render(objective, batch=3, seed=[seeds[2], seeds[1], seeds[0]], **settings)
    assert np.abs(shuffled[1] - batch[1]).max() < 1e-3         # same channel and seed: same image
    assert np.abs(shuffled[0] - batch[0]).max() > 1e-2         # another seed: another start


def test_per_item_seeds_are_checked(seq_model):
    renderer = Renderer(seq_model)
    with pytest.raises(ValueError, match=r"one seed per batch item \(2\)"):
        renderer.render("conv3:1", batch=2, seed=[1, 2, 3], size=32, steps=2)
