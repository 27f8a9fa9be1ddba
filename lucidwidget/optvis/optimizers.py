"""Optimizers behind one small adapter, so the render loop treats Adam, SGD, L-BFGS and any Keras
optimizer alike.

The render loop builds an adapter once (eagerly), calls `apply` inside its compiled step, and between
runs calls `reset` and `set_learning_rate`. Those two only assign to existing variables (`variables`,
which the compiled loop updates), so a loop compiled with the optimizer never recompiles. Everything
is written with `keras.ops`, so it runs on every Keras backend.

    opt = optimizers.get("lbfgs")
    opt.build(image_param.variables)
    opt.apply(grads, image_param.variables)   # minimises: grads are of the loss (-objective)
"""

from __future__ import annotations

import difflib
import math

import keras
from keras import ops

from lucidwidget import checks

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
    return [g if g is None else g / (ops.std(g) + NORMALIZE_EPSILON) for g in grads]


def check_learning_rate(learning_rate) -> float:
    """Returns the learning rate as a float; a `ValueError` unless it is positive and finite."""
    return checks.real(learning_rate, "learning_rate", 0, exclusive=True)


class Optimizer:
    """What the render loop needs from an optimizer.

    Subclasses create their state in `build` (eagerly) as `keras.Variable`s listed by `variables`,
    update them and the parameters in `apply` (traceable), and restore a fresh state in `reset` by
    assignment only.
    """

    name = "optimizer"

    def build(self, variables):
        raise NotImplementedError

    @property
    def variables(self) -> list:
        """The optimizer's own state variables (built), which `apply` may update."""
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
        return learning_rate if isinstance(learning_rate, keras.Variable) else None

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
            (v, ops.convert_to_numpy(v)) for v in self._optimizer.variables if v is not learning_rate
        ]

    @property
    def variables(self):
        return list(self._optimizer.variables)

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
        return float(ops.convert_to_numpy(self._optimizer.learning_rate))

    @property
    def iterations(self) -> int:
        return int(ops.convert_to_numpy(self._optimizer.iterations))


class LBFGS(Optimizer):
    """Limited-memory BFGS over all variables at once, entirely in `keras.ops`.

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
        self.history = checks.whole(history, "history", 1)
        self.initial_step_rms = checks.real(initial_step_rms, "initial_step_rms", 0, exclusive=True)
        self.max_step_rms = None if max_step_rms is None else checks.real(max_step_rms, "max_step_rms", 0, exclusive=True)
        self._initial_learning_rate = check_learning_rate(learning_rate)
        self._learning_rate = keras.Variable(self._initial_learning_rate, trainable=False, dtype="float32",
                                             name="learning_rate")
        self._state = ()
        self._built_on = None

    def build(self, variables):
        variables = list(variables)
        if self._built_on == [id(v) for v in variables]:
            return
        self._sizes = [math.prod(v.shape) for v in variables]
        size, m = sum(self._sizes), self.history

        def zeros(shape, dtype="float32"):
            return keras.Variable(ops.zeros(shape, dtype), trainable=False, dtype=dtype)

        self._s, self._y, self._rho = zeros((m, size)), zeros((m, size)), zeros((m,))
        self._x_prev, self._g_prev = zeros((size,)), zeros((size,))
        self._gamma = zeros(())
        self._head, self._pairs, self._steps = zeros((), "int32"), zeros((), "int32"), zeros((), "int32")
        self._state = (self._s, self._y, self._rho, self._x_prev, self._g_prev, self._gamma,
                       self._head, self._pairs, self._steps)
        self._built_on = [id(v) for v in variables]

    @property
    def variables(self):
        return [*self._state, self._learning_rate]

    @staticmethod
    def _flatten(values):
        return ops.concatenate([ops.reshape(ops.cast(v, "float32"), [-1]) for v in values], 0)

    def _remember(self, x, g):
        """Pushes the pair (x - x_prev, g - g_prev) when it passes the curvature test; branch-free."""
        s_rows, y_rows, rho, x_prev, g_prev, gamma, head, pairs, steps = (
            ops.convert_to_tensor(v) for v in self._state)
        s, y = x - x_prev, g - g_prev
        sy, yy = ops.dot(s, y), ops.dot(y, y)
        accept = (steps > 0) & (sy > CURVATURE_EPSILON * ops.norm(s) * ops.norm(y)) & (yy > 0)
        row = ops.logical_and(ops.equal(ops.arange(self.history, dtype="int32"), head), accept)
        safe_sy = ops.where(accept, sy, 1.0)
        self._s.assign(ops.where(row[:, None], s[None], s_rows))
        self._y.assign(ops.where(row[:, None], y[None], y_rows))
        self._rho.assign(ops.where(row, 1.0 / safe_sy, rho))
        self._gamma.assign(ops.where(accept, safe_sy / ops.where(accept, yy, 1.0), gamma))
        taken = ops.cast(accept, "int32")
        self._head.assign((head + taken) % self.history)
        self._pairs.assign(ops.minimum(pairs + taken, self.history))

    def _inverse_hessian_times(self, g):
        """Two-loop recursion: H g from the stored pairs (empty slots have rho = 0 and do nothing)."""
        s_rows, y_rows, rho, gamma, head, pairs = (
            ops.convert_to_tensor(v) for v in (self._s, self._y, self._rho, self._gamma, self._head, self._pairs))
        newest_first = [(head - 1 - i) % self.history for i in range(self.history)]
        q, alphas = g, []
        for j in newest_first:
            alpha = ops.take(rho, j) * ops.dot(ops.take(s_rows, j, axis=0), q)
            q = q - alpha * ops.take(y_rows, j, axis=0)
            alphas.append(alpha)
        rms = ops.sqrt(ops.mean(ops.square(g)))
        no_history_gamma = ops.where(rms > 0, self.initial_step_rms / ops.maximum(rms, 1e-30), 0.0)
        r = ops.where(pairs > 0, gamma, no_history_gamma) * q
        for j, alpha in zip(reversed(newest_first), reversed(alphas)):
            beta = ops.take(rho, j) * ops.dot(ops.take(y_rows, j, axis=0), r)
            r = r + (alpha - beta) * ops.take(s_rows, j, axis=0)
        return r

    def apply(self, grads, variables):
        variables = list(variables)
        grads = [ops.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        x, g = self._flatten(variables), self._flatten(grads)
        self._remember(x, g)
        step = -ops.convert_to_tensor(self._learning_rate) * self._inverse_hessian_times(g)
        if self.max_step_rms is not None:
            limit = self.max_step_rms * math.sqrt(sum(self._sizes))
            norm = ops.norm(step)
            step = step * ops.minimum(1.0, ops.where(norm > 0, limit / ops.maximum(norm, 1e-30), 0.0))
        offsets = [sum(self._sizes[:i]) for i in range(len(self._sizes) + 1)]
        for variable, start, stop in zip(variables, offsets, offsets[1:]):
            piece = ops.reshape(step[start:stop], variable.shape)
            variable.assign(variable + ops.cast(piece, variable.dtype))
        self._x_prev.assign(x)
        self._g_prev.assign(g)
        self._steps.assign(ops.convert_to_tensor(self._steps) + 1)

    def reset(self):
        for variable in self._state:
            variable.assign(ops.zeros(variable.shape, variable.dtype))
        self._learning_rate.assign(self._initial_learning_rate)

    def set_learning_rate(self, learning_rate):
        self._learning_rate.assign(check_learning_rate(learning_rate))

    @property
    def learning_rate(self) -> float:
        return float(ops.convert_to_numpy(self._learning_rate))

    @property
    def iterations(self) -> int:
        return int(ops.convert_to_numpy(self._steps)) if self._built_on is not None else 0


class Boosted(Optimizer):
    """Another optimizer whose steps ramp up, start `boost` times larger and decay back to 1x.

    Step `t` (counted from the last `reset`) is the wrapped optimizer's step scaled by
    `min(1, (t + 1) / warmup_steps) * (1 + (boost - 1) * exp(-t / decay_steps))`. Large early steps
    cover ground fast while the image is far from anything the unit likes; later ones refine it at the
    wrapped optimizer's own rate. The warm-up keeps the very first steps small: Adam's moment estimates
    then rest on a few gradients, so it moves every value by a full step whether its gradient is
    consistent or noise (the reason RAdam and most training recipes warm up). For Adam this is exactly
    a learning-rate schedule. The schedule lives in variables, so `set_schedule` never retraces a
    compiled step.

    Args:
        optimizer: the wrapped `Optimizer` adapter.
        boost: scale of the early steps, >= 1.
        decay_steps: steps over which the boost decays by a factor e, > 0.
        warmup_steps: steps over which the scale ramps up linearly from `1 / warmup_steps`; 0 or 1
            for none. Defaults to 0.
    """

    def __init__(self, optimizer, boost, decay_steps, warmup_steps=0):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Expected an Optimizer adapter to boost. Received: optimizer={optimizer!r}")
        self.wrapped = optimizer
        self.name = f"boosted {optimizer.name}"
        self._boost = keras.Variable(1.0, trainable=False, dtype="float32", name="boost")
        self._decay_steps = keras.Variable(1.0, trainable=False, dtype="float32", name="decay_steps")
        self._warmup_steps = keras.Variable(1.0, trainable=False, dtype="float32", name="warmup_steps")
        self._step = keras.Variable(0.0, trainable=False, dtype="float32", name="boost_step")
        self.set_schedule(boost, decay_steps, warmup_steps)

    def set_schedule(self, boost, decay_steps, warmup_steps=0):
        """Sets the early steps' scale, the decay length and the warm-up length (no retrace)."""
        self._boost.assign(checks.real(boost, "boost", 1))
        self._decay_steps.assign(checks.real(decay_steps, "decay_steps", 0, exclusive=True))
        self._warmup_steps.assign(max(1.0, checks.real(warmup_steps, "warmup_steps", 0)))

    def build(self, variables):
        self.wrapped.build(variables)

    @property
    def variables(self):
        return [*self.wrapped.variables, self._boost, self._decay_steps, self._warmup_steps, self._step]

    def apply(self, grads, variables):
        boost, decay_steps, warmup_steps, step = (
            ops.convert_to_tensor(v) for v in (self._boost, self._decay_steps, self._warmup_steps, self._step)
        )
        warmup = ops.minimum(1.0, (step + 1.0) / warmup_steps)
        scale = warmup * (1.0 + (boost - 1.0) * ops.exp(-step / decay_steps))
        before = [ops.copy(v) for v in variables]
        self.wrapped.apply(grads, variables)
        for variable, old in zip(variables, before):
            variable.assign(old + scale * (variable - old))
        self._step.assign(step + 1.0)

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
