"""Errors reach people as their sentence: no compiled-step listing, no file paths, no ANSI codes."""

import keras
import numpy as np
import pytest

from lucidwidget import backend
from lucidwidget.errors import user_message


def raised_by(function, *args):
    with pytest.raises(Exception) as info:
        function(*args)
    return info.value


def compiled(function):
    """`function(x)` run as the step of the backend's compiled loop."""
    loop = backend.compile_loop(lambda _, x: keras.ops.sum(function(x)), [], 1)
    return lambda x: loop(1, 0, x)


def test_an_error_inside_a_compiled_step_keeps_only_its_sentence():
    def step(x):
        raise ValueError("Expected a channel in [0, 3]. Received: channel=9")

    error = raised_by(compiled(step), np.zeros((1,), np.float32))
    if backend.name == "tensorflow":
        assert "in user code" in str(error)
    assert user_message(error) == "Expected a channel in [0, 3]. Received: channel=9"


def test_a_keras_layer_error_loses_its_wrapping_paths_and_colour_codes():
    dense = keras.layers.Dense(3, name="head")
    dense.build((None, 4))
    eager = raised_by(dense, np.zeros((1, 5), np.float32))
    in_loop = raised_by(compiled(dense), np.zeros((1, 5), np.float32))
    for error in (eager, in_loop):
        message = user_message(error)
        assert "expected axis -1 of input shape to have value 4" in message
        assert "\x1b[" not in message and 'File "' not in message and ".py" not in message
        assert "Arguments received" not in message and "Exception encountered" not in message


def test_other_error_types_are_named():
    assert user_message(RuntimeError("the device went away")) == "RuntimeError: the device went away"
    assert user_message(ValueError("Bad size. Received: size=3")) == "Bad size. Received: size=3"
