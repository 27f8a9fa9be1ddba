"""Activation functions inside layers: pre-activation values and Lucid's redirected ReLU gradient.

Lucid visualises a layer's value *before* its non-linearity (pre-ReLU, pre-softmax logits): maximising
a post-ReLU value gives no gradient where the unit is off. Keras often fuses the activation into the
layer (`Conv2D(..., activation="relu")`), so the pre-activation needs a *linear twin*: a copy of the
layer with `activation="linear"` that shares the original's variables.
"""

import re

import keras
from keras import ops

FUSED_ACTIVATION_TYPES = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.Dense,
    keras.layers.EinsumDense,
)
"""Layers that apply an optional `activation` to an affine result (conv-like and dense layers)."""

ACTIVATION_LAYER_TYPES = (
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
)
"""Standalone activation layers: their pre-activation value is their input."""

NOT_RELU = object()
"""Returned by `relu_max_value` for activations that are not a (possibly capped) ReLU."""

_RELU_FUNCTIONS = {keras.activations.relu: None, keras.activations.relu6: 6.0}
"""Activation functions that clip at zero, mapped to their upper cap (None when uncapped)."""


def fused_activation(layer):
    """The non-linear activation fused into a conv-like or dense `layer`, or None."""
    if not isinstance(layer, FUSED_ACTIVATION_TYPES):
        return None
    activation = getattr(layer, "activation", None)
    if activation is None or activation is keras.activations.linear:
        return None
    return activation


def has_preactivation(layer):
    """Whether `layer` has a pre-activation value distinct from its output."""
    return isinstance(layer, ACTIVATION_LAYER_TYPES) or fused_activation(layer) is not None


def relu_max_value(layer):
    """The upper cap of the ReLU that `layer` applies last (None: uncapped), or `NOT_RELU`.

    Covers fused `relu`/`relu6` activations, `Activation("relu")` and plain `ReLU` layers (zero slope
    and threshold, any `max_value`): the units whose gradient redirected ReLU may change.
    """
    if isinstance(layer, keras.layers.ReLU):
        if layer.negative_slope == 0 and layer.threshold == 0:
            return None if layer.max_value is None else float(layer.max_value)
        return NOT_RELU
    if isinstance(layer, keras.layers.Activation):
        activation = layer.activation
    else:
        activation = fused_activation(layer)
    for function, cap in _RELU_FUNCTIONS.items():
        if activation is function:
            return cap
    return NOT_RELU


def linear_twin(layer):
    """A shallow copy of `layer` with a linear activation, sharing `layer`'s variables.

    Calling the twin gives the original's pre-activation; `layer.activation(twin(x))` equals
    `layer(x)` exactly. Sharing (not copying) the variables keeps the twin right after training. A
    copy, not a layer rebuilt from `get_config()`: that would need a user's custom initializers
    registered, and Keras imports TensorFlow to serialise a config wherever it is installed.
    """
    if not layer.built:
        raise ValueError(f"Layer {layer.name!r} must be built before it can be tapped. Received: layer={layer!r}")
    twin = object.__new__(type(layer))            # Keras layers pickle themselves through get_config()
    # TensorFlow name scopes refuse spaces and most punctuation, which Keras layer names may hold.
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{layer.name}_preactivation").lstrip("_-")
    twin.__dict__.update(layer.__dict__, activation=keras.activations.linear, name=name)
    return twin


def redirected_relu(activate, x, max_value, redirect):
    """`activate(x)` for a ReLU capped at `max_value`, with Lucid's redirected gradient when `redirect`.

    Early in an optimisation most ReLUs of a random image can be off for the whole example, so the
    ordinary gradient is zero and nothing moves. Where that happens, the redirected gradient passes
    the incoming gradient through anyway, except where a descent step would push an input that is
    already below 0 further down (or one already above the cap further up). Incoming gradients are of
    the loss being minimised, so "pushes down" means a positive gradient.

    Args:
        activate: the ReLU to apply (the layer's own function, so forward values are unchanged).
        x: the ReLU's input, at least rank 2 with the batch first.
        max_value: the ReLU's upper cap, or None.
        redirect: Python bool or a scalar boolean/float tensor (non-zero means on), so a compiled step
            can switch it without a retrace.

    Returns:
        `activate(x)`.
    """
    if redirect is False:
        return activate(x)

    @ops.custom_gradient
    def relu(inputs):
        def gradient(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return _redirect(inputs, upstream, max_value)

        return activate(inputs), gradient

    redirected = relu(x)
    if redirect is True:
        return redirected
    # Both branches have the same value; the switch picks whose gradient flows, without a retrace.
    return ops.where(ops.cast(redirect, "bool"), redirected, activate(x))


def _redirect(inputs, upstream, max_value):
    """The ReLU's gradient, redirected for examples whose ordinary gradient is zero everywhere."""
    passing = inputs > 0
    if max_value is not None:
        passing = ops.logical_and(passing, inputs < max_value)
    zeros = ops.zeros_like(upstream)
    ordinary = ops.where(passing, upstream, zeros)
    example_axes = tuple(range(1, len(inputs.shape)))
    blocked = ops.all(ops.equal(ordinary, 0), axis=example_axes, keepdims=True)
    wrong_way = ops.logical_and(inputs < 0, upstream > 0)
    if max_value is not None:
        wrong_way = ops.logical_or(wrong_way, ops.logical_and(inputs > max_value, upstream < 0))
    redirected = ops.where(wrong_way, zeros, upstream)
    return ops.where(blocked, redirected, ordinary)
