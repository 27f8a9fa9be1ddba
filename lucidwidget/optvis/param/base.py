"""`ImageParam`: the object the renderer optimises, and the validation its factories share.

A parameterisation owns some `keras.Variable`s and turns them into an image batch with `keras.ops`, so
it runs on every Keras backend. The renderer's compiled loop captures those variables, so `reset` and
`assign_image` always write into the same variables (never new ones), eagerly: a new seed or a seeded
start then reuses the compiled loop without a retrace.

`reset` also takes one seed per batch item: item i then starts exactly where a batch of one reset with
seed i starts, so an image does not depend on the batch it was rendered in (the atlas relies on it).
"""

from __future__ import annotations

import functools
import numbers

import keras
import numpy as np

from lucidwidget import checks

DEFAULT_SD = 0.01
"""Lucid's standard deviation for initial values: small, so a run starts from a nearly flat grey image
and the objective, not the noise, decides what appears."""


class ImageParam:
    """An image batch computed from trainable variables.

    Subclasses implement `__call__`, `_initialize(rng)` (draw fresh initial values into the existing
    variables), `_assign(images)` (make `__call__` reproduce `images`; full batch shape, float32) and,
    when their batch items are independent, `_initialize_items(rngs)` (item i drawn with `rngs[i]`
    exactly as a batch of one would be; see `draw_items`).

    Attributes:
        variables: list of the `keras.Variable`s an optimizer should update.
        shape: `(batch, height, width, channels)` of the images `__call__` returns.
    """

    def __init__(self, shape, variables):
        self.shape = check_shape(shape)
        self.variables = list(variables)

    def __call__(self):
        """Returns the current float32 images of `self.shape` as a backend tensor; it reads the variables
        on every call, so it is traceable inside the renderer's compiled loop on every backend."""
        raise NotImplementedError

    def reset(self, seed=None):
        """Draws new initial values in place; the same `seed` always gives the same images.

        Args:
            seed: integer seed, or None for a fresh random start; or a list of one integer seed per
                batch item, which starts item i where a batch of one reset with `seed[i]` starts.
                Defaults to None.
        """
        if is_seed_list(seed):
            seeds = check_item_seeds(seed, self.shape[0])
            self._initialize_items([np.random.default_rng(s) for s in seeds])
        else:
            self._initialize(np.random.default_rng(seed))

    def assign_image(self, images):
        """Sets the variables so that `__call__()` returns `images`.

        Args:
            images: array or tensor of `self.shape`, or a single image (rank 3, or a batch of one)
                that is repeated over the batch. Resize images of another size first.
        """
        self._assign(as_image_batch(images, self.shape))

    def _initialize(self, rng: np.random.Generator):
        raise NotImplementedError

    def _initialize_items(self, rngs):
        raise ValueError(
            f"{type(self).__name__} cannot start each batch item from its own seed (its values are not one "
            f"per item); give one seed. Received: seed=[{len(rngs)} seeds]"
        )

    def _assign(self, images: np.ndarray):
        raise NotImplementedError(f"{type(self).__name__} cannot be set from images.")

    def __add__(self, other):
        if not isinstance(other, ImageParam):
            return NotImplemented
        return SumParam([self, other])

    def __radd__(self, other):
        # `sum(params)` starts from the integer 0.
        if isinstance(other, numbers.Number) and other == 0:
            return self
        return NotImplemented

    def __repr__(self):
        return f"{type(self).__name__}(shape={self.shape})"


class SumParam(ImageParam):
    """The sum of several parameterisations of one shape (`a + b`, or `sum([a, b, c])`).

    Used for Lucid's aligned interpolation: a per-image term plus low-resolution terms shared across the
    batch. `assign_image` puts the images into the first term and zeroes the others, an exact preimage
    whenever the other terms can represent zero (pixel, FFT and low-resolution terms can).
    """

    def __init__(self, terms):
        flat = []
        for term in terms:
            flat.extend(term.terms if isinstance(term, SumParam) else [term])
        shapes = {term.shape for term in flat}
        if len(shapes) != 1:
            raise ValueError(
                f"Expected parameterisations of one shape to add. Received: shapes={[t.shape for t in flat]}"
            )
        if len({id(term) for term in flat}) != len(flat):
            raise ValueError(f"Expected distinct parameterisations to add. Received: terms={flat}")
        self.terms = flat
        super().__init__(flat[0].shape, [v for term in flat for v in term.variables])

    def __call__(self):
        return functools.reduce(keras.ops.add, [term() for term in self.terms])

    def _initialize(self, rng):
        for term in self.terms:
            term._initialize(rng)

    def _initialize_items(self, rngs):
        for term in self.terms:
            term._initialize_items(rngs)

    def _assign(self, images):
        self.terms[0]._assign(images)
        for term in self.terms[1:]:
            term._assign(np.zeros_like(images))

    def __repr__(self):
        return " + ".join(repr(term) for term in self.terms)


def as_image_batch(images, shape) -> np.ndarray:
    """Converts `images` (array or backend tensor) to a float32 NumPy array of `shape`, repeating a single
    image over the batch."""
    images = np.asarray(keras.ops.convert_to_numpy(images), dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    received = tuple(images.shape)
    if received[1:] == tuple(shape[1:]) and received[0] == 1:
        images = np.repeat(images, shape[0], axis=0)
    elif received != tuple(shape):
        raise ValueError(
            f"Expected images of shape {tuple(shape)} (or one image to repeat over the batch); resize "
            f"them first. Received: images.shape={received}"
        )
    return images


def is_seed_list(seed) -> bool:
    """Whether `seed` gives one seed per batch item (a list, tuple or 1-D array) rather than one seed."""
    return isinstance(seed, (list, tuple)) or (isinstance(seed, np.ndarray) and seed.ndim == 1)


def check_item_seeds(seeds, batch) -> list[int]:
    """One whole-number seed >= 0 per batch item, as Python ints."""
    seeds = list(seeds)
    if len(seeds) != batch:
        raise ValueError(
            f"Expected one seed per batch item ({batch}). Received: seed={seeds!r} ({len(seeds)} seeds)"
        )
    return [checks.whole(s, "seed", 0) for s in seeds]


def draw_items(draw, rngs, axis) -> np.ndarray:
    """Per-item initial values: `draw(rng, 1)` (one item's values, as a batch of one would draw them) for
    each generator in `rngs`, concatenated along the variable's batch `axis`."""
    return np.concatenate([draw(rng, 1) for rng in rngs], axis=axis)


def check_shape(shape, name="shape") -> tuple:
    """Validates a `(batch, height, width, channels)` shape of positive integers."""
    try:
        values = tuple(shape)
    except TypeError:
        values = None
    if values is None or len(values) != 4 or not all(checks.is_whole(v) and v >= 1 for v in values):
        raise ValueError(
            f"Expected `{name}` to be 4 positive integers (batch, height, width, channels). "
            f"Received: {name}={shape!r}"
        )
    return tuple(int(v) for v in values)


def variable(shape, name) -> keras.Variable:
    """A trainable float32 variable of zeros: a parameterisation's values before `reset` draws them."""
    return keras.Variable(np.zeros(shape, np.float32), trainable=True, dtype="float32", name=name)


def check_sd(sd) -> float:
    return DEFAULT_SD if sd is None else checks.real(sd, "sd", 0, exclusive=True)


def normal(rng: np.random.Generator, shape, sd) -> np.ndarray:
    """`sd`-scaled float32 Gaussian noise of `shape` from a NumPy generator."""
    return np.float32(sd) * rng.standard_normal(shape, dtype=np.float32)
