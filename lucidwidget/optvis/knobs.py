"""Structure + numeric knobs: the mechanism that lets a slider move without a retrace.

A `Knobbed` object is a pure function of some inputs and a tuple of numeric *knobs* (a channel index,
a weight, a jitter distance). Everything else that shapes the computation goes into its *signature*.
Two objects with equal signatures compute the same function of their knobs, so the renderer compiles
one step per signature and feeds the knobs in as tensors.
"""

from __future__ import annotations

import numpy as np


def knob_array(value) -> np.ndarray:
    """Normalises a knob value: integers become int32, everything else float32."""
    array = np.asarray(value)
    if array.dtype == bool:
        raise TypeError(f"Expected a number or an array of numbers as a knob. Received: {value!r}")
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int32)
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"Expected a number or an array of numbers as a knob. Received: {value!r}")
    return array.astype(np.float32)


def knob_spec(array: np.ndarray) -> tuple:
    """The part of a knob that belongs to the signature: its dtype and shape, never its value."""
    return (array.dtype.name, array.shape)


class Knobbed:
    """A function `fn(inputs, *knobs)` with a structural signature.

    Args:
        fn: the computation; receives the inputs, then one tensor (or array) per knob.
        knobs: numeric parameters that may change without recompiling.
        key: hashable description of everything in `fn` that is not a knob.
    """

    def __init__(self, fn, knobs=(), key=None):
        self.fn = fn
        self.knobs = tuple(knob_array(k) for k in knobs)
        self.key = key if key is not None else ("fn", id(fn))

    @property
    def signature(self) -> tuple:
        return (type(self).__name__, self.key, tuple(knob_spec(k) for k in self.knobs))



def split(values, counts) -> list[tuple]:
    """Splits a flat sequence into consecutive slices of the given lengths, in order."""
    slices, start = [], 0
    for count in counts:
        slices.append(tuple(values[start:start + count]))
        start += count
    return slices


def split_knobs(knobs, parts) -> list[tuple]:
    """Splits a flat knob sequence into consecutive slices, one per `Knobbed` part, in order."""
    return split(knobs, [len(part.knobs) for part in parts])
