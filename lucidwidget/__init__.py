"""lucidwidget: interactive feature visualization for Keras 3 models, live in Jupyter.

Attributes are imported on first use, so `import lucidwidget` stays quick and TensorFlow loads only
when the engine is needed.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "load_model": ("lucidwidget.models", "load_model"),
    "models": ("lucidwidget.models", None),
    "objectives": ("lucidwidget.optvis.objectives", None),
    "param": ("lucidwidget.optvis.param", None),
    "transform": ("lucidwidget.optvis.transform", None),
    "optimizers": ("lucidwidget.optvis.optimizers", None),
    "render": ("lucidwidget.optvis.render", "render"),
    "Renderer": ("lucidwidget.optvis.render", "Renderer"),
    "LucidWidget": ("lucidwidget.widget", "LucidWidget"),
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'lucidwidget' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
