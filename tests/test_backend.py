"""The backend seam: a compiled loop updates its variables like eager steps would, compiles once for
new argument values, and (JAX) the accelerator's device loop matches the CPU's per-step calls."""

import keras
import numpy as np
import pytest
from keras import ops

from lucidwidget import backend


def ascent_loop(device_loop=None, monkeypatch=None):
    """Gradient ascent on sum(w * x) with noise from a seed generator: (loop, w, rng)."""
    if device_loop is not None:
        from lucidwidget.backend import _jax

        monkeypatch.setattr(_jax, "LOOP_ON_CPU", device_loop)
    w = keras.Variable(np.zeros(3, "float32"))
    rng = keras.random.SeedGenerator(7)

    def objective(x):
        return ops.sum(w * x) + 0.0 * ops.sum(keras.random.normal((3,), seed=rng))

    gradient = backend.value_and_grad(objective, [w], [rng.state])

    def step(index, x, rate):
        value, (grad,) = gradient(x)
        w.assign(w + rate * grad)
        return value + ops.cast(index, "float32")

    return backend.compile_loop(step, [w, rng.state], 8), w, rng


def test_a_compiled_loop_steps_like_eager_code_and_compiles_once():
    loop, w, rng = ascent_loop()
    x = ops.convert_to_tensor([1.0, 2.0, 3.0])
    values = ops.convert_to_numpy(loop(3, 10, x, ops.convert_to_tensor(0.5)))
    # w after k steps is 0.5 k x, so step k's value is 0.5 k |x|^2 = 7 k, plus its index
    np.testing.assert_allclose(values, [10.0, 7.0 + 11.0, 14.0 + 12.0], rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(w), [1.5, 3.0, 4.5], rtol=1e-6)
    state = ops.convert_to_numpy(rng.state).copy()
    loop(2, 0, x, ops.convert_to_tensor(0.25))                       # new argument values
    assert not np.array_equal(ops.convert_to_numpy(rng.state), state)  # the generator moved on
    np.testing.assert_allclose(ops.convert_to_numpy(w), [2.0, 4.0, 6.0], rtol=1e-6)
    assert loop.traces == 1


@pytest.mark.skipif(backend.name != "jax", reason="only JAX chooses between a device loop and per-step calls")
def test_the_jax_device_loop_matches_per_step_calls(monkeypatch):
    x = ops.convert_to_tensor([1.0, -2.0, 0.5])
    results = []
    for device_loop in (True, False):
        loop, w, rng = ascent_loop(device_loop, monkeypatch)
        values = loop(4, 0, x, ops.convert_to_tensor(0.1))
        results.append((ops.convert_to_numpy(values), ops.convert_to_numpy(w), ops.convert_to_numpy(rng.state)))
        assert loop.traces == 1
    for device, per_step in zip(*results):
        np.testing.assert_allclose(device, per_step, rtol=1e-6)


@pytest.mark.skipif(backend.name != "tensorflow", reason="TensorFlow's own retracing warning")
def test_many_compiled_functions_raise_no_retracing_warning(caplog):
    # Every pass of an explanation is a tf.function of its own, traced once by design; TensorFlow's
    # detector keys on the Python code they share and warned about "retracing" after five of them.
    compiled = [backend.compile(lambda x, k=k: x * k) for k in range(8)]
    with caplog.at_level("WARNING"):
        for function in compiled:
            function(np.ones(2, "float32"))
    assert [function.traces for function in compiled] == [1] * 8
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]
