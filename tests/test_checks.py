"""The shared argument checks: canonical values back, one Keras-style sentence otherwise."""

import numpy as np
import pytest

from lucidwidget import checks


def test_whole_numbers_accept_integers_and_name_the_bound():
    assert checks.whole(np.int64(3), "steps", 1) == 3
    assert checks.whole(12.0, "channel", 0, integral_floats=True) == 12
    with pytest.raises(ValueError, match=r"`steps` to be a whole number >= 1. Received: steps=0"):
        checks.whole(0, "steps", 1)
    for bad, message in [(2.5, r"Received: steps=2.5"), (True, r"Received: steps=True"), ("4", r"steps='4'")]:
        with pytest.raises(TypeError, match=message):
            checks.whole(bad, "steps", 1)


def test_reals_are_finite_and_bounded():
    assert checks.real(np.float32(0.5), "weight") == 0.5
    assert checks.reals([1, 1.5], "scales", 0, exclusive=True).dtype == np.float32
    for bad, error in [(0, ValueError), (float("inf"), ValueError), (float("nan"), ValueError),
                       ("0.1", TypeError), (None, TypeError)]:
        with pytest.raises(error, match=r"`learning_rate` to be a .*> 0. Received: learning_rate="):
            checks.real(bad, "learning_rate", 0, exclusive=True)
    with pytest.raises(ValueError, match=r"non-empty list .* Received: scales=\[\]"):
        checks.reals([], "scales")
    with pytest.raises(TypeError, match=r"list of numbers. Received: scales=1.1"):
        checks.reals(1.1, "scales")


def test_choices_ignore_case_and_suggest_the_closest():
    assert checks.choice("Reflect", "fill", ("reflect", "constant")) == "reflect"
    with pytest.raises(ValueError, match=r"Unknown fill. Expected one of 'reflect', 'constant'. "
                                         r"Did you mean 'reflect'\? Received: fill='reflct'"):
        checks.choice("reflct", "fill", ("reflect", "constant"))
