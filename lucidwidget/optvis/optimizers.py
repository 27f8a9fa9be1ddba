"""Optimizers behind one small adapter, so the render loop treats Adam, SGD, L-BFGS and any Keras
optimizer alike.

The render loop builds an adapter once (eagerly), calls `apply` inside its compiled step, and between
runs calls `reset` and `set_learning_rate`. Those two only assign to existing variables, so a
`tf.function` that captured the optimizer never retraces.

    opt = optimizers.get("lbfgs")
    opt.build(image_param.variables)
    opt.apply(grads, image_param.variables)   # minimises: grads are of the loss (-objective)
"""

from __future__ import annotations

import difflib
import math

import keras
import tensorflow as tf

from lucidwidget.optvis.knobs import is_number

ADAM_LEARNING_RATE = 0.05
"""Lucid's Adam step size for feature visualisation."""

SGD_LEARNING_RATE = 0.05
"""Same as Adam's, so switching optimizer keeps a comparable step; best with `normalize_gradients`."""

SGD_MOMENTUM = 0.9
"""Gradient descent with momentum, as in cnnpref's `prefer_img_gd`."""

LBFGS_LEARNING_RATE = 1.0
"""L-BFGS scales its own steps (gamma = s.y / y.y), so the full quasi-Newton step is the default."""

LBFGS_HISTORY = 10
"""Curvature pairs L-BFGS keeps; 3 to 20 is the usual range (Nocedal & Wright)."""

LBFGS_INITIAL_STEP_RMS = 0.05
"""Root-mean-square size of a step taken without curvature history (the first one): it matches Adam's
first step at its default learning rate, which moves every value by about 0.05."""

LBFGS_MAX_STEP_RMS = 0.5
"""Safeguard in place of a line search: a step's root-mean-square size is capped at 10x Adam's step,
because activation objectives are unbounded and stochastic under transforms, so a curvature estimate
can promise far more than a step delivers."""

CURVATURE_EPSILON = 1e-8
"""A pair (s, y) is kept only when s.y > CURVATURE_EPSILON * |s| |y|: the cosine test that keeps the
inverse-Hessian estimate positive definite (noisy or concave steps are skipped)."""

NORMALIZE_EPSILON = 1e-8
"""Added to a gradient's standard deviation before dividing by it (the blog seed's constant)."""


def normalize_gradients(grads):
    """Divides each gradient by its standard deviation, so the step no longer depends on its scale.

    Args:
        grads: list of gradient tensors; `None` entries pass through.

    Returns:
        A list of tensors of the same shapes.
    """
    return [g if g is None else g / (tf.math.reduce_std(g) + NORMALIZE_EPSILON) for g in grads]


def check_learning_rate(learning_rate) -> float:
    """Returns the learning rate as a float; a `ValueError` unless it is positive and finite."""
    if not is_number(learning_rate) or not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"Expected a positive, finite learning rate. Received: learning_rate={learning_rate!r}")
    return float(learning_rate)


class Optimizer:
    """What the render loop needs from an optimizer.

    Subclasses create their state in `build` (eagerly), update variables in `apply` (traceable), and
    restore a fresh state in `reset` by assignment only.
    """

    name = "optimizer"

    def build(self, variables):
        raise NotImplementedError

    def apply(self, grads, variables):
        raise NotImplementedError

    def reset(self):
        raise NotImplementedError

    def set_learning_rate(self, learning_rate):
        raise NotImplementedError

    @property
    def learning_rate(self) -> float:
        raise NotImplementedError

    @property
    def iterations(self) -> int:
        """Steps applied since the last build or reset."""
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} learning_rate={self.learning_rate:g}>"


class KerasOptimizer(Optimizer):
    """Adapter for any `keras.optimizers.Optimizer`.

    `reset()` restores every optimizer variable (iteration count, moments, Nadam's running product...)
    to its value right after `build`, and the learning rate to the one this adapter started with.
    If the wrapped optimizer was already built on other variables, `build` works on a fresh copy made
    from its config, so one Keras optimizer can serve several image sizes.

    Args:
        optimizer: the Keras optimizer.
        learning_rate: replaces the optimizer's learning rate. Defaults to None (keep its own).
    """

    def __init__(self, optimizer, learning_rate=None):
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(f"Expected a keras.optimizers.Optimizer. Received: optimizer={optimizer!r}")
        self._optimizer = optimizer
        self.name = type(optimizer).__name__.lower()
        if learning_rate is not None:
            self.set_learning_rate(learning_rate)
        fixed = self._learning_rate_variable() is not None
        self._initial_learning_rate = self.learning_rate if fixed else None
        self._built_on = None
        self._fresh_values = []

    @property
    def optimizer(self):
        """The Keras optimizer that does the work (a copy of the one given, after a rebuild)."""
        return self._optimizer

    def _learning_rate_variable(self):
        learning_rate = self._optimizer.learning_rate
        return learning_rate if isinstance(learning_rate, (keras.Variable, tf.Variable)) else None

    def build(self, variables):
        variables = list(variables)
        if self._built_on == [id(v) for v in variables]:
            return
        if self._optimizer.built:
            self._optimizer = type(self._optimizer).from_config(self._optimizer.get_config())
            if self._initial_learning_rate is not None:
                self._optimizer.learning_rate = self._initial_learning_rate
        self._optimizer.build(variables)
        self._built_on = [id(v) for v in variables]
        learning_rate = self._learning_rate_variable()
        self._fresh_values = [
            (v, tf.identity(tf.convert_to_tensor(v))) for v in self._optimizer.variables if v is not learning_rate
        ]

    def apply(self, grads, variables):
        self._optimizer.apply(grads, variables)

    def reset(self):
        for variable, value in self._fresh_values:
            variable.assign(value)
        if self._initial_learning_rate is not None:
            self._optimizer.learning_rate = self._initial_learning_rate

    def set_learning_rate(self, learning_rate):
        self._optimizer.learning_rate = check_learning_rate(learning_rate)

    @property
    def learning_rate(self) -> float:
        return float(tf.convert_to_tensor(self._optimizer.learning_rate))

    @property
    def iterations(self) -> int:
        return int(tf.convert_to_tensor(self._optimizer.iterations))


class LBFGS(Optimizer):
    """Limited-memory BFGS over all variables at once, entirely in TensorFlow ops.

    The variables are treated as one flat vector x. Each step stores the pair s = x - x_prev,
    y = g - g_prev in a ring buffer (pairs failing the curvature test are skipped), computes the
    direction -H g by the two-loop recursion with the initial inverse Hessian gamma * I,
    gamma = s.y / y.y of the newest pair, and moves by `learning_rate` times that direction.
    Without history (the first step, or after `reset`) the step is the gradient rescaled to a
    root-mean-square size of `initial_step_rms`.

    There is no line search: under random transforms the objective changes every step, so the
    Wolfe conditions cannot be checked. Instead each step's root-mean-square size is capped at
    `max_step_rms`.

    Args:
        learning_rate: multiplies the quasi-Newton step. Defaults to 1.0.
        history: curvature pairs kept. Defaults to 10.
        initial_step_rms: size of a step without history. Defaults to 0.05.
        max_step_rms: cap on a step's size, or None for no cap. Defaults to 0.5.
    """

    name = "lbfgs"

    def __init__(self, learning_rate=LBFGS_LEARNING_RATE, *, history=LBFGS_HISTORY,
                 initial_step_rms=LBFGS_INITIAL_STEP_RMS, max_step_rms=LBFGS_MAX_STEP_RMS):
        if not isinstance(history, int) or isinstance(history, bool) or history < 1:
            raise ValueError(f"Expected history to be an integer >= 1. Received: history={history!r}")
        for arg, value in (("initial_step_rms", initial_step_rms), ("max_step_rms", max_step_rms)):
            if value is not None and not (is_number(value) and math.isfinite(value) and value > 0):
                raise ValueError(f"Expected {arg} to be a positive, finite number. Received: {arg}={value!r}")
        if initial_step_rms is None:
            raise ValueError("Expected initial_step_rms to be a positive, finite number. Received: None")
        self.history = history
        self.initial_step_rms = float(initial_step_rms)
        self.max_step_rms = None if max_step_rms is None else float(max_step_rms)
        self._initial_learning_rate = check_learning_rate(learning_rate)
        self._learning_rate = tf.Variable(self._initial_learning_rate, trainable=False, dtype=tf.float32)
        self._built_on = None

    def build(self, variables):
        variables = list(variables)
        if self._built_on == [id(v) for v in variables]:
            return
        self._sizes = [math.prod(v.shape) for v in variables]
        size, m = sum(self._sizes), self.history

        def zeros(shape, dtype=tf.float32):
            return tf.Variable(tf.zeros(shape, dtype), trainable=False)

        self._s, self._y, self._rho = zeros((m, size)), zeros((m, size)), zeros((m,))
        self._x_prev, self._g_prev = zeros((size,)), zeros((size,))
        self._gamma = zeros(())
        self._head, self._pairs, self._steps = zeros((), tf.int32), zeros((), tf.int32), zeros((), tf.int32)
        self._state = (self._s, self._y, self._rho, self._x_prev, self._g_prev, self._gamma,
                       self._head, self._pairs, self._steps)
        self._built_on = [id(v) for v in variables]

    @staticmethod
    def _flatten(values):
        return tf.concat([tf.reshape(tf.cast(tf.convert_to_tensor(v), tf.float32), [-1]) for v in values], 0)

    def _remember(self, x, g):
        """Pushes the pair (x - x_prev, g - g_prev) when it passes the curvature test; branch-free."""
        s, y = x - self._x_prev, g - self._g_prev
        sy, yy = tf.tensordot(s, y, 1), tf.tensordot(y, y, 1)
        accept = (self._steps > 0) & (sy > CURVATURE_EPSILON * tf.norm(s) * tf.norm(y)) & (yy > 0)
        head = self._head
        rows = [[head]]
        self._s.scatter_nd_update(rows, [tf.where(accept, s, tf.gather(self._s, head))])
        self._y.scatter_nd_update(rows, [tf.where(accept, y, tf.gather(self._y, head))])
        safe_sy = tf.where(accept, sy, 1.0)
        self._rho.scatter_nd_update(rows, [tf.where(accept, 1.0 / safe_sy, tf.gather(self._rho, head))])
        self._gamma.assign(tf.where(accept, safe_sy / tf.where(accept, yy, 1.0), self._gamma))
        taken = tf.cast(accept, tf.int32)
        self._head.assign((head + taken) % self.history)
        self._pairs.assign(tf.minimum(self._pairs + taken, self.history))

    def _inverse_hessian_times(self, g):
        """Two-loop recursion: H g from the stored pairs (empty slots have rho = 0 and do nothing)."""
        newest_first = [(self._head - 1 - i) % self.history for i in range(self.history)]
        q, alphas = g, []
        for j in newest_first:
            alpha = tf.gather(self._rho, j) * tf.tensordot(tf.gather(self._s, j), q, 1)
            q -= alpha * tf.gather(self._y, j)
            alphas.append(alpha)
        rms = tf.sqrt(tf.reduce_mean(tf.square(g)))
        no_history_gamma = tf.math.divide_no_nan(self.initial_step_rms, rms)
        r = tf.where(self._pairs > 0, self._gamma, no_history_gamma) * q
        for j, alpha in zip(reversed(newest_first), reversed(alphas)):
            beta = tf.gather(self._rho, j) * tf.tensordot(tf.gather(self._y, j), r, 1)
            r += (alpha - beta) * tf.gather(self._s, j)
        return r

    def apply(self, grads, variables):
        variables = list(variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        x, g = self._flatten(variables), self._flatten(grads)
        self._remember(x, g)
        step = -self._learning_rate * self._inverse_hessian_times(g)
        if self.max_step_rms is not None:
            limit = self.max_step_rms * math.sqrt(sum(self._sizes))
            step *= tf.minimum(1.0, tf.math.divide_no_nan(limit, tf.norm(step)))
        for variable, piece in zip(variables, tf.split(step, self._sizes)):
            variable.assign_add(tf.cast(tf.reshape(piece, variable.shape), variable.dtype))
        self._x_prev.assign(x)
        self._g_prev.assign(g)
        self._steps.assign_add(1)

    def reset(self):
        for variable in getattr(self, "_state", ()):
            variable.assign(tf.zeros_like(variable))
        self._learning_rate.assign(self._initial_learning_rate)

    def set_learning_rate(self, learning_rate):
        self._learning_rate.assign(check_learning_rate(learning_rate))

    @property
    def learning_rate(self) -> float:
        return float(self._learning_rate.numpy())

    @property
    def iterations(self) -> int:
        return int(self._steps.numpy()) if self._built_on is not None else 0


class Boosted(Optimizer):
    """Another optimizer whose steps start `boost` times larger and decay back to 1x.

    Step `t` (counted from the last `reset`) is the wrapped optimizer's step scaled by
    `1 + (boost - 1) * exp(-t / decay_steps)`: early steps cover ground fast while the image is far
    from anything the unit likes, later ones refine it at the wrapped optimizer's own rate. For Adam
    this is exactly a learning-rate schedule. `boost` and `decay_steps` live in variables, so changing
    them with `set_schedule` never retraces a compiled step.

    Args:
        optimizer: the wrapped `Optimizer` adapter.
        boost: scale of the first step, >= 1.
        decay_steps: steps over which the boost decays by a factor e, > 0.
    """

    def __init__(self, optimizer, boost, decay_steps):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Expected an Optimizer adapter to boost. Received: optimizer={optimizer!r}")
        self.wrapped = optimizer
        self.name = f"boosted {optimizer.name}"
        self._boost = tf.Variable(1.0, trainable=False, name="boost")
        self._decay_steps = tf.Variable(1.0, trainable=False, name="decay_steps")
        self._step = tf.Variable(0.0, trainable=False, name="boost_step")
        self.set_schedule(boost, decay_steps)

    def set_schedule(self, boost, decay_steps):
        """Sets the first step's scale and the decay length (no retrace)."""
        if not is_number(boost) or not (math.isfinite(boost) and boost >= 1):
            raise ValueError(f"Expected a finite boost >= 1. Received: boost={boost!r}")
        if not is_number(decay_steps) or not (math.isfinite(decay_steps) and decay_steps > 0):
            raise ValueError(f"Expected a positive, finite number of decay steps. Received: decay_steps={decay_steps!r}")
        self._boost.assign(float(boost))
        self._decay_steps.assign(float(decay_steps))

    def build(self, variables):
        self.wrapped.build(variables)

    def apply(self, grads, variables):
        scale = 1.0 + (self._boost - 1.0) * tf.exp(-self._step / self._decay_steps)
        before = [tf.identity(v) for v in variables]
        self.wrapped.apply(grads, variables)
        for variable, old in zip(variables, before):
            variable.assign(old + scale * (variable - old))
        self._step.assign_add(1.0)

    def reset(self):
        self.wrapped.reset()
        self._step.assign(0.0)

    def set_learning_rate(self, learning_rate):
        self.wrapped.set_learning_rate(learning_rate)

    @property
    def learning_rate(self) -> float:
        return self.wrapped.learning_rate

    @property
    def iterations(self) -> int:
        return self.wrapped.iterations


OPTIMIZERS = {
    "adam": lambda lr: KerasOptimizer(keras.optimizers.Adam(ADAM_LEARNING_RATE if lr is None else lr)),
    "sgd": lambda lr: KerasOptimizer(
        keras.optimizers.SGD(SGD_LEARNING_RATE if lr is None else lr, momentum=SGD_MOMENTUM)
    ),
    "lbfgs": lambda lr: LBFGS(LBFGS_LEARNING_RATE if lr is None else lr),
}
"""Optimizer names accepted by `get`, each a factory of a learning rate (None for its default)."""


def get(spec="adam", learning_rate=None) -> Optimizer:
    """Returns an optimizer adapter for a name, a Keras optimizer or an adapter.

    Args:
        spec: "adam" (Adam), "sgd" (SGD with momentum 0.9), "lbfgs" (`LBFGS`), a
            `keras.optimizers.Optimizer` instance, or an `Optimizer` adapter (returned as is).
            Defaults to "adam".
        learning_rate: step size. Defaults to None: 0.05 for Adam and SGD, 1.0 for L-BFGS, and the
            instance's own for a Keras optimizer or an adapter.

    Example:

    >>> opt = get("sgd", learning_rate=0.1)
    >>> opt.name, opt.learning_rate
    ('sgd', 0.1)
    """
    if learning_rate is not None:
        learning_rate = check_learning_rate(learning_rate)
    if isinstance(spec, Optimizer):
        adapter = spec
    elif isinstance(spec, keras.optimizers.Optimizer):
        adapter = KerasOptimizer(spec, learning_rate)
    elif isinstance(spec, str):
        key = spec.strip().lower().replace("-", "")
        if key not in OPTIMIZERS:
            close = difflib.get_close_matches(key, OPTIMIZERS, n=2)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"Unknown optimizer {spec!r}.{hint} Expected one of {sorted(OPTIMIZERS)} or a "
                f"keras.optimizers.Optimizer instance. Received: optimizer={spec!r}"
            )
        return OPTIMIZERS[key](learning_rate)
    else:
        raise TypeError(
            f"Expected an optimizer name {sorted(OPTIMIZERS)}, a keras.optimizers.Optimizer or an "
            f"Optimizer adapter. Received: optimizer={spec!r}"
        )
    if learning_rate is not None:
        adapter.set_learning_rate(learning_rate)
    return adapter
