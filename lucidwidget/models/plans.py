"""Forward plans: which layer calls a tap runs, and how it runs each one.

A Functional (or Sequential) model is a graph of layer calls. `_GraphPlan` interprets that graph
itself, like `keras.Model.call` does, but runs only the calls that the requested layers depend on. A
subclassed model's `call` is Python code, so `_CallPlan` runs it and intercepts the calls of its direct
sublayers instead (see `intercept`), stopping the forward pass once every requested layer has been
seen. Both recurse into nested models; `_Step` runs one call, reading its value before the activation
and swapping in Lucid's redirected ReLU gradient where asked.
"""

import functools
import inspect

import keras

from lucidwidget.models import activations, units
from lucidwidget.models.intercept import StopForward, intercepting, pushed
from lucidwidget.models.layers import children, forward_nodes, graph_of


class Run:
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
        inner = make_plan(child, inner_targets, depth + 1, preactivation, outputs_needed or bool(taps))
    return _Step(child, taps, preactivation, inner, outputs_needed)


def make_plan(model, targets, depth, preactivation, needs_outputs):
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
        with pushed(None):
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
