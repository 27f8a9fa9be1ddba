"""Behaviour of the image parameterisations: shapes, ranges, gradients, seeding, inversion, exact maths."""

import functools

import keras
import numpy as np
import pytest
from keras import ops

from lucidwidget import backend
from lucidwidget.optvis import param

SIZE = 12


def to_numpy(x):
    """A tensor's or a variable's value as a NumPy array."""
    return ops.convert_to_numpy(ops.convert_to_tensor(x))


def gradients(fn, variables):
    """d fn() / d variables, as NumPy arrays, through the backend seam."""
    _, grads = backend.value_and_grad(fn, variables)()
    return [to_numpy(g) for g in grads]


def compiled_images(images_fn, shape, variables=()):
    """A compiled one-step loop that stores `images_fn()` in a variable: returns `run() -> images` and
    the loop (for its trace count). `variables` lists the other variables the step reads or updates."""
    out = keras.Variable(np.zeros(shape, np.float32), trainable=False, dtype="float32")

    def step(index):
        images = images_fn()
        out.assign(images)
        return ops.mean(images)

    loop = backend.compile_loop(step, [*variables, out], max_count=4)

    def run():
        loop(1, 0)
        return to_numpy(out)

    return run, loop


def tiny_generator(out_shape=(8, 8, 3), latent=4, activation="tanh"):
    """latent -> Dense -> Reshape: the smallest Keras 'deep generator network'."""
    return keras.Sequential([
        keras.Input((latent,)),
        keras.layers.Dense(int(np.prod(out_shape)), activation=activation,
                           kernel_initializer=keras.initializers.GlorotUniform(seed=1)),
        keras.layers.Reshape(out_shape),
    ], name="tiny_gen")


FACTORIES = {
    "image_fft": lambda seed=None: param.image(SIZE, 10, batch=2, seed=seed),
    "image_pixel": lambda seed=None: param.image(SIZE, batch=2, fft=False, seed=seed),
    "image_alpha": lambda seed=None: param.image(SIZE, batch=2, alpha=True, seed=seed),
    "image_plain_colour": lambda seed=None: param.image(SIZE, batch=1, decorrelate=False, seed=seed),
    "aligned_image": lambda seed=None: param.aligned_image(SIZE, batch=3, shared=(2, 4), seed=seed),
    "clip_rgb": lambda seed=None: param.to_valid_rgb(param.fft_image((1, SIZE, SIZE, 3), seed=seed), sigmoid=False),
    "pixel_image": lambda seed=None: param.pixel_image((2, SIZE, 9, 3), seed=seed),
    "fft_image": lambda seed=None: param.fft_image((2, SIZE, 9, 3), seed=seed),
    "lowres_tensor": lambda seed=None: param.lowres_tensor((2, SIZE, SIZE, 3), (1, 4, 4, 3), seed=seed),
    "generator": lambda seed=None: param.generator(tiny_generator(), batch=2, seed=seed),
}
VALID_RGB = {"image_fft", "image_pixel", "image_alpha", "image_plain_colour", "aligned_image", "clip_rgb", "generator"}


@pytest.fixture(params=sorted(FACTORIES))
def named_param(request):
    return request.param, FACTORIES[request.param]


def test_shape_dtype_and_range(named_param):
    name, factory = named_param
    p = factory(seed=0)
    images = p()
    assert keras.backend.standardize_dtype(images.dtype) == "float32"
    assert tuple(images.shape) == p.shape
    assert all(isinstance(v, keras.Variable) and v.trainable for v in p.variables) and p.variables
    if name in VALID_RGB:
        assert 0.0 <= to_numpy(images).min() and to_numpy(images).max() <= 1.0


def test_factory_shapes():
    assert param.image(16).shape == (1, 16, 16, 3)
    assert param.image(w=16, h=8, batch=3, seed=1, alpha=True).shape == (3, 8, 16, 4)
    assert param.aligned_image(w=9, h=7, batch=2).shape == (2, 7, 9, 3)
    assert param.generator(tiny_generator((6, 5, 3)), batch=3).shape == (3, 6, 5, 3)


def test_gradients_reach_every_variable(named_param):
    _, factory = named_param
    p = factory(seed=0)
    weights = np.random.default_rng(1).normal(size=p.shape).astype(np.float32)
    grads = gradients(lambda: ops.sum(ops.multiply(p(), weights)), p.variables)
    assert len(grads) == len(p.variables)
    for variable, grad in zip(p.variables, grads):
        assert grad.shape == tuple(variable.shape), variable.name
        assert np.linalg.norm(grad) > 0.0, variable.name


def test_reset_is_seeded_in_place_and_does_not_retrace(named_param):
    _, factory = named_param
    p = factory(seed=5)
    first = to_numpy(p())
    variables = list(p.variables)
    compiled, loop = compiled_images(p, p.shape, p.variables)

    np.testing.assert_allclose(compiled(), first, atol=1e-6)  # compiled vs eager rounding only
    p.reset(6)
    changed = compiled()
    assert np.abs(changed - first).max() > 1e-6
    p.reset(5)
    np.testing.assert_allclose(compiled(), first, atol=1e-6)
    p.reset()
    assert np.abs(compiled() - first).max() > 1e-6
    assert loop.traces == 1
    assert all(a is b for a, b in zip(p.variables, variables))
    # Building with a seed and resetting with that seed start from the same image.
    np.testing.assert_allclose(to_numpy(factory(seed=6)()), changed, atol=1e-6)


@pytest.mark.parametrize("fft", [True, False])
@pytest.mark.parametrize("decorrelate", [True, False])
@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("sigmoid", [True, False])
def test_assign_image_round_trip(fft, decorrelate, channels, sigmoid):
    shape = (2, 7, 9, channels)  # odd sizes exercise the real FFT's unpaired coefficients
    raw = param.fft_image(shape, seed=0) if fft else param.pixel_image(shape, seed=0)
    p = param.to_valid_rgb(raw, decorrelate=decorrelate, sigmoid=sigmoid)
    target = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    target[0, 0, :3] = 0.0
    target[1, -1, :3] = 1.0
    p.assign_image(target)
    np.testing.assert_allclose(to_numpy(p()), target, atol=1e-3)


def test_assign_image_inverts_raw_params_exactly():
    values = np.random.default_rng(1).normal(size=(1, 6, 5, 3)).astype(np.float32) * 3
    for raw in (param.fft_image(values.shape), param.pixel_image(values.shape)):
        raw.assign_image(values)
        np.testing.assert_allclose(to_numpy(raw()), values, atol=1e-4)


def test_assign_image_repeats_one_image_and_rejects_bad_input():
    p = param.image(8, batch=3)
    single = np.random.default_rng(2).uniform(size=(8, 8, 3))
    p.assign_image(single)
    np.testing.assert_allclose(to_numpy(p()), np.broadcast_to(single, (3, 8, 8, 3)), atol=1e-3)
    p.reset(0)
    p.assign_image(ops.convert_to_tensor(single[None], dtype="float32"))  # a backend tensor, as octaves pass
    np.testing.assert_allclose(to_numpy(p()), np.broadcast_to(single, (3, 8, 8, 3)), atol=1e-3)
    with pytest.raises(ValueError, match=r"Expected images of shape \(3, 8, 8, 3\).*Received: images.shape=\(2, 8, 8, 3\)"):
        p.assign_image(np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]. Received: images with values in \[0, 255\]"):
        p.assign_image(np.arange(3 * 8 * 8 * 3).reshape(3, 8, 8, 3) % 256)


def test_aligned_image_assign_zeroes_shared_terms():
    p = param.aligned_image(8, batch=2, shared=(2, 4), seed=0)
    target = np.random.default_rng(3).uniform(size=p.shape)
    p.assign_image(target)
    np.testing.assert_allclose(to_numpy(p()), target, atol=1e-3)
    raw = p.raw
    assert isinstance(raw, param.SumParam) and len(raw.terms) == 3
    for shared in raw.terms[1:]:
        np.testing.assert_allclose(to_numpy(shared()), 0.0, atol=1e-6)


def test_aligned_image_shares_structure_across_the_batch():
    p = param.aligned_image(8, batch=3, shared=(2,), seed=0)
    unique, shared = p.raw.terms
    unique.assign_image(np.zeros(p.shape))
    shared.reset(1)
    images = to_numpy(p())
    np.testing.assert_allclose(images[0], images[2], atol=1e-7)
    assert np.abs(images[0] - 0.5).max() > 1e-3
    assert param.aligned_image(8, shared=(16,)).raw.terms[1].underlying_shape == (1, 1, 1, 3)
    with pytest.raises(ValueError, match=r"whole number >= 1. Received: shared factor=0"):
        param.aligned_image(8, shared=(0,))


def high_to_low_power(images):
    """Mean power of Fourier coefficients above 1/4 cycle per pixel over those in (0, 1/8]."""
    power = np.abs(np.fft.fft2(images, axes=(1, 2))) ** 2
    fy = np.fft.fftfreq(images.shape[1])[:, None]
    fx = np.fft.fftfreq(images.shape[2])[None, :]
    frequency = np.sqrt(fx**2 + fy**2)
    high, low = frequency > 0.25, (frequency > 0) & (frequency <= 0.125)
    return power[:, high].mean() / power[:, low].mean()


def test_fft_spectrum_damps_high_frequencies():
    shape = (4, 32, 32, 3)
    pixel = high_to_low_power(to_numpy(param.pixel_image(shape, seed=0)()))
    fft = high_to_low_power(to_numpy(param.fft_image(shape, seed=0)()))
    smoother = high_to_low_power(to_numpy(param.fft_image(shape, decay_power=2.0, seed=0)()))
    assert 0.7 < pixel < 1.4  # white noise: the same power at every frequency
    # 1/f amplitude: power falls with frequency squared, here by about (0.09 / 0.36)^2.
    assert fft < 0.15
    assert smoother < fft / 4


def test_spectrum_scale_exact_values():
    fy = np.fft.fftfreq(4)[:, None]
    fx = np.fft.rfftfreq(5)[None, :]
    expected = np.sqrt(20) / np.maximum(np.sqrt(fx**2 + fy**2), 1 / 5)
    np.testing.assert_allclose(param.spectrum_scale(4, 5), expected, rtol=1e-6)
    np.testing.assert_allclose(param.spectrum_scale(4, 5, decay_power=0.0), np.full((4, 3), np.sqrt(20)))
    # The constant term gets the lowest frequency's scale: 1 / (1 / max(h, w)) * sqrt(h * w).
    assert float(param.spectrum_scale(6, 3)[0, 0]) == pytest.approx(6 * np.sqrt(18))


def test_spectrum_scale_caps_the_gain_of_long_waves():
    from lucidwidget.optvis.param.spatial import LONGEST_WAVELENGTH

    side = 4 * LONGEST_WAVELENGTH
    scale = param.spectrum_scale(side, side)
    capped = side * LONGEST_WAVELENGTH
    # The mean colour and waves of 1 to 3 cycles per side share the gain of a LONGEST_WAVELENGTH wave;
    # shorter waves keep their 1/f gain.
    assert scale[0, 0] == pytest.approx(capped) and scale[0, 3] == pytest.approx(capped)
    assert scale[0, 4] == pytest.approx(capped) and scale[0, 8] == pytest.approx(capped / 2)


def test_colour_decorrelation_matrix():
    expected = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
    np.testing.assert_array_equal(param.COLOR_CORRELATION_SVD_SQRT, expected)
    column_norms = np.linalg.norm(param.COLOR_CORRELATION_NORMALIZED, axis=0)
    assert column_norms.max() == pytest.approx(1.0)
    np.testing.assert_allclose(param.COLOR_CORRELATION_NORMALIZED, expected / np.linalg.norm(expected[:, 0]), rtol=1e-6)
    # The first decorrelated channel is luminance-like: it raises R, G and B together.
    luminance = to_numpy(param.decorrelated_to_rgb(np.float32([[1.0, 0.0, 0.0]])))
    np.testing.assert_allclose(luminance, [expected[:, 0] / np.linalg.norm(expected[:, 0])], rtol=1e-6)
    colours = np.random.default_rng(4).normal(size=(2, 3, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(to_numpy(param.decorrelated_to_rgb(param.rgb_to_decorrelated(colours))), colours,
                               atol=1e-5)


def test_to_valid_rgb_on_tensors():
    zeros = np.zeros((1, 2, 2, 4), np.float32)
    np.testing.assert_allclose(to_numpy(param.to_valid_rgb(zeros)), 0.5)
    clipped = to_numpy(param.to_valid_rgb(zeros, sigmoid=False))
    np.testing.assert_allclose(clipped[..., :3], np.broadcast_to(param.COLOR_MEAN, (1, 2, 2, 3)))
    np.testing.assert_array_equal(clipped[..., 3], 0.0)  # alpha is clipped, never shifted or mixed
    plain = to_numpy(param.to_valid_rgb(np.float32([[[[-1.0, 0.25, 2.0]]]]), decorrelate=False, sigmoid=False))
    np.testing.assert_array_equal(plain, [[[[0.0, 0.25, 1.0]]]])
    # Other channel counts (a grey model's 1, or 2) are independent channels: squashed, never mixed.
    grey = to_numpy(param.to_valid_rgb(np.float32([[[[-1.0], [2.0]]]]), sigmoid=False))
    np.testing.assert_array_equal(grey, [[[[0.0], [1.0]]]])
    np.testing.assert_allclose(to_numpy(param.to_valid_rgb(np.float32([[[[0.0, 1.0]]]]))), [[[[0.5, 0.7310586]]]])
    with pytest.raises(ValueError, match="colour channel besides the alpha.*Received: channels=1"):
        param.to_valid_rgb(param.pixel_image((1, 2, 2, 1)), alpha=True)


@pytest.mark.parametrize("alpha", [False, True])
def test_grey_image_has_one_channel_and_round_trips(alpha):
    grey = param.image(5, batch=2, channels=1, alpha=alpha, seed=0)
    assert grey.shape == (2, 5, 5, 1 + alpha)
    target = np.random.default_rng(0).uniform(0.1, 0.9, grey.shape).astype(np.float32)
    grey.assign_image(target)
    np.testing.assert_allclose(to_numpy(grey()), target, atol=1e-4)


def test_clip_gradient_lets_outside_values_return():
    x = keras.Variable(np.float32([[[[-0.5, 0.5, 1.5], [-0.5, 0.5, 1.5]]]]))
    upstream = np.float32([[[[-1.0, 1.0, -1.0], [1.0, 1.0, 1.0]]]])
    clipped = functools.partial(param.to_valid_rgb, decorrelate=False, sigmoid=False)
    (grad,) = gradients(lambda: ops.sum(ops.multiply(clipped(x), upstream)), [x])
    # Descent (against the gradient) moves -0.5 up only for a negative gradient, 1.5 down only for a
    # positive one; values inside always get the gradient.
    np.testing.assert_array_equal(grad, [[[[-1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]]])


def test_lowres_tensor_aligned_bilinear_exact_values():
    p = param.lowres_tensor((1, 3, 3, 1), (1, 2, 2, 1))
    p.variables[0].assign(np.array([0.0, 2.0, 4.0, 6.0], np.float32).reshape(1, 2, 2, 1))
    np.testing.assert_allclose(to_numpy(p()[0, ..., 0]), [[0, 1, 2], [2, 3, 4], [4, 5, 6]], atol=1e-6)
    # Along the batch: 2 -> 3 items puts the mean in the middle; 1 -> 3 repeats.
    q = param.lowres_tensor((3, 1, 1, 1), (2, 1, 1, 1))
    q.variables[0].assign(np.array([1.0, 3.0], np.float32).reshape(2, 1, 1, 1))
    np.testing.assert_allclose(to_numpy(q()).ravel(), [1, 2, 3])


def test_lowres_tensor_offset_reflects_at_the_start():
    p = param.lowres_tensor((1, 1, 4, 1), (1, 1, 4, 1), offset=[0, 0, 2, 0])
    p.variables[0].assign(np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 1, 4, 1))
    np.testing.assert_array_equal(to_numpy(p()).ravel(), [2, 1, 1, 2])
    assert param.lowres_tensor((1, 8, 8, 3), (1, 2, 2, 3), offset=True).shape == (1, 8, 8, 3)
    with pytest.raises(ValueError, match="Received: offset=9"):
        param.lowres_tensor((1, 4, 4, 3), (1, 2, 2, 3), offset=9)


def test_lowres_tensor_shares_across_batch_and_inverts():
    p = param.lowres_tensor((3, 8, 8, 3), (1, 2, 2, 3), seed=0)
    images = to_numpy(p())
    np.testing.assert_array_equal(images[0], images[1])
    np.testing.assert_array_equal(images[0], images[2])
    assert p.variables[0].shape == (1, 2, 2, 3)
    target = images * 3.0 + 0.25  # representable: an upsampled low-resolution image
    p.reset(1)
    p.assign_image(target)
    np.testing.assert_allclose(to_numpy(p()), target, atol=1e-5)


def test_sum_of_params():
    shape = (2, 4, 4, 3)
    a, b, c = param.pixel_image(shape, seed=0), param.fft_image(shape, seed=1), param.pixel_image(shape, seed=2)
    total = sum([a, b, c])
    assert isinstance(total, param.SumParam) and total.terms == [a, b, c]
    assert total.variables == a.variables + b.variables + c.variables
    np.testing.assert_allclose(to_numpy(total()), to_numpy(a() + b() + c()), atol=1e-6)
    with pytest.raises(ValueError, match="of one shape"):
        _ = a + param.pixel_image((1, 4, 4, 3))
    with pytest.raises(ValueError, match="distinct"):
        _ = a + a


def test_image_sample_is_fresh_each_call_and_valid():
    sampler = param.image_sample((2, 16, 16, 3), sd=0.5, decay_power=1.5)
    first, second = sampler(), sampler()
    assert tuple(first.shape) == (2, 16, 16, 3) and keras.backend.standardize_dtype(first.dtype) == "float32"
    first, second = to_numpy(first), to_numpy(second)
    assert np.abs(first - second).max() > 1e-2
    for images in (first, second):
        assert 0.0 <= images.min() and images.max() <= 1.0
    seeded = [to_numpy(sampler(keras.random.SeedGenerator(3))) for _ in range(2)]
    np.testing.assert_array_equal(*seeded)
    assert not hasattr(sampler, "variables")

    rng = keras.random.SeedGenerator(4)
    compiled, loop = compiled_images(lambda: sampler(rng), sampler.shape, [rng.state])
    assert np.abs(compiled() - compiled()).max() > 1e-2
    assert loop.traces == 1
    assert tuple(param.image_sample((1, 4, 4, 4))().shape) == (1, 4, 4, 4)


def test_random_background_is_fresh_per_item_reproducible_and_compiles():
    shape = (3, 24, 20, 4)
    first, again = (to_numpy(param.random_background(shape, keras.random.SeedGenerator(1))) for _ in range(2))
    assert first.shape == (3, 24, 20, 3) and 0.0 <= first.min() and first.max() <= 1.0
    np.testing.assert_array_equal(first, again)
    assert np.abs(first[0] - first[1]).mean() > 0.01
    assert first.std() > 0.02  # blotches of colour, not a grey field

    rng = keras.random.SeedGenerator(0)
    compiled, loop = compiled_images(lambda: param.random_background((2, 10, 7, 1), rng), (2, 10, 7, 3), [rng.state])
    images = compiled()
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert np.abs(images - compiled()).max() > 1e-2
    assert loop.traces == 1
    with pytest.raises(ValueError, match=r"Received: shape=\(2, None, 7, 3\)"):
        param.random_background((2, None, 7, 3))


def test_generator_optimises_only_the_latent():
    model = tiny_generator()
    p = param.generator(model, batch=2, seed=0)
    assert len(p.variables) == 1 and p.variables[0].shape == (2, 4)
    assert not any(v is w for v in p.variables for w in model.weights)
    (grad,) = gradients(lambda: ops.sum(p()[..., 0]), p.variables)
    assert np.linalg.norm(grad) > 0.0
    expected = np.clip((to_numpy(model(to_numpy(p.variables[0]))) + 1.0) / 2.0, 0.0, 1.0)
    np.testing.assert_allclose(to_numpy(p()), expected, atol=1e-6)
    with pytest.raises(NotImplementedError, match="cannot be set from images"):
        p.assign_image(np.zeros(p.shape))


def test_generator_output_range_and_renderer_call():
    model = tiny_generator(activation="sigmoid")
    p = param.generator(model, seed=0, output_range=(0, 1))
    np.testing.assert_allclose(to_numpy(p()), to_numpy(model(to_numpy(p.variables[0]))), atol=1e-6)
    factory = functools.partial(param.generator, model)
    assert factory(w=8, h=8, batch=2, seed=1).shape == (2, 8, 8, 3)
    with pytest.raises(ValueError, match="produces 8x8 .* Received: h=16, w=16"):
        factory(w=16, h=16, batch=1, seed=None)


def test_generator_errors():
    flat = keras.Sequential([keras.Input((4,)), keras.layers.Dense(12)])
    with pytest.raises(ValueError, match=r"\(batch, height, width, 3\). Received: output shape=\(1, 12\)"):
        param.generator(flat)
    with pytest.raises(ValueError, match=r"Received: output shape=\(1, 2, 2, 4\)"):
        param.generator(tiny_generator((2, 2, 4)))
    with pytest.raises(ValueError, match="failed on latent codes of shape \\(1, 5\\)"):
        param.generator(tiny_generator(), latent_shape=(5,))
    with pytest.raises(ValueError, match=r"low < high. Received: output_range=\(1, -1\)"):
        param.generator(tiny_generator(), output_range=(1, -1))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: param.pixel_image((1, 0, 4, 3)), r"4 positive integers .* Received: shape=\(1, 0, 4, 3\)"),
        (lambda: param.fft_image((4, 4, 3)), r"Received: shape=\(4, 4, 3\)"),
        (lambda: param.fft_image((1, 4, 4, 3), sd=-1.0), r"Received: sd=-1.0"),
        (lambda: param.fft_image((1, 4, 4, 3), decay_power=float("nan")), r"Received: decay_power=nan"),
        (lambda: param.image(0), r"whole number >= 1. Received: w=0"),
        (lambda: param.image(8, batch=1.5), r"Received: batch=1.5"),
        (lambda: param.lowres_tensor((1, 4, 4, 3), (1, 2, 2)), r"Received: underlying_shape=\(1, 2, 2\)"),
    ],
)
def test_validation_errors(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_a_few_adam_steps_raise_an_objective():
    p = param.image(16, seed=0)
    optimizer = keras.optimizers.Adam(0.05)

    def redness():
        images = p()
        return ops.mean(images[..., 0] - images[..., 1])

    loss_and_grads = backend.value_and_grad(lambda: -redness(), p.variables)
    before = float(to_numpy(redness()))
    for _ in range(20):
        _, grads = loss_and_grads()
        optimizer.apply(grads, p.variables)
    assert float(to_numpy(redness())) > before + 0.01


PER_ITEM_FACTORIES = {
    "image_fft": lambda batch, seed: param.image(SIZE, 10, batch=batch, seed=seed),
    "image_pixel_alpha": lambda batch, seed: param.image(SIZE, batch=batch, fft=False, alpha=True, seed=seed),
    "lowres_per_item": lambda batch, seed: param.lowres_tensor((batch, SIZE, SIZE, 3), (batch, 4, 4, 3), seed=seed),
    "generator": lambda batch, seed: param.generator(tiny_generator(), batch=batch, seed=seed),
}


@pytest.mark.parametrize("name", sorted(PER_ITEM_FACTORIES))
def test_one_seed_per_item_starts_each_item_as_a_batch_of_one(name):
    factory = PER_ITEM_FACTORIES[name]
    seeds = [7, 3, 7]
    batch = factory(3, seeds)
    images = to_numpy(batch())
    for index, seed in enumerate(seeds):
        np.testing.assert_allclose(images[index], to_numpy(factory(1, seed)())[0], atol=1e-6)
    variables = list(batch.variables)
    batch.reset([3, 7, 3])                      # in place, item by item
    np.testing.assert_allclose(to_numpy(batch())[[0, 1, 2]], images[[1, 0, 1]], atol=1e-6)
    assert all(a is b for a, b in zip(batch.variables, variables))


def test_per_item_seeds_need_one_seed_per_item_and_independent_items():
    with pytest.raises(ValueError, match=r"one seed per batch item \(2\)\. Received: seed=\[1, 2, 3\]"):
        param.image(SIZE, batch=2, seed=[1, 2, 3])
    with pytest.raises(ValueError, match="cannot start each batch item from its own seed"):
        param.aligned_image(SIZE, batch=2, shared=(2,), seed=[1, 2])
    with pytest.raises(TypeError, match="whole number"):
        param.image(SIZE, batch=2, seed=[1, 2.5])
