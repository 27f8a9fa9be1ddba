"""Deferred layers: reading a few units of the deepest tapped layer computes only those."""

import keras
import numpy as np
import pytest
from keras import ops

from conftest import sequential_relu
from lucidwidget import backend
from lucidwidget.models import FeatureTap
from lucidwidget.models.units import slices_units, unit_slice
from test_models import convolutions, numpy


def built(layer, shape):
    layer.build(shape)
    return layer


def random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def uniform(shape, seed):
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


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
        np.testing.assert_allclose(numpy(unit_slice(layer, x, index)), np.take(numpy(full), index, axis=-1), rtol=1e-5, atol=1e-5)
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
    x = uniform((2, 16, 16, 3), 1)
    reading = tap.read(x)
    full = {name: numpy(value) for name, value in tap(x).items()}
    assert list(reading) == ["conv2", "conv3"]
    np.testing.assert_allclose(numpy(reading.units("conv3", 5)), full["conv3"][..., 5], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(numpy(reading.units("conv2", [3, 0])), full["conv2"][..., [3, 0]], rtol=1e-6)
    np.testing.assert_allclose(numpy(reading["conv3"]), full["conv3"], rtol=1e-6)


def test_post_activation_tap_of_a_fused_relu_is_not_sliced_before_the_relu():
    model = sequential_relu()
    x = uniform((2, 16, 16, 3), 3)
    reading = FeatureTap(model, ["conv3"], preactivation=False).read(x)
    post = numpy(keras.Model(model.inputs[0], model.get_layer("conv3").output)(x))
    assert numpy(reading.units("conv3", 1)).min() >= 0.0
    np.testing.assert_allclose(numpy(reading.units("conv3", 1)), post[..., 1], rtol=1e-5, atol=1e-6)


def test_a_channel_read_convolves_only_its_channel_at_the_deepest_layer():
    """Reading unit 7 of conv3 runs conv3 with one output channel, not twelve, and its gradient equals
    the one through the full layer; the index may be a tensor (a knob)."""
    model = sequential_relu()
    x = uniform((2, 16, 16, 3), 5)
    tap = FeatureTap(model, ["conv3"])
    image = keras.Variable(x)

    def mean(sliced):
        def value():
            reading = tap.read(image.value)
            units = reading.units("conv3", ops.convert_to_tensor(7)) if sliced else reading["conv3"][..., 7]
            return ops.mean(units)

        value, (grad,) = backend.value_and_grad(value, [image])()
        return float(numpy(value)), numpy(grad)

    with convolutions() as runs:
        v_sliced, g_sliced = mean(True)
    assert sorted(channels for _, channels in runs) == [1, 8, 16]
    v_full, g_full = mean(False)
    np.testing.assert_allclose(v_sliced, v_full, rtol=1e-5)
    np.testing.assert_allclose(g_sliced, g_full, rtol=1e-4, atol=1e-7)


def test_reading_a_channel_and_the_whole_layer_computes_the_layer_once():
    model = sequential_relu()
    reading = FeatureTap(model, ["conv3"]).read(uniform((1, 16, 16, 3), 6))
    with convolutions() as runs:
        reading.units("conv3", 2)
        reading["conv3"]
        reading["conv3"]
        reading.units("conv3", 4)
    assert sorted(channels for _, channels in runs) == [1, 12]
