"""`FeatureTap`: images -> activations of chosen layers, evaluating the model only as far as needed.

The tap runs only the layer calls that the requested layers depend on (see `plans`), reads a tapped
layer's value before its activation, and can swap in Lucid's redirected ReLU gradient. It works on
Functional, Sequential, nested and subclassed models.

All of this happens while the step is traced: inside `backend.compile_loop` the compiled program
holds exactly the ops of the truncated model, so the tap costs nothing at run time.

Shared layers: a layer called several times in one graph is tapped at its first call in forward
order. Inline operations in a subclassed `call` (e.g. `keras.ops.relu(x)`) run unchanged: redirected
ReLU covers ReLU layers and fused ReLU activations only.
"""

import numpy as np
from keras import ops

from lucidwidget import backend, checks
from lucidwidget.models import units
from lucidwidget.models.inputs import check_input_values, find_image_input, other_input_values
from lucidwidget.models.layers import resolve_layer
from lucidwidget.models.plans import ForwardPass, make_plan

MAX_PROBE_SIDE = 8192
"""Largest square image side tried when searching the minimum input size of a model."""

PROBE_ERRORS = Exception
"""What shape inference raises for an image too small for a layer differs by backend and layer (Keras'
shape checks, JAX's, PyTorch's kernels, TensorFlow's `InvalidArgumentError`), so any failure counts as
"this size does not run"; the error is chained to the one `output_shapes` raises."""


def _redirect_switch(value):
    """A Python bool stays a bool (no custom gradient when False); anything else becomes a bool tensor."""
    if isinstance(value, (bool, int, float, np.bool_, np.number)):
        return bool(value)
    return ops.cast(value, "bool")


def _size_text(height, width):
    return str(height) if height == width else f"({height}, {width})"


class FeatureTap:
    """Reads the activations of chosen layers of a model, running it only as far as they need.

    Args:
        model: a `keras.Model` with one image input (Sequential, Functional, nested, or subclassed);
            other inputs are fed `inputs` or zeros.
        layer_names: names as users type them (bare, or paths such as `"inner/conv"`); see
            `find_layer`.
        preactivation: for layers with an activation (a fused `activation=` of a conv-like or dense
            layer, or a standalone ReLU/Activation layer) return the value before it: Lucid's
            pre-ReLU convention, and a classifier's logits instead of its softmax. Layers after a
            tapped one still see the activated value. Defaults to True.
        image_input: the model's `ImageInput` (see `find_image_input`), e.g. with an inferred size.
            Defaults to None (found from the model).
        inputs: values of the model's other inputs by name, one example each, used for every image.
            Defaults to None (zeros).

    Example:
        >>> tap = FeatureTap(load_model("vgg16-hed"), ["block4_conv3"])
        >>> tap(np.zeros((1, 128, 128, 3), "float32"))["block4_conv3"].shape
        (1, 16, 16, 512)
        >>> tap.output_shapes(128, 128)
        {'block4_conv3': (16, 16, 512)}
    """

    def __init__(self, model, layer_names, *, preactivation=True, image_input=None, inputs=None):
        if isinstance(layer_names, str):
            layer_names = [layer_names]
        self.model = model
        self.layer_names = tuple(dict.fromkeys(layer_names))
        self.preactivation = bool(preactivation)
        self.image_input = find_image_input(model) if image_input is None else image_input
        self.inputs = check_input_values(model, self.image_input, inputs)
        targets = [(name, *resolve_layer(model, name)) for name in self.layer_names]
        self._plan = make_plan(model, targets, 0, self.preactivation, needs_outputs=False) if targets else None
        self._shapes = {}
        self._order = None

    @property
    def input_size(self):
        """(height, width) that the model requires, or None when it takes any size."""
        return self.image_input.size

    @property
    def channels(self):
        """The image input's channel count."""
        return self.image_input.channels

    def __call__(self, images, redirect_relu=False):
        """Activations of the tapped layers.

        Args:
            images: float32 (batch, height, width, channels), the model's own image input.
            redirect_relu: use Lucid's redirected ReLU gradient on every ReLU that runs: a Python
                bool, or a scalar bool/float tensor so a compiled step can switch it without
                retracing. Defaults to False.

        Returns:
            A dict from each requested name to its activation tensor, in forward order.
        """
        return self.read(images, redirect_relu).as_dict()

    def read(self, images, redirect_relu=False, edits=None):
        """Like calling the tap, but returns a `TapReading`: `reading.units(name, index)` computes only
        units `index` of the deepest tapped layer when it is a plain conv or dense layer.

        `edits`: `{tapped name: fn(outputs) -> outputs}` changes what flows on from a tapped layer to
        the layers after it (see `plans.ForwardPass`); the recorded value is the layer's own."""
        if self._plan is None:
            return units.TapReading({})
        run = ForwardPass(_redirect_switch(redirect_relu), edits)
        self._plan.run((self._model_inputs(ops.convert_to_tensor(images, "float32")),), {}, run, stoppable=True)
        missing = [name for name in self.layer_names if name not in run.values]
        if missing:
            raise ValueError(
                f"Layers {missing} of model {self.model.name!r} were not called in its forward pass. "
                f"Received: layer_names={list(self.layer_names)}"
            )
        return units.TapReading(run.values)

    def _model_inputs(self, images):
        """The image, or every input of a several-input model with the image in its place."""
        if not self.image_input.others:
            return images
        others = iter(other_input_values(self.image_input, self.inputs, images.shape[0]))
        count = len(self.image_input.others) + 1
        return [images if i == self.image_input.index else next(others) for i in range(count)]

    def output_shapes(self, height, width):
        """Static per-example shapes (no batch dimension) of the tapped layers for an image size.

        Raises:
            ValueError: the size does not match a fixed-size model, or is too small to leave at
                least one pixel in every tapped layer.
        """
        height, width = checks.whole(height, "height", 1), checks.whole(width, "width", 1)
        fixed = self.input_size
        if fixed is not None and (height, width) != fixed:
            raise ValueError(
                f"Model {self.model.name!r} takes {fixed[0]}x{fixed[1]} images. "
                f"Received: size={_size_text(height, width)}"
            )
        if (height, width) not in self._shapes:
            shapes, error = self._probe(height, width)
            if shapes is None or not self._all_positive(shapes):
                raise self._too_small(height, width, shapes, error) from error
            self._shapes[height, width] = shapes
        return dict(self._shapes[height, width])

    def _probe(self, height, width):
        """Traces the tap on a symbolic image: (shapes in forward order, or None; the error, if any)."""
        if self._plan is None:
            return {}, None
        order = []

        def forward(images):
            values = self(images)
            order.extend(values)
            return values

        try:
            outputs = backend.eval_shape(forward, ((1, height, width, self.channels), "float32"))
        except PROBE_ERRORS as error:
            return None, error
        self._order = tuple(order)
        return {name: tuple(outputs[name][1:]) for name in order}, None

    @staticmethod
    def _all_positive(shapes):
        return all(d is None or d > 0 for shape in shapes.values() for d in shape)

    def _too_small(self, height, width, shapes, error):
        side = self._minimum_side(min(height, width))
        if side is None and error is not None:
            return ValueError(
                f"Model {self.model.name!r} does not run on {height}x{width} images; give the size it was built "
                f"for as size=. Received: size={_size_text(height, width)}"
            )
        if shapes is None:
            layer = (self._order or self.layer_names)[-1]
        else:
            layer = [name for name, shape in shapes.items() if not self._all_positive({name: shape})][-1]
        needed = f"it needs at least {side}x{side}" if side else f"no size up to {MAX_PROBE_SIDE} works"
        return ValueError(
            f"Image size {height}x{width} is too small for layer {layer!r} of {self.model.name!r}: {needed}. "
            f"Received: size={_size_text(height, width)}"
        )

    def _minimum_side(self, failing):
        """The smallest square side that works, by doubling then bisection over shape inference."""

        def works(side):
            shapes, _ = self._probe(side, side)
            return shapes is not None and self._all_positive(shapes)

        low, high = failing, failing * 2
        while not works(high):
            if high >= MAX_PROBE_SIDE:
                return None
            low, high = high, min(high * 2, MAX_PROBE_SIDE)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if works(middle) else (middle, high)
        return high
