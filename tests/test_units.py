"""Deferred layers: objectives that read a few units of the deepest layer compute only those."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import lucidwidget as lw
from conftest import sequential_relu
from lucidwidget.models import FeatureTap
from lucidwidget.models.units import slices_units, unit_slice
from lucidwidget.optvis.step import Activations


def built(layer, shape):
    layer.build(shape)
    return layer


def random(shape, seed=0):
    return tf.random.stateless_normal(shape, seed=(seed, 7))


SLICEABLE = [
    (built(keras.layers.Conv2D(6, 3, padding="same"), (None, 9, 9, 4)), (2, 9, 9, 4)),
    (built(keras.layers.Conv2D(6, 3, strides=2, dilation_rate=1, padding="valid"), (None, 9, 9, 4)), (2, 9, 9, 4)),
    (built(keras.layers.Conv2D(5, 3, dilation_rate=2, use_bias=False), (None, 11, 11, 4)), (1, 11, 11, 4)),
    (built(keras.layers.Conv3D(4, 2), (None, 5, 5, 5, 3)), (2, 5, 5, 5, 3)),
    (built(keras.layers.Dense(7), (None, 6)), (3, 6)),
    (built(keras.layers.Dense(7), (None, 4, 6)), (3, 4, 6)),
]


@pytest.mark.parametrize("layer, input_shape", SLICEABLE, ids=lambda v: getattr(v, "name", None))
def test_unit_slice_equals_the_full_output_gathered(layer, input_shape):
    assert slices_units(layer)
    x = random(input_shape)
    full = layer(x)
    for index in (0, 3, [3, 1, 1]):
        np.testing.assert_allclose(unit_slice(layer, x, index), tf.gather(full, index, axis=-1), rtol=1e-5, atol=1e-5)
    assert unit_slice(layer, x, 2).shape == full.shape[:-1]


def test_layers_whose_units_cannot_be_sliced_are_not_deferred():
    grouped = built(keras.layers.Conv2D(4, 3, groups=2), (None, 8, 8, 4))
    causal = built(keras.layers.Conv1D(4, 3, padding="causal"), (None, 8, 4))
    depthwise = built(keras.layers.DepthwiseConv2D(3), (None, 8, 8, 4))
    separable = built(keras.layers.SeparableConv2D(4, 3), (None, 8, 8, 4))
    transposed = built(keras.layers.Conv2DTranspose(4, 3), (None, 8, 8, 4))
    for layer in (grouped, causal, depthwise, separable, transposed, keras.layers.Conv2D(4, 3)):
        assert not slices_units(layer), layer


def test_tap_defers_only_the_deepest_layer_and_gives_the_same_values():
    model = sequential_relu()
    tap = FeatureTap(model, ["conv2", "conv3"])
    x = tf.random.stateless_uniform((2, 16, 16, 3), seed=(1, 2))
    reading = tap.read(x)
    full = tap(x)
    assert list(reading) == ["conv2", "conv3"]
    np.testing.assert_allclose(reading.units("conv3", 5), full["conv3"][..., 5], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reading.units("conv2", [3, 0]), tf.gather(full["conv2"], [3, 0], axis=-1), rtol=1e-6)
    np.testing.assert_allclose(reading["conv3"], full["conv3"], rtol=1e-6)


def test_post_activation_tap_of_a_fused_relu_is_not_sliced_before_the_relu():
    model = sequential_relu()
    x = tf.random.stateless_uniform((2, 16, 16, 3), seed=(3, 4))
    reading = FeatureTap(model, ["conv3"], preactivation=False).read(x)
    post = keras.Model(model.inputs, model.get_layer("conv3").output)(x)
    assert float(tf.reduce_min(reading.units("conv3", 1))) >= 0.0
    np.testing.assert_allclose(reading.units("conv3", 1), post[..., 1], rtol=1e-5, atol=1e-6)


def conv_output_channels(concrete):
    """Output channel counts of every convolution the compiled graph runs."""
    return sorted(
        op.outputs[0].shape[-1] for op in concrete.graph.get_operations() if op.type == "Conv2D"
    )


def test_a_channel_objective_convolves_only_its_channel_at_the_deepest_layer():
    """The compiled step of `channel("conv3", n)` runs conv3 with one output channel, not twelve, and its
    gradient equals the one through the full layer."""
    model = sequential_relu()
    objective = lw.objectives.channel("conv3", 7)
    x = tf.random.stateless_uniform((2, 16, 16, 3), seed=(5, 6))
    tap = FeatureTap(model, ["conv3"])

    def value(images, sliced):
        reading = tap.read(images) if sliced else {"conv3": tap(images)["conv3"]}
        T = Activations(reading, images, images) if sliced else (lambda name: reading[name])
        return objective(T)

    def gradient(sliced):
        with tf.GradientTape() as tape:
            tape.watch(x)
            result = value(x, sliced)
        return result, tape.gradient(result, x)

    (v_sliced, g_sliced), (v_full, g_full) = gradient(True), gradient(False)
    np.testing.assert_allclose(v_sliced, v_full, rtol=1e-5)
    np.testing.assert_allclose(g_sliced, g_full, rtol=1e-4, atol=1e-7)

    concrete = tf.function(lambda images: value(images, True)).get_concrete_function(
        tf.TensorSpec((2, 16, 16, 3), tf.float32))
    assert conv_output_channels(concrete) == [1, 8, 16]


def test_an_objective_that_reads_the_whole_layer_and_a_channel_computes_the_layer_once():
    model = sequential_relu()
    tap = FeatureTap(model, ["conv3"])
    objective = lw.objectives.channel("conv3", 2) + lw.objectives.deepdream("conv3")

    def value(images):
        return objective(Activations(tap.read(images), images, images))

    concrete = tf.function(value).get_concrete_function(tf.TensorSpec((1, 16, 16, 3), tf.float32))
    assert conv_output_channels(concrete) == [1, 8, 12, 16]
