"""Forward plans: which layer calls a tap runs, and how it runs each one.

A Functional (or Sequential) model is first cut to a Functional sub-model whose outputs are the calls
that the requested layers depend on (`keras.Model(inputs, outputs)`); `_GraphPlan` lets Keras run that
graph and hands each layer call to a `_Step`. A subclassed model's `call` is Python code, so `_CallPlan`
runs it and intercepts the calls of its direct sublayers instead (see `intercept`). Both stop the
forward pass once every requested layer has been seen and recurse into nested models; `_Step` runs one
call, reading its value before the activation (through a linear twin of a fused activation) and
swapping in Lucid's redirected ReLU gradient where asked.
"""

import functools
import inspect

import keras

from lucidwidget.models import activations, units
from lucidwidget.models.intercept import StopForward, intercepting, pushed
from lucidwidget.models.layers import children, graph_of


class ForwardPass:
    """One forward pass: the redirect switch, edits, and the activations recorded so far (forward order).

    Args:
        redirect: the redirected-ReLU switch (see `activations.redirected_relu`).
        edits: `{tapped name: fn(outputs) -> outputs}`: what flows on from that layer's first call is
            `fn` of its outputs (after any activation), e.g. plus a zero tensor whose gradient is the
            gradient with respect to the layer, or scaled for a path integral. An edit runs only where
            later layers read the outputs. Defaults to None (no edits).
    """

    def __init__(self, redirect, edits=None):
        self.redirect = redirect
        self.edits = dict(edits or {})
        self.values = {}

    def record(self, names, value):
        """Records `value` (its first tensor) under `names`: a layer called several times is read at its
        first call."""
        if names:
            first = keras.tree.flatten(value)[0]
            for name in names:
                self.values.setdefault(name, first)

    def edit(self, names, outputs):
        """`outputs` after the edits of `names` (each applied once: at a layer's first call)."""
        for name in names:
            if name in self.edits:
                outputs = self.edits.pop(name)(outputs)
        return outputs


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
            return run.edit(self.taps, outputs)
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
            return run.edit(self.taps, outputs)
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
        return run.edit(self.taps, outputs)


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
    graph = graph_of(model)
    if graph is None:
        return _CallPlan(model, targets, depth, preactivation)
    if not needs_outputs:
        graph = _truncated(graph, _route(targets, depth))
    return _GraphPlan(graph, targets, depth, preactivation)


def _truncated(graph, groups):
    """A Functional `graph` cut to the calls that its direct children in `groups` depend on: a Functional
    sub-model that shares the layers and outputs each such child's first call."""
    if not groups:
        return graph
    outputs = [_first_call_outputs(child, graph) for child in children(graph) if id(child) in groups]
    return keras.Model(_inputs(graph), [t for call in outputs for t in call])


def _inputs(graph):
    return graph.inputs[0] if len(graph.inputs) == 1 else graph.inputs


def _first_call_outputs(layer, graph):
    """The output tensors of `layer`'s first call in `graph` (Keras records each symbolic call of a
    layer as one of its inbound nodes; a layer shared with another model also has nodes there)."""
    for node in layer._inbound_nodes:
        try:
            keras.Model(_inputs(graph), node.outputs)
        except ValueError:  # a call of the layer in another graph
            continue
        return list(node.outputs)
    raise ValueError(f"Layer {layer.name!r} is not called in model {graph.name!r}. Received: layer={layer!r}")


class _Plan:
    """How a model's direct sublayers are called: a `_Step` for each of `layers` that matters.

    Those are the sublayers that are or contain targets, that have sublayers themselves (to reach their
    ReLUs and run nested models in inference mode) and ReLU layers (for redirected ReLU); `every=True`
    gives every layer a step (so each runs in inference mode).
    """

    def __init__(self, model, targets, depth, preactivation, every=False):
        self.model = model
        self.targets = frozenset(name for name, _, _ in targets)
        groups = _route(targets, depth)
        self.steps = {}
        for child in children(model):
            group = groups.get(id(child), [])
            relu = activations.relu_max_value(child) is not activations.NOT_RELU
            if every or group or relu or children(child):
                full = _make_step(child, group, depth, preactivation, outputs_needed=True)
                last = _make_step(child, group, depth, preactivation, outputs_needed=False) if group else None
                self.steps[id(child)] = (full, last, frozenset(name for name, _, _ in group))

    def run(self, args, kwargs, run, stoppable=False):
        frame = _CallFrame(self, run, stoppable)
        try:
            return self._forward(args, kwargs, frame)
        except StopForward as stop:
            if stop.frame is not frame:
                raise
            return None


class _GraphPlan(_Plan):
    """A Functional graph (a Sequential model's too), cut to the calls the targets need (`_truncated`):
    Keras runs it and hands each layer call to its step."""

    def __init__(self, graph, targets, depth, preactivation):
        super().__init__(graph, targets, depth, preactivation, every=True)

    def _forward(self, args, kwargs, frame):
        def operation_fn(operation):
            if id(operation) not in self.steps:
                return operation
            return lambda *call_args, **call_kwargs: frame.handle(operation, call_args, call_kwargs)

        inputs = args[0] if args else kwargs["inputs"]
        with pushed(None):
            outputs = self.model._run_through_graph(inputs, operation_fn=operation_fn)
        return outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs


class _CallPlan(_Plan):
    """A subclassed model (or composite layer): its `call` is Python code, so it runs as it is while the
    calls of the sublayers that matter are intercepted (see `intercept`)."""

    def __init__(self, model, targets, depth, preactivation):
        super().__init__(model, targets, depth, preactivation)
        self.accepts_training = "training" in inspect.signature(model.call).parameters

    def _forward(self, args, kwargs, frame):
        if self.accepts_training:
            kwargs = {**kwargs, "training": False}
        with intercepting([layer for layer in children(self.model) if id(layer) in self.steps], frame):
            return self.model(*args, **kwargs)


class _CallFrame:
    """One run of a plan: the calls of its model's sublayers that have steps are handed to `handle`."""

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
