"""`lucidwidget layers` and `lucidwidget models`: what a model offers, and the models --model accepts."""

from __future__ import annotations

import textwrap

from lucidwidget.cli import common

LIST_WIDTH = 88
"""Line width for `lucidwidget models`' wrapped list of names."""


def run_layers(args):
    """One aligned row per visualizable layer, in forward order."""
    common.import_backend()
    from lucidwidget.models import visualizable_layers

    rows = [("layer", "channels", "shape", "kind")]
    rows += [(info.name, str(info.channels), "spatial" if info.spatial else "dense", str(info.kind))
             for info in visualizable_layers(common.load_model(args.model))]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for name, channels, shape, kind in rows:
        print(f"{name:<{widths[0]}}  {channels:>{widths[1]}}  {shape:<{widths[2]}}  {kind}")


def run_models(args):
    """The zoo names, the bundled model first."""
    common.import_backend()
    from lucidwidget.models import list_models

    bundled, *applications = list_models()
    print(f"{bundled}  (default; bundled, no download: VGG16 fine-tuned for HED edge detection)")
    print("\nkeras.applications models (ImageNet weights are downloaded on first use):")
    print(textwrap.fill(", ".join(applications), LIST_WIDTH, initial_indent="  ", subsequent_indent="  "))
    print(f"\nOr a saved model file: --model path/to/model{'|'.join(common.MODEL_FILE_SUFFIXES)}")


def add_parsers(commands):
    """Adds `layers` and `models` to the subcommands."""
    layers = commands.add_parser(
        "layers", help="list the layers a model offers for visualisation",
        description="List visualizable layers in forward order with their channel counts.",
    )
    layers.add_argument("--model", default="vgg16-hed", help=common.MODEL_HELP)
    layers.set_defaults(run=run_layers)

    models = commands.add_parser(
        "models", help="list the model names --model accepts",
        description="List the bundled model and the keras.applications models --model accepts by name.",
    )
    models.set_defaults(run=run_models)
