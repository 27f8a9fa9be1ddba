"""lucidwidget: interactive feature visualization for Keras 3 models, live in Jupyter.

Attributes are imported on first use, so `import lucidwidget` stays quick and the Keras backend
(`KERAS_BACKEND`: TensorFlow, JAX or PyTorch) loads only when the engine is needed. TensorFlow's C++ log level defaults to 2 (errors only) and its start-up
notices are hidden (see `_tf_startup`); set `TF_CPP_MIN_LOG_LEVEL` before importing lucidwidget to
choose another level.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

_LAZY = {
    "data": ("lucidwidget.data", None),
    "load_model": ("lucidwidget.models", "load_model"),
    "models": ("lucidwidget.models", None),
    "objectives": ("lucidwidget.optvis.objectives", None),
    "param": ("lucidwidget.optvis.param", None),
    "transform": ("lucidwidget.optvis.transform", None),
    "optimizers": ("lucidwidget.optvis.optimizers", None),
    "render": ("lucidwidget.optvis.render", "render"),
    "Renderer": ("lucidwidget.optvis.render", "Renderer"),
    "LucidWidget": ("lucidwidget.widget", "LucidWidget"),
    "attribution": ("lucidwidget.attribution", None),
    "Explainer": ("lucidwidget.attribution", "Explainer"),
    "attribute": ("lucidwidget.attribution", "attribute"),
    "channel_attribution": ("lucidwidget.attribution", "channel_attribution"),
    "spatial_attribution": ("lucidwidget.attribution", "spatial_attribution"),
    "semantic_dictionary": ("lucidwidget.attribution", "semantic_dictionary"),
    "neuron_groups": ("lucidwidget.attribution", "neuron_groups"),
    "atlas": ("lucidwidget.atlas", None),
    "Atlas": ("lucidwidget.widget", "Atlas"),
}

_WITHOUT_BACKEND = {"data"}
"""Attributes that load without Keras: the bundled photos are NumPy arrays."""

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'lucidwidget' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    if name not in _WITHOUT_BACKEND:
        from lucidwidget._tf_startup import import_backend

        import_backend()
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
