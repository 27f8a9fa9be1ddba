"""Objectives that start from a photo: caricature (feature inversion), content, style, and deep dream
from an image. Exact values on small tensors, renders that move towards the photo, compiled steps
reused for a new photo, and clear errors for a missing or unusable one; the bundled photos."""

import numpy as np
import pytest
from keras import ops

import lucidwidget as lw
from lucidwidget.models import FeatureTap
from lucidwidget.optvis import objectives, transform
from lucidwidget.optvis.objectives import reference
from lucidwidget.optvis.render import Renderer

SIZE = 32
RNG = np.random.default_rng(0)
ACTS = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)      # a render: batch 2, 3 x 4 positions, 5 channels
REF = RNG.normal(size=(1, 3, 4, 5)).astype(np.float32)       # the photo's activations at the same layer
OTHER_ACTS = RNG.normal(size=(2, 2, 2, 6)).astype(np.float32)
OTHER_REF = RNG.normal(size=(1, 5, 3, 6)).astype(np.float32)  # a Gram ignores the layout, so any size works


def make_T(**acts):
    return {name: ops.convert_to_tensor(value) for name, value in acts.items()}.__getitem__


def value(objective, T, *reference_acts):
    return float(ops.convert_to_numpy(objective(T, reference_acts)))


def numpy_gram(acts):
    flat = acts.reshape(acts.shape[0], -1, acts.shape[-1])
    return np.einsum("bpc,bpd->bcd", flat, flat) / flat.shape[1]


def relative_error(x, ref):
    return np.mean(((x - ref) ** 2).sum(axis=(1, 2)) / (ref**2).sum(axis=(1, 2)))


def cat(size=SIZE):
    return lw.data.photo("chelsea", size=size)


def coffee(size=SIZE):
    return lw.data.photo("coffee", size=size)


def activations(model, layer, images):
    return ops.convert_to_numpy(FeatureTap(model, [layer])(ops.convert_to_tensor(images))[layer])


def correlation(a, b):
    """Pearson correlation of two images, or of two activations with each channel's spatial mean removed
    (what varies across the picture, not the channels' biases, which any image shares)."""
    if a.shape[-1] != 3:
        a, b = (x - x.mean(axis=(-3, -2), keepdims=True) for x in (a, b))
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_style_content_and_caricature_equal_numpy_on_small_tensors():
    T = make_T(a=ACTS, b=OTHER_ACTS)
    style = reference.style("a", "b", image=cat())
    expected_style = -np.mean([relative_error(numpy_gram(ACTS), numpy_gram(REF)),
                               relative_error(numpy_gram(OTHER_ACTS), numpy_gram(OTHER_REF))])
    np.testing.assert_allclose(value(style, T, REF, OTHER_REF), expected_style, rtol=1e-5)

    content = reference.content("a", image=cat())
    expected_content = -np.mean(((ACTS - REF) ** 2).sum(axis=(1, 2, 3)) / (REF**2).sum())
    np.testing.assert_allclose(value(content, T, REF), expected_content, rtol=1e-5)

    for power in (0.0, 1.0, 2.0):
        dot = (ACTS * REF).sum(-1)
        cos = dot / np.linalg.norm(ACTS, axis=-1) / np.linalg.norm(REF, axis=-1)
        expected = np.mean(dot * np.maximum(0.1, cos) ** power)
        caricature = reference.caricature("a", image=cat(), cossim_pow=power)
        np.testing.assert_allclose(value(caricature, T, REF), expected, rtol=1e-4)


def test_a_weighted_sum_hands_each_part_its_reference():
    T = make_T(a=ACTS, b=OTHER_ACTS)
    style, content = reference.style("b", image=coffee()), reference.content("a", image=cat())
    combined = style + 10 * content
    assert combined.references == (*style.references, *content.references)
    np.testing.assert_allclose(value(combined, T, OTHER_REF, REF),
                               value(style, T, OTHER_REF) + 10 * value(content, T, REF), rtol=1e-5)
    assert (style + 3 * content).signature == combined.signature
    with pytest.raises(ValueError, match="needs their activations"):
        combined(T)


def test_caricature_moves_the_render_towards_the_photo(seq_model):
    renderer = Renderer(seq_model)
    settings = dict(size=SIZE, steps=16, seed=0, learning_rate=0.1, transforms=[transform.jitter(1)])
    start = renderer.render(objectives.caricature("conv2", image=cat()), **{**settings, "steps": 1})
    rendered = renderer.render(objectives.caricature("conv2", image=cat()), **settings)
    control = renderer.render(objectives.caricature("conv2", image=coffee()), **settings)
    objective = objectives.caricature("conv2", image=cat())
    assert renderer.evaluate(objective, rendered) > 1.4 * renderer.evaluate(objective, start)
    photo = activations(seq_model, "conv2", cat()[None])
    similarity = correlation(activations(seq_model, "conv2", rendered), photo)
    assert similarity > 0.6
    assert similarity > correlation(activations(seq_model, "conv2", control), photo) + 0.15


def test_style_plus_content_rises_and_new_weights_or_photos_never_retrace(seq_model):
    renderer = Renderer(seq_model)
    objective = objectives.style("conv1", "conv2", image=coffee()) + 10 * objectives.content("conv3", image=cat())
    settings = dict(size=SIZE, steps=16, seed=0, learning_rate=0.1, transforms=[])
    start = renderer.render(objective, **{**settings, "steps": 1})
    rendered = renderer.render(objective, **settings)
    assert renderer.evaluate(objective, rendered) > renderer.evaluate(objective, start) / 3   # under a third of the loss left
    traces = renderer.trace_count
    wide = lw.data.photo("astronaut")                                   # another size: fitted to the render
    renderer.render(objectives.style("conv1", "conv2", image=wide) + 3 * objectives.content("conv3", image=coffee()),
                    **settings)
    assert renderer.trace_count == traces


def test_expressions_compare_with_the_callers_images(seq_model):
    renderer = Renderer(seq_model)
    parsed = renderer.objective("style(conv1, conv2) + 10*content(conv3)")
    assert [(r.layer, r.slot) for r in parsed.references] == [("conv1", "style"), ("conv2", "style"),
                                                              ("conv3", "image")]
    with pytest.raises(ValueError, match=r"No 'style' image was given .* Received: style=None"):
        renderer.render(parsed, size=SIZE, steps=2)
    assert renderer.trace_count == 0
    bound = parsed.with_images(image=cat(), style=coffee())
    assert bound.signature == parsed.with_images(image=coffee(), style=cat()).signature
    renderer.render(bound, size=SIZE, steps=2)
    traces = renderer.trace_count
    renderer.render(parsed.with_images(image=coffee(), style=cat()), size=SIZE, steps=2)
    assert renderer.trace_count == traces
    assert [r.layer for r in objectives.as_objective("style()").references] == list(reference.STYLE_LAYERS)
    caricature = objectives.as_objective("caricature(conv2, cossim_pow=2)")
    assert caricature.knobs[0] == 2 and caricature.references[0].images is None
    with pytest.raises(ValueError, match="Invalid call of caricature"):
        objectives.as_objective("caricature(conv2, image=chelsea)")


def test_a_photo_of_any_size_reuses_the_compiled_step(seq_model):
    renderer = Renderer(seq_model)
    renderer.render(objectives.caricature("conv3", image=cat()), size=SIZE, steps=2)
    traces = renderer.trace_count
    for photo in (coffee(), lw.data.photo("astronaut"), lw.data.photo_path("chelsea")):
        renderer.render(objectives.caricature("conv3", image=photo, cossim_pow=2), size=SIZE, steps=2)
    assert renderer.trace_count == traces


def test_octaves_compare_with_the_photo_at_each_stage_size(seq_model):
    renderer = Renderer(seq_model)
    images = renderer.render(objectives.content("conv2", image=cat(64)), size=40, octaves=2, steps=4, seed=0)
    assert images.shape == (1, 40, 40, 3)


def test_one_reference_per_rendered_image(seq_model):
    renderer = Renderer(seq_model)
    photos = np.stack([cat(), coffee()])
    images = renderer.render(objectives.caricature("conv2", image=photos), batch=2, size=SIZE, steps=24, seed=0,
                             learning_rate=0.1, transforms=[])
    own = [correlation(activations(seq_model, "conv2", images[i:i + 1]),
                       activations(seq_model, "conv2", photos[j:j + 1])) for i, j in ((0, 0), (1, 1))]
    crossed = [correlation(activations(seq_model, "conv2", images[i:i + 1]),
                           activations(seq_model, "conv2", photos[j:j + 1])) for i, j in ((0, 1), (1, 0))]
    assert min(own) > max(crossed)
    for objective in (objectives.caricature("conv2", image=photos),
                      objectives.as_objective("caricature(conv2)").with_images(image=photos)):
        with pytest.raises(ValueError, match=r"one per rendered image \(batch=3\).* Received: 2 images"):
            renderer.render(objective, batch=3, size=SIZE, steps=2)


def test_references_from_one_source_share_one_pass_through_the_model():
    calls = []

    def activations(images, layers):
        calls.append((images.shape, sorted(layers)))
        return {layer: np.ones((1, 2, 2, 3), np.float32) for layer in layers}

    objective = objectives.as_objective("style(a, b) + content(c)").with_images(image=cat(), style=coffee())
    values = reference.resolve(objective, (24, 20), 1, activations)
    assert calls == [((1, 24, 20, 1), ["a", "b"]), ((1, 24, 20, 1), ["c"])]     # fitted, grey for a grey model
    assert [tuple(v.shape) for v in values] == [(1, 3, 3), (1, 3, 3), (1, 2, 2, 3)]


def test_unusable_photos_fail_clearly(classifier_model, tmp_path):
    with pytest.raises(ValueError, match="No image file at"):
        objectives.caricature("conv2", image=str(tmp_path / "missing.jpg"))
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="Could not read .* as an image"):
        objectives.style(image=str(text))
    with pytest.raises(ValueError, match=r"spatial activations .* Received: layer='predictions'"):
        Renderer(classifier_model).render(objectives.caricature("c2", image=cat()) + objectives.style("predictions"))


def test_a_model_that_is_not_grey_or_rgb_says_so(seq_model):
    import keras

    model = keras.Sequential([keras.Input((None, None, 5)), keras.layers.Conv2D(4, 3, name="conv")])
    with pytest.raises(ValueError, match=r"takes 1 or 3 channels\. Received: channels=5"):
        Renderer(model).render(objectives.content("conv", image=cat()), size=SIZE, steps=2)


def test_evaluate_scores_a_photo_against_itself_best(seq_model):
    renderer = Renderer(seq_model)
    objective = objectives.content("conv2", image=cat())
    assert renderer.evaluate(objective, cat()) == pytest.approx(0.0, abs=1e-6)
    assert renderer.evaluate(objective, coffee()) < -0.1
    assert renderer.evaluate(objectives.content("conv2", image=cat(64)), cat()) > -0.05   # fitted to the size


def test_deep_dream_from_a_photo_changes_it_and_raises_the_dream(seq_model):
    renderer = Renderer(seq_model)
    dream = objectives.deepdream("conv2")
    images = renderer.render(dream, init_images=lw.data.photo_path("chelsea"), size=SIZE, steps=16, seed=0,
                             transforms=[transform.jitter(1)])
    assert renderer.evaluate(dream, images) > 1.5 * renderer.evaluate(dream, cat())
    assert 0.02 < np.abs(images[0] - cat()).mean() < 0.2           # the photo, changed, still there
    assert correlation(images[0], cat()) > 0.7
    for schedule in (None, "fast"):                                  # each schedule's FFT spectrum starts at the photo
        start = renderer.render(dream, init_images=cat(), size=SIZE, steps=1, learning_rate=1e-4, transforms=[],
                                schedule=schedule)
        np.testing.assert_allclose(start[0], cat(), atol=0.02)


def test_bundled_photos_are_float_rgb_and_unknown_names_get_close_matches():
    assert lw.data.photo_names() == ["astronaut", "chelsea", "coffee"]
    for name in lw.data.photo_names():
        image = lw.data.photo(name)
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[-1] == 3
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.1
    assert lw.data.photo("Chelsea", size=(20, 30)).shape == (20, 30, 3)
    assert lw.data.photo("coffee", channels=1).shape == (300, 450, 1)
    with pytest.raises(ValueError, match=r"Did you mean 'chelsea'\? Received: photo='chelsa'"):
        lw.data.photo("chelsa")


@pytest.mark.vgg
def test_caricature_and_style_of_a_bundled_photo_on_vgg16_hed(vgg16_hed):
    renderer = Renderer(vgg16_hed)
    photo = lw.data.photo("chelsea", size=64)
    settings = dict(size=64, steps=24, seed=0)
    caricature = renderer.render(objectives.caricature("block4_conv3", image=photo), **settings)
    control = renderer.render(objectives.caricature("block4_conv3", image=lw.data.photo("coffee")), **settings)
    photo_acts = activations(vgg16_hed, "block4_conv3", photo[None])
    assert correlation(activations(vgg16_hed, "block4_conv3", caricature), photo_acts) > \
        correlation(activations(vgg16_hed, "block4_conv3", control), photo_acts) + 0.1
    style = objectives.style(image=photo)
    start = renderer.evaluate(style, renderer.render(style, **{**settings, "steps": 1}))
    assert renderer.evaluate(style, renderer.render(style, **settings)) > start + 0.1
