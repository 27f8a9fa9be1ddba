"""lucidwidget.models: loading, layer lookup, and activation taps on every architecture family."""

import contextlib
import importlib.util
import json
import os
import re
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
from keras import ops

from conftest import functional_bn_residual, sequential_relu
import lucidwidget.models
from lucidwidget import backend
from lucidwidget.models import FeatureTap, LayerInfo, find_layer, list_models, load_model, visualizable_layers
from lucidwidget.models.zoo import HED_MEAN_BGR, _hed_weights_path

SIZE = 32


def images(batch=2, size=SIZE, seed=0):
    return np.random.default_rng(seed).uniform(size=(batch, size, size, 3)).astype("float32")


def numpy(x):
    return ops.convert_to_numpy(x)


def assert_close(actual, expected, rtol=1e-6, atol=1e-6):
    np.testing.assert_allclose(numpy(actual), numpy(expected), rtol=rtol, atol=atol)


def submodel(model, name):
    """The plain Keras way to read a layer of a Functional model (the reference for taps)."""
    (inputs,) = model.inputs
    return keras.Model(inputs, model.get_layer(name).output)


def gradient_of(fn, x):
    """d fn(x) / d x for an image batch `x`, through `backend.value_and_grad`."""
    variable = keras.Variable(x)
    _, (grad,) = backend.value_and_grad(lambda: fn(variable.value), [variable])()
    return numpy(grad)


def compiled_value(fn, *args):
    """`fn(*args)` (a scalar) evaluated as one step of `backend.compile_loop`, and the loop's trace count."""
    loop = backend.compile_loop(lambda index, *a: fn(*a), [], max_count=1)
    return float(numpy(loop(1, 0, *args))[0]), loop


def conv_without_activation(layer, inputs):
    return keras.ops.conv(inputs, layer.kernel, strides=layer.strides, padding=layer.padding) + layer.bias


@contextlib.contextmanager
def convolutions():
    """Records `(layer name, output channels)` of every convolution that Conv2D layers run."""
    runs = []
    original = keras.layers.Conv2D.convolution_op

    def spy(layer, inputs, kernel):
        runs.append((layer.name, kernel.shape[-1]))
        return original(layer, inputs, kernel)

    owned = "convolution_op" in vars(keras.layers.Conv2D)
    keras.layers.Conv2D.convolution_op = spy
    try:
        yield runs
    finally:
        if owned:
            keras.layers.Conv2D.convolution_op = original
        else:
            del keras.layers.Conv2D.convolution_op

class Tripwire(keras.layers.Layer):
    """Identity layer that counts how often its `call` runs (tests reset it after building)."""

    calls = 0

    def call(self, inputs):
        self.calls += 1
        return inputs


def reset_tripwires(model):
    for layer in model.layers:
        if isinstance(layer, Tripwire):
            layer.calls = 0


# Zoo ------------------------------------------------------------------------------------------------


def test_list_models_and_unknown_names():
    names = list_models()
    assert names[0] == "vgg16-hed"
    assert {"VGG16", "ResNet50", "MobileNetV2", "InceptionV3"} <= set(names)
    with pytest.raises(ValueError, match=r"Unknown model 'inceptoinv3'\. Did you mean 'InceptionV3'.*Received: name='inceptoinv3'"):
        load_model("inceptoinv3")
    with pytest.raises(TypeError, match="input_tensor"):
        load_model("VGG16", weights=None, input_tensor=keras.Input((32, 32, 3)))


@pytest.mark.parametrize(
    "name, kwargs, family, layer_name, input_size",
    [
        ("vgg16", {"include_top": False, "input_shape": (32, 32, 3)}, keras.applications.vgg16, "block4_conv3",
         (32, 32)),
        ("ResNet50", {"include_top": False, "input_shape": (32, 32, 3)}, keras.applications.resnet50,
         "conv5_block3_out", (32, 32)),
        ("MobileNetV2", {}, keras.applications.mobilenet_v2, "predictions", (224, 224)),
        ("inception-v3", {"include_top": False}, keras.applications.inception_v3, "mixed4", None),
    ],
)
def test_applications_take_unit_rgb_and_keep_layer_names(name, kwargs, family, layer_name, input_size):
    model = load_model(name, weights=None, **kwargs)
    layer, path = find_layer(model, layer_name)
    assert layer.name == layer_name and path == (model.name,)
    pixel = np.array([[[[1.0, 0.5, 0.0]]]], dtype="float32")
    expected = family.preprocess_input(pixel * 255.0)
    assert_close(find_layer(model, "preprocess")[0](pixel), expected, rtol=1e-6, atol=1e-5)
    tap = FeatureTap(model, [layer_name])
    assert tap.input_size == input_size
    height, width = input_size or (75, 75)
    assert tap.output_shapes(height, width)[layer_name][-1] == layer.output.shape[-1]


@pytest.mark.vgg
def test_vgg16_hed_has_hed_weights_and_caffe_preprocessing(vgg16_hed):
    convs = [layer for layer in vgg16_hed.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 13
    with h5py.File(_hed_weights_path(), "r") as file:
        kernel = file["block1/layers/conv2d/vars/0"][()]
        bias = file["block5/layers/conv2d_2/vars/1"][()]
    np.testing.assert_array_equal(numpy(vgg16_hed.get_layer("block1_conv1").kernel), kernel)
    np.testing.assert_array_equal(numpy(vgg16_hed.get_layer("block5_conv3").bias), bias)
    pixel = np.array([[[[1.0, 0.5, 0.0]]]], dtype="float32")
    expected = np.array([0.0, 127.5, 255.0]) - np.array(HED_MEAN_BGR)
    assert_close(numpy(vgg16_hed.get_layer("preprocess")(pixel))[0, 0, 0], expected, rtol=1e-6, atol=0)

    tap = FeatureTap(vgg16_hed, ["block3_conv1", "block4_conv3"])
    x = images(batch=1, size=64)
    with convolutions() as runs:
        values = tap(x)
    assert_close(ops.relu(values["block4_conv3"]), submodel(vgg16_hed, "block4_conv3")(x), rtol=1e-6, atol=1e-4)
    assert tap.output_shapes(64, 64) == {"block3_conv1": (16, 16, 256), "block4_conv3": (8, 8, 512)}
    assert runs[-1][0].startswith("block4_conv3") and not any("block5" in name for name, _ in runs)
    with pytest.raises(ValueError, match=r"Image size 8x8 is too small for layer 'block5_conv3' of 'vgg16-hed': "
                                         r"it needs at least 16x16\. Received: size=8"):
        FeatureTap(vgg16_hed, ["block5_conv3"]).output_shapes(8, 8)


HED_ACTIVATIONS = """
import sys
import numpy as np
from lucidwidget.models import FeatureTap, load_model
model = load_model("vgg16-hed")
loaded_tensorflow = "tensorflow" in sys.modules
image = np.random.default_rng(0).uniform(size=(1, 64, 64, 3)).astype("float32")
values = FeatureTap(model, ["block4_conv3"])(image)["block4_conv3"]
np.save(sys.argv[1], np.asarray(values.detach() if hasattr(values, "detach") else values))
print(loaded_tensorflow)
"""


def _hed_activations(backend_name, path):
    """block4_conv3 of vgg16-hed on a fixed image in a fresh process on `backend_name`; whether loading
    the model imported TensorFlow."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path_entries = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "KERAS_BACKEND": backend_name, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(path_entries)}
    done = subprocess.run([sys.executable, "-c", HED_ACTIVATIONS, str(path)], env=env, capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(path), json.loads(done.stdout.strip().splitlines()[-1].lower())


@pytest.fixture(scope="module")
def hed_on_tensorflow(tmp_path_factory):
    return _hed_activations("tensorflow", tmp_path_factory.mktemp("hed") / "tensorflow.npy")[0]


@pytest.mark.vgg
@pytest.mark.skipif(backend.name != "tensorflow" or importlib.util.find_spec("tensorflow") is None,
                    reason="runs every backend in its own process, so once (with the TensorFlow suite)")
@pytest.mark.parametrize("other", ["jax", "torch"])
def test_vgg16_hed_loads_without_tensorflow_and_matches_it(other, hed_on_tensorflow, tmp_path):
    reference = hed_on_tensorflow
    values, loaded_tensorflow = _hed_activations(other, tmp_path / f"{other}.npy")
    assert not loaded_tensorflow
    assert values.shape == (1, 8, 8, 512) and np.abs(reference).max() > 1.0
    np.testing.assert_allclose(values, reference, rtol=1e-4, atol=1e-3 * np.abs(reference).max())


def test_the_backend_is_read_as_keras_reads_it_without_importing_keras(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    check = "import sys; from lucidwidget._tf_startup import keras_backend; print(keras_backend(), 'keras' in sys.modules)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for extra, expected in [({"KERAS_HOME": str(tmp_path)}, "jax False"),
                            ({"KERAS_HOME": str(tmp_path), "KERAS_BACKEND": "torch"}, "torch False"),
                            ({"KERAS_HOME": str(tmp_path / "none")}, "tensorflow False")]:
        done = subprocess.run([sys.executable, "-c", check], env={**env, **extra, "PYTHONPATH": root},
                              capture_output=True, text=True, check=True)
        assert done.stdout.strip() == expected


# Layer lookup ---------------------------------------------------------------------------------------


def _two_branches():
    """Two nested models that both contain a layer named "conv"."""

    def branch(name):
        inputs = keras.Input((None, None, 3))
        return keras.Model(inputs, keras.layers.Conv2D(4, 1, name="conv")(inputs), name=name)

    inputs = keras.Input((None, None, 3))
    merged = keras.layers.Concatenate(name="cat")([branch("a")(inputs), branch("b")(inputs)])
    return keras.Model(inputs, merged, name="twins")


def test_find_layer_resolves_nested_names_and_paths(nested_model, subclassed_model):
    assert find_layer(nested_model, "inner_conv")[1] == ("outer", "inner")
    assert find_layer(nested_model, "inner/inner_conv")[0] is nested_model.get_layer("inner").get_layer("inner_conv")
    assert find_layer(nested_model, "outer/inner/inner_conv")[1] == ("outer", "inner")
    assert find_layer(nested_model, "top_conv")[1] == ("outer",)
    stem, path = find_layer(subclassed_model, "stem")
    assert path == ("subclassed", "resnetish") and stem is subclassed_model.backbone.get_layer("stem")
    assert find_layer(subclassed_model, "sub_head")[0] is subclassed_model.head

    twins = _two_branches()
    with pytest.raises(ValueError, match=r"ambiguous.*'twins/a/conv', 'twins/b/conv'"):
        find_layer(twins, "conv")
    assert find_layer(twins, "b/conv")[1] == ("twins", "b")
    assert [info.name for info in visualizable_layers(twins)] == ["a/conv", "b/conv", "cat"]


def test_find_layer_unknown_name_suggests_close_matches(nested_model):
    with pytest.raises(ValueError, match=r"^No layer 'iner_conv' in model 'outer'\. Did you mean 'inner_conv'"
                                         r".*Received: name='iner_conv'$"):
        find_layer(nested_model, "iner_conv")
    with pytest.raises(ValueError, match="No layer 'inner/top_conv'"):
        find_layer(nested_model, "inner/top_conv")
    with pytest.raises(ValueError, match="No layer 'iner_conv'") as info:
        FeatureTap(nested_model, ["iner_conv"])
    pointer = re.search(r"`lucidwidget\.models\.(\w+)\(model\)` lists the layers", str(info.value))
    assert "inner_conv" in [layer.name for layer in getattr(lucidwidget.models, pointer.group(1))(nested_model)]


def test_visualizable_layers(seq_model, resnet_model, classifier_model, subclassed_model):
    assert visualizable_layers(seq_model) == [
        LayerInfo("conv1", 8, True, "Conv2D"),
        LayerInfo("pool1", 8, True, "MaxPooling2D"),
        LayerInfo("conv2", 16, True, "Conv2D"),
        LayerInfo("conv3", 12, True, "Conv2D"),
    ]
    names = [info.name for info in visualizable_layers(resnet_model)]
    assert names == ["stem", "stem_relu", "res_a", "res_b", "res_add", "res_out", "head"]
    assert visualizable_layers(classifier_model)[-2:] == [
        LayerInfo("gap", 16, False, "GlobalAveragePooling2D"),
        LayerInfo("predictions", 5, False, "Dense"),
    ]
    sub = visualizable_layers(subclassed_model)
    assert sub[0].name == "stem" and sub[-1] == LayerInfo("sub_head", 3, False, "Dense")


# Taps: values ---------------------------------------------------------------------------------------


ARCHITECTURES = {
    "seq_model": ["conv1", "conv2", "conv3"],
    "resnet_model": ["stem_relu", "res_a", "res_add", "res_out", "head"],
    "nested_model": ["outer_conv", "inner_conv", "top_conv"],
    "classifier_model": ["c1", "c2", "predictions"],
}


def _reference_outputs(model, names, x):
    """Each layer's ordinary output, computed with plain Keras."""
    if model.name == "outer":
        outer_conv = submodel(model, "outer_conv")(x)
        inner_conv = model.get_layer("inner")(outer_conv)
        return {"outer_conv": outer_conv, "inner_conv": inner_conv, "top_conv": model(x)}
    return {name: submodel(model, name)(x) for name in names}


@pytest.mark.parametrize("fixture", sorted(ARCHITECTURES))
def test_tap_matches_layer_outputs(fixture, request):
    model = request.getfixturevalue(fixture)
    names = ARCHITECTURES[fixture]
    x = images()
    post = FeatureTap(model, names, preactivation=False)(x)
    reference = _reference_outputs(model, names, x)
    assert list(post) == names
    for name in names:
        assert_close(post[name], reference[name], rtol=1e-6, atol=1e-6)


def test_tap_matches_layer_outputs_of_subclassed_model(subclassed_model):
    x = images()
    post = FeatureTap(subclassed_model, ["res_add", "sub_head"], preactivation=False)(x)
    assert_close(post["res_add"], submodel(subclassed_model.backbone, "res_add")(x), rtol=1e-6, atol=1e-6)
    assert_close(post["sub_head"], subclassed_model(x), rtol=1e-6, atol=1e-6)


def test_preactivation_is_the_value_before_the_activation(seq_model, resnet_model, nested_model, classifier_model):
    x = images()
    conv1 = seq_model.get_layer("conv1")
    pre = FeatureTap(seq_model, ["conv1"])(x)["conv1"]
    assert_close(pre, conv_without_activation(conv1, x), rtol=1e-6, atol=1e-6)
    assert numpy(pre).min() < 0

    inner_conv = nested_model.get_layer("inner").get_layer("inner_conv")
    pre = FeatureTap(nested_model, ["inner_conv", "top_conv"])(x)
    inner_input = submodel(nested_model, "outer_conv")(x)
    assert_close(pre["inner_conv"], conv_without_activation(inner_conv, inner_input), rtol=1e-6, atol=1e-6)
    top_input = nested_model.get_layer("inner")(inner_input)
    top = nested_model.get_layer("top_conv")
    assert_close(pre["top_conv"], conv_without_activation(top, top_input), rtol=1e-6, atol=1e-6)

    taps = FeatureTap(resnet_model, ["stem_relu", "res_out"])(x)
    assert_close(taps["stem_relu"], submodel(resnet_model, "stem_bn")(x), rtol=1e-6, atol=1e-6)
    assert_close(taps["res_out"], submodel(resnet_model, "res_add")(x), rtol=1e-6, atol=1e-6)

    logits = FeatureTap(classifier_model, ["predictions"])(x)["predictions"]
    dense = classifier_model.get_layer("predictions")
    expected = numpy(submodel(classifier_model, "gap")(x)) @ numpy(dense.kernel) + numpy(dense.bias)
    assert_close(logits, expected, rtol=1e-6, atol=1e-6)
    assert_close(ops.softmax(logits), classifier_model(x), rtol=1e-6, atol=1e-6)


def test_preactivation_of_a_layer_with_custom_unregistered_settings():
    class Halves(keras.initializers.Initializer):          # a user's class Keras cannot deserialise
        def __call__(self, shape, dtype=None):
            return keras.ops.full(shape, 0.5, dtype=dtype)

    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(2, 3, activation="relu", kernel_initializer=Halves(),
                               kernel_constraint=keras.constraints.NonNeg(), name="custom")
    model = keras.Model(inputs, conv(inputs))
    x = images()
    assert_close(FeatureTap(model, ["custom"])(x)["custom"], conv_without_activation(conv, x), rtol=1e-6, atol=1e-6)


def test_downstream_layers_see_activated_values(seq_model):
    x = images()
    taps = FeatureTap(seq_model, ["conv1", "conv2"])(x)
    conv2_input = seq_model.get_layer("pool1")(ops.relu(taps["conv1"]))
    assert_close(taps["conv2"], conv_without_activation(seq_model.get_layer("conv2"), conv2_input),
                               rtol=1e-6, atol=1e-6)


def test_batchnorm_and_dropout_run_in_inference_mode(seq_model):
    model = functional_bn_residual()
    bn = model.get_layer("stem_bn")
    bn.moving_mean.assign(np.full(8, 0.5, "float32"))
    bn.moving_variance.assign(np.full(8, 4.0, "float32"))
    x = images()
    conv = conv_without_activation(model.get_layer("stem"), x)
    expected = (conv - 0.5) / np.sqrt(4.0 + bn.epsilon)
    assert_close(FeatureTap(model, ["stem_bn"])(x)["stem_bn"], expected, rtol=1e-5, atol=1e-5)

    tap = FeatureTap(seq_model, ["conv3"], preactivation=False)
    assert_close(tap(x)["conv3"], seq_model(x), rtol=1e-6, atol=1e-6)


# Taps: truncation -----------------------------------------------------------------------------------


def test_truncation_skips_later_layers_and_side_branches():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="early")(inputs)
    side = Tripwire(name="side")(inputs)
    late = Tripwire(name="late")(keras.layers.Add(name="merge")([x, keras.layers.Conv2D(4, 1, name="c")(side)]))
    model = keras.Model(inputs, late)
    reset_tripwires(model)
    tap = FeatureTap(model, ["early"])
    tap(images())
    compiled_value(lambda x: ops.sum(tap(x)["early"]), images())
    assert model.get_layer("side").calls == 0 and model.get_layer("late").calls == 0
    FeatureTap(model, ["merge"])(images())
    assert model.get_layer("side").calls == 1 and model.get_layer("late").calls == 0


class _WiredSubclass(keras.Model):
    """Subclassed model: a Functional backbone with a tripwire inside, then a tripwire head."""

    def __init__(self):
        super().__init__(name="wired")
        inputs = keras.Input((None, None, 3))
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="first")(inputs)
        x = Tripwire(name="inside")(x)
        self.backbone = keras.Model(inputs, keras.layers.Conv2D(4, 1, name="second")(x), name="backbone")
        self.after = Tripwire(name="after")

    def call(self, inputs):
        return self.after(self.backbone(inputs))


def test_truncation_in_subclassed_model():
    model = _WiredSubclass()
    model(images())
    reset_tripwires(model)
    reset_tripwires(model.backbone)
    inside, after = model.backbone.get_layer("inside"), model.after
    first = FeatureTap(model, ["first"])(images())["first"]
    assert_close(first, conv_without_activation(model.backbone.get_layer("first"), images()),
                               rtol=1e-6, atol=1e-6)
    assert inside.calls == 0 and after.calls == 0
    FeatureTap(model, ["second"])(images())
    assert inside.calls == 1 and after.calls == 0
    assert "call" not in vars(model.backbone)


# Taps: gradients ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture, name", [
    ("seq_model", "conv3"),
    ("resnet_model", "res_out"),
    ("nested_model", "inner_conv"),
    ("classifier_model", "predictions"),
    ("subclassed_model", "res_add"),
])
def test_gradients_reach_the_image(fixture, name, request):
    tap = FeatureTap(request.getfixturevalue(fixture), [name])
    g = gradient_of(lambda x: ops.sum(tap(x)[name][..., 0]), images())
    assert g.shape == (2, SIZE, SIZE, 3)
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0


def _blocked_relu_model():
    """Pre-ReLU value = sum of the pixel's channels - 1.5; then a linear 1x1 conv doubling it."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(1, 1, activation="relu", name="gate", kernel_initializer="ones",
                            bias_initializer=keras.initializers.Constant(-1.5))(inputs)
    x = keras.layers.Conv2D(1, 1, name="out", kernel_initializer=keras.initializers.Constant(2.0),
                            bias_initializer="zeros")(x)
    return keras.Model(inputs, x)


def test_redirected_relu_only_changes_fully_blocked_examples():
    tap = FeatureTap(_blocked_relu_model(), ["out"])
    x = np.zeros((2, 2, 2, 3), "float32")
    x[1, 0, 0] = 1.0  # example 1 has one unit on; example 0 is blocked everywhere

    def gradient(redirect, sign):
        return gradient_of(lambda images: sign * ops.sum(tap(images, redirect_relu=redirect)["out"]), x)

    ordinary = gradient(False, -1.0)
    np.testing.assert_array_equal(ordinary[0], 0.0)
    expected_on = np.zeros((2, 2, 3), "float32")
    expected_on[0, 0] = -2.0
    np.testing.assert_array_equal(ordinary[1], expected_on)
    redirected = gradient(True, -1.0)
    np.testing.assert_array_equal(redirected[0], np.full((2, 2, 3), -2.0))  # pushes the pre-ReLU value up
    np.testing.assert_array_equal(redirected[1], ordinary[1])
    np.testing.assert_array_equal(gradient(True, 1.0)[0], 0.0)  # would push negative inputs further down


def test_redirect_switch_is_a_tensor_without_retracing():
    """Inside a compiled loop the switch is a tensor argument: False and True share one trace; a float
    switch (0 is off) works too."""
    tap = FeatureTap(_blocked_relu_model(), ["out"])
    image = keras.Variable(np.zeros((1, 2, 2, 3), "float32"))
    grad = keras.Variable(np.zeros((1, 2, 2, 3), "float32"), trainable=False)
    loss = backend.value_and_grad(lambda redirect: -ops.sum(tap(image.value, redirect_relu=redirect)["out"]), [image])

    def step(index, redirect):
        value, (g,) = loss(redirect)
        grad.assign(g)
        return value

    loop = backend.compile_loop(step, [grad], max_count=1)

    def gradient(redirect):
        loop(1, 0, ops.convert_to_tensor(redirect))
        return numpy(grad)

    off, on = gradient(False), gradient(True)
    assert np.abs(off).max() == 0.0 and on.min() == -2.0
    assert loop.traces == 1
    np.testing.assert_array_equal(gradient(np.float32(0.0)), off)


def test_redirect_keeps_forward_values(seq_model):
    x = images()
    tap = FeatureTap(seq_model, ["conv3"])
    np.testing.assert_array_equal(numpy(tap(x, redirect_relu=True)["conv3"]), numpy(tap(x)["conv3"]))


# Taps: shapes ---------------------------------------------------------------------------------------


def test_output_shapes_and_input_size(seq_model, classifier_model, subclassed_model):
    tap = FeatureTap(seq_model, ["conv2", "conv1"])
    assert tap.input_size is None
    assert tap.output_shapes(32, 48) == {"conv1": (32, 48, 8), "conv2": (16, 24, 16)}
    with pytest.raises(ValueError, match=r"Image size 1x1 is too small for layer 'conv2' of 'seq': "
                                         r"it needs at least 2x2\. Received: size=1"):
        tap.output_shapes(1, 1)
    with pytest.raises(ValueError, match=r"whole number >= 1\. Received: height=0"):
        tap.output_shapes(0, 4)

    fixed = FeatureTap(classifier_model, ["predictions"])
    assert fixed.input_size == (32, 32)
    assert fixed.output_shapes(32, 32) == {"predictions": (5,)}
    with pytest.raises(ValueError, match=r"takes 32x32 images\. Received: size=\(32, 64\)"):
        fixed.output_shapes(32, 64)
    assert FeatureTap(sequential_relu(size=16), []).input_size == (16, 16)

    sub = FeatureTap(subclassed_model, ["head", "sub_head"])
    assert sub.input_size is None
    assert sub.output_shapes(16, 16) == {"head": (8, 8, 10), "sub_head": (3,)}


def test_subclassed_tap_leaves_no_hook_and_runs_in_a_compiled_loop(subclassed_model):
    tap = FeatureTap(subclassed_model, ["stem"])
    eager = float(numpy(ops.sum(tap(images())["stem"])))
    compiled, _ = compiled_value(lambda x: ops.sum(tap(x)["stem"]), images())
    assert compiled == pytest.approx(eager, rel=1e-5)
    assert all("call" not in vars(layer) for layer in subclassed_model.layers)


class _Block(keras.layers.Layer):
    """A user's composite layer: two convolutions, the first with a fused ReLU."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv_a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block_a")
        self.conv_b = keras.layers.Conv2D(4, 1, name="block_b")

    def call(self, inputs):
        return self.conv_b(self.conv_a(inputs))


class _BlockModel(keras.Model):
    def __init__(self):
        super().__init__(name="blocky")
        self.block = _Block(name="block")
        self.after = Tripwire(name="after")

    def call(self, inputs):
        return self.after(self.block(inputs))


def test_tap_inside_a_composite_layer_of_a_subclassed_model():
    model = _BlockModel()
    x = images()
    model(x)
    model.after.calls = 0
    assert [info.name for info in visualizable_layers(model)] == ["block_a", "block_b"]
    assert find_layer(model, "block_a")[1] == ("blocky", "block")
    pre = FeatureTap(model, ["block/block_a"])(x)["block/block_a"]
    assert_close(pre, conv_without_activation(model.block.conv_a, x), rtol=1e-6, atol=1e-6)
    assert model.after.calls == 0
    post = FeatureTap(model, ["block_b"], preactivation=False)(x, redirect_relu=True)["block_b"]
    assert_close(post, model(x), rtol=1e-6, atol=1e-6)


def test_a_layer_called_twice_is_read_at_its_first_call():
    inputs = keras.Input((None, None, 3))
    shared = keras.layers.Conv2D(3, 1, name="shared", kernel_initializer=keras.initializers.HeUniform(seed=3))
    outputs = shared(keras.layers.Activation("relu", name="act")(shared(inputs)))
    model = keras.Model(inputs, outputs)
    x = images()
    taps = FeatureTap(model, ["shared", "act"], preactivation=False)(x)
    assert_close(taps["shared"], shared(x))
    assert_close(taps["act"], ops.relu(shared(x)))


def test_names_with_spaces_and_a_minus_run_in_a_compiled_loop():
    """TensorFlow refuses such names as graph scopes; the tap calls twins with clean names instead. (Keras
    on PyTorch refuses a '.' in a layer name, so none is used here.)"""
    model = keras.Sequential([
        keras.Input((None, None, 3)),
        keras.layers.Conv2D(4, 3, activation="relu", name="fc6-3"),
        keras.layers.Conv2D(5, 3, activation="relu", name="conv 1b"),
    ])
    tap = FeatureTap(model, ["fc6-3", "conv 1b"])
    eager = float(numpy(ops.sum(tap(images())["conv 1b"])))
    compiled, _ = compiled_value(lambda x: ops.sum(tap(x)["conv 1b"]), images())
    assert compiled == pytest.approx(eager, rel=1e-5)
