"""Models users bring: grey and small inputs, fixed sizes, subclassed models, odd layer names, several
inputs, model files, preprocessing. The models are trained for a few seconds (see `trained_models`), so
"the render excites the target" is measured against real features with `z_score`."""

import functools

import keras
import numpy as np
import pytest
from keras import ops

import trained_models as tm
from lucidwidget.models import PRESET_NAMES, load_model, preprocessing
from lucidwidget.optvis import objectives, param, transform
from lucidwidget.optvis.render import Renderer, render
from lucidwidget.widget import LucidWidget
from lucidwidget.widget.worker import tile_sheet

MIN_Z = 10.0
"""A render must sit at least this many noise standard deviations above uniform noise."""

STEPS = 128


@pytest.fixture(scope="session")
def grey28():
    model = tm.grey_classifier()
    assert tm.train(model, *tm.stripes(tm.TRAIN_EXAMPLES, 28, 1)) > 0.9
    return model


@pytest.fixture(scope="session")
def rgb32():
    model = tm.rgb_classifier()
    assert tm.train(model, *tm.stripes(tm.TRAIN_EXAMPLES, 32, 3), preprocess=lambda x: 2 * x - 1) > 0.9
    return model


@pytest.fixture(scope="session")
def facenet():
    model = tm.FaceNetLike()
    assert tm.train(model, *tm.stripes(tm.TRAIN_EXAMPLES, 24, 3)) > 0.9
    return model


@pytest.fixture(scope="session")
def two_input():
    model = tm.two_input_classifier()
    images, sites, labels = tm.stripes(tm.TRAIN_EXAMPLES, 32, 3, sites=2)
    assert tm.train(model, [images, sites], labels, epochs=tm.TWO_INPUT_EPOCHS) > 0.9
    return model


@pytest.fixture(scope="session")
def caffe_named():
    model = tm.caffe_named_classifier()
    assert tm.train(model, *tm.stripes(tm.TRAIN_EXAMPLES, 24, 1)) > 0.9
    return model


def excites(renderer, objective, **kwargs):
    images = renderer.render(objective, steps=STEPS, seed=0, **kwargs)
    return images, tm.z_score(renderer, objective, images)


@pytest.mark.parametrize("fixture, preprocess, targets", [
    ("grey28", None, ["conv2:3", "logits:1"]),
    ("rgb32", "[-1, 1]", ["conv2:1", "logits:2"]),
    ("facenet", None, ["conv2.1:1", objectives.channel("fc6-3", 3)]),
    ("two_input", None, ["conv2:1", "logits:0"]),
    ("caffe_named", None, [objectives.channel("conv2.1", 1), objectives.channel("fc6-3", 0)]),
])
def test_trained_models_reach_their_mid_layer_channel_and_logit(request, fixture, preprocess, targets):
    renderer = Renderer(request.getfixturevalue(fixture), preprocess=preprocess)
    for target in targets:
        images, z = excites(renderer, target)
        assert images.shape[1:] == (*renderer.input_size, renderer.channels)
        assert z >= MIN_Z, (fixture, target, z)


def test_grey_model_renders_one_channel_shown_as_grey_tiles(grey28):
    images = render(grey28, "conv1:0", steps=8, seed=0, batch=2)
    assert images.shape == (2, 28, 28, 1)
    sheet = tile_sheet(images)
    assert sheet.shape[-1] == 4 and np.array_equal(sheet[..., 0], sheet[..., 1])
    transparent = render(grey28, "conv1:0", steps=4, seed=0, param=functools.partial(param.image, alpha=True))
    assert transparent.shape == (1, 28, 28, 2)          # grey + alpha, composited over noise for the model


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_every_channel_count_is_optimised_alike(channels):
    inputs = keras.Input((None, None, channels))
    conv = keras.layers.Conv2D(4, 3, name="conv", kernel_initializer=keras.initializers.HeUniform(seed=channels))
    renderer = Renderer(keras.Model(inputs, conv(inputs)))
    images = renderer.render("conv:1", size=16, steps=128, seed=0, transforms=[],
                             param=functools.partial(param.image, fft=False, decorrelate=False))
    assert images.shape == (1, 16, 16, channels)
    # The channel mean is linear in the pixels: pixel (y, x, c) has weight `slope`, the kernel summed over
    # the output positions that see it. With every channel free (2 and 4 are independent channels, not
    # RGB or alpha) the best image is 1 where the slope is positive and 0 elsewhere.
    kernel, out = ops.convert_to_numpy(conv.kernel)[..., 1], 16 - 2
    slope = np.zeros((16, 16, channels))
    for dy in range(3):
        for dx in range(3):
            slope[dy:dy + out, dx:dx + out] += kernel[dy, dx] / out**2
    best_gain = 0.5 * np.abs(slope).sum()
    gain = renderer.evaluate("conv:1", images) - renderer.evaluate("conv:1", np.full_like(images, 0.5))
    assert gain > 0.8 * best_gain


class Spy(keras.layers.Layer):
    """Identity layer that keeps the first image of its last input, to see what the model was shown."""

    def build(self, input_shape):
        self.seen = self.add_weight(shape=(1, *input_shape[1:]), initializer="zeros", trainable=False)

    def call(self, inputs):
        self.seen.assign(inputs[:1])
        return inputs


def test_fixed_size_model_sees_the_render_cropped_never_resized():
    spy = Spy()
    inputs = keras.Input((16, 16, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(spy(inputs)))
    ramp = np.linspace(0.1, 0.9, 16 * 16, dtype=np.float32).reshape(1, 16, 16, 1)
    renderer = Renderer(model)
    # Padding, then nothing that moves the image: the model must see exactly the image, not a shrunken
    # copy inside a grey border.
    renderer.render("conv:0", steps=1, init_images=ramp, learning_rate=1e-6,
                    transforms=[transform.pad(0.25, mode="constant", constant_value=0.5)])
    np.testing.assert_allclose(ops.convert_to_numpy(spy.seen), ramp, atol=1e-3)
    with pytest.raises(ValueError, match="takes 16x16 images. Received: size=20"):
        renderer.check_size(20)


class WithoutBuildRecord(tm.FaceNetLike):
    """A subclassed model that records no build shape, like one whose layers were built one by one."""

    def get_build_config(self):
        return None


def built(model, side):
    model(np.zeros((1, side, side, 3), np.float32))
    return model


def test_subclassed_model_size_is_inferred_or_asked_for(facenet):
    assert Renderer(facenet).input_size == (24, 24)                            # from its build shape
    with pytest.raises(ValueError, match="Model 'facenet_like' takes 24x24 images. Received: size=32"):
        Renderer(facenet).render("conv2.1:0", size=32, steps=1)
    assert Renderer(built(WithoutBuildRecord(), 24)).input_size == (24, 24)    # by shape inference
    odd = Renderer(built(WithoutBuildRecord(), 38))                             # a side no probe tries
    with pytest.raises(ValueError, match=r"Cannot tell which image size .* takes .*pass its input size as size=\. "
                                         r"Received: size=None"):
        odd.render("conv1:0", steps=1)
    assert odd.render("conv1:0", steps=1, size=38).shape == (1, 38, 38, 3)
    assert odd.render("conv1:0", steps=1, size=32).shape == (1, 32, 32, 3)     # conv1 alone takes any size
    with pytest.raises(ValueError, match=r"does not run on 32x32 images; give the size it was built for as size=\. "
                                         r"Received: size=32"):
        odd.render(objectives.channel("fc6-3", 0), steps=1, size=32)
    with pytest.raises(ValueError, match=r"has not been built, so its input size is unknown.*Received: model.built"):
        Renderer(tm.FaceNetLike()).render("conv1:0", steps=1)


def test_other_inputs_get_zeros_or_the_values_given(two_input):
    zeros, site_one = Renderer(two_input), Renderer(two_input, inputs={"meta": [0.0, 1.0]})
    image = tm.stripes(1, 32, 3)[0]
    assert zeros.evaluate("logits:0", image) != pytest.approx(site_one.evaluate("logits:0", image))
    explicit_zeros = Renderer(two_input, inputs={"meta": np.zeros((1, 2))})
    assert zeros.evaluate("logits:0", image) == pytest.approx(explicit_zeros.evaluate("logits:0", image))
    with pytest.raises(ValueError, match="no extra input 'mata'. Did you mean 'meta'.*Received: inputs="):
        Renderer(two_input, inputs={"mata": [0.0, 1.0]})
    with pytest.raises(ValueError, match=r"shape \(2,\).*Received: inputs\['meta'\].shape=\(3,\)"):
        Renderer(two_input, inputs={"meta": [0.0, 1.0, 0.0]})


def test_a_model_without_an_image_input_is_refused_in_one_sentence():
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(inputs), name="tabular")
    with pytest.raises(ValueError, match=r"Model 'tabular' has no image inputs \(4-D.*Received: inputs="):
        Renderer(model)


def test_preprocess_presets_and_callables(rgb32):
    assert {"caffe", "torch", "tf", "raw", "[-1, 1]", "[0, 255]", "none"} <= set(PRESET_NAMES)
    ones = np.ones((1, 1, 1, 3), np.float32)
    np.testing.assert_allclose(preprocessing("[-1, 1]")(ones), 1.0)
    np.testing.assert_allclose(preprocessing("0-255")(ones), 255.0)
    np.testing.assert_allclose(preprocessing("caffe")(ones)[0, 0, 0], [255 - 103.939, 255 - 116.779, 255 - 123.68],
                               rtol=1e-6)
    np.testing.assert_allclose(preprocessing("torch")(np.ones((1, 1, 1, 1), np.float32)),   # grey: mean mean/std
                               (1 - np.mean([0.485, 0.456, 0.406])) / np.mean([0.229, 0.224, 0.225]), rtol=1e-6)
    assert preprocessing("none") is None
    image = tm.stripes(1, 32, 3)[0]
    by_name = Renderer(rgb32, preprocess="tf").evaluate("logits:0", image)
    by_function = Renderer(rgb32, preprocess=lambda x: 2 * x - 1).evaluate("logits:0", image)
    assert by_name == pytest.approx(by_function)
    assert by_name != pytest.approx(Renderer(rgb32).evaluate("logits:0", image))
    with pytest.raises(ValueError, match=r"preset 'cafe'. Did you mean 'caffe'.*Received: preprocess='cafe'"):
        Renderer(rgb32, preprocess="cafe")


def test_widget_keeps_preprocess_across_preactivation(rgb32):
    widget = LucidWidget(rgb32, preprocess="[-1, 1]", autostart=False, live=False)
    try:
        first = widget.renderer.preprocess
        widget.preactivation = False
        assert widget.renderer.preactivation is False and widget.renderer.preprocess is first
        assert widget.size == 32
    finally:
        widget.close()


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".hdf5"])
def test_load_model_reads_model_files(grey28, tmp_path, suffix):
    path = tmp_path / f"grey{suffix}"
    grey28.save(path)
    loaded = load_model(str(path))
    image = tm.stripes(1, 28, 1)[0]
    assert Renderer(loaded).evaluate("logits:1", image) == pytest.approx(Renderer(grey28).evaluate("logits:1", image),
                                                                         rel=1e-5)


def test_load_model_says_what_it_cannot_load(tmp_path):
    with pytest.raises(ValueError, match=r"No model file 'missing.hdf5'. Received: name='missing.hdf5'"):
        load_model("missing.hdf5")
    with pytest.raises(ValueError, match="is a directory .*SavedModel"):
        load_model(str(tmp_path))
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"Keras could not load .*broken.keras"):
        load_model(str(broken))


def centre_window(images, side):
    """The central `side` x `side` window of each image, zero-padded where the image is smaller."""
    height, width = images.shape[1:3]
    padded = np.pad(images, [(0, 0), (max(0, (side - height) // 2), max(0, side - height - (side - height) // 2)),
                             (max(0, (side - width) // 2), max(0, side - width - (side - width) // 2)), (0, 0)])
    top, left = (padded.shape[1] - side) // 2, (padded.shape[2] - side) // 2
    return padded[:, top:top + side, left:left + side]


def test_transform_strength_is_relative_to_the_image_side():
    """At 28 px the default transforms move the image as little, relatively, as at 128 px."""
    keras.utils.set_random_seed(1)
    shifts = {}
    for side in (28, 128):
        marker = np.zeros((64, side, side, 1), np.float32)
        marker[:, side // 2, side // 2, 0] = 1.0
        moved = transform.compose(transform.standard_transforms)(marker)
        window = centre_window(ops.convert_to_numpy(moved), side)[..., 0]
        peak = np.array([np.unravel_index(np.argmax(w), w.shape) for w in window])
        shifts[side] = np.abs(peak - side // 2).max() / side
    assert shifts[28] <= 2 * shifts[128] + 1 / 28 and shifts[28] < 0.15
