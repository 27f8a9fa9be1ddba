"""Computing only the output units an objective reads, for the deepest layer of a tap.

A channel objective on `block4_conv3` reads one of its 512 output channels. When nothing after that
layer runs, the tap can defer the layer and compute just the requested units: a convolution with one
column of the kernel instead of all 512, about an eighth of VGG16's work up to that layer, forward
and backward. The full value stays available (and is computed once) for objectives that need it.
"""

import keras
from keras import ops

from lucidwidget.models import activations

_SLICEABLE_CALLS = (keras.layers.Conv2D.call, keras.layers.Dense.call)
"""Layer `call`s whose output unit `k` depends on column `k` of the kernel (and bias) alone."""


def slices_units(layer):
    """Whether `unit_slice` reproduces `layer`'s pre-activation units exactly.

    True for plain (ungrouped, channels-last, unquantized) `Conv2D`, `Conv3D` and `Dense` layers and
    subclasses that keep their `call`.
    """
    call = getattr(type(layer), "call", None)
    return (
        any(call is sliceable for sliceable in _SLICEABLE_CALLS)
        and getattr(layer, "groups", 1) == 1
        and getattr(layer, "data_format", "channels_last") == "channels_last"
        and getattr(layer, "quantization_mode", None) is None
        and layer.built
    )


def unit_slice(layer, inputs, index):
    """`layer`'s pre-activation output units `index` (an int, a vector, or a scalar/vector tensor), from
    its input alone.

    A scalar index drops the unit axis, as `ops.take(outputs, index, axis=-1)` would.
    """
    index = ops.convert_to_tensor(index, "int32")
    columns = ops.reshape(index, (-1,))
    kernel = ops.cast(ops.take(layer.kernel, columns, axis=-1), inputs.dtype)
    if isinstance(layer, keras.layers.Dense):
        outputs = ops.matmul(inputs, kernel)
    else:
        outputs = layer.convolution_op(inputs, kernel)
    if layer.bias is not None:
        outputs = outputs + ops.cast(ops.take(layer.bias, columns), outputs.dtype)
    return outputs[..., 0] if len(index.shape) == 0 else outputs


class DeferredLayer:
    """A tapped layer call that nothing downstream reads, computed in the form an objective asks for.

    Args:
        layer: the layer called.
        compute: computes the tapped value from the call's arguments (the layer, or its linear twin).
        args, kwargs: the call's arguments.
    """

    def __init__(self, layer, compute, args, kwargs):
        self.layer, self._compute, self._args, self._kwargs = layer, compute, args, kwargs
        self._full = None

    def full(self):
        """The whole tapped value, computed on first use."""
        if self._full is None:
            self._full = self._compute(*self._args, **self._kwargs)
        return self._full

    def units(self, index):
        """Units `index` of the last axis: sliced from the full value once it exists, else computed alone."""
        if self._full is not None:
            return ops.take(self._full, index, axis=-1)
        return unit_slice(self.layer, self._args[0], index)


def can_defer(layer, tapped_preactivation):
    """Whether a tapped call of `layer` whose outputs nothing reads may be deferred.

    Units are sliced before any activation, so the tapped value must be the pre-activation (or the
    layer must have none).
    """
    return slices_units(layer) and (tapped_preactivation or activations.fused_activation(layer) is None)


class TapReading:
    """The activations from one forward pass of a tap: `reading[name]` or `reading.units(name, index)`."""

    def __init__(self, values):
        self._values = values

    def __contains__(self, name):
        return name in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __getitem__(self, name):
        value = self._values[name]
        return value.full() if isinstance(value, DeferredLayer) else value

    def units(self, name, index):
        """`self[name][..., index]`, computing only those units when the layer was deferred."""
        value = self._values[name]
        if isinstance(value, DeferredLayer):
            return value.units(index)
        return ops.take(value, index, axis=-1)

    def as_dict(self):
        """Every activation in full, in forward order."""
        return {name: self[name] for name in self._values}
