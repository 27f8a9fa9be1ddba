"""Objective library and algebra on tiny hand-made activations (no model needed), on any Keras backend."""

import keras
import numpy as np
import pytest
from keras import ops

from lucidwidget import backend
from lucidwidget.optvis import objectives as obj
from lucidwidget.optvis.objectives import Objective

RNG = np.random.default_rng(0)
ACTS = {
    "conv": RNG.normal(size=(3, 3, 4, 5)).astype(np.float32),  # batch 3, 3 rows x 4 columns, 5 channels
    "dense": RNG.normal(size=(3, 6)).astype(np.float32),
    "input": RNG.uniform(size=(3, 5, 5, 3)).astype(np.float32),
    "image": RNG.uniform(size=(3, 5, 5, 4)).astype(np.float32),
}
SHAPES = {"conv": (3, 4, 5), "dense": (6,)}


def make_T(acts=ACTS):
    tensors = {name: ops.convert_to_tensor(value) for name, value in acts.items()}
    return tensors.__getitem__


def scalar(tensor):
    return float(ops.convert_to_numpy(tensor))


def value(objective, acts=ACTS):
    return scalar(objective(make_T(acts)))


def per_item_tv(x):
    return np.abs(np.diff(x, axis=1)).sum(axis=(1, 2, 3)) + np.abs(np.diff(x, axis=2)).sum(axis=(1, 2, 3))


def lucid_blur(x):
    kernel = np.full((3, 3), 0.5)
    kernel[1, 1] = 1.0
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ones = np.pad(np.ones_like(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    total = sum(kernel[i, j] * padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3))
    weight = sum(kernel[i, j] * ones[:, i:i + h, j:j + w] for i in range(3) for j in range(3))
    return total / weight


def gram_diversity(acts):
    flat = acts.reshape(acts.shape[0], -1, acts.shape[-1])
    grams = np.einsum("bpc,bpd->bcd", flat, flat).reshape(acts.shape[0], -1)
    grams /= np.linalg.norm(grams, axis=1, keepdims=True)
    sims = grams @ grams.T
    n = acts.shape[0]
    return -(sims.sum() - np.trace(sims)) / (n * (n - 1))


def dot_cossim(acts, vec, power):
    dot = acts @ vec
    cos = dot / np.linalg.norm(acts, axis=-1) / np.linalg.norm(vec)
    return np.mean(dot * np.maximum(0.1, cos) ** power)


conv, dense, inp, image = ACTS["conv"], ACTS["dense"], ACTS["input"], ACTS["image"]
VEC = np.array([1.0, -2.0, 0.5, 0.0, 3.0], np.float32)
MASK = (RNG.uniform(size=(3, 4, 5)) > 0.5).astype(np.float32)
t = np.arange(3) / 2.0

EXPECTED = [
    (obj.channel("conv", 2), conv[..., 2].mean()),
    (obj.channel("conv", 2, batch=1), conv[1, ..., 2].mean()),
    (obj.channel("dense", 4), dense[:, 4].mean()),
    (obj.neuron("conv", 3), conv[:, 1, 2, 3].mean()),  # centre: row 3 // 2, column 4 // 2
    (obj.neuron("conv", 3, x=0, y=2), conv[:, 2, 0, 3].mean()),
    (obj.neuron("conv", 3, x=3, batch=2), conv[2, 1, 3, 3]),
    (obj.class_logit("dense", 5), dense[:, 5].mean()),
    (obj.class_logit("dense", 5, batch=0), dense[0, 5]),
    (obj.class_logit("conv", 1), conv[..., 1].mean()),
    (obj.deepdream("conv"), (conv**2).mean()),
    (obj.deepdream("conv", batch=2), (conv[2] ** 2).mean()),
    (obj.layer("conv"), conv.mean()),
    (obj.direction("conv", VEC), (conv @ VEC).mean()),
    (obj.direction("conv", VEC, batch=1), (conv[1] @ VEC).mean()),
    (obj.direction("conv", VEC, cossim_pow=2), dot_cossim(conv, VEC, 2)),
    (obj.direction_neuron("conv", VEC, x=1, y=0), (conv[:, 0, 1] @ VEC).mean()),
    (obj.direction_neuron("conv", VEC, cossim_pow=1), dot_cossim(conv[:, 1, 2], VEC, 1)),
    (obj.diversity("conv"), gram_diversity(conv)),
    (obj.alignment("conv"), -sum(((conv[i] - conv[i + d]) ** 2).mean() / 2**d
                                 for d in (1, 2) for i in range(3 - d))),
    (obj.alignment("dense", decay_ratio=3), -sum(((dense[i] - dense[i + d]) ** 2).mean() / 3**d
                                                  for d in (1, 2) for i in range(3 - d))),
    (obj.channel_interpolate("conv", 0, "dense", 2),
     np.mean((1 - t) * conv[..., 0].mean(axis=(1, 2)) + t * dense[:, 2])),
    (obj.feature_mask("conv", MASK), (conv * MASK).sum() / 3 / MASK.sum()),
    (obj.feature_mask("conv", MASK, batch=1), (conv[1] * MASK).sum() / MASK.sum()),
    (obj.total_variation(), per_item_tv(inp).mean()),
    (obj.total_variation("conv", batch=0), per_item_tv(conv)[0]),
    (obj.L1(constant=0.5), np.abs(inp - 0.5).sum(axis=(1, 2, 3)).mean()),
    (obj.L2(), np.sqrt(1e-6 + (inp**2).sum(axis=(1, 2, 3))).mean()),
    (obj.L2("dense", batch=2), np.sqrt(1e-6 + (dense[2] ** 2).sum())),
    (obj.Lp(p=3, constant=0.25, epsilon=0),
     ((np.abs(inp - 0.25) ** 3).sum(axis=(1, 2, 3)) ** (1 / 3)).mean()),
    (obj.blur_input_each_step(), 0.5 * ((inp - lucid_blur(inp)) ** 2).sum() / 3),
    (obj.alpha_penalty(), (image[..., 3].mean() - 0.25) ** 2),
    (obj.alpha_penalty(0.75, batch=1), (image[1, ..., 3].mean() - 0.75) ** 2),
]


@pytest.mark.parametrize("objective, expected", EXPECTED, ids=[o.description for o, _ in EXPECTED])
def test_exact_values(objective, expected):
    np.testing.assert_allclose(value(objective), expected, rtol=1e-4, atol=1e-5)


def test_random_direction_is_a_seeded_unit_direction():
    a, b = obj.random_direction("conv", 5, seed=3), obj.random_direction("conv", 5, seed=3)
    vec = a.knobs[0]
    assert np.isclose(np.linalg.norm(vec), 1.0)
    np.testing.assert_array_equal(vec, b.knobs[0])
    assert not np.allclose(vec, obj.random_direction("conv", 5, seed=4).knobs[0])
    assert a.signature == obj.direction("conv", VEC).signature
    np.testing.assert_allclose(value(a), (conv @ vec).mean(), rtol=1e-5)
    assert a.description == "random_direction conv (seed 3)"


def test_tensor_knobs_match_python_knobs_and_do_not_retrace():
    loops = {}
    T = make_T()

    def evaluate(objective):
        if objective.signature not in loops:
            def step(index, *knobs, fn=objective.fn):
                return fn(T, *knobs)
            loops[objective.signature] = backend.compile_loop(step, [], max_count=1)
        values = loops[objective.signature](1, 0, *(ops.convert_to_tensor(k) for k in objective.knobs))
        return float(ops.convert_to_numpy(values)[0])

    def compiles():
        return sum(loop.traces for loop in loops.values())

    varied = [
        obj.channel("conv", 0) - 0.5 * obj.neuron("conv", 1, x=0, y=0, batch=0),
        obj.channel("conv", 4) + 2.0 * obj.neuron("conv", 3, x=3, y=2, batch=2),
        obj.channel("conv", 2) - 0.0 * obj.neuron("conv", 0, x=1, y=1, batch=1),
    ]
    for objective in varied:
        assert evaluate(objective) == pytest.approx(scalar(objective.fn(T, *objective.knobs)), rel=1e-6)
    assert compiles() == 1
    for objective in (obj.direction("conv", VEC), obj.direction("conv", -VEC, cossim_pow=2),
                      obj.Lp(p=1.5), obj.L1(constant=0.5)):
        assert evaluate(objective) == pytest.approx(value(objective), rel=1e-5)
    assert compiles() == 3
    evaluate(obj.channel("dense", 1) - 0.5 * obj.neuron("conv", 1, x=0, y=0, batch=0))
    evaluate(obj.channel("conv", 0) - 0.5 * obj.neuron("conv", 1, batch=0))
    assert compiles() == 5


def test_algebra_values_descriptions_and_layers():
    a, b = obj.channel("conv", 1), obj.class_logit("dense", 2)
    va, vb = value(a), value(b)
    assert value(a + b) == pytest.approx(va + vb, rel=1e-5)
    assert value(a - 0.5 * b) == pytest.approx(va - 0.5 * vb, rel=1e-5)
    assert value(-a) == pytest.approx(-va, rel=1e-5)
    assert value(2 * (a + b) / 4) == pytest.approx((va + vb) / 2, rel=1e-5)
    assert value(sum([a, b, a])) == pytest.approx(2 * va + vb, rel=1e-5)
    assert value(Objective.sum([a, b])) == pytest.approx(va + vb, rel=1e-5)
    assert (0 + a) is a and (a + 0) is a
    combined = a - 0.5 * b
    assert combined.description == "channel conv:1 - 0.5 * class_logit dense:2"
    assert repr(combined) == "Objective('channel conv:1 - 0.5 * class_logit dense:2')"
    assert (-a + 3 * b).description == "-channel conv:1 + 3 * class_logit dense:2"
    assert combined.layers == {"conv", "dense"}
    assert (a - 1e-3 * obj.total_variation()).layers == {"conv"}
    assert combined.signature == (obj.channel("conv", 4) + 7 * obj.class_logit("dense", 0)).signature
    assert combined.signature != (b - 0.5 * a).signature


@pytest.mark.parametrize("operation, message", [
    (lambda a, b: a * b, "Cannot multiply two objectives"),
    (lambda a, b: a / b, "Cannot divide an objective by an objective"),
    (lambda a, b: 2 / a, "Cannot divide by an objective"),
    (lambda a, b: a + 1, "a constant does not change what is optimised"),
    (lambda a, b: a * "2", "Expected a number"),
])
def test_algebra_type_errors(operation, message):
    with pytest.raises(TypeError, match=message):
        operation(obj.channel("conv", 1), obj.channel("conv", 2))


def test_custom_objective_and_as_objective():
    custom = Objective(lambda T, w: w * ops.mean(T("conv")), knobs=[2.0], layers=["conv", "input"],
                       description="twice the mean")
    assert custom.layers == {"conv"}
    assert value(custom) == pytest.approx(2 * conv.mean(), rel=1e-5)
    assert obj.as_objective(custom) is custom
    assert obj.as_objective("conv:3").signature == obj.channel("conv", 0).signature
    assert value(obj.as_objective("conv:3")) == pytest.approx(conv[..., 3].mean(), rel=1e-5)
    assert obj.as_objective("conv:3 - 0.5*dense:1").layers == {"conv", "dense"}
    with pytest.raises(TypeError, match="Expected an Objective, a 'layer:channel' string"):
        obj.as_objective(42)


@pytest.mark.parametrize("objective, batch, message", [
    (obj.channel("conv", 5), 1, r"Expected a channel in \[0, 4\] for layer 'conv'. Received: channel=5"),
    (obj.class_logit("dense", 6), 1, r"Expected a label in \[0, 5\] for layer 'dense'. Received: label=6"),
    (obj.neuron("conv", 0, x=4), 1, r"Expected a x in \[0, 3\] for layer 'conv' \(its grid is 3x4"),
    (obj.neuron("conv", 0, y=3), 1, r"Expected a y in \[0, 2\] for layer 'conv'.*Received: y=3"),
    (obj.neuron("dense", 0), 1, r"neuron needs a layer with a spatial grid.*Received: layer='dense'"),
    (obj.direction_neuron("dense", np.ones(6)), 1, "direction_neuron needs a layer with a spatial grid"),
    (obj.total_variation("dense"), 1, "total_variation needs a layer with a spatial grid"),
    (obj.channel("conv", 1, batch=2), 2, r"Expected a batch index in \[0, 1\].*Received: batch=2"),
    (obj.direction("conv", np.ones(4)), 1, r"length 5 \(the channels of layer 'conv'\). Received: len\(vec\)=4"),
    (obj.diversity("conv"), 1, r"diversity needs batch >= 2.*Received: batch=1"),
    (obj.alignment("conv"), 1, r"alignment needs batch >= 2"),
    (obj.channel_interpolate("conv", 0, "dense", 6), 2, r"Expected a channel in \[0, 5\] for layer 'dense'"),
    (obj.feature_mask("conv", np.ones((3, 4, 4))), 1, r"shape \(3, 4, 5\).*Received: mask.shape=\(3, 4, 4\)"),
    (obj.channel("conv", 1) - obj.channel("dense", 9), 1, "Received: channel=9"),
    (obj.channel("conv2", 1), 1, r"No shape known for layer 'conv2'. Did you mean 'conv'\?"),
])
def test_validate_errors(objective, batch, message):
    with pytest.raises(ValueError, match=message):
        objective.validate(SHAPES, batch)


def test_validate_accepts_valid_settings():
    every = (obj.channel("conv", 4) + obj.neuron("conv", 4, x=3, y=2, batch=1) + obj.class_logit("dense", 5)
             + obj.diversity("conv") + obj.direction("conv", VEC) + obj.feature_mask("conv", MASK)
             - obj.total_variation() - obj.L2("dense") - obj.alpha_penalty())
    every.validate(SHAPES, 2)


@pytest.mark.parametrize("make, error, message", [
    (lambda: obj.channel("conv", -1), ValueError, "Expected `n_channel` to be a whole number >= 0. Received: n_channel=-1"),
    (lambda: obj.channel("conv", 1.5), TypeError, "Received: n_channel=1.5"),
    (lambda: obj.channel(3, 1), TypeError, "Expected a layer name"),
    (lambda: obj.neuron("conv", 1, batch=-2), ValueError, "Received: batch=-2"),
    (lambda: obj.direction("conv", np.zeros(5)), ValueError, "non-zero direction vector"),
    (lambda: obj.feature_mask("conv", np.full((3, 4, 5), 0.5)), ValueError, "binary"),
    (lambda: obj.feature_mask("conv", np.zeros((3, 4, 5))), ValueError, "at least one unit"),
    (lambda: obj.Lp(p=0), ValueError, "Received: p=0"),
    (lambda: obj.alpha_penalty(1.5), ValueError, r"\[0, 1\]. Received: target=1.5"),
    (lambda: obj.channel("conv", 1) / 0, ZeroDivisionError, "by zero"),
])
def test_construction_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_alpha_penalty_needs_rgba():
    with pytest.raises(ValueError, match="alpha_penalty needs an RGBA image"):
        value(obj.alpha_penalty(), {**ACTS, "image": ACTS["input"]})


def gradient(objective, name):
    """d objective / d ACTS[name], through the backend's value-and-grad over a variable."""
    variable = keras.Variable(ACTS[name])
    T = make_T()

    def score():
        return objective(lambda layer: variable.value if layer == name else T(layer))

    _, (grad,) = backend.value_and_grad(score, [variable])()
    return ops.convert_to_numpy(grad)


def test_gradients_push_the_targeted_units():
    grad = gradient(obj.channel("conv", 2), "conv")
    assert (grad[..., 2] > 0).all() and (grad[..., [0, 1, 3, 4]] == 0).all()
    grad = gradient(obj.neuron("conv", 1, x=3, y=0, batch=1), "conv")
    assert grad[1, 0, 3, 1] > 0 and np.count_nonzero(grad) == 1
    grad = gradient(obj.class_logit("dense", 4) - obj.class_logit("dense", 0), "dense")
    assert (grad[:, 4] > 0).all() and (grad[:, 0] < 0).all()
    grad = gradient(obj.direction("conv", VEC), "conv")
    np.testing.assert_allclose(grad[0, 0, 0], VEC / conv[..., 0].size, rtol=1e-5)
    grad = gradient(obj.deepdream("conv"), "conv")
    np.testing.assert_array_equal(np.sign(grad), np.sign(conv))
    grad = gradient(obj.feature_mask("conv", MASK), "conv")
    np.testing.assert_array_equal(grad > 0, np.broadcast_to(MASK, conv.shape) > 0)


def test_penalty_gradients_pull_towards_smooth_constant_images():
    grad = gradient(-obj.L1(constant=0.5), "input")
    np.testing.assert_array_equal(np.sign(grad), -np.sign(inp - 0.5))
    grad = gradient(-obj.blur_input_each_step(), "input")
    np.testing.assert_allclose(grad, -(inp - lucid_blur(inp)) / 3, rtol=1e-4, atol=1e-6)
    grad = gradient(-obj.total_variation(), "input")
    assert np.abs(grad).sum() > 0
    step = inp + 0.01 * grad
    assert value(obj.total_variation(), {**ACTS, "input": step}) < value(obj.total_variation())
    grad = gradient(-obj.alpha_penalty(0.25), "image")
    assert (np.sign(grad[..., 3]) == -np.sign(image[..., 3].mean() - 0.25)).all()
    assert (grad[..., :3] == 0).all()


def test_diversity_and_alignment_gradients():
    grad = gradient(obj.diversity("conv"), "conv")
    assert np.abs(grad).sum() > 0
    stepped = value(obj.diversity("conv"), {**ACTS, "conv": conv + 0.05 * grad / np.abs(grad).max()})
    assert stepped > value(obj.diversity("conv"))
    grad = gradient(obj.alignment("conv"), "conv")
    np.testing.assert_allclose(grad[0], -2 * ((conv[0] - conv[1]) / 2 + (conv[0] - conv[2]) / 4) / conv[0].size,
                               rtol=1e-4, atol=1e-7)
    grad = gradient(obj.direction("conv", VEC, cossim_pow=2), "conv")
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


@obj.wrap_objective
def channel_minus_mean(layer, n_channel, weight=0.5):
    """A Lucid-style custom objective: a channel's mean minus a fraction of the layer's mean."""

    def inner(T):
        acts = T(layer)
        return ops.mean(acts[..., n_channel]) - weight * ops.mean(acts)

    return inner


def test_wrap_objective_matches_numpy_and_makes_numbers_knobs():
    objective = channel_minus_mean("conv", 3, weight=0.25)
    expected = ACTS["conv"][..., 3].mean() - 0.25 * ACTS["conv"].mean()
    assert value(objective) == pytest.approx(expected, rel=1e-5)
    assert objective.layers == {"conv"}
    assert objective.description == "channel_minus_mean('conv', 3, weight=0.25)"
    other = channel_minus_mean("conv", 1, weight=2.0)
    assert other.signature == objective.signature, "new numbers must reuse the compiled step"
    assert channel_minus_mean("dense", 1, weight=2.0).signature != objective.signature
    assert value(other) == pytest.approx(ACTS["conv"][..., 1].mean() - 2.0 * ACTS["conv"].mean(), rel=1e-5)


def test_wrap_objective_keeps_non_numbers_as_structure():
    @obj.wrap_objective
    def maybe_squared(layer, n_channel, square):
        def inner(T):
            acts = T(layer)[..., n_channel]
            return ops.mean(acts * acts if square else acts)

        return inner

    plain, squared = maybe_squared("conv", 2, False), maybe_squared("conv", 2, True)
    assert plain.signature != squared.signature
    assert value(squared) == pytest.approx((ACTS["conv"][..., 2] ** 2).mean(), rel=1e-5)
    combined = plain - 0.5 * squared
    assert value(combined) == pytest.approx(value(plain) - 0.5 * value(squared), rel=1e-5)


def test_wrap_objective_refuses_a_non_callable():
    with pytest.raises(TypeError, match="Received: factory=3"):
        obj.wrap_objective(3)


def test_a_channel_list_is_one_channel_per_batch_item():
    objective = obj.channel("conv", [4, 0, 2])
    per_item = conv.mean(axis=(1, 2))[[0, 1, 2], [4, 0, 2]]
    assert value(objective) == pytest.approx(per_item.sum(), rel=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(objective.per_item(make_T())), per_item, rtol=1e-5)
    logits = obj.class_logit("dense", [5, 1, 3])
    np.testing.assert_allclose(ops.convert_to_numpy(logits.per_item(make_T())), dense[[0, 1, 2], [5, 1, 3]],
                               rtol=1e-6)
    # One knob: another list of the same length shares the signature, another length does not.
    assert obj.channel("conv", [1, 1, 3]).signature == objective.signature
    assert obj.channel("conv", [1, 3]).signature != objective.signature
    assert "[4, 0, 2]" in objective.description


def test_a_channel_list_item_has_the_gradient_of_its_own_channel_alone():
    x = keras.Variable(conv)

    def gradient(objective):
        return backend.value_and_grad(lambda: objective({"conv": x.value}.__getitem__), [x])()[1][0]

    batched = ops.convert_to_numpy(gradient(obj.channel("conv", [4, 0, 2])))
    for item, channel in enumerate([4, 0, 2]):
        alone = ops.convert_to_numpy(gradient(obj.channel("conv", channel, batch=item)))
        np.testing.assert_allclose(batched[item], alone[item], rtol=1e-6, atol=1e-9)


def test_a_channel_list_is_checked_against_the_batch_and_the_layer():
    objective = obj.channel("conv", [4, 0, 2])
    objective.validate(SHAPES, 3)
    with pytest.raises(ValueError, match=r"one channel per batch item: 3 channels for batch=4"):
        objective.validate(SHAPES, 4)
    with pytest.raises(ValueError, match=r"channel in \[0, 4\] for layer 'conv'. Received: channel=5"):
        obj.channel("conv", [1, 5, 0]).validate(SHAPES, 3)
    with pytest.raises(ValueError, match="at least one channel"):
        obj.channel("conv", [])
    with pytest.raises(TypeError, match="leave `batch` out"):
        obj.channel("conv", [1, 2], batch=0)


def test_per_item_values_of_sums_single_items_and_batch_wide_terms():
    T = make_T()
    mean_channel = obj.channel("conv", 2) - 0.5 * obj.deepdream("conv")
    expected = conv[..., 2].mean(axis=(1, 2)) - 0.5 * (conv**2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(ops.convert_to_numpy(mean_channel.per_item(T)), expected, rtol=1e-5)
    assert value(mean_channel) == pytest.approx(expected.mean(), rel=1e-5)
    one = obj.neuron("conv", 3, x=3, batch=2)
    np.testing.assert_allclose(ops.convert_to_numpy(one.per_item(T)), [0.0, 0.0, conv[2, 1, 3, 3]], rtol=1e-6)
    mixed = obj.channel("conv", 2) + 10 * obj.diversity("conv")
    assert not mixed.has_items
    with pytest.raises(ValueError, match="no per-item values: a term compares the images"):
        mixed.per_item(T)
