"""JAX: `jax.jit` around a `lax.while_loop` that threads the variables' values, `jax.jit` for one
compiled call, `jax.value_and_grad` inside a `keras.StatelessScope`, `jax.eval_shape`."""

import threading

import jax
import jax.numpy as jnp
import keras


LOOP_ON_CPU = False
"""Whether a CPU runs a call's steps in one `lax.while_loop` as accelerators do. It does not: XLA's CPU
backend ran vgg16-hed's `block4_conv3` input gradient (128 px, batch 1, 2-core CPU) at 3.1 steps/s
inside a `fori_loop` against 10.0 steps/s as a Python loop of one jitted step, whose dispatch costs
microseconds against a step's ~100 ms."""

_TRACING = threading.local()
"""`variables`: those of the compiled loop this thread is tracing; a gradient inside the loop must see
their traced values, not the variables' stored ones."""


def _values(variables):
    """The variables' current values: from the active stateless scope when one maps them."""
    return [v.value for v in variables]


def value_and_grad(fn, wrt, state=(), has_aux=False):
    """`g(*args) -> (value, grads)`: `fn(*args)` and its gradient with respect to the variables `wrt`.

    `state` lists other variables `fn` may update (a seed generator's state); their new values, and
    those of the enclosing compiled loop's variables, are assigned after the gradient is taken. With
    `has_aux`, `fn` returns `(value, aux)` and `g` returns `((value, aux), grads)`.
    """
    wrt = list(wrt)

    def wrapped(*args):
        ids = {id(v) for v in wrt}
        others = list({id(v): v for v in [*state, *getattr(_TRACING, "variables", ())] if id(v) not in ids}.values())

        def pure(params, values, *args):
            with keras.StatelessScope([*zip(wrt, params), *zip(others, values)]) as scope:
                outputs = fn(*args)
                updated = [scope.get_current_value(v) for v in others]
            value, aux = outputs if has_aux else (outputs, None)
            return value, (aux, updated)

        (value, (aux, updated)), grads = jax.value_and_grad(pure, has_aux=True)(
            _values(wrt), _values(others), *args)
        for variable, new in zip(others, updated):
            variable.assign(new)
        return ((value, aux) if has_aux else value), grads

    return wrapped


def compile_loop(step, variables, max_count, jit_compile=None):
    """One call runs `count` (<= `max_count`) steps of `step(index, *args) -> value` on the device,
    threading the values of `variables` (everything `step` updates) through `keras.StatelessScope`, and
    returns the per-step values. On a GPU or TPU the steps run in one `lax.while_loop` under `jax.jit`;
    on a CPU each step is a call of one compiled step (see `LOOP_ON_CPU`). `loop.traces` counts
    compiles."""
    variables = list(variables)

    def one_step(index, values, *args):
        _TRACING.variables = variables
        try:
            with keras.StatelessScope(list(zip(variables, values))) as scope:
                value = step(index, *args)
                values = [scope.get_current_value(v) for v in variables]     # the scope maps every one
        finally:
            _TRACING.variables = ()
        return values, jnp.asarray(value, jnp.float32)

    def run(count, first, values, *args):
        loop.traces += 1
        outputs = jnp.zeros((max_count,), jnp.float32)

        def body(carry):
            i, values, outputs = carry
            values, value = one_step(first + i, values, *args)
            return i + 1, values, outputs.at[i].set(value)

        _, values, outputs = jax.lax.while_loop(lambda carry: carry[0] < count, body, (0, values, outputs))
        return values, outputs

    def traced_step(index, values, *args):
        loop.traces += 1
        return one_step(index, values, *args)

    on_device = LOOP_ON_CPU or jax.default_backend() != "cpu"
    compiled = jax.jit(run if on_device else traced_step, donate_argnums=2 if on_device else 1)

    def loop(count, first, *args):
        values = _values(variables)
        if on_device:
            values, outputs = compiled(jnp.int32(count), jnp.int32(first), values, *args)
            outputs = outputs[:count]
        else:
            outputs = []
            for index in range(first, first + count):
                values, value = compiled(jnp.int32(index), values, *args)
                outputs.append(value)
            outputs = jnp.stack(outputs)
        for variable, value in zip(variables, values):
            variable.assign(value)
        return outputs

    loop.traces = 0
    return loop


def compile(fn, state=(), jit_compile=None):
    """`compiled(*args)`: `fn(*args)` under `jax.jit`, with the current values of the variables `fn`
    reads (`state`, e.g. a model's weights) passed in through a `keras.StatelessScope` on every call,
    so new values are seen without recompiling and never become constants of the program. `fn` must
    not update them. Arguments of new shapes compile again; `compiled.traces` counts compiles."""
    state = list(state)

    def pure(values, *args):
        compiled.traces += 1
        _TRACING.variables = state
        try:
            with keras.StatelessScope(list(zip(state, values))):
                return fn(*args)
        finally:
            _TRACING.variables = ()

    function = jax.jit(pure)

    def compiled(*args):
        return function(_values(state), *args)

    compiled.traces = 0
    return compiled


def eval_shape(fn, *specs):
    """Output shapes of `fn` on inputs of `specs` ((shape, dtype) pairs), without running it."""
    structs = [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in specs]
    return jax.tree_util.tree_map(lambda s: tuple(s.shape), jax.eval_shape(fn, *structs))


def on_accelerator():
    """Whether JAX computes on a GPU or TPU."""
    return jax.default_backend() != "cpu"
