"""PyTorch: eager autograd; the loop is a Python loop of steps on the tensors' device."""

import keras
import torch
from torch._subclasses.fake_tensor import (
    DynamicOutputShapeException,
    FakeTensorMode,
    UnsupportedFakeTensorException,
)


def value_and_grad(fn, wrt, state=(), has_aux=False):
    """`g(*args) -> (value, grads)`: `fn(*args)` and its gradient with respect to the variables `wrt`.

    `state` lists other variables `fn` may update; PyTorch updates them in place. With `has_aux`,
    `fn` returns `(value, aux)` and `g` returns `((value, aux), grads)`.
    """
    wrt = list(wrt)

    def wrapped(*args):
        params = [v.value for v in wrt]
        with torch.enable_grad():
            outputs = fn(*args)
            value = outputs[0] if has_aux else outputs
            grads = torch.autograd.grad(value, params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        return keras.tree.map_structure(lambda t: t.detach() if torch.is_tensor(t) else t, outputs), grads

    return wrapped


def compile_loop(step, variables, max_count, jit_compile=None):
    """Runs `count` steps of `step(index, *args) -> value` eagerly (the variables update in place) and
    returns the values as one vector. Nothing is compiled: `loop.traces` is 1 once it has run."""

    def loop(count, first, *args):
        loop.traces = 1
        values = [torch.as_tensor(step(first + i, *args), dtype=torch.float32).detach().reshape(())
                  for i in range(int(count))]
        return torch.stack(values)

    loop.traces = 0
    return loop


def compile(fn, state=(), jit_compile=None):
    """`compiled(*args)`: `fn(*args)` run eagerly without recording gradients (a gradient inside `fn`,
    from `value_and_grad`, records its own). Nothing is compiled: `compiled.traces` is 1 once it ran."""

    def compiled(*args):
        compiled.traces = 1
        with torch.no_grad():
            return fn(*args)

    compiled.traces = 0
    return compiled


def eval_shape(fn, *specs):
    """Output shapes of `fn` on inputs of `specs` ((shape, dtype) pairs), without computing values.

    Runs `fn` on fake tensors (shapes and dtypes only; the model's real weights are read as they are),
    so probing a large image costs nothing; an operation that fake tensors do not support falls back to
    running on zeros.
    """
    try:
        with FakeTensorMode(allow_non_fake_inputs=True):
            return _shapes(fn, specs)
    except (UnsupportedFakeTensorException, DynamicOutputShapeException):
        return _shapes(fn, specs)


def _shapes(fn, specs):
    inputs = [keras.ops.zeros(shape, dtype) for shape, dtype in specs]
    with torch.no_grad():
        outputs = fn(*inputs)
    return keras.tree.map_structure(lambda t: tuple(t.shape), outputs)


def on_accelerator():
    """Whether tensors live on a GPU (CUDA or Apple's MPS), as Keras places them."""
    return torch.cuda.is_available() or (hasattr(torch.backends, "mps") and torch.backends.mps.is_available())
