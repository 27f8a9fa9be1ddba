"""Attribution mechanics on small untrained models: closed forms on a global-average-pool + dense head,
no recompiles for new targets and images, every kind of model, images in every form, and one-sentence
errors. What the maps find on trained models is in `test_attribution_scenes.py`."""

import keras
import numpy as np
import pytest
from keras import ops
from PIL import Image

import lucidwidget as lw
import trained_models as tm
from lucidwidget import backend, imaging
from lucidwidget.attribution import Explainer
from lucidwidget.attribution.images import resize_maps
from lucidwidget.attribution.passes import GradientPass
from lucidwidget.models import FeatureTap
from lucidwidget.optvis import objectives

RTOL = 1e-4


def noise(count, size=32, channels=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (count, size, size, channels)).astype(np.float32)


def outputs(model, layer, images):
    """A layer's outputs through Keras' own sub-model, independent of the taps."""
    return keras.ops.convert_to_numpy(keras.Model(model.input, model.get_layer(layer).output)(images))


def head_logits(model, feature_maps, head="predictions"):
    """Logits of a global-average-pool + dense head, in NumPy."""
    kernel, bias = model.get_layer(head).get_weights()
    return feature_maps.mean(axis=(1, 2)) @ kernel + bias


def hand_gradcam(feature_maps, kernel_column, size):
    """Grad-CAM on a GAP + dense head: the gradient of a logit with respect to `A_k` is `W_k / (h w)`
    everywhere, so the map is ReLU(sum_k W_k A_k / (h w)), upsampled."""
    height, width = feature_maps.shape[1:3]
    cam = np.maximum((feature_maps * kernel_column / (height * width)).sum(-1), 0)
    return imaging.resize(cam[..., None], size)[..., 0]


def test_gradcam_equals_the_hand_computation_on_a_gap_dense_head(classifier_model):
    images = noise(3)
    maps = lw.attribute(classifier_model, images, 2, method="gradcam")
    kernel = classifier_model.get_layer("predictions").get_weights()[0]
    expected = hand_gradcam(outputs(classifier_model, "c2", images), kernel[:, 2], (32, 32))
    assert maps.shape == (3, 32, 32) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, expected, rtol=RTOL, atol=RTOL * expected.max())
    assert expected.max() > 0


def test_channel_attribution_equals_the_logit_drop_from_zeroing_each_channel(classifier_model):
    images = noise(2, seed=1)
    acts = outputs(classifier_model, "c2", images)
    logits = head_logits(classifier_model, acts)[:, 3]
    drops = []
    for channel in range(acts.shape[-1]):
        zeroed = acts.copy()
        zeroed[..., channel] = 0
        drops.append(logits - head_logits(classifier_model, zeroed)[:, 3])
    drops = np.stack(drops, axis=1)
    for integrated in (False, True):
        shares = lw.channel_attribution(classifier_model, images, 3, "c2", integrated=integrated, steps=4)
        assert shares.shape == (2, 16)
        np.testing.assert_allclose(shares, drops, rtol=RTOL, atol=RTOL * np.abs(drops).max())
    spatial = lw.spatial_attribution(classifier_model, images, 3, "c2")
    assert spatial.shape == (2, 16, 16)
    np.testing.assert_allclose(spatial.sum(axis=(1, 2)), drops.sum(axis=1), rtol=1e-3)


def test_a_new_target_image_or_cam_method_reuses_the_compiled_passes(classifier_model):
    explainer = Explainer(classifier_model)
    explainer.attribute(noise(2), 0, method="gradcam")
    explainer.attribute(noise(2), 0, method="gradient")
    traces = explainer.trace_count
    assert traces >= 1
    explainer.attribute(noise(2, seed=5), 4, method="gradcam")           # a new class and new images
    explainer.attribute(noise(2, seed=6), [1, 3], method="gradcam++")    # per-image classes, another CAM
    explainer.attribute(noise(2, seed=7), 2, method="gradient", signed=True)
    assert explainer.trace_count == traces
    explainer.attribute(noise(2), "c2:3", method="gradient")             # another kind of target compiles once
    explainer.attribute(noise(2), "c2:7", method="gradient")
    assert explainer.trace_count == traces + 1
    explainer.attribute(noise(3), 0, method="gradient")                  # another batch shape compiles once
    assert explainer.trace_count == traces + 2


@pytest.mark.parametrize("fixture, targets", [("classifier_model", (3, 0)), ("nested_model", ("top_conv:2", "top_conv:1")),
                                              ("subclassed_model", (1, 0))])
def test_a_gradient_at_a_layer_with_its_kept_outputs_equals_the_pass_that_computes_them(fixture, targets, request):
    # The explainer keeps the last images' outputs of the layer and feeds them to the pass as given, so
    # a new target runs only the model after the layer; the plain pass computes them from the images.
    model = request.getfixturevalue(fixture)
    explainer = Explainer(model)
    images = noise(2, seed=12)
    first, second = targets
    for step, (chosen, pictures) in enumerate([(first, images), (second, images), (second, noise(2, seed=13))]):
        resolved = explainer.target(chosen, 2, (32, 32))
        layer = explainer.cam_layer(resolved, (32, 32))
        plain = GradientPass(explainer._tap(resolved.layers | {layer}), resolved, 2, (32, 32), 3,
                             explainer.preprocess, layer, explainer._state())
        expected = plain.run(pictures, resolved.item_knobs(np.arange(2)), np.ones(2, np.float32))
        traces = explainer.trace_count
        kept = explainer.gradients(pictures, resolved, layer=layer)
        if step:
            assert explainer.trace_count == traces                  # a new target or images: no compile
        for value, reference in zip(kept, expected):
            np.testing.assert_allclose(value, reference, rtol=RTOL, atol=RTOL * np.abs(reference).max())
        np.testing.assert_allclose(explainer.attribute(pictures, chosen), resize_maps(
            np.maximum((expected[2].mean(axis=(1, 2), keepdims=True) * expected[1]).sum(-1), 0), (32, 32)),
            rtol=RTOL, atol=1e-6)


def test_per_image_targets_equal_one_call_per_image(classifier_model):
    images = noise(3, seed=2)
    explainer = Explainer(classifier_model)
    for method in ("gradient", "gradcam"):
        together = explainer.attribute(images, [0, 4, 2], method=method)
        alone = [explainer.attribute(images[i:i + 1], label, method=method)[0] for i, label in enumerate([0, 4, 2])]
        np.testing.assert_allclose(together, np.stack(alone), rtol=RTOL, atol=1e-7)
    weighted = explainer.attribute(images[:2], ["c2:1 - 0.5*c2:2", "c2:5 - 2*c2:0"], method="gradient")
    assert weighted.shape == (2, 32, 32)


def test_targets_read_logits_before_the_softmax(classifier_model):
    images = noise(4, seed=3)
    logits = head_logits(classifier_model, outputs(classifier_model, "c2", images))
    np.testing.assert_allclose(Explainer(classifier_model).evaluate(images, 1), logits[:, 1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(Explainer(classifier_model).evaluate(images, [0, 1, 2, 3]),
                               logits[np.arange(4), [0, 1, 2, 3]], rtol=1e-4, atol=1e-6)


def test_gradient_family_conventions(classifier_model):
    images = noise(2, seed=4)
    explainer = Explainer(classifier_model)
    signed = explainer.attribute(images, 1, method="gradient", signed=True)
    magnitude = explainer.attribute(images, 1, method="gradient")
    assert signed.shape == (2, 32, 32, 3) and magnitude.shape == (2, 32, 32)
    np.testing.assert_allclose(magnitude, np.abs(signed).max(axis=-1))
    smooth = explainer.attribute(images, 1, method="smoothgrad", samples=4, noise=0.0)
    np.testing.assert_allclose(smooth, magnitude, rtol=1e-4, atol=1e-9)    # no noise: the plain gradient
    again = explainer.attribute(images, 1, method="smoothgrad", samples=4)
    np.testing.assert_array_equal(again, explainer.attribute(images, 1, method="smoothgrad", samples=4))
    assert not np.allclose(again, magnitude)
    ig = explainer.attribute(images, 1, method="integrated_gradients", steps=8, signed=True, baseline=images)
    np.testing.assert_array_equal(ig, 0)                                  # the baseline is the image itself
    assert lw.attribution.normalize(magnitude).max() == 1


def test_scorecam_equals_a_direct_computation_and_scores_identical_masks_once(classifier_model, monkeypatch):
    image = noise(1, seed=8)
    explainer = Explainer(classifier_model)
    acts = outputs(classifier_model, "c2", image)[0]
    acts[..., :5] = 0.0                                       # five dead channels share one mask
    batches = []
    original = explainer.scores

    def spy(images, target, index=None, *, masks=None, batch_size=None):
        batches.append(len(images))
        return original(images, target, index, masks=masks, batch_size=batch_size)

    monkeypatch.setattr(explainer, "activations", lambda images, layer, batch_size=None: acts[None])
    monkeypatch.setattr(explainer, "scores", spy)
    cam = explainer.attribute(image, 2, method="scorecam", batch_size=4)

    low, high = acts.min(axis=(0, 1)), acts.max(axis=(0, 1))
    masks = np.where(high > low, (acts - low) / np.where(high > low, high - low, 1), 0).transpose(2, 0, 1)
    upsampled = keras.ops.convert_to_numpy(keras.ops.image.resize(masks[..., None], (32, 32)))
    logits = head_logits(classifier_model, outputs(classifier_model, "c2", image * upsampled))[:, 2]
    weights = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    expected = hand_map(np.maximum((acts * weights).sum(-1), 0), (32, 32))
    np.testing.assert_allclose(cam[0], expected, rtol=1e-3, atol=1e-3 * expected.max())
    distinct = len(np.unique(masks.reshape(16, -1), axis=0))
    assert distinct <= 12 and sum(batches) == 4 * -(-distinct // 4) and set(batches) == {4}


def hand_map(values, size):
    return imaging.resize(values[None, ..., None], size)[0, ..., 0]


def test_a_tap_edit_changes_what_flows_on_in_nested_and_subclassed_models(nested_model, subclassed_model):
    images = ops.convert_to_tensor(noise(2, seed=9))
    for model, layer, target in ((nested_model, "inner_conv", "top_conv"), (subclassed_model, "res_add", "sub_head")):
        tap = FeatureTap(model, [layer, target])
        plain = ops.convert_to_numpy(tap(images)[target])
        seen = {}

        def zero(values):
            seen["shape"] = tuple(values.shape)
            return values * 0.0

        edited = ops.convert_to_numpy(tap.read(images, edits={layer: zero})[target])
        assert seen["shape"][0] == 2
        assert not np.allclose(plain, edited)
        # what flows on is zero, so the target sees only what its layers add to zeros
        again = ops.convert_to_numpy(tap.read(images, edits={layer: zero})[target])
        np.testing.assert_allclose(edited, again)
        assert np.allclose(ops.convert_to_numpy(tap(images)[target]), plain)       # no edit stays behind


def test_subclassed_model_with_a_nested_backbone(subclassed_model):
    images = noise(2, seed=10)
    explainer = Explainer(subclassed_model)
    assert explainer.cam_layer(explainer.target(1, 2, (32, 32)), (32, 32)) == "head"
    feature_maps = ops.convert_to_numpy(subclassed_model.backbone(images))
    kernel, bias = subclassed_model.head.get_weights()
    expected = hand_gradcam(feature_maps, kernel[:, 1], (32, 32))
    np.testing.assert_allclose(explainer.attribute(images, 1), expected, rtol=RTOL, atol=RTOL * expected.max())
    logits = feature_maps.mean(axis=(1, 2)) @ kernel + bias
    np.testing.assert_allclose(explainer.evaluate(images, 1), logits[:, 1], rtol=1e-4, atol=1e-6)


def test_nested_layer_path_integral_adds_up_to_the_change_from_zeroing_it(nested_model):
    images = noise(2, seed=11)
    explainer = Explainer(nested_model)
    target = explainer.target("top_conv:2", 2, (32, 32))
    assert explainer.cam_layer(target, (32, 32)) == "inner_conv"
    shares = lw.channel_attribution(explainer, images, "top_conv:2", "inner_conv", integrated=True, steps=64)
    bias = nested_model.get_layer("top_conv").get_weights()[1][2]      # zeros into a conv give its bias
    change = explainer.evaluate(images, "top_conv:2") - bias
    np.testing.assert_allclose(shares.sum(axis=1), change, rtol=0.02)
    maps = explainer.attribute(images, "top_conv:2", method="gradcam")
    assert maps.shape == (2, 32, 32) and np.all(np.isfinite(maps)) and maps.max() > 0


def test_other_inputs_are_fixed_to_the_given_values():
    model = tm.two_input_classifier()
    images = noise(2, seed=12)
    results = []
    for meta in ([1.0, 0.0], [0.0, 1.0]):
        explainer = Explainer(model, inputs={"meta": np.array(meta, np.float32)})
        logits = ops.convert_to_numpy(model([images, np.tile(np.array(meta, np.float32), (2, 1))]))
        np.testing.assert_allclose(explainer.evaluate(images, 3), logits[:, 3], rtol=1e-4, atol=1e-6)
        results.append(explainer.attribute(images, 3, method="gradient"))
    assert results[0].shape == (2, 32, 32) and not np.allclose(*results)


def test_a_fixed_size_grey_model_maps_arrays_back_and_loads_files_at_its_size(tmp_path):
    model = tm.grey_classifier()
    explainer = Explainer(model)
    wide = noise(2, size=40, channels=1)[:, :, :, :].repeat(2, axis=2)[:, :, :56]        # 40 x 56 grey images
    maps = explainer.attribute(wide, 1, method="gradient")
    assert maps.shape == (2, 40, 56)
    assert np.all(maps[:, :, :4] == 0) and np.all(maps[:, :, -4:] == 0)   # cropped away: 28/40 of 56 columns seen
    assert maps[:, :, 10:46].max() > 0
    path = tmp_path / "grey.png"
    Image.fromarray((wide[0, ..., 0] * 255).astype(np.uint8)).save(path)
    from_file = explainer.attribute([str(path), Image.open(path)], 1, method="gradient")
    assert from_file.shape == (2, 28, 28)
    np.testing.assert_allclose(from_file[0], from_file[1])


def test_preprocess_gives_the_maps_of_a_model_with_the_preprocessing_inside(classifier_model):
    inside = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(2.0, offset=-1.0), classifier_model])
    images = noise(2, seed=13)
    for method in ("gradient", "gradcam"):
        outside = lw.attribute(classifier_model, images, 2, method=method, preprocess="[-1, 1]")
        np.testing.assert_allclose(lw.attribute(inside, images, 2, method=method), outside, rtol=1e-4,
                                   atol=1e-4 * outside.max())


def test_functions_keep_one_explainer_per_model(classifier_model):
    chosen = lw.attribution.explainer(classifier_model)
    lw.attribute(classifier_model, noise(1), 0)
    traces = chosen.trace_count
    lw.attribute(classifier_model, noise(1, seed=3), 4)
    assert lw.attribution.explainer(classifier_model) is chosen and chosen.trace_count == traces
    assert lw.attribution.explainer(classifier_model, preprocess="[-1, 1]") is not chosen


def test_semantic_dictionary_and_neuron_groups(classifier_model):
    images = noise(2, seed=14)
    acts = outputs(classifier_model, "c2", images)
    dictionary = lw.semantic_dictionary(classifier_model, images, "c2", top=3)
    assert dictionary.channels.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(dictionary.channels[..., 0], acts.argmax(-1))
    np.testing.assert_allclose(dictionary.values[..., 0], acts.max(-1), rtol=1e-5)
    assert [o.description for o in dictionary.objectives(0, 2, 3)] == [
        f"channel c2:{c}" for c in dictionary.channels[0, 2, 3]]
    by_target = lw.semantic_dictionary(classifier_model, images, "c2", top=2, target=4)
    kernel = classifier_model.get_layer("predictions").get_weights()[0]
    np.testing.assert_array_equal(by_target.channels[..., 0], (acts * kernel[:, 4]).argmax(-1))

    groups = lw.neuron_groups(classifier_model, images, "c2", groups=4)
    assert groups.directions.shape == (4, 16) and groups.maps.shape == (2, 16, 16, 4)
    residual = np.linalg.norm(groups.maps @ groups.directions - acts) / np.linalg.norm(acts)
    assert residual < 0.6                                    # four groups carry most of sixteen channels
    objective = groups.objectives[1]
    assert objective.layers == {"c2"}
    np.testing.assert_allclose(objective.knobs[0], groups.directions[1])
    lw.Renderer(classifier_model).render(objective, steps=2, seed=0)


def test_deletion_and_insertion_follow_xpliques_definition(classifier_model):
    images = noise(1, seed=15)
    explainer = Explainer(classifier_model)
    maps = np.zeros((1, 32, 32), np.float32)
    maps[0, :16] = 1.0                                       # the top half first
    deleted = np.stack([images[0].copy() for _ in range(3)])
    deleted[1, :16] = 0.0
    deleted[2] = 0.0
    probabilities = ops.convert_to_numpy(classifier_model(deleted))[:, 2]
    expected = ((probabilities[:-1] + probabilities[1:]) / 2).mean()
    np.testing.assert_allclose(lw.attribution.deletion(explainer, images, 2, maps, steps=2), [expected], rtol=1e-5)
    inserted = probabilities[::-1].copy()
    inserted[1] = ops.convert_to_numpy(classifier_model(images * (np.arange(32) < 16)[None, :, None, None]))[0, 2]
    np.testing.assert_allclose(lw.attribution.insertion(explainer, images, 2, maps, steps=2),
                               [((inserted[:-1] + inserted[1:]) / 2).mean()], rtol=1e-5)


def test_backend_compile_passes_new_variable_values_and_auxiliary_outputs():
    weight = keras.Variable(np.array([1.0, 2.0], np.float32))
    probe = keras.Variable(np.zeros(2, np.float32))

    def total(x):
        value = ops.sum(weight * (x + probe)) ** 2
        return value, x * 2.0

    gradient = backend.value_and_grad(total, [probe], has_aux=True)
    compiled = backend.compile(lambda x: gradient(x), [weight, probe])
    (value, doubled), (grad,) = compiled(ops.convert_to_tensor([1.0, 1.0]))
    np.testing.assert_allclose(ops.convert_to_numpy(value), 9.0)
    np.testing.assert_allclose(ops.convert_to_numpy(doubled), [2.0, 2.0])
    np.testing.assert_allclose(ops.convert_to_numpy(grad), [6.0, 12.0])
    weight.assign(np.array([3.0, 0.0], np.float32))
    (value, _), (grad,) = compiled(ops.convert_to_tensor([1.0, 5.0]))
    np.testing.assert_allclose(ops.convert_to_numpy(grad), [18.0, 0.0])
    assert compiled.traces == 1


@pytest.mark.parametrize("call, error, message", [
    (lambda e, x: e.attribute(x, 1, method="gradcom"), ValueError, r"Did you mean 'gradcam'\?.*Received: method='gradcom'"),
    (lambda e, x: e.attribute(x, 7), ValueError, r"label in \[0, 4\] for layer 'predictions'.*Received: label=7"),
    (lambda e, x: e.attribute(x, "c2:40"), ValueError, r"channel in \[0, 15\].*Received: channel=40"),
    (lambda e, x: e.attribute(x, "cc2:1"), ValueError, r"No layer 'cc2'.*Did you mean 'c2'"),
    (lambda e, x: e.attribute(x, 1, layer="gap"), ValueError, r"spatial grid.*layer 'gap'.*Received: layer='gap'"),
    (lambda e, x: e.attribute(x, "c1:0", layer="c2"), ValueError, r"runs before every layer the target reads \(c1\).*Received: layer='c2'"),
    (lambda e, x: e.attribute(x, "c1:0"), ValueError, r"spatial grid that runs before the target's layers \['c1'\]"),
    (lambda e, x: e.attribute(x[..., :1], 1), ValueError, r"takes 3-channel images. Received: images.shape\[-1\]=1"),
    (lambda e, x: e.attribute(x * 255, 1), ValueError, r"in \[0, 1\].*preprocess=. Received: images with values in \[0.03\d*, 254.9\]"),
    (lambda e, x: e.attribute(x, 1, samples=4), TypeError, r"'gradcam' takes the options layer, batch_size. Received: samples=4"),
    (lambda e, x: e.attribute(x, [1, 2, 3]), ValueError, r"one per image \(2\). Received: len\(target\)=3"),
    (lambda e, x: e.attribute(x, [1, "c2:1"]), ValueError, r"of one kind"),
    (lambda e, x: e.attribute(x, ["c2:1", "c2:1 + c1:0"]), ValueError, r"differ only in their numbers"),
    (lambda e, x: e.attribute(x, objectives.diversity("c2")), ValueError, r"batch >= 2"),
    (lambda e, x: e.attribute(x, 1.5), TypeError, r"Expected a target.*Received: target=1.5"),
    (lambda e, x: e.attribute(x, 1, method="scorecam", top_n=99), ValueError, r"top_n <= 16.*Received: top_n=99"),
    (lambda e, x: e.attribute(x, 1, size=48), ValueError, r"takes 32x32 images. Received: size=\(48, 48\)"),
    (lambda e, x: lw.channel_attribution(e, x, 1, "dense"), ValueError, r"No layer 'dense'"),
])
def test_bad_input_gets_one_sentence_and_the_explainer_keeps_working(classifier_model, call, error, message):
    explainer = Explainer(classifier_model)
    images = noise(2, seed=16)
    with pytest.raises(error, match=message):
        call(explainer, images)
    assert explainer.attribute(images, 1).shape == (2, 32, 32)
