"""The `Objective` class and its algebra, plus the helpers every objective in the package is built from.

An objective scores the network's activations for a batch of images: higher is better. Objectives
combine linearly, `channel("block4_conv3", 42) - 1e-3 * total_variation()`, and every weight in such a
combination is a knob, so a new weight reuses the renderer's compiled step. Users import all of this
from `lucidwidget.optvis.objectives`; the feature objectives (`library`), the penalties (`penalties`)
and the expression parser (`expression`) share it.
"""

from __future__ import annotations

import copy
import difflib
import functools

import numpy as np
from keras import ops

from lucidwidget.checks import is_number, whole
from lucidwidget.optvis.knobs import Knobbed, split, split_knobs

SPECIAL_INPUTS = ("input", "image")
"""Names `T` answers besides model layers: the transformed model input and the raw parameterised image."""


class Objective(Knobbed):
    """A differentiable score of activations; the renderer maximises it.

    Args:
        fn: `fn(T, *knobs) -> scalar tensor`. `T(name)` returns a layer's activations for the whole
            batch, `T("input")` the transformed image fed to the model and `T("image")` the image
            before transforms. The knobs arrive as backend tensors (or NumPy arrays), so `fn` must
            index with them through `keras.ops` (`ops.take`) rather than use them as Python ints.
        knobs: numbers or arrays that may change without recompiling (channel index, weight, ...).
        key: hashable description of everything in `fn` that is not a knob. Defaults to the identity
            of `fn`, which is safe but never shared between two objectives.
        description: readable text shown in progress logs and `repr`. Defaults to `fn.__name__`.
        layers: the model layers `fn` reads; `"input"` and `"image"` are dropped, as they are always
            available.
        checks: callables `check(shapes, batch)` that raise `ValueError` for settings that cannot
            work on a given model; see `validate`.
        references: images the objective compares with (`reference.Reference`s). The renderer computes
            each one's value (its images' activations at its layer, or a statistic of them) at the
            render's size and passes the values to `fn` after the knobs: `fn(T, *knobs, *values)`.
            Defaults to none.
        items: `items(T, *knobs) -> (batch,)` each batch item's own score (see `per_item`), or None
            when the objective scores the batch as a whole (diversity, alignment). Defaults to None.

    Example:

    ```python
    obj = Objective(lambda T: keras.ops.mean(T("block4_conv3")), layers=["block4_conv3"],
                    description="mean block4_conv3")
    obj = obj - 1e-3 * total_variation()
    ```
    """

    def __init__(self, fn, knobs=(), key=None, description=None, layers=(), checks=(), references=(),
                 items=None):
        if not callable(fn):
            raise TypeError(f"Expected a callable `fn(T, *knobs)`. Received: fn={fn!r}")
        super().__init__(fn, knobs, key)
        self.description = description if description is not None else getattr(fn, "__name__", "objective")
        self.layers = frozenset(layers) - set(SPECIAL_INPUTS)
        self.references = tuple(references)
        self._checks = tuple(checks)
        self._items = items
        self._terms = None

    @property
    def signature(self) -> tuple:
        """The knobs' structure, plus each reference's (its layer, statistic and image count)."""
        if not self.references:
            return super().signature
        return (*super().signature, tuple(reference.signature for reference in self.references))

    def __call__(self, T, reference_activations=()):
        """Evaluates the objective on `T` with its own knobs.

        Args:
            T: a function of a layer name returning its activations (see the class docstring).
            reference_activations: for an objective with `references`, the activations of each one's
                images at its layer, in order (the renderer computes them from the model; see
                `Renderer.evaluate`). Defaults to none.
        """
        if len(reference_activations) != len(self.references):
            raise ValueError(
                f"The objective {self.description} compares with {len(self.references)} reference image(s), so it "
                f"needs their activations; `Renderer.evaluate` computes them from the model. "
                f"Received: {len(reference_activations)} reference activations"
            )
        values = [reference.value(ops.convert_to_tensor(acts))
                  for reference, acts in zip(self.references, reference_activations)]
        return self.fn(T, *(ops.convert_to_tensor(k) for k in self.knobs), *values)

    def with_images(self, **images):
        """This objective with the images its references compare with, by slot.

        Objectives built without an image (`caricature(layer)`, `style()`, and their expressions) refer
        to the caller's image: slot "image" for `caricature` and `content`, "style" for `style`. The
        result has the same signature, so a new photo reuses the renderer's compiled step. Slots the
        objective does not use are ignored; an image already given to an objective is kept.

        Example:
            >>> objective = as_objective("style() + 10*content(block4_conv2)")
            >>> renderer.render(objective.with_images(image=photo, style=painting))
        """
        if not self.references:
            return self
        if self._terms is not None:
            return weighted_sum([(weight, part.with_images(**images)) for weight, part in self._terms])
        bound = copy.copy(self)
        bound.references = tuple(reference.bound(images.get(reference.slot)) for reference in self.references)
        return bound

    @property
    def has_items(self) -> bool:
        """Whether `per_item` is defined: every term scores each batch item on its own."""
        return self._items is not None

    def per_item(self, T):
        """Each batch item's own score, a float32 vector `(batch,)`: what the objective gives that image
        alone, or for an objective with one unit per batch item (`channel(layer, [c0, c1, ...])`), item
        i's value of its own unit. `T("input")` gives the batch size. Sums combine their terms' scores.

        Raises:
            ValueError: a term compares the images of the batch (diversity, alignment, interpolation).
        """
        if self._items is None:
            raise ValueError(
                f"The objective {self.description} has no per-item values: a term compares the images of the "
                f"batch with each other. Received: objective={self.description!r}"
            )
        return ops.cast(self._items(T, *(ops.convert_to_tensor(k) for k in self.knobs)), "float32")

    def validate(self, shapes, batch):
        """Raises `ValueError` if the objective cannot work on a model, before any rendering.

        Args:
            shapes: `{layer name: per-example static shape}`, e.g. `{"block4_conv3": (16, 16, 512)}`.
            batch: the number of images rendered together.
        """
        for name in sorted(self.layers):
            layer_shape(shapes, name)
        for reference in self.references:
            if reference.count not in (None, 1, batch):
                raise ValueError(
                    f"Expected 1 reference image, or one per rendered image (batch={batch}), for layer "
                    f"{reference.layer!r}. Received: {reference.count} images"
                )
        for check in self._checks:
            check(shapes, batch)

    def __repr__(self):
        return f"Objective({self.description!r})"

    def _weighted_terms(self):
        return list(self._terms) if self._terms is not None else [(1.0, self)]

    def __add__(self, other):
        if _is_zero(other):
            return self
        return weighted_sum(self._weighted_terms() + _terms_of(other, "+"))

    def __radd__(self, other):
        if _is_zero(other):
            return self
        return weighted_sum(_terms_of(other, "+") + self._weighted_terms())

    def __sub__(self, other):
        if _is_zero(other):
            return self
        return weighted_sum(self._weighted_terms() + _scaled(_terms_of(other, "-"), -1.0))

    def __rsub__(self, other):
        if _is_zero(other):
            return -self
        return weighted_sum(_terms_of(other, "-") + _scaled(self._weighted_terms(), -1.0))

    def __neg__(self):
        return weighted_sum(_scaled(self._weighted_terms(), -1.0))

    def __pos__(self):
        return self

    def __mul__(self, other):
        if isinstance(other, Objective):
            raise TypeError(
                f"Cannot multiply two objectives ({self.description!r} * {other.description!r}): "
                "objectives combine linearly. Add or subtract them, or scale one by a number, e.g. "
                f"`0.5 * objective`. Received: other={other!r}"
            )
        return weighted_sum(_scaled(self._weighted_terms(), _number(other, "*")))

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, Objective):
            raise TypeError(
                f"Cannot divide an objective by an objective ({self.description!r} / "
                f"{other.description!r}): only division by a number is defined. Received: other={other!r}"
            )
        divisor = _number(other, "/")
        if divisor == 0:
            raise ZeroDivisionError(f"Cannot divide an objective by zero. Received: other={other!r}")
        return weighted_sum(_scaled(self._weighted_terms(), 1.0 / divisor))

    def __rtruediv__(self, other):
        raise TypeError(
            f"Cannot divide by an objective ({other!r} / {self.description!r}): only an objective divided "
            f"by a number is defined. Received: other={other!r}"
        )

    @staticmethod
    def sum(objectives):
        """Adds objectives: `Objective.sum([channel("l", c) for c in range(4)])`."""
        objectives = list(objectives)
        if not objectives:
            raise ValueError("Expected at least one objective to sum. Received: objectives=[]")
        terms = []
        for obj in objectives:
            terms += _terms_of(obj, "+")
        return weighted_sum(terms)


def wrap_objective(factory):
    """Turns a Lucid-style objective factory into one whose numbers are knobs.

    The decorated `factory(*args, **kwargs)` returns a function of `T`, as in Lucid. Calling the
    wrapped factory returns an `Objective` in which every numeric argument (a number, list or array of
    numbers) is a knob: `factory` is called again inside the compiled step with those arguments as
    tensors, so a new channel or weight reuses the compiled step. Every string argument is taken to
    name a layer the objective reads. Other arguments (booleans, None, functions) are part of the
    structure, and changing them compiles a new step.

    Because numeric arguments arrive as tensors, index with them (`T(layer)[..., n]` or `ops.take`)
    rather than using them as Python ints (`range(n)`).

    Example:

    ```python
    @wrap_objective
    def channel_minus_mean(layer, n_channel, weight=0.5):
        def inner(T):
            acts = T(layer)
            return keras.ops.mean(acts[..., n_channel]) - weight * keras.ops.mean(acts)
        return inner

    renderer.render(channel_minus_mean("block4_conv3", 42))   # compiles
    renderer.render(channel_minus_mean("block4_conv3", 7))    # reuses the compiled step
    ```
    """
    if not callable(factory):
        raise TypeError(f"Expected a function that returns a function of T. Received: factory={factory!r}")
    name = getattr(factory, "__name__", "objective")

    @functools.wraps(factory)
    def wrapped(*args, **kwargs):
        named = list(enumerate(args)) + sorted(kwargs.items())
        slots = [key for key, value in named if _is_knob(value)]
        fixed = tuple((key, _structure(value)) for key, value in named if not _is_knob(value))
        layers = [value for _, value in named if isinstance(value, str)]

        def fn(T, *knobs):
            values = dict(named) | dict(zip(slots, as_tensors(knobs)))
            inner = factory(*(values[i] for i in range(len(args))), **{k: values[k] for k in kwargs})
            return inner(T)

        shown = [repr(value) for value in args] + [f"{key}={value!r}" for key, value in sorted(kwargs.items())]
        return Objective(
            fn, [value for key, value in named if key in slots], key=("wrapped", factory, tuple(slots), fixed),
            description=f"{name}({', '.join(shown)})", layers=layers,
        )

    return wrapped


def _is_knob(value) -> bool:
    """Numbers and numeric arrays become knobs; booleans stay structure (they switch code paths)."""
    if is_number(value):
        return True
    if isinstance(value, (str, bytes, bool)) or value is None:
        return False
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return array.size > 0 and array.dtype != bool and np.issubdtype(array.dtype, np.number)


def _structure(value):
    """A hashable stand-in for a structural argument: itself when hashable, else its identity."""
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


def _is_zero(value) -> bool:
    return is_number(value) and value == 0


def _number(value, op) -> float:
    if not is_number(value):
        raise TypeError(
            f"Expected a number on the other side of '{op}' with an objective. Received: other={value!r}"
        )
    return float(value)


def _terms_of(value, op) -> list:
    if isinstance(value, Objective):
        return value._weighted_terms()
    if is_number(value):
        raise TypeError(
            f"Cannot use '{op}' between an objective and the number {value!r}: a constant does not change "
            f"what is optimised. Scale the objective instead, e.g. `2 * objective`. Received: other={value!r}"
        )
    raise TypeError(f"Expected an Objective on both sides of '{op}'. Received: other={value!r}")


def _scaled(terms, factor) -> list:
    return [(weight * factor, part) for weight, part in terms]


def _format_sum(terms) -> str:
    pieces = []
    for i, (weight, part) in enumerate(terms):
        magnitude = abs(weight)
        text = part.description if magnitude == 1 else f"{magnitude:.4g} * {part.description}"
        if i == 0:
            pieces.append(f"-{text}" if weight < 0 else text)
        else:
            pieces.append(f" - {text}" if weight < 0 else f" + {text}")
    return "".join(pieces)


def weighted_sum(terms) -> Objective:
    """`sum(weight * part)` over `(weight, objective)` pairs; the weights are one vector knob.

    Sums are kept flat, so `2 * (a + b) / 3` and `a - 0.5 * b` are both a weight vector over `[a, b]`:
    any change of numbers keeps the signature, and signs or weights never retrace.
    """
    parts = [part for _, part in terms]
    weights = np.array([weight for weight, _ in terms], np.float32)
    knob_count = sum(len(part.knobs) for part in parts)

    def fn(T, *arguments):
        weights, *arguments = as_tensors(arguments)
        knobs, references = arguments[:knob_count], arguments[knob_count:]
        own_knobs = split_knobs(knobs, parts)
        own_references = split(references, [len(part.references) for part in parts])
        values = [ops.cast(part.fn(T, *own, *refs), "float32")
                  for part, own, refs in zip(parts, own_knobs, own_references)]
        return ops.sum(weights * ops.stack(values))

    def items(T, *knobs):
        weights, *knobs = as_tensors(knobs)
        values = [ops.cast(part._items(T, *own), "float32") for part, own in zip(parts, split_knobs(knobs, parts))]
        return ops.sum(weights[:, None] * ops.stack(values), axis=0)

    combined = Objective(
        fn,
        (weights, *(k for part in parts for k in part.knobs)),
        key=("sum", tuple(part.signature for part in parts)),
        description=_format_sum(terms),
        layers=frozenset().union(*(part.layers for part in parts)),
        checks=tuple(part.validate for part in parts),
        references=tuple(reference for part in parts for reference in part.references),
        items=items if all(part.has_items for part in parts) else None,
    )
    combined._terms = tuple(terms)
    return combined


def leaf(kind, layers, compute, knobs=(), *, description, checks=(), batch=None, structure=(), references=(),
         items=True):
    """Builds a library objective from `compute(T, *knobs, *reference_values) -> scalar`.

    With `batch` set, `compute` sees only that batch item (as a batch of one) and the index becomes an
    extra knob, so targeting another item does not retrace.

    Args:
        kind: the objective's name; with `layers` and `structure` it forms the signature key, so it must
            capture everything `compute` does that is not a knob.
        layers: names `compute` reads, model layers or `"input"`/`"image"`.
        compute: the computation on the (batch-selected) `T`.
        knobs: values passed to `compute` after `T`.
        description: readable text.
        checks: `check(shapes, batch)` callables; see `Objective.validate`.
        batch: `None` for the whole batch, or the index of one batch item.
        structure: extra hashable settings that change the computation (not knobs).
        references: `reference.Reference`s whose values `compute` receives after the knobs; only with
            `batch=None`.
        items: `compute` treats the batch items alike and alone (a mean of per-item terms), so an item's
            own score (`Objective.per_item`) is `compute` on that item as a batch of one; False for
            objectives that compare items (no per-item values), or a function `items(T, *knobs) ->
            (batch,)` of the objective's own. Defaults to True; objectives with `references` have none.
    """
    layers = tuple(layers)
    knobs = list(knobs)
    checks = list(checks)

    if batch is None:
        def fn(T, *knobs):
            return compute(T, *as_tensors(knobs))

        def each(T, *knobs):
            knobs = as_tensors(knobs)
            return ops.stack([compute(_BatchItem(T, ops.convert_to_tensor([i])), *knobs) for i in _items_of(T)])
    else:
        batch = whole(batch, "batch", 0)
        knobs.append(batch)
        checks.append(_batch_index_check(batch))
        description = f"{description} [batch {batch}]"

        def fn(T, *knobs):
            *knobs, item = as_tensors(knobs)
            return compute(_BatchItem(T, ops.reshape(item, (1,))), *knobs)

        def each(T, *knobs):
            chosen = ops.equal(ops.arange(len(_items_of(T))), ops.cast(knobs[-1], "int32"))
            return ops.where(chosen, ops.cast(fn(T, *knobs), "float32"), 0.0)

    if callable(items):
        def each(T, *knobs):
            return items(T, *as_tensors(knobs))

    key = (kind, layers, tuple(structure), batch is not None)
    return Objective(fn, knobs, key=key, description=description, layers=layers, checks=checks,
                     references=references, items=each if items and not references else None)


def _items_of(T):
    """The batch items of `T`, from the model input's static batch size."""
    return range(T("input").shape[0])


class _BatchItem:
    """`T` restricted to one batch item (kept as a batch of one)."""

    def __init__(self, T, item):
        self._T, self._item = T, item

    def __call__(self, name):
        return ops.take(self._T(name), self._item, axis=0)

    def units(self, name, index):
        return ops.take(units(self._T, name, index), self._item, axis=0)


def as_tensors(knobs) -> list:
    """Knob values as backend tensors: the renderer passes tensors, a direct call NumPy arrays."""
    return [ops.convert_to_tensor(k) for k in knobs]


def activation(T, name):
    """`T(name)` as float32, so objectives behave the same under mixed precision."""
    return ops.cast(T(name), "float32")


def units(T, name, index):
    """`T(name)[..., index]` as float32, for a scalar or vector `index`.

    The renderer's `T` computes only those units when `name` is the deepest layer it evaluates and a
    plain conv or dense layer; any other callable `T` is read in full and gathered.
    """
    read = getattr(T, "units", None)
    values = read(name, index) if read is not None else ops.take(T(name), index, axis=-1)
    return ops.cast(values, "float32")


def item_axes(x) -> tuple:
    """Every axis but the batch axis, for per-item reductions."""
    return tuple(range(1, len(x.shape)))


def per_item_mean(x):
    """Mean over every axis but the first: one value per batch item."""
    return ops.mean(x, axis=item_axes(x))


def check_layer_name(layer) -> str:
    if not isinstance(layer, str) or not layer:
        raise TypeError(f"Expected a layer name (a non-empty string). Received: layer={layer!r}")
    return layer


def layer_shape(shapes, layer) -> tuple:
    """The per-example shape of `layer`, or a `ValueError` naming close matches."""
    if layer in SPECIAL_INPUTS:
        return None
    if layer not in shapes:
        close = difflib.get_close_matches(layer, list(shapes), n=3)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"No shape known for layer {layer!r}.{hint} Received: layer={layer!r}")
    return tuple(shapes[layer])


def check_in_range(noun, value, size, layer, where=""):
    """Raises if `value` is outside `[0, size - 1]`; `size=None` (unknown) passes."""
    if size is not None and not 0 <= value < size:
        raise ValueError(
            f"Expected a {noun} in [0, {size - 1}] for layer {layer!r}{where}. Received: {noun}={value}"
        )


def require_grid(shape, layer, kind):
    """Raises unless the per-example shape is a spatial grid `(height, width, channels)`."""
    if shape is not None and len(shape) != 3:
        raise ValueError(
            f"{kind} needs a layer with a spatial grid (per-example shape (height, width, channels)), but "
            f"layer {layer!r} has per-example shape {tuple(shape)}. Use channel or class_logit for it. "
            f"Received: layer={layer!r}"
        )


def channel_check(layer, index, noun="channel"):
    """A `validate` check that `index` is one of the layer's channels (its last axis)."""

    def check(shapes, batch):
        shape = layer_shape(shapes, layer)
        if shape is not None:
            check_in_range(noun, index, shape[-1], layer)

    return check


def batch_size_check(kind, minimum=2):
    """A `validate` check for objectives that compare the images of a batch with each other."""

    def check(shapes, batch):
        if batch < minimum:
            raise ValueError(
                f"{kind} needs batch >= {minimum}: it compares the images of a batch with each other. "
                f"Received: batch={batch}"
            )

    return check


def _batch_index_check(index):
    def check(shapes, batch):
        if not 0 <= index < batch:
            raise ValueError(
                f"Expected a batch index in [0, {batch - 1}] (the render has batch={batch}). "
                f"Received: batch={index}"
            )

    return check
