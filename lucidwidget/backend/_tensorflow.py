"""TensorFlow: `tf.function` around a `tf.while_loop` that captures the variables and updates them in
place, `tf.function` for one compiled call, `tf.GradientTape`, concrete-function shapes."""

import logging

import keras
import tensorflow as tf

OWN_FUNCTIONS = ("compile.<locals>.traced", "compile_loop.<locals>.run")
"""How TensorFlow names the Python functions this module compiles, in its log messages."""


class _OwnRetracing(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning about this module's functions.

    Every compiled pass or loop here is its own `tf.function`, traced once per structure by design
    (`traces` counts it). TensorFlow's frequent-retracing detector keys on the Python code object, which
    all of them share, so after five distinct passes (a heat map, a layer's channels, the top outputs)
    it warns about "retracing" that is not happening; the warning would print in every notebook.
    TensorFlow's other messages, and this one about the user's own functions, pass.
    """

    def filter(self, record):
        message = record.getMessage()
        return "triggered tf.function retracing" not in message or not any(name in message for name in OWN_FUNCTIONS)


tf.get_logger().addFilter(_OwnRetracing())


def _resource(variable):
    """The `tf.Variable` behind a `keras.Variable` (a `tf.Variable` is its own)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def value_and_grad(fn, wrt, state=(), has_aux=False):
    """`g(*args) -> (value, grads)`: `fn(*args)` and its gradient with respect to the variables `wrt`.

    `state` lists other variables `fn` may update; TensorFlow updates them in place. With `has_aux`,
    `fn` returns `(value, aux)` and `g` returns `((value, aux), grads)`.
    """
    wrt = [_resource(v) for v in wrt]

    def wrapped(*args):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(wrt)
            outputs = fn(*args)
        return outputs, tape.gradient(outputs[0] if has_aux else outputs, wrt)

    return wrapped


def compile_loop(step, variables, max_count, jit_compile=False):
    """One compiled call runs `count` (<= `max_count`) steps of `step(index, *args) -> value`; the
    graph captures `variables` and updates them in place. Returns the per-step values; `loop.traces`
    counts traces."""

    def run(count, first, *args):
        loop.traces += 1

        def body(i, outputs):
            return i + 1, outputs.write(i, tf.cast(step(first + i, *args), tf.float32))

        _, outputs = tf.while_loop(lambda i, _: i < count, body, (tf.constant(0), tf.TensorArray(tf.float32, size=count)))
        return outputs.stack()

    compiled = tf.function(run, jit_compile=jit_compile)

    def loop(count, first, *args):
        return compiled(tf.constant(count, tf.int32), tf.constant(first, tf.int32), *args)

    loop.traces = 0
    return loop


def compile(fn, state=(), jit_compile=False):
    """`compiled(*args)`: `fn(*args)` as one `tf.function`; the graph captures the variables it reads
    (`state` needs no special treatment here). A call with arguments of new shapes traces again;
    `compiled.traces` counts traces."""

    def traced(*args):
        compiled.traces += 1
        return fn(*args)

    function = tf.function(traced, jit_compile=jit_compile)

    def compiled(*args):
        return function(*args)

    compiled.traces = 0
    return compiled


def eval_shape(fn, *specs):
    """Output shapes of `fn` on inputs of `specs` ((shape, dtype) pairs), without running it."""
    concrete = tf.function(fn, autograph=False).get_concrete_function(
        *[tf.TensorSpec(shape, dtype) for shape, dtype in specs]
    )
    return tf.nest.map_structure(lambda t: tuple(t.shape), concrete.structured_outputs)


def on_accelerator():
    """Whether TensorFlow sees a GPU or TPU."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
