"""`FeatureTap`: images -> activations of chosen layers, evaluating the model only as far as needed.

A Functional (or Sequential) model is a graph of layer calls. The tap interprets that graph itself,
like `keras.Model.call` does, but runs only the calls that the requested layers depend on, reads a
tapped layer's value before its activation, and can swap in Lucid's redirected ReLU gradient. It
recurses into nested models. A subclassed model's `call` is Python code, so the tap runs it and
intercepts the calls of its direct sublayers instead, stopping the forward pass once
every requested layer has been seen.

All of this happens while TensorFlow traces: inside `tf.function` the compiled graph holds exactly
the ops of the truncated model, so the tap costs nothing at run time.

Shared layers: a layer called several times in one graph is tapped at its first call in forward
order. Inline operations in a subclassed `call` (e.g. `tf.nn.relu(x)`) run unchanged: redirected
ReLU covers ReLU layers and fused ReLU activations only.
"""

import contextlib
import functools
import inspect
import threading

import keras
import numpy as np
import tensorflow as tf

from lucidwidget.models import activations, units
from lucidwidget.models.layers import children, forward_nodes, graph_of, resolve_layer

MAX_PROBE_SIDE = 8192
"""Largest square image side tried when searching the minimum input size of a model."""


class _StopForward(BaseException):
    """Ends a subclassed model's forward pass once its tapped layers are all recorded.

    A `BaseException`, so that `except Exception` in user or Keras code does not swallow it.
    """

    def __init__(self, frame):
        super().__init__()
        self.frame = frame


_local = threading.local()
"""Per-thread stack of active `_CallPlan` frames (None entries bypass interception)."""

_hook_lock = threading.Lock()
_hook_users = {}
"""id(layer) -> (layer, number of active runs intercepting it, the instance `call` it replaced)."""

_MISSING = object()


def _frames():
    if not hasattr(_local, "frames"):
        _local.frames = []
    return _local.frames


@contextlib.contextmanager
def _pushed(frame):
    """Makes `frame` (a `_CallPlan` run, or None to call layers plainly) current on this thread."""
    frames = _frames()
    frames.append(frame)
    try:
        yield
    finally:
        frames.pop()


def _install(layer):
    """Routes `layer.call` through the current frame on this thread; other threads see no change."""
    original = layer.call
    previous = layer.__dict__.get("call", _MISSING)

    @functools.wraps(original)
    def call(*args, **kwargs):
        frames = _frames()
        frame = frames[-1] if frames else None
        if frame is None or id(layer) not in frame.steps:
            return original(*args, **kwargs)
        return frame.handle(layer, args, kwargs)

    object.__setattr__(layer, "call", call)
    return previous


def _uninstall(layer, previous):
    if previous is _MISSING:
        object.__delattr__(layer, "call")
    else:
        object.__setattr__(layer, "call", previous)


@contextlib.contextmanager
def _intercepting(layers, frame):
    """Intercepts calls of `layers` for `frame` on this thread, sharing hooks between threads."""
    with _hook_lock:
        for layer in layers:
            _, users, previous = _hook_users.get(id(layer), (layer, 0, None))
            if users == 0:
                previous = _install(layer)
            _hook_users[id(layer)] = (layer, users + 1, previous)
    try:
        with _pushed(frame):
            yield
    finally:
        with _hook_lock:
            for layer in layers:
                _, users, previous = _hook_users.pop(id(layer))
                if users == 1:
                    _uninstall(layer, previous)
                else:
                    _hook_users[id(layer)] = (layer, users - 1, previous)


class _Run:
    """One forward pass: the redirect switch and the activations recorded so far (forward order)."""

    def __init__(self, redirect):
        self.redirect = redirect
        self.values = {}

    def record(self, names, value):
        if names:
            first = keras.tree.flatten(value)[0]
            for name in names:
                self.values[name] = first


class _Step:
    """How to run one layer call: recurse into a nested model, or call the layer, tapping it.

    A tapped conv or dense call whose outputs nothing reads is deferred (`units.DeferredLayer`), so an
    objective reading a few of its units computes only those.

    Args:
        layer: the layer (or Keras operation) called.
        taps: names under which to record this layer's value.
        preactivation: record the value before the layer's activation, when it has one.
        inner: plan for a nested model, or None.
        outputs_needed: whether anything after this call reads its outputs.
    """

    def __init__(self, layer, taps, preactivation, inner, outputs_needed):
        self.layer = layer
        self.taps = tuple(taps)
        self.inner = inner
        self.outputs_needed = outputs_needed
        self.relu_max = activations.relu_max_value(layer)
        self.tap_pre = bool(taps) and preactivation and activations.has_preactivation(layer)
        fused = activations.fused_activation(layer) is not None
        self.twin = activations.linear_twin(layer) if fused and (self.tap_pre or self.is_relu) else None
        self.accepts_training = "training" in inspect.signature(layer.call).parameters
        self.deferred = bool(taps) and inner is None and not outputs_needed and units.can_defer(layer, self.tap_pre)

    @property
    def is_relu(self):
        return self.relu_max is not activations.NOT_RELU

    def apply(self, args, kwargs, run):
        if self.inner is not None:
            outputs = self.inner.run(args, kwargs, run, stoppable=not (self.outputs_needed or self.taps))
            run.record(self.taps, outputs)
            return outputs
        if self.accepts_training:
            kwargs = {**kwargs, "training": False}
        if self.deferred:
            compute = self.twin if self.tap_pre else self.layer
            run.record(self.taps, units.DeferredLayer(self.layer, compute, args, kwargs))
            return None
        redirect = run.redirect if self.is_relu else False
        if not self.tap_pre and redirect is False:
            outputs = self.layer(*args, **kwargs)
            run.record(self.taps, outputs)
            return outputs
        if self.twin is not None:
            pre, activate = self.twin(*args, **kwargs), self.layer.activation
        else:
            pre, activate = args[0], functools.partial(self.layer, *args[1:], **kwargs)
        if self.tap_pre:
            run.record(self.taps, pre)
            if not self.outputs_needed:
                return None
        if redirect is False:
            outputs = activate(pre)
        else:
            outputs = activations.redirected_relu(activate, pre, self.relu_max, redirect)
        if not self.tap_pre:
            run.record(self.taps, outputs)
        return outputs


def _route(targets, depth):
    """Groups targets by the direct child (of the model at `depth`) that is or contains them."""
    groups = {}
    for target in targets:
        _, layer, models = target
        child = layer if len(models) == depth + 1 else models[depth + 1]
        groups.setdefault(id(child), []).append(target)
    return groups


def _make_step(child, group, depth, preactivation, outputs_needed):
    """A `_Step` for a direct child of the model at `depth`, given the targets it holds."""
    taps = [name for name, layer, _ in group if layer is child]
    inner = None
    if children(child):
        inner_targets = [target for target in group if target[1] is not child]
        inner = _plan(child, inner_targets, depth + 1, preactivation, outputs_needed or bool(taps))
    return _Step(child, taps, preactivation, inner, outputs_needed)


def _plan(model, targets, depth, preactivation, needs_outputs):
    graph = graph_of(model)
    if graph is None:
        return _CallPlan(model, targets, depth, preactivation)
    return _GraphPlan(graph, targets, depth, preactivation, needs_outputs)


class _GraphPlan:
    """The calls of a Functional graph that the targets (and outputs, if needed) depend on."""

    def __init__(self, graph, targets, depth, preactivation, needs_outputs):
        self.graph = graph
        self.needs_outputs = needs_outputs
        nodes = forward_nodes(graph)
        groups = _route(targets, depth)
        target_nodes = {}
        for node in nodes:
            if id(node.operation) in groups:
                target_nodes.setdefault(id(node.operation), node)
        needed = self._needed(nodes, list(target_nodes.values()), needs_outputs)
        read = {id(t) for node in nodes if id(node) in needed for t in node.input_tensors}
        if needs_outputs:
            read.update(id(t) for t in graph.outputs)
        self.steps = []
        for node in nodes:
            if id(node) in needed:
                is_target = target_nodes.get(id(node.operation)) is node
                group = groups.get(id(node.operation), []) if is_target else []
                outputs_needed = any(id(t) in read for t in node.outputs)
                self.steps.append((node, _make_step(node.operation, group, depth, preactivation, outputs_needed)))

    @staticmethod
    def _needed(nodes, target_nodes, needs_outputs):
        """Ids of the nodes to run: all of them for the outputs, else the targets' ancestors."""
        in_graph = {id(node) for node in nodes}
        if needs_outputs:
            return in_graph
        needed, stack = set(), list(target_nodes)
        while stack:
            node = stack.pop()
            if id(node) in in_graph and id(node) not in needed:
                needed.add(id(node))
                stack.extend(node.parent_nodes)
        return needed

    def run(self, args, kwargs, run, stoppable=False):
        inputs = args[0] if args else kwargs["inputs"]
        tensors = dict(zip(map(id, self.graph.inputs), keras.tree.flatten(inputs)))
        with _pushed(None):
            for node, step in self.steps:
                call_args, call_kwargs = node.arguments.fill_in(tensors)
                outputs = step.apply(call_args, call_kwargs, run)
                if step.outputs_needed:
                    tensors.update(zip(map(id, node.outputs), keras.tree.flatten(outputs)))
        if not self.needs_outputs:
            return None
        outputs = keras.tree.pack_sequence_as(self.graph.output, [tensors[id(t)] for t in self.graph.outputs])
        return outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs


class _CallPlan:
    """A subclassed model (or composite layer): run its `call`, intercepting the sublayers that matter.

    Those are the direct sublayers that are or contain targets, that have sublayers themselves (to
    reach their ReLUs and run nested models in inference mode) and ReLU layers (for redirected ReLU).
    """

    def __init__(self, model, targets, depth, preactivation):
        self.model = model
        self.targets = frozenset(name for name, _, _ in targets)
        self.accepts_training = "training" in inspect.signature(model.call).parameters
        groups = _route(targets, depth)
        self.steps = {}
        for child in children(model):
            group = groups.get(id(child), [])
            relu = activations.relu_max_value(child) is not activations.NOT_RELU
            if group or relu or children(child):
                full = _make_step(child, group, depth, preactivation, outputs_needed=True)
                last = _make_step(child, group, depth, preactivation, outputs_needed=False) if group else None
                self.steps[id(child)] = (full, last, frozenset(name for name, _, _ in group))

    def run(self, args, kwargs, run, stoppable=False):
        if self.accepts_training:
            kwargs = {**kwargs, "training": False}
        frame = _CallFrame(self, run, stoppable)
        try:
            with _intercepting([layer for layer in children(self.model) if id(layer) in self.steps], frame):
                return self.model(*args, **kwargs)
        except _StopForward as stop:
            if stop.frame is not frame:
                raise
            return None


class _CallFrame:
    """One run of a `_CallPlan`: the intercepted sublayer calls of its model are handed to `handle`."""

    def __init__(self, plan, run, stoppable):
        self.plan, self.steps, self.run, self.stoppable = plan, plan.steps, run, stoppable

    def handle(self, layer, args, kwargs):
        full, last, held = self.steps[id(layer)]
        targets, recorded = self.plan.targets, self.run.values.keys()
        finishing = self.stoppable and last is not None and targets - recorded <= held
        with _pushed(None):
            outputs = (last if finishing else full).apply(args, kwargs, self.run)
        if self.stoppable and targets and targets <= recorded:
            raise _StopForward(self)
        return outputs


def _redirect_switch(value):
    """A Python bool stays a bool (no custom gradient when False); anything else becomes a bool tensor."""
    if isinstance(value, (bool, int, float, np.bool_, np.number)):
        return bool(value)
    return tf.cast(value, tf.bool)


def _check_side(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}")
    return int(value)


def _size_text(height, width):
    return str(height) if height == width else f"({height}, {width})"


class FeatureTap:
    """Reads the activations of chosen layers of a model, running it only as far as they need.

    Args:
        model: a `keras.Model` with one image input (Sequential, Functional, nested, or subclassed).
        layer_names: names as users type them (bare, or paths such as `"inner/conv"`); see
            `find_layer`.
        preactivation: for layers with an activation (a fused `activation=` of a conv-like or dense
            layer, or a standalone ReLU/Activation layer) return the value before it: Lucid's
            pre-ReLU convention, and a classifier's logits instead of its softmax. Layers after a
            tapped one still see the activated value. Defaults to True.

    Example:
        >>> tap = FeatureTap(load_model("vgg16-hed"), ["block4_conv3"])
        >>> tap(tf.random.uniform((1, 128, 128, 3)))["block4_conv3"].shape
        TensorShape([1, 16, 16, 512])
        >>> tap.output_shapes(128, 128)
        {'block4_conv3': (16, 16, 512)}
    """

    def __init__(self, model, layer_names, *, preactivation=True):
        if isinstance(layer_names, str):
            layer_names = [layer_names]
        self.model = model
        self.layer_names = tuple(dict.fromkeys(layer_names))
        self.preactivation = bool(preactivation)
        graph = graph_of(model)
        if graph is not None and len(graph.inputs) != 1:
            raise ValueError(
                f"FeatureTap needs a model with one image input. Received: model with inputs {graph.inputs}"
            )
        targets = [(name, *resolve_layer(model, name)) for name in self.layer_names]
        self._plan = _plan(model, targets, 0, self.preactivation, needs_outputs=False) if targets else None
        self._shapes = {}
        self._order = None

    @property
    def input_size(self):
        """(height, width) that the model requires, or None when it takes any size."""
        graph = graph_of(self.model)
        shape = graph.inputs[0].shape if graph is not None else ()
        if len(shape) == 4 and shape[1] is not None and shape[2] is not None:
            return (int(shape[1]), int(shape[2]))
        return None

    def __call__(self, images, redirect_relu=False):
        """Activations of the tapped layers.

        Args:
            images: float32 (batch, height, width, 3) RGB in [0, 1], the model's own input.
            redirect_relu: use Lucid's redirected ReLU gradient on every ReLU that runs: a Python
                bool, or a scalar bool/float tensor so a compiled step can switch it without
                retracing. Defaults to False.

        Returns:
            A dict from each requested name to its activation tensor, in forward order.
        """
        return self.read(images, redirect_relu).as_dict()

    def read(self, images, redirect_relu=False):
        """Like calling the tap, but returns a `TapReading`: `reading.units(name, index)` computes only
        units `index` of the deepest tapped layer when it is a plain conv or dense layer."""
        if self._plan is None:
            return units.TapReading({})
        run = _Run(_redirect_switch(redirect_relu))
        self._plan.run((tf.convert_to_tensor(images),), {}, run, stoppable=True)
        missing = [name for name in self.layer_names if name not in run.values]
        if missing:
            raise ValueError(
                f"Layers {missing} of model {self.model.name!r} were not called in its forward pass. "
                f"Received: layer_names={list(self.layer_names)}"
            )
        return units.TapReading(run.values)

    def output_shapes(self, height, width):
        """Static per-example shapes (no batch dimension) of the tapped layers for an image size.

        Raises:
            ValueError: the size does not match a fixed-size model, or is too small to leave at
                least one pixel in every tapped layer.
        """
        height, width = _check_side(height, "height"), _check_side(width, "width")
        fixed = self.input_size
        if fixed is not None and (height, width) != fixed:
            raise ValueError(
                f"Model {self.model.name!r} takes {fixed[0]}x{fixed[1]} images. "
                f"Received: size={_size_text(height, width)}"
            )
        if (height, width) not in self._shapes:
            shapes, error = self._probe(height, width)
            if shapes is None or not self._all_positive(shapes):
                raise self._too_small(height, width, shapes, error)
            self._shapes[height, width] = shapes
        return dict(self._shapes[height, width])

    def _probe(self, height, width):
        """Traces the tap on a symbolic image: (shapes in forward order, or None; the error, if any)."""
        if self._plan is None:
            return {}, None
        graph = graph_of(self.model)
        channels = graph.inputs[0].shape[-1] if graph is not None else 3
        spec = tf.TensorSpec((1, height, width, channels), tf.float32)
        order = []

        def forward(images):
            values = self(images)
            order.extend(values)
            return values

        try:
            outputs = tf.function(forward, autograph=False).get_concrete_function(spec).structured_outputs
        except (ValueError, tf.errors.InvalidArgumentError) as error:
            return None, error
        self._order = tuple(order)
        return {name: tuple(outputs[name].shape[1:]) for name in order}, None

    @staticmethod
    def _all_positive(shapes):
        return all(d is None or d > 0 for shape in shapes.values() for d in shape)

    def _too_small(self, height, width, shapes, error):
        side = self._minimum_side(min(height, width))
        if side is None and error is not None:
            return error
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
