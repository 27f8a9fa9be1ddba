"""JAX: `jax.jit` around a `lax.while_loop` that threads the variables' values, `jax.value_and_grad`
inside a `keras.StatelessScope`, `jax.eval_shape`."""

import threading

import jax
import jax.numpy as jnp
import keras


_TRACING = threading.local()
"""`variables`: those of the compiled loop this thread is tracing; a gradient inside the loop must see
their traced values, not the variables' stored ones."""


def _values(variables):
    """The variables' current values: from the active stateless scope when one maps them."""
    return [v.value for v in variables]


def value_and_grad(fn, wrt, state=()):
    """`g(*args) -> (value, grads)`: `fn(*args)` and its gradient with respect to the variables `wrt`.

    `state` lists other variables `fn` may update (a seed generator's state); their new values, and
    those of the enclosing compiled loop's variables, are assigned after the gradient is taken.
    """
    wrt = list(wrt)

    def wrapped(*args):
        ids = {id(v) for v in wrt}
        others = list({id(v): v for v in [*state, *getattr(_TRACING, "variables", ())] if id(v) not in ids}.values())

        def pure(params, values, *args):
            with keras.StatelessScope([*zip(wrt, params), *zip(others, values)]) as scope:
                value = fn(*args)
                updated = [scope.get_current_value(v) for v in others]
            return value, updated

        (value, updated), grads = jax.value_and_grad(pure, has_aux=True)(_values(wrt), _values(others), *args)
        for variable, new in zip(others, updated):
            variable.assign(new)
        return value, grads

    return wrapped


def compile_loop(step, variables, max_count, jit_compile=None):
    """One compiled call runs `count` (<= `max_count`) steps of `step(index, *args) -> value` on the
    device, threading the values of `variables` (everything `step` updates) through the loop, and
    returns the per-step values. `loop.traces` counts compiles."""
    variables = list(variables)

    def run(count, first, values, *args):
        loop.traces += 1
        outputs = jnp.zeros((max_count,), jnp.float32)

        def body(carry):
            i, values, outputs = carry
            _TRACING.variables = variables
            try:
                with keras.StatelessScope(list(zip(variables, values))) as scope:
                    value = step(first + i, *args)
                    updated = [scope.get_current_value(v) for v in variables]
            finally:
                _TRACING.variables = ()
            values = [u if u is not None else v for u, v in zip(updated, values)]
            return i + 1, values, outputs.at[i].set(jnp.asarray(value, jnp.float32))

        _, values, outputs = jax.lax.while_loop(lambda carry: carry[0] < count, body, (0, values, outputs))
        return values, outputs

    compiled = jax.jit(run, donate_argnums=2)

    def loop(count, first, *args):
        values, outputs = compiled(jnp.int32(count), jnp.int32(first), [v.value for v in variables], *args)
        for variable, value in zip(variables, values):
            variable.assign(value)
        return outputs[:count]

    loop.traces = 0
    return loop


def eval_shape(fn, *specs):
    """Output shapes of `fn` on inputs of `specs` ((shape, dtype) pairs), without running it."""
    structs = [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in specs]
    return jax.tree_util.tree_map(lambda s: tuple(s.shape), jax.eval_shape(fn, *structs))
