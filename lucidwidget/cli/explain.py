"""`lucidwidget explain`: the heat map of a target over a photo, and a layer's top channels for it.

    lucidwidget explain --image photo.jpg --target block4_conv3:42 -o heat.png
    lucidwidget explain --model classifier.keras --image photo.jpg --target 281 --method integrated_gradients
    lucidwidget explain --image chelsea --top-channels block4_conv3 --target block5_conv1:7

A model that takes any size sees the photo with its shorter side scaled to `--size` (aspect kept); a
fixed-size model sees it fitted to its size (scaled to cover, centre-cropped). The heat map is written
over the photo at the photo's own resolution (`-o` ending in .npy writes the raw map instead).
"""

from __future__ import annotations

import os

import numpy as np

from lucidwidget import heatmap, imaging
from lucidwidget.cli import common

METHODS = ("gradcam", "gradcam++", "gradient", "smoothgrad", "integrated_gradients", "scorecam")
"""`lucidwidget.attribution.METHODS`, named here so that `--help` answers without importing Keras."""

METHOD_OPTIONS = {"layer": ("gradcam", "gradcam++", "scorecam"), "samples": ("smoothgrad",),
                  "steps": ("integrated_gradients",), "top_n": ("scorecam",)}
"""Each method option and the methods that take it."""

DEFAULT_SIDE = 224
"""The shorter side of the photo a model that takes any size sees: ImageNet's size, quick on a CPU."""

DEFAULT_OUTPUT = "heat.png"
"""Where the heat map goes when --target is given without -o and nothing is listed."""

RAW_SUFFIX = ".npy"
"""An output ending in this is the raw map (float32, the photo's height and width), for further work."""


def _target(text):
    """A class index (an integer) or a `"layer:channel"` / expression string."""
    try:
        return int(text)
    except ValueError:
        return text


def _check_options(args):
    """Every argument's own checks, before anything loads."""
    if args.target is None and args.top_channels is None and not args.top_outputs:
        raise ValueError("Nothing to do: give --target to write a heat map, --top-channels LAYER to list a layer's "
                         "channels, or --top-outputs. Received: target=None")
    method = args.method
    for option, methods in METHOD_OPTIONS.items():
        value = getattr(args, option)
        if value is not None and method not in methods:
            flag = "--" + option.replace("_", "-")
            raise ValueError(f"{flag} applies to {common.either(methods)}, not {method!r}. Received: {option}={value!r}")
    if not 0 <= args.opacity <= 1:
        raise ValueError(f"Expected --opacity in [0, 1]. Received: opacity={args.opacity}")
    if args.output is not None and args.target is None:
        raise ValueError(f"-o writes the heat map of a target: give --target too. Received: output={args.output!r}")
    if args.target is None or (args.output is None and (args.top_channels or args.top_outputs)):
        return None                                     # the target is what the listed channels explain
    output = args.output or DEFAULT_OUTPUT
    if not output.lower().endswith(RAW_SUFFIX):
        common.check_output(output, "--output")
    else:
        common.check_output(output, "--output", {RAW_SUFFIX: "NumPy"})
    return output


def _model_view(photo, explainer, side):
    """The photo as the model sees it: its shorter side scaled to `side` (aspect kept) for a model that
    takes any size; as it is for a fixed-size model (the explainer fits it and maps the maps back)."""
    if explainer.input_size is not None:
        return photo
    height, width = photo.shape[:2]
    scale = side / min(height, width)
    return imaging.resize(photo, (max(1, round(height * scale)), max(1, round(width * scale))))[0]


def _print_channels(ranked, shown):
    print(f"{ranked.note[:-1]}, on {shown}:")
    rows = [("rank", "channel", "activation", "attribution")]
    for rank, channel in enumerate(ranked.channels, start=1):
        attribution = "" if ranked.attributions is None else f"{ranked.attributions[rank - 1]:.4g}"
        rows.append((str(rank), str(channel), f"{ranked.activations[rank - 1]:.4g}", attribution))
    if ranked.attributions is None:
        rows = [row[:3] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)).rstrip())


def _print_outputs(outputs):
    print(outputs.note)
    for index, value in zip(outputs.indices, outputs.values):
        shown = f"{100 * value:.2f}%" if outputs.classes else f"{value:.4g}"
        print(f"  {'class' if outputs.classes else 'channel'} {index}: {shown}")


def run(args):
    """Checks every argument, loads the model, then writes the heat map and prints what was asked."""
    output = _check_options(args)
    photo = common.image_option(args.image, "--image")
    common.import_backend()
    from lucidwidget.attribution import Explainer, summary

    explainer = Explainer(common.load_model(args.model), preprocess=args.preprocess)
    if photo.shape[-1] != explainer.channels:
        photo = imaging.read_image(photo, explainer.channels)
    view = _model_view(photo, explainer, args.size)
    target = None if args.target is None else _target(args.target)
    shown = os.path.basename(args.image)
    if args.top_outputs:
        _print_outputs(summary.top_outputs(explainer, view))
    if args.top_channels is not None:
        _print_channels(summary.top_channels(explainer, view, args.top_channels, target, args.top), shown)
    if output is None:
        return
    options = {name: getattr(args, name) for name in METHOD_OPTIONS if getattr(args, name) is not None}
    maps = explainer.attribute(view[None], target, args.method, **options)[0]
    if maps.shape != photo.shape[:2]:
        maps = imaging.resize(maps[None, ..., None], photo.shape[:2])[0, ..., 0]
    if output.lower().endswith(RAW_SUFFIX):
        np.save(output, maps.astype(np.float32))
    else:
        imaging.save_image(output, heatmap.overlay(photo, maps, args.opacity))
    score = float(explainer.evaluate(view[None], target)[0])
    print(f"wrote {output} ({args.method} of {args.target} on {shown}; the target's score {score:.4g})")


def add_parser(commands):
    """Adds `explain` to the subcommands."""
    default = common.DEFAULT
    explain = commands.add_parser(
        "explain", help="draw the heat map of a class or unit over a photo; list a layer's top channels for it",
        description="Explain a photo: which pixels make a target fire (a heat map over the photo), the model's "
                    "top outputs, and which channels of a layer matter most for it.",
    )
    explain.add_argument("--model", default="vgg16-hed", help=common.MODEL_HELP)
    explain.add_argument("--image", required=True, metavar="PATH",
                         help="the photo: an image file or a bundled photo (astronaut, chelsea, coffee)")
    explain.add_argument("--target", default=None,
                         help='what to explain: a class index (a unit of the output layer, e.g. 281), "layer:channel" '
                              'or an expression such as "block4_conv3:42 - 0.5*block4_conv3:7"')
    explain.add_argument("--method", choices=METHODS, default="gradcam", help="attribution method" + default)
    explain.add_argument("--layer", default=None,
                         help="the layer a CAM method combines (default: the last spatial layer before the target's)")
    explain.add_argument("--samples", type=common.positive_int, default=None, help="SmoothGrad's noisy copies (50)")
    explain.add_argument("--steps", type=common.positive_int, default=None,
                         help="Integrated Gradients' path points (50)")
    explain.add_argument("--top-n", type=common.positive_int, default=None, metavar="N",
                         help="Faster Score-CAM: keep the N channels whose maps vary most (default: all)")
    explain.add_argument("--size", type=common.positive_int, default=DEFAULT_SIDE,
                         help="the shorter side of the photo a model that takes any size sees" + default)
    explain.add_argument("--preprocess", default=None, metavar="PRESET",
                         help="the input convention of a model file that expects other than RGB in [0, 1]: "
                              f"{common.PREPROCESS_HELP} (default: none; zoo models have theirs inside)")
    explain.add_argument("--opacity", type=float, default=heatmap.DEFAULT_OPACITY,
                         help="how much the heat map's colour covers the photo where it is strongest" + default)
    explain.add_argument("-o", "--output", default=None,
                         help="heat map over the photo to write (.png, .jpg, .webp, .gif), or the raw map (.npy) "
                              f"(default: {DEFAULT_OUTPUT} when --target is given and nothing is listed)")
    explain.add_argument("--top-channels", default=None, metavar="LAYER",
                         help="print the layer's top channels on the photo: by attribution to --target when the layer "
                              "runs before it, else by mean activation")
    explain.add_argument("--top", type=common.positive_int, default=8, help="how many top channels" + default)
    explain.add_argument("--top-outputs", action="store_true",
                         help="print the model's top classes (or, for a feature-map output, its strongest channels)")
    explain.set_defaults(run=run)
