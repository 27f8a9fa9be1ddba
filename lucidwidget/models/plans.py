"""Forward plans: which layer calls a tap runs, and how it runs each one.

A model's `call` runs as Keras runs it, while the calls of chosen sublayers are intercepted (see
`intercept`): those that are or contain requested layers, nested models (to run them in inference mode
and reach their ReLUs) and ReLU layers (for redirected ReLU). A Functional or Sequential model is first
cut to a Functional sub-model whose outputs are the calls that the requested layers depend on
(`keras.Model(inputs, outputs)`), so Keras itself runs only those; a subclassed model's `call` is Python
code, so its forward pass stops once every requested layer has been seen. `_Step` runs one intercepted
call, reading its value before the activation (through a linear twin of a fused activation) and
swapping in Lucid's redirected ReLU gradient where asked.
"""

import functools
import inspect

import keras

from lucidwidget.models import activations, units
from lucidwidget.models.intercept import StopForward, intercepting, pushed
from lucidwidget.models.layers import children, graph_of


class Run:
    """One forward pass: the redirect switch and the activations recorded so far (forward order)."""

    def __init__(self, redirect):
        self.redirect = redirect
        self.values = {}

    def record(self, names, value):
        """Records `value` (its first tensor) under `names`: a layer called several times is read at its
        first call."""
        if names:
            first = keras.tree.flatten(value)[0]
            for name in names:
                self.values.setdefault(name, first)


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
        inner = make_plan(child, inner_targets, depth + 1, preactivation, outputs_needed or bool(taps))
    return _Step(child, taps, preactivation, inner, outputs_needed)


def make_plan(model, targets, depth, preactivation, needs_outputs):
    """The plan that runs `model` (at `depth` in the nesting of `targets`) as far as the targets need."""
    if not needs_outputs:
        model = _truncated(model, _route(targets, depth))
    return _CallPlan(model, targets, depth, preactivation)


def _truncated(model, groups):
    """A Functional or Sequential `model` cut to the calls that the direct children in `groups` depend on:
    a Functional sub-model that shares the layers and outputs each such child's first call. Subclassed
    models come back unchanged."""
    graph = graph_of(model)
    if graph is None or not groups:
        return model
    outputs = [_first_call_outputs(child, graph) for child in children(model) if id(child) in groups]
    inputs = graph.inputs[0] if len(graph.inputs) == 1 else graph.inputs
    return keras.Model(inputs, [t for call in outputs for t in call], name=model.name)


def _first_call_outputs(layer, graph):
    """The output tensors of `layer`'s first call in `graph` (Keras records each symbolic call of a
    layer as one of its inbound nodes; a layer shared with another model also has nodes there)."""
    inputs = graph.inputs[0] if len(graph.inputs) == 1 else graph.inputs
    for node in layer._inbound_nodes:
        try:
            keras.Model(inputs, node.outputs)
        except ValueError:  # a call of the layer in another graph
            continue
        return list(node.outputs)
    raise ValueError(f"Layer {layer.name!r} is not called in model {graph.name!r}. Received: layer={layer!r}")


class _CallPlan:
    """Runs a model's (or composite layer's) `call`, intercepting the sublayers that matter.

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
            with intercepting([layer for layer in children(self.model) if id(layer) in self.steps], frame):
                return self.model(*args, **kwargs)
        except StopForward as stop:
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
        with pushed(None):
            outputs = (last if finishing else full).apply(args, kwargs, self.run)
        if self.stoppable and targets and targets <= recorded:
            raise StopForward(self)
        return outputs
