"""Argument checks shared by the engine, the widget and the command line.

Each check returns the value in its canonical type or raises one sentence in the Keras form: what was
expected, then `Received: name=value`. A value of the wrong kind raises `TypeError`, a value out of
range `ValueError`.
"""

from __future__ import annotations

import difflib
import math
import numbers

import numpy as np


def is_number(value) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_whole(value) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _bound(minimum, exclusive):
    if minimum is None:
        return ""
    return f" > {minimum}" if exclusive else f" >= {minimum}"


def whole(value, name, minimum=0, *, integral_floats=False) -> int:
    """`value` as an int >= `minimum`; `integral_floats` also accepts `12.0` (sliders send floats)."""
    accepted = is_whole(value) or (integral_floats and is_number(value) and float(value).is_integer())
    if not accepted:
        raise TypeError(f"Expected `{name}` to be a whole number{_bound(minimum, False)}. Received: {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"Expected `{name}` to be a whole number >= {minimum}. Received: {name}={value!r}")
    return int(value)


def real(value, name, minimum=None, *, exclusive=False) -> float:
    """`value` as a finite float, optionally >= `minimum` (> with `exclusive`)."""
    if not is_number(value):
        raise TypeError(f"Expected `{name}` to be a number{_bound(minimum, exclusive)}. Received: {name}={value!r}")
    too_small = minimum is not None and (value <= minimum if exclusive else value < minimum)
    if too_small or not math.isfinite(value):
        raise ValueError(
            f"Expected `{name}` to be a finite number{_bound(minimum, exclusive)}. Received: {name}={value!r}"
        )
    return float(value)


def reals(values, name, minimum=None, *, exclusive=False) -> np.ndarray:
    """A non-empty list of numbers, each checked like `real`, as a float32 array."""
    if is_number(values) or isinstance(values, str):
        raise TypeError(f"Expected `{name}` to be a list of numbers. Received: {name}={values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"Expected `{name}` to be a non-empty list of numbers. Received: {name}={values!r}")
    for value in values:
        real(value, name, minimum, exclusive=exclusive)
    return np.asarray(values, np.float32)


def choice(value, name, choices):
    """`value` if it is one of `choices` (strings compared case-insensitively), with a close match."""
    key = value.lower() if isinstance(value, str) else value
    if key in choices:
        return key
    close = difflib.get_close_matches(str(key), [str(c) for c in choices], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"Unknown {name}. Expected one of {', '.join(repr(c) for c in choices)}.{hint} Received: {name}={value!r}"
    )
