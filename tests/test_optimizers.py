"""The optimizer adapter: each optimizer minimises inside the backend's compiled loop, reset and
learning-rate changes never recompile, L-BFGS beats gradient descent on an ill-conditioned problem,
errors are clear."""

import keras
import numpy as np
import pytest
from keras import ops

from lucidwidget import backend
from lucidwidget.optvis import optimizers

DIM = 10


def quadratic(condition, seed=0):
    """f(x) = |A x - b|^2 with singular values of A spread over [1, condition]."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    a = ops.convert_to_tensor((rotation * np.logspace(0, np.log10(condition), DIM)).astype("float32"))
    b = ops.convert_to_tensor(rng.normal(size=DIM).astype("float32"))
    return lambda x: ops.sum(ops.square(ops.matmul(a, x) - b))


def weighted_sum(x):
    return ops.sum(x * ops.arange(1.0, DIM + 1.0))


class Problem:
    """A variable, an optimizer built on it, and a compiled loop that counts its compiles."""

    def __init__(self, opt, loss_fn, start=None):
        start = np.zeros(DIM, "float32") if start is None else start
        self.x = keras.Variable(start, dtype="float32")
        self.opt = optimizers.get(opt)
        self.opt.build([self.x])
        self.loss_fn = loss_fn
        gradient = backend.value_and_grad(lambda: loss_fn(self.x), [self.x])
        self.loop = backend.compile_loop(lambda _: self._update(gradient), [self.x, *self.opt.variables], 64)

    def _update(self, gradient):
        loss, grads = gradient()
        self.opt.apply(grads, [self.x])
        return loss

    @property
    def traces(self):
        return self.loop.traces

    def run_loop(self, steps):
        """Many steps in one compiled loop, as the render loop runs them."""
        self.loop(steps, 0)

    def run(self, steps):
        """Returns the trajectory of x, one row per step."""
        path = []
        for _ in range(steps):
            self.loop(1, 0)
            path.append(ops.convert_to_numpy(self.x).copy())
        return np.array(path)

    def loss(self):
        return float(ops.convert_to_numpy(self.loss_fn(self.x)))


@pytest.mark.parametrize("spec", ["adam", "sgd", "lbfgs"])
def test_each_optimizer_minimises_a_convex_quadratic(spec):
    loss_fn = quadratic(condition=3.0)
    problem = Problem(optimizers.get(spec, learning_rate=0.01 if spec == "sgd" else None), loss_fn)
    start = problem.loss()
    problem.run_loop(30)
    problem.run_loop(30)
    assert problem.loss() < 0.05 * start
    assert problem.traces == 1
    assert problem.opt.iterations == 60


def test_lbfgs_needs_far_fewer_steps_than_sgd_on_an_ill_conditioned_quadratic():
    loss_fn = quadratic(condition=100.0)
    lipschitz = 2 * 100.0**2
    sgd = Problem(keras.optimizers.SGD(1.0 / lipschitz, momentum=0.9), loss_fn)
    lbfgs = Problem(optimizers.LBFGS(max_step_rms=None), loss_fn)
    start = sgd.loss()
    sgd.run(80)
    lbfgs.run(80)
    assert sgd.loss() > 0.1 * start
    assert lbfgs.loss() < 1e-4 * start


def test_lbfgs_first_step_is_a_gradient_step_of_the_initial_size():
    problem = Problem(optimizers.LBFGS(learning_rate=2.0), weighted_sum)
    problem.run(1)
    step = ops.convert_to_numpy(problem.x)
    expected_direction = -np.arange(1.0, DIM + 1.0)
    np.testing.assert_allclose(step / np.linalg.norm(step), expected_direction / np.linalg.norm(expected_direction),
                               rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(np.mean(step**2)), 2.0 * optimizers.LBFGS_INITIAL_STEP_RMS, rtol=1e-5)


def test_lbfgs_caps_the_step_and_skips_pairs_without_positive_curvature():
    # A linear objective has y = 0: no pair passes the curvature test, so every step is a capped
    # gradient step and nothing becomes NaN.
    opt = optimizers.LBFGS(learning_rate=1e6, max_step_rms=0.1)
    problem = Problem(opt, lambda x: -ops.sum(x))
    path = problem.run(5)
    steps = np.diff(np.concatenate([np.zeros((1, DIM)), path]), axis=0)
    np.testing.assert_allclose(np.sqrt(np.mean(steps**2, axis=1)), 0.1, rtol=1e-5)
    assert int(ops.convert_to_numpy(opt._pairs)) == 0


@pytest.mark.parametrize("spec", ["adam", "lbfgs", "nadam"])
def test_reset_gives_the_fresh_trajectory_without_a_retrace(spec):
    opt = keras.optimizers.Nadam(0.05) if spec == "nadam" else spec
    start = np.linspace(-1, 1, DIM).astype("float32")
    problem = Problem(opt, quadratic(condition=10.0), start=start)
    first = problem.run(8)
    problem.x.assign(start)
    problem.opt.reset()
    assert problem.opt.iterations == 0
    second = problem.run(8)
    np.testing.assert_allclose(second, first, rtol=1e-6, atol=1e-7)
    assert problem.traces == 1


@pytest.mark.parametrize("spec", ["adam", "sgd", "lbfgs"])
def test_set_learning_rate_changes_the_step_without_a_retrace(spec):
    problem = Problem(spec, lambda x: ops.sum(x))
    problem.opt.set_learning_rate(0.01)
    small = problem.run(1)[0]
    problem.x.assign(np.zeros(DIM, "float32"))
    problem.opt.reset()
    problem.opt.set_learning_rate(0.04)
    large = problem.run(1)[0]
    np.testing.assert_allclose(large, 4 * small, rtol=1e-5)
    assert small[0] < 0
    assert problem.traces == 1
    assert problem.opt.learning_rate == pytest.approx(0.04)


def test_reset_restores_the_starting_learning_rate_and_defaults_are_per_optimizer():
    adam = optimizers.get("adam")
    adam.set_learning_rate(0.3)
    adam.reset()
    assert adam.learning_rate == pytest.approx(optimizers.ADAM_LEARNING_RATE)
    assert optimizers.get("lbfgs").learning_rate == optimizers.LBFGS_LEARNING_RATE
    sgd = optimizers.get("SGD", learning_rate=0.2)
    assert (sgd.name, sgd.learning_rate, sgd.optimizer.momentum) == ("sgd", pytest.approx(0.2), 0.9)
    assert optimizers.get(keras.optimizers.RMSprop(0.125)).learning_rate == 0.125


def test_a_keras_optimizer_serves_two_sets_of_variables():
    keras_opt = keras.optimizers.Adam(0.1)
    small, large = keras.Variable(np.ones(3, "float32")), keras.Variable(np.ones(5, "float32"))
    first, second = optimizers.get(keras_opt), optimizers.get(keras_opt)
    first.build([small])
    second.build([large])
    first.apply([ops.ones(3)], [small])
    second.apply([ops.ones(5)], [large])
    np.testing.assert_allclose(ops.convert_to_numpy(small), 0.9, rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(large), 0.9, rtol=1e-5)
    assert second.learning_rate == pytest.approx(0.1)


def test_normalize_gradients_divides_by_the_standard_deviation():
    grads = [ops.convert_to_tensor([[1.0, 3.0], [1.0, 3.0]]), None, ops.convert_to_tensor([0.0, 0.0, 4.0, 4.0])]
    normalized = optimizers.normalize_gradients(grads)
    np.testing.assert_allclose(ops.convert_to_numpy(normalized[0]), [[1.0, 3.0], [1.0, 3.0]], rtol=1e-6)
    assert normalized[1] is None
    np.testing.assert_allclose(ops.convert_to_numpy(normalized[2]), [0.0, 0.0, 2.0, 2.0], rtol=1e-6)


def test_unknown_names_and_bad_values_raise_clear_errors():
    with pytest.raises(ValueError, match=r"Did you mean 'adam'\?.*Received: optimizer='adma'"):
        optimizers.get("adma")
    with pytest.raises(ValueError, match=r"Did you mean 'lbfgs'"):
        optimizers.get("bfgs")
    with pytest.raises(TypeError, match="Received: optimizer=3"):
        optimizers.get(3)
    for bad in (0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"`learning_rate` to be a finite number > 0"):
            optimizers.get("sgd", learning_rate=bad)
    with pytest.raises(ValueError, match="Received: learning_rate=0"):
        optimizers.get("lbfgs").set_learning_rate(0)
    with pytest.raises(ValueError, match="Received: history=0"):
        optimizers.LBFGS(history=0)
