"""The optimizer adapter: each optimizer minimises inside tf.function, reset and learning-rate changes
never retrace, L-BFGS beats gradient descent on an ill-conditioned problem, errors are clear."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lucidwidget.optvis import optimizers

DIM = 10


def quadratic(condition, seed=0):
    """f(x) = |A x - b|^2 with singular values of A spread over [1, condition]."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    a = tf.constant(rotation * np.logspace(0, np.log10(condition), DIM), tf.float32)
    b = tf.constant(rng.normal(size=DIM), tf.float32)
    return lambda x: tf.reduce_sum(tf.square(tf.linalg.matvec(a, x) - b))


class Problem:
    """A variable, an optimizer built on it, and a compiled step that counts its traces."""

    def __init__(self, opt, loss_fn, start=None):
        self.x = tf.Variable(tf.zeros(DIM) if start is None else start)
        self.opt = optimizers.get(opt)
        self.opt.build([self.x])
        self.loss_fn = loss_fn
        self.traces = 0
        self.step = tf.function(self._step)
        self.run_loop = tf.function(self._run_loop)

    def _update(self):
        with tf.GradientTape() as tape:
            loss = self.loss_fn(self.x)
        self.opt.apply(tape.gradient(loss, [self.x]), [self.x])

    def _step(self):
        self.traces += 1
        self._update()

    def _run_loop(self, steps):
        """Many steps in one compiled while loop, as the render loop runs them."""
        self.traces += 1

        def body(i):
            self._update()
            return (i + 1,)

        tf.while_loop(lambda i: i < steps, body, (tf.constant(0),))

    def run(self, steps):
        """Returns the trajectory of x, one row per step."""
        path = []
        for _ in range(steps):
            self.step()
            path.append(self.x.numpy().copy())
        return np.array(path)

    def loss(self):
        return float(self.loss_fn(self.x))


@pytest.mark.parametrize("spec", ["adam", "sgd", "lbfgs"])
def test_each_optimizer_minimises_a_convex_quadratic(spec):
    loss_fn = quadratic(condition=3.0)
    problem = Problem(optimizers.get(spec, learning_rate=0.01 if spec == "sgd" else None), loss_fn)
    start = problem.loss()
    problem.run_loop(tf.constant(30))
    problem.run_loop(tf.constant(30))
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
    problem = Problem(optimizers.LBFGS(learning_rate=2.0), lambda x: tf.reduce_sum(x * tf.range(1.0, DIM + 1.0)))
    problem.run(1)
    step = problem.x.numpy()
    expected_direction = -np.arange(1.0, DIM + 1.0)
    np.testing.assert_allclose(step / np.linalg.norm(step), expected_direction / np.linalg.norm(expected_direction),
                               rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(np.mean(step**2)), 2.0 * optimizers.LBFGS_INITIAL_STEP_RMS, rtol=1e-5)


def test_lbfgs_caps_the_step_and_skips_pairs_without_positive_curvature():
    # A linear objective has y = 0: no pair passes the curvature test, so every step is a capped
    # gradient step and nothing becomes NaN.
    opt = optimizers.LBFGS(learning_rate=1e6, max_step_rms=0.1)
    problem = Problem(opt, lambda x: -tf.reduce_sum(x))
    path = problem.run(5)
    steps = np.diff(np.concatenate([np.zeros((1, DIM)), path]), axis=0)
    np.testing.assert_allclose(np.sqrt(np.mean(steps**2, axis=1)), 0.1, rtol=1e-5)
    assert int(opt._pairs.numpy()) == 0


@pytest.mark.parametrize("spec", ["adam", "lbfgs", "nadam"])
def test_reset_gives_the_fresh_trajectory_without_a_retrace(spec):
    opt = keras.optimizers.Nadam(0.05) if spec == "nadam" else spec
    start = tf.constant(np.linspace(-1, 1, DIM), tf.float32)
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
    problem = Problem(spec, lambda x: tf.reduce_sum(x))
    problem.opt.set_learning_rate(0.01)
    small = problem.run(1)[0]
    problem.x.assign(tf.zeros(DIM))
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
    small, large = tf.Variable(tf.ones(3)), tf.Variable(tf.ones(5))
    first, second = optimizers.get(keras_opt), optimizers.get(keras_opt)
    first.build([small])
    second.build([large])
    first.apply([tf.ones(3)], [small])
    second.apply([tf.ones(5)], [large])
    np.testing.assert_allclose(small.numpy(), 0.9, rtol=1e-5)
    np.testing.assert_allclose(large.numpy(), 0.9, rtol=1e-5)
    assert second.learning_rate == pytest.approx(0.1)


def test_normalize_gradients_divides_by_the_standard_deviation():
    grads = [tf.constant([[1.0, 3.0], [1.0, 3.0]]), None, tf.constant([0.0, 0.0, 4.0, 4.0])]
    normalized = optimizers.normalize_gradients(grads)
    np.testing.assert_allclose(normalized[0].numpy(), [[1.0, 3.0], [1.0, 3.0]], rtol=1e-6)
    assert normalized[1] is None
    np.testing.assert_allclose(normalized[2].numpy(), [0.0, 0.0, 2.0, 2.0], rtol=1e-6)


def test_unknown_names_and_bad_values_raise_clear_errors():
    with pytest.raises(ValueError, match=r"Did you mean 'adam'\?.*Received: optimizer='adma'"):
        optimizers.get("adma")
    with pytest.raises(ValueError, match=r"Did you mean 'lbfgs'"):
        optimizers.get("bfgs")
    with pytest.raises(TypeError, match="Received: optimizer=3"):
        optimizers.get(3)
    for bad in (0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive, finite learning rate"):
            optimizers.get("sgd", learning_rate=bad)
    with pytest.raises(ValueError, match="Received: learning_rate=0"):
        optimizers.get("lbfgs").set_learning_rate(0)
    with pytest.raises(ValueError, match="Received: history=0"):
        optimizers.LBFGS(history=0)
