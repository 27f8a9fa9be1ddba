"""What the explain panel and `lucidwidget explain` show, below the widget: heat maps as pictures
(`lucidwidget.heatmap`), a model's top outputs and a layer's top channels on one image
(`lucidwidget.attribution.summary`), checked against NumPy and Keras' own sub-models."""

import keras
import numpy as np
import pytest

import lucidwidget as lw
from lucidwidget import heatmap
from lucidwidget.attribution import Explainer, summary


def photo(size=32):
    return lw.data.photo("chelsea", size=size)[None]


def outputs(model, layer, images):
    """A layer's outputs: through Keras' own sub-model, or a Sequential model's layers called in turn."""
    if not isinstance(model, keras.Sequential):
        return keras.ops.convert_to_numpy(keras.Model(model.input, model.get_layer(layer).output)(images))
    values = keras.ops.convert_to_tensor(images)
    for part in model.layers:
        values = part(values, training=False)
        if part.name == layer:
            return keras.ops.convert_to_numpy(values)
    raise KeyError(layer)


def test_display_scale_maps_the_top_percentile_to_one_and_drops_negatives():
    values = np.linspace(-1, 9, 1001, dtype=np.float32).reshape(7, 143)
    scaled = heatmap.display_scale(values)
    top = np.percentile(values[values > 0], heatmap.DISPLAY_PERCENTILE)
    np.testing.assert_allclose(scaled, np.clip(np.maximum(values, 0) / top, 0, 1), rtol=1e-6)
    assert scaled.min() == 0 and scaled.max() == 1
    assert not heatmap.display_scale(-values * 0).any() and not heatmap.display_scale(-np.abs(values)).any()


def test_colorize_follows_the_colour_map_with_alpha_rising_to_opaque():
    values = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    rgba = heatmap.colorize(values, scaled=True)
    assert rgba.shape == (1, 4, 4) and rgba.dtype == np.float32
    np.testing.assert_allclose(rgba[0, :, :3] * 255, heatmap.COLORMAP[[0, 1, 2, 4], 1:], atol=1e-3)
    np.testing.assert_allclose(rgba[0, :, 3], [0, 0.25 / heatmap.OPAQUE_FROM, 1, 1])


def test_overlay_keeps_the_image_where_the_map_is_zero_and_checks_its_arguments():
    image = np.full((4, 6, 3), 0.5, np.float32)
    values = np.zeros((4, 6), np.float32)
    values[1, 2] = 3.0
    shown = heatmap.overlay(image, values, opacity=1.0)
    expected = image.copy()
    expected[1, 2] = heatmap.COLORMAP[-1, 1:] / 255
    np.testing.assert_allclose(shown, expected, atol=1e-6)
    np.testing.assert_allclose(heatmap.overlay(image, values, opacity=0.0), image)
    assert heatmap.overlay(image[..., :1], values).shape == (4, 6, 3)                 # grey shows grey
    with pytest.raises(ValueError, match=r"map of the image's size \(4, 6\)"):
        heatmap.overlay(image, values[:3])
    with pytest.raises(ValueError, match="Received: opacity=1.5"):
        heatmap.overlay(image, values, opacity=1.5)


def test_top_outputs_of_a_softmax_classifier_are_its_probabilities(classifier_model):
    explainer = Explainer(classifier_model)
    result = summary.top_outputs(explainer, photo(), top=3)
    probabilities = outputs(classifier_model, "predictions", photo())[0]
    assert result.kind == "probability" and result.layer == "predictions" and result.classes
    np.testing.assert_array_equal(result.indices, np.argsort(-probabilities)[:3])
    np.testing.assert_allclose(result.values, np.sort(probabilities)[::-1][:3], rtol=1e-5)


def test_top_outputs_of_logits_are_a_softmax_and_of_a_feature_map_its_channels(seq_model):
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    logits = keras.layers.Dense(6, name="logits")(keras.layers.GlobalAveragePooling2D(name="gap")(features))
    model = keras.Model(inputs, logits)
    image = photo(16)
    result = summary.top_outputs(Explainer(model), image, top=6)
    raw = outputs(model, "logits", image)[0]
    softmax = np.exp(raw - raw.max()) / np.exp(raw - raw.max()).sum()
    assert result.kind == "softmax" and "softmax of layer 'logits'" in result.note
    np.testing.assert_allclose(result.values, np.sort(softmax)[::-1], rtol=1e-5)
    mapped = summary.top_outputs(Explainer(seq_model), photo(), top=4)
    means = outputs(seq_model, "conv3", photo())[0].mean(axis=(0, 1))
    assert mapped.kind == "channel" and not mapped.classes and "is a feature map, not classes" in mapped.note
    np.testing.assert_array_equal(mapped.indices, np.argsort(-means, kind="stable")[:4])


def test_top_channels_rank_by_activation_or_by_attribution_to_a_later_target(seq_model):
    explainer = Explainer(seq_model)
    image = photo()
    means = outputs(seq_model, "conv2", image)[0].mean(axis=(0, 1))
    by_activation = summary.top_channels(explainer, image, "conv2", top=5)
    assert by_activation.ranked_by == "activation" and by_activation.attributions is None
    np.testing.assert_array_equal(by_activation.channels, np.argsort(-means, kind="stable")[:5])
    np.testing.assert_allclose(by_activation.activations, means[by_activation.channels], rtol=1e-5)
    same_layer = summary.top_channels(explainer, image, "conv2", "conv2:3", top=5)
    assert same_layer.ranked_by == "activation" and "does not run before the target's layers" in same_layer.note
    by_attribution = summary.top_channels(explainer, image, "conv2", "conv3:4", top=5)
    shares = lw.channel_attribution(explainer, image, "conv3:4", "conv2")[0]
    assert by_attribution.ranked_by == "attribution"
    np.testing.assert_array_equal(by_attribution.channels, np.argsort(-shares, kind="stable")[:5])
    np.testing.assert_allclose(by_attribution.attributions, shares[by_attribution.channels], rtol=1e-5)
    with pytest.raises(ValueError, match="conv2"):
        summary.top_channels(explainer, image, "conv22")
