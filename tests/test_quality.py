"""Image quality behaviours: diverse tiles, transparency on target, the fast schedule."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

from lucidwidget.optvis import objectives, optimizers, param, transform
from lucidwidget.optvis.render import Renderer

SMALL_TRANSFORMS = transform.preset(jitter=2, scale=0.05, rotate=5, pad=2)
"""Lucid's standard transforms scaled to 32 px images."""


def tile_correlation(images):
    flat = images.reshape(len(images), -1)
    rows, cols = np.triu_indices(len(images), 1)
    return np.corrcoef(flat)[rows, cols].mean()


def test_diversity_makes_the_tiles_differ(seq_model):
    renderer = Renderer(seq_model)
    target = objectives.channel("conv3", 5)
    kwargs = dict(size=32, batch=4, steps=48, seed=0, transforms=SMALL_TRANSFORMS, learning_rate=0.1)
    plain = renderer.render(target, **kwargs)
    diverse = renderer.render(target + 10.0 * objectives.diversity("conv2"), **kwargs)
    similarity = objectives.diversity("conv2")
    assert renderer.evaluate(similarity, diverse) > renderer.evaluate(similarity, plain) + 0.05
    assert tile_correlation(diverse) < tile_correlation(plain)


def test_alpha_penalty_pulls_mean_opacity_to_the_target(seq_model):
    renderer = Renderer(seq_model)
    target = objectives.channel("conv3", 5)
    kwargs = dict(size=32, steps=48, seed=0, transforms=SMALL_TRANSFORMS, learning_rate=0.1,
                  param=functools.partial(param.image, alpha=True))
    free = renderer.render(target, **kwargs)[..., 3].mean()
    held = renderer.render(target - 1e3 * objectives.alpha_penalty(0.25), **kwargs)[..., 3].mean()
    assert abs(held - 0.25) < 0.05
    assert abs(held - 0.25) < abs(free - 0.25) / 2


def test_random_background_is_fresh_per_item_and_reproducible():
    shape = (3, 24, 20, 4)
    first = keras.ops.convert_to_numpy(param.random_background(shape, keras.random.SeedGenerator(1)))
    again = keras.ops.convert_to_numpy(param.random_background(shape, keras.random.SeedGenerator(1)))
    assert first.shape == (3, 24, 20, 3) and 0.0 <= first.min() and first.max() <= 1.0
    np.testing.assert_array_equal(first, again)
    assert np.abs(first[0] - first[1]).mean() > 0.01
    assert first.std() > 0.02          # blotches of colour, not a grey field


def test_boosted_scales_each_step_by_the_schedule():
    variable = keras.Variable([0.0])
    boosted = optimizers.Boosted(optimizers.get(keras.optimizers.SGD(0.1)), boost=4.0, decay_steps=2.0)
    boosted.build([variable])
    positions = [0.0]
    for _ in range(3):
        boosted.apply([keras.ops.convert_to_tensor([-1.0])], [variable])
        positions.append(float(keras.ops.convert_to_numpy(variable)[0]))
    steps = np.diff(positions)
    np.testing.assert_allclose(steps, 0.1 * (1 + 3 * np.exp(-np.arange(3) / 2.0)), rtol=1e-5)
    boosted.reset()
    boosted.apply([keras.ops.convert_to_tensor([-1.0])], [variable])
    assert float(keras.ops.convert_to_numpy(variable)[0]) - positions[-1] == pytest.approx(0.4, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(boost=0.5, decay_steps=8), r"`boost` to be a finite number >= 1. Received: boost=0.5"),
     (dict(boost=2, decay_steps=0), r"Received: decay_steps=0")],
)
def test_boosted_rejects_bad_schedules(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optimizers.Boosted(optimizers.get("adam"), **kwargs)


def test_fast_schedule_reuses_its_compiled_step(seq_model):
    renderer = Renderer(seq_model)
    kwargs = dict(size=32, steps=4, transforms=SMALL_TRANSFORMS, schedule="fast")
    renderer.render("conv3:5", seed=0, **kwargs)
    traced = renderer.trace_count
    renderer.render("conv3:7", seed=1, learning_rate=0.02, **kwargs)
    renderer.render("conv3:2", seed=2, **{**kwargs, "steps": 9})
    assert renderer.trace_count == traced


def test_fast_schedule_gets_further_in_few_steps(seq_model):
    renderer = Renderer(seq_model)
    kwargs = dict(size=32, steps=12, transforms=SMALL_TRANSFORMS)
    values = {schedule: np.mean([renderer.evaluate("conv3:5", renderer.render("conv3:5", seed=seed,
                                                                              schedule=schedule, **kwargs))
                                 for seed in range(3)])
              for schedule in (None, "fast")}
    assert values["fast"] > values[None]


def test_unknown_schedule_is_named(seq_model):
    with pytest.raises(ValueError, match=r"Expected one of None, 'fast'. Did you mean 'fast'\? Received: schedule='fsat'"):
        Renderer(seq_model).render("conv3:5", size=32, steps=2, schedule="fsat")


def high_frequency_share(images):
    """Share of the mean-removed grey images' spectral energy above half the Nyquist frequency."""
    grey = images[..., :3].mean(-1)
    power = np.abs(np.fft.fft2(grey - grey.mean(axis=(1, 2), keepdims=True))) ** 2
    fy = np.abs(np.fft.fftfreq(grey.shape[1]))[:, None]
    fx = np.abs(np.fft.fftfreq(grey.shape[2]))[None, :]
    return power[:, np.maximum(fy, fx) > 0.25].sum() / power.sum()


def test_fast_schedule_keeps_its_larger_steps_clean(seq_model):
    renderer = Renderer(seq_model)
    kwargs = dict(size=32, steps=24, transforms=SMALL_TRANSFORMS, schedule="fast")
    flat = functools.partial(param.image, decay_power=1.0)
    shares, values = {}, {}
    for name, factory in (("default", None), ("1/f", flat)):
        images = [renderer.render("conv3:5", seed=seed, param=factory, **kwargs) for seed in range(3)]
        shares[name] = np.mean([high_frequency_share(im) for im in images])
        values[name] = np.mean([renderer.evaluate("conv3:5", im) for im in images])
    assert shares["default"] < 0.8 * shares["1/f"]
    assert values["default"] >= values["1/f"]
