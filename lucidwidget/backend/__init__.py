"""The engine's backend seam: the only code that differs between TensorFlow, JAX and PyTorch.

Everything else in `models` and `optvis` is written with `keras.ops` and `keras.random`. The seam
compiles a multi-step loop that stays on the device, takes gradients with respect to the
parameterisation's variables and infers output shapes without running a model. The backend is the
one Keras is configured with (`KERAS_BACKEND`).

Engine code is written statefully with `keras.Variable`s (a parameterisation's values, optimizer
slots, a `keras.random.SeedGenerator`'s state) and names them, so each backend can keep them where it
runs best: TensorFlow captures the variables in its graph, JAX threads their values through the
compiled loop (`keras.StatelessScope`) and writes them back after each call, PyTorch runs eagerly.

    loop = backend.compile_loop(step, variables, max_count=64)   # step(index, *args) -> value
    values = loop(count, first, *args)      # steps first + 0 .. first + count - 1, one compiled call
    value, grads = backend.value_and_grad(fn, wrt, state)()   # fn() -> scalar; d fn / d wrt
    (value, aux), grads = backend.value_and_grad(fn, wrt, has_aux=True)()   # fn() -> (scalar, aux)
    compiled = backend.compile(fn, state)   # one compiled call of fn(*args); state: variables it reads
    backend.on_accelerator()                # whether the backend computes on a GPU or TPU
"""

import keras

name = keras.backend.backend()

if name == "tensorflow":
    from lucidwidget.backend._tensorflow import compile, compile_loop, eval_shape, on_accelerator, value_and_grad
elif name == "jax":
    from lucidwidget.backend._jax import compile, compile_loop, eval_shape, on_accelerator, value_and_grad
elif name == "torch":
    from lucidwidget.backend._torch import compile, compile_loop, eval_shape, on_accelerator, value_and_grad
else:
    raise ImportError(
        f"lucidwidget runs on the TensorFlow, JAX and PyTorch backends of Keras. Received: KERAS_BACKEND={name!r}"
    )

__all__ = ["compile", "compile_loop", "eval_shape", "name", "on_accelerator", "value_and_grad"]
