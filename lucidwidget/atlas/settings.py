"""An atlas's arguments, checked before any work: what the command line and `lucidwidget.atlas` accept.

`check_arguments` answers everything that needs no model (numbers, views, folders, the Ray address);
`resolve_units` answers the rest once the model is loaded (layers, channels, the size). Each problem is
one sentence in the Keras form, ending `Received: name=value`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re

from lucidwidget import checks

VIEWS = ("channel", "negative", "diversity")
"""What an atlas can show of a unit: the image that excites it most (`channel`), the one that drives it
most negative (`negative`) and `DIVERSITY_IMAGES` images that excite it in different ways (`diversity`)."""

DEFAULT_VIEWS = ("channel",)

DEFAULT_STEPS = 256
"""Optimizer steps per unit: Lucid's default and the widget's, so a unit opened in the widget matches."""

FORMATS = {".png": "png", ".webp": "webp"}
"""Image formats of the unit images, by extension: PNG (lossless) or WebP (lossless too, smaller files)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
"""Files of an --images folder that count as images (any case); other files are ignored."""

RAY_AUTO = "auto"
"""`ray="auto"`: join the Ray cluster this machine belongs to, else start a local one (`ray.init()`)."""

RAY_ADDRESS = re.compile(r"^(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")
"""A Ray address: `host:port` (a cluster's GCS, e.g. 10.0.0.5:6379) or `ray://host:port` (Ray Client)."""

CHANNEL_SPEC = re.compile(r"^\s*\d+\s*(-\s*\d+\s*)?(,\s*\d+\s*(-\s*\d+\s*)?)*$")
"""Channels as typed on the command line: numbers and inclusive ranges separated by commas, `0-63,100`."""

MAX_CLOSE_MATCHES = 3


@dataclasses.dataclass(frozen=True)
class Arguments:
    """An atlas's checked arguments (see `lucidwidget.atlas.atlas` for their meaning)."""

    model: object
    layers: tuple
    output: str
    channels: object
    steps: int
    size: object
    batch: int | None
    views: tuple
    images: str | None
    image_files: tuple
    ray: str | None
    workers: int | None
    seed: int
    format: str
    preprocess: str | None


def check_arguments(model, layers, output, *, channels=None, steps=DEFAULT_STEPS, size=None, batch=None,
                    views=DEFAULT_VIEWS, images=None, ray=None, workers=None, seed=0, format="png",
                    preprocess=None) -> Arguments:
    """Checks every argument that needs no model; returns them in canonical form."""
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if isinstance(model, str) and not model:
        raise ValueError("Expected a model name or file. Received: model=''")
    if isinstance(model, str) and os.path.isfile(model):
        model = os.path.abspath(model)           # workers may run in another folder
    if ray is not None and not isinstance(model, str):
        raise TypeError(
            "With ray, give the model as a name or a file path that every worker can load, not a model "
            f"object. Received: model={getattr(model, 'name', model)!r}"
        )
    layers = _check_layer_names(layers)
    output = _check_output(output)
    steps = checks.whole(steps, "steps", 1)
    if size is not None:
        size = checks.whole(size, "size", 1)
    if batch is not None:
        batch = checks.whole(batch, "batch", 1)
    views = check_views(views)
    format = checks.choice(format.lstrip(".") if isinstance(format, str) else format, "format",
                           tuple(FORMATS.values()))
    seed = checks.whole(seed, "seed", 0)
    if channels is not None:
        parse_channels(channels)                     # the syntax now; the ranges once layers are known
    image_files = ()
    if images is not None:
        images, image_files = check_image_folder(images)
    ray = check_ray(ray)
    if workers is not None:
        workers = checks.whole(workers, "workers", 1)
        if ray is None:
            raise ValueError(f"`workers` sets how many Ray workers run the atlas; give `ray` too "
                             f"(e.g. ray='auto'). Received: workers={workers}")
    if preprocess is not None and not isinstance(preprocess, str):
        raise TypeError(f"Expected a preprocessing preset name such as 'caffe'. Received: preprocess={preprocess!r}")
    return Arguments(model, layers, output, channels, steps, size, batch, views, images, image_files, ray,
                     workers, seed, format, preprocess)


def _check_layer_names(layers) -> tuple:
    if isinstance(layers, str):
        layers = [layers]
    try:
        names = list(layers)
    except TypeError:
        names = None
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"Expected one or more layer names. Received: layers={layers!r}")
    return tuple(dict.fromkeys(names))


def _check_output(output) -> str:
    if not isinstance(output, (str, os.PathLike)) or not os.fspath(output):
        raise TypeError(f"Expected an output folder path. Received: output={output!r}")
    output = os.path.abspath(os.fspath(output))
    if os.path.exists(output) and not os.path.isdir(output):
        raise ValueError(f"The output {output!r} is a file; give a folder (it is created if missing). "
                         f"Received: output={output!r}")
    parent = os.path.dirname(output)
    if not os.path.isdir(parent):
        raise ValueError(f"The folder {parent!r} that would hold the atlas does not exist; create it first. "
                         f"Received: output={output!r}")
    if not os.access(parent if not os.path.isdir(output) else output, os.W_OK):
        raise ValueError(f"Cannot write to {output!r}. Received: output={output!r}")
    return output


def check_views(views) -> tuple:
    """`"channel,negative"` or a list, as a tuple in `VIEWS` order."""
    items = views.split(",") if isinstance(views, str) else views
    try:
        items = [item.strip().lower() for item in items]
    except (TypeError, AttributeError):
        raise TypeError(f"Expected views such as 'channel,negative'. Received: views={views!r}") from None
    for item in items:
        if item not in VIEWS:
            close = difflib.get_close_matches(item, VIEWS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"Unknown view {item!r}. Expected some of {', '.join(VIEWS)}.{hint} "
                             f"Received: views={views!r}")
    if not items:
        raise ValueError(f"Expected at least one view of {', '.join(VIEWS)}. Received: views={views!r}")
    return tuple(view for view in VIEWS if view in items)


def parse_channels(spec) -> list[int]:
    """`"0-63,100"` (inclusive ranges and numbers), a number, or a list of numbers -> sorted unique ints."""
    if isinstance(spec, str):
        if not CHANNEL_SPEC.match(spec):
            raise ValueError(f"Expected channels such as '0-63,100' (numbers and ranges separated by commas). "
                             f"Received: channels={spec!r}")
        values = set()
        for part in spec.replace(" ", "").split(","):
            first, _, last = part.partition("-")
            low, high = int(first), int(last or first)
            if high < low:
                raise ValueError(f"Expected ranges low-high with low <= high. Received: channels={spec!r}")
            values.update(range(low, high + 1))
        return sorted(values)
    if checks.is_whole(spec):
        return [checks.whole(spec, "channels", 0)]
    try:
        values = list(spec)
    except TypeError:
        raise TypeError(f"Expected channels as '0-63,100', a number or a list. Received: channels={spec!r}") from None
    if not values:
        raise ValueError(f"Expected at least one channel. Received: channels={spec!r}")
    return sorted({checks.whole(value, "channels", 0) for value in values})


def check_image_folder(folder) -> tuple[str, tuple]:
    """The folder as an absolute path and its image files (paths relative to it, sorted, recursive)."""
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"Expected a folder of images. Received: images={folder!r}")
    path = os.path.abspath(os.fspath(folder))
    if not os.path.isdir(path):
        raise ValueError(f"No folder at {path!r}; give a folder of images. Received: images={os.fspath(folder)!r}")
    files = list_images(path)
    if not files:
        raise ValueError(f"The folder {path!r} holds no images ({', '.join(IMAGE_SUFFIXES)}). "
                         f"Received: images={os.fspath(folder)!r}")
    return path, files


def list_images(folder) -> tuple:
    """Image files under `folder` (recursively), as '/'-separated relative paths in sorted order: the order
    that breaks ties between equal activations."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith("."):
                found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return tuple(sorted(found))


def check_ray(ray):
    """None, `"auto"` or a Ray address; Ray itself must then be installed."""
    if ray is None:
        return None
    if not isinstance(ray, str) or not (ray == RAY_AUTO or RAY_ADDRESS.match(ray)):
        raise ValueError(f"Expected ray='auto' or a Ray address such as '10.0.0.5:6379' or 'ray://head:10001'. "
                         f"Received: ray={ray!r}")
    try:
        import ray as _ray  # noqa: F401
    except ImportError:
        raise ValueError(f"Running on Ray needs the ray extra: pip install \"lucidwidget[ray]\". "
                         f"Received: ray={ray!r}") from None
    return ray


def resolve_units(layers, infos, channels, model_name) -> dict[str, list[int]]:
    """`{layer: channels}` for the requested layers of a model (`infos`: its `LayerInfo`s); every
    channel must exist in every layer. Defaults to all of each layer's channels."""
    by_name = {info.name: info for info in infos}
    wanted = parse_channels(channels) if channels is not None else None
    units = {}
    for name in layers:
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=MAX_CLOSE_MATCHES)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"No visualizable layer {name!r} in model {model_name!r}.{hint} `lucidwidget layers "
                             f"--model ...` lists them. Received: layers={list(layers)!r}")
        count = by_name[name].channels
        if wanted is None:
            units[name] = list(range(count))
        elif wanted[-1] >= count:
            raise ValueError(f"Expected channels in [0, {count - 1}] for layer {name!r}. "
                             f"Received: channels={channels!r}")
        else:
            units[name] = list(wanted)
    return units
