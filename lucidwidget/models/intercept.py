"""Intercepting the sublayer calls of a subclassed model, per thread.

A subclassed model's `call` is Python code, so a tap cannot read its graph. Instead it replaces the
`call` of chosen sublayers with a wrapper that hands each call to the current frame of this thread (a
plan run that may record, replace or stop the forward pass). Other threads, and calls made while no
frame is active, see the layer's own `call`. Several runs may intercept the same layer at once: the
wrapper is installed by the first and removed by the last.
"""

import contextlib
import functools
import threading


class StopForward(BaseException):
    """Ends a forward pass (a subclassed call or a Keras graph) once its tapped layers are all recorded.

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
def pushed(frame):
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
def intercepting(layers, frame):
    """Intercepts calls of `layers` for `frame` on this thread, sharing hooks between threads."""
    with _hook_lock:
        for layer in layers:
            _, users, previous = _hook_users.get(id(layer), (layer, 0, None))
            if users == 0:
                previous = _install(layer)
            _hook_users[id(layer)] = (layer, users + 1, previous)
    try:
        with pushed(frame):
            yield
    finally:
        with _hook_lock:
            for layer in layers:
                _, users, previous = _hook_users.pop(id(layer))
                if users == 1:
                    _uninstall(layer, previous)
                else:
                    _hook_users[id(layer)] = (layer, users - 1, previous)
