"""What every command shares: argument types and checks, model loading by name or file, error printing.

Errors about the user's input (`ValueError`, `TypeError`, files) print `error: ...` and exit with status
2, like argparse's own usage errors. Nothing here imports Keras at import time, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import difflib
import os

from lucidwidget import imaging

USAGE_ERROR = 2
"""Exit status for bad input, the same as argparse uses for a usage error."""

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), the shell convention."""

MODEL_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")
"""A --model ending in one of these (or naming an existing file) is a saved model rather than a zoo name."""

MAX_CLOSE_MATCHES = 3
"""Suggestions in a "Did you mean" hint: enough for a typo, short enough to read."""

PREPROCESS_HELP = 'caffe (BGR 0..255 minus the ImageNet mean), torch (mean/std), tf or "[-1, 1]", raw or "[0, 255]"'
"""The usual `--preprocess` presets, named without importing TensorFlow (`--help` answers at once)."""

MODEL_HELP = ('a name from `lucidwidget models` (e.g. "vgg16-hed", "InceptionV3") or a saved '
              '.keras/.h5/.hdf5 model file (default: %(default)s)')

DEFAULT = " (default: %(default)s)"
"""Suffix of an option's help that shows its default."""


def did_you_mean(name, choices) -> str:
    """' Did you mean 'a' or 'b'?' for the choices closest to `name` regardless of case, else ''."""
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=MAX_CLOSE_MATCHES)
    return f" Did you mean {' or '.join(repr(by_lower[c]) for c in close)}?" if close else ""


def either(choices) -> str:
    """'a, b or c'."""
    choices = list(choices)
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def is_model_file(spec) -> bool:
    """True when --model names a saved model (by its extension, a folder in the path, or an existing file)."""
    return spec.lower().endswith(MODEL_FILE_SUFFIXES) or os.path.sep in spec or os.path.isfile(spec)


def _name_key(name):
    """Zoo names match regardless of case, '-' and '_' (as `lucidwidget.models.load_model` does)."""
    return name.lower().replace("-", "").replace("_", "")


def check_model_name(spec):
    """Unless `spec` names a model file, it must be a zoo name (close matches and the command that lists
    them otherwise). Imports the backend's models module, not the model."""
    from lucidwidget.models import list_models

    if not is_model_file(spec):
        names = list_models()
        known = {_name_key(name) for name in names}
        if _name_key(spec) not in known:
            raise ValueError(f"Unknown model {spec!r}.{did_you_mean(spec, names)} Run `lucidwidget models` for the "
                             f"names, or give a {'/'.join(MODEL_FILE_SUFFIXES)} file. Received: model={spec!r}")


def load_model(spec):
    """A zoo name (see `lucidwidget models`) or a saved `.keras`/`.h5`/`.hdf5` model, loaded without
    compiling (a Keras 2 file's optimizer settings are not needed and may not load). The model is named
    `spec`, so every message names it as the user typed it."""
    from lucidwidget.models import load_model as load_zoo_model

    check_model_name(spec)
    model = load_zoo_model(spec)
    model.name = spec
    return model


def check_output(path, option, formats=imaging.FORMATS) -> str:
    """Checks, before any work, that `path` can be written as one of `formats` (extension -> format).

    Returns:
        The Pillow format name for the path's extension.
    """
    received = f"Received: {option.lstrip('-')}={path!r}"
    if os.path.isdir(path):
        raise ValueError(f"{option} names a folder; give a file name such as {os.path.join(path, 'sheet.png')!r}. "
                         f"{received}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in formats:
        raise ValueError(f"Expected {option} to end in {either(formats)} (the extension picks the format). "
                         f"{received}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"The folder {folder!r} for {option} does not exist; create it first. {received}")
    return formats[suffix]


def check_layers(names, layers, model, received):
    """Every name in `names` is a layer of `model` (a `keras.Model`; `layers` its `LayerInfo`s), else an
    error with close matches and the `layers` command to run."""
    from lucidwidget.models import find_layer

    for name in sorted(names):
        try:
            find_layer(model, name)
        except ValueError:
            hint = did_you_mean(name, [info.name for info in layers])
            raise ValueError(
                f"No layer {name!r} in model {model.name!r}.{hint} Run `lucidwidget layers --model {model.name}` "
                f"for its layers. Received: {received}"
            ) from None


def positive_int(text):
    """argparse type for counts such as --steps."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def import_backend():
    """Imports the configured Keras backend (TensorFlow without its start-up log lines)."""
    from lucidwidget._tf_startup import import_backend as start

    start()


IMAGE_FORMATS = "a PNG, JPEG, WebP, GIF or BMP file"
"""What an image option accepts, in words (what Pillow reads for `imaging.read_image`)."""


def image_option(spec, option):
    """Reads an image option (`--image`, `--style-image`, `--init-image`) before any work: a file, or the
    name of a photo that ships with lucidwidget (`lucidwidget.data.photo_names()`) when no such file exists.

    Returns:
        float32 (height, width, 3) in [0, 1], or None when `spec` is None.
    """
    from lucidwidget import data

    if spec is None:
        return None
    received = f"Received: {option.lstrip('-').replace('-', '_')}={spec!r}"
    path = spec
    if not os.path.exists(spec) and spec.lower() in data.PHOTOS:
        path = data.photo_path(spec)
    if not os.path.isfile(path):
        raise ValueError(f"No image file at {spec!r} for {option}: give {IMAGE_FORMATS}, or a bundled photo "
                         f"({either(data.photo_names())}). {received}")
    try:
        return imaging.read_image(path)
    except ValueError:
        raise ValueError(f"Could not read {spec!r} for {option} as an image: expected {IMAGE_FORMATS}. "
                         f"{received}") from None
