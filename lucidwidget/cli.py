"""The `lucidwidget` command: render visualisations to PNG/GIF, list layers, open JupyterLab.

    lucidwidget render --model vgg16-hed --objective block4_conv3:42 --batch 4 -o sheet.png
    lucidwidget layers --model vgg16-hed
    lucidwidget lab

TensorFlow is imported only by the commands that need it, so `--help` answers at once. Errors the
engine reports about the user's input (`ValueError`, `TypeError`, files) print `error: ...` and exit
with status 2, like argparse's own usage errors.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from lucidwidget import imaging

USAGE_ERROR = 2
"""Exit status for bad input, the same as argparse uses for a usage error."""

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), the shell convention."""

GIF_FRAMES = 32
"""Frames in a GIF when --gif-every is not given: a short replay that stays a small file."""

PROGRESS_INTERVAL = 0.1
"""Seconds between progress line updates: smooth to watch, cheap to print."""

PROGRESS_WIDTH = 24
"""Characters in the progress bar."""

MODEL_FILE_SUFFIXES = (".keras", ".h5")
"""A --model ending in one of these is a saved model file rather than a zoo name."""

EXAMPLES = """examples:
  lucidwidget layers --model vgg16-hed
  lucidwidget render --objective block4_conv3:42 --batch 4 -o sheet.png --gif progress.gif
  lucidwidget render --objective "block4_conv3:42 - 0.5*block5_conv1:7" --optimizer lbfgs
  lucidwidget lab
"""

QUICKSTART_NAME = "lucidwidget_quickstart.ipynb"
"""File the lab command writes when the repository's quickstart notebook is not at hand."""

REPO_QUICKSTART = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"
"""The quickstart notebook of a source checkout (an editable install)."""

QUICKSTART_CELLS = [
    ("markdown", "# lucidwidget quickstart\n\nFeature visualisation of the bundled `vgg16-hed` model; "
                 "runs offline."),
    ("code", "import lucidwidget as lw\nfrom IPython.display import Image\nfrom lucidwidget import imaging"),
    ("markdown", "The widget: pick a layer and a channel, the tiles update while the optimiser runs."),
    ("code", 'w = lw.LucidWidget("vgg16-hed", layer="block4_conv3", channel=42)\nw'),
    ("markdown", "The same engine from code: objectives combine across layers."),
    ("code", 'images = lw.render("vgg16-hed", "block4_conv3:42 - 0.5*block5_conv1:7", batch=2, steps=128, '
             'size=128, seed=0)\nImage(imaging.png_bytes(images))'),
]
"""Cells of the notebook `lucidwidget lab` writes when there is no repository notebook."""


class ProgressLine:
    """Callback that redraws one progress line (`\\r`) on a stream, at most every 0.1 s."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self._steps, self._last, self._width = 1, 0.0, 0

    def on_render_begin(self, logs):
        self._steps, self._last, self._width = logs["steps"], 0.0, 0
        height, width = logs["size"]
        self.stream.write(f"rendering {logs['objective']} at {height}x{width}, batch {logs['batch']}\n")

    def on_step_end(self, step, logs):
        now = time.monotonic()
        if step < self._steps and now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        filled = PROGRESS_WIDTH * step // self._steps
        bar = "=" * filled + "." * (PROGRESS_WIDTH - filled)
        line = (f"[{bar}] {step}/{self._steps}  objective {logs['objective']:.4g}  "
                f"{logs['steps_per_sec']:.1f} steps/s")
        self.stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self.stream.flush()

    def on_render_end(self, logs):
        state = "cancelled" if logs["cancelled"] else "done"
        self.stream.write(f"\n{state}: {logs['steps']} steps in {logs['seconds']:.1f} s\n")
        self.stream.flush()


def load_model(spec):
    """A zoo name (`lucidwidget.load_model`) or a path to a saved `.keras`/`.h5` model."""
    if spec.endswith(MODEL_FILE_SUFFIXES) or os.path.sep in spec:
        if not os.path.isfile(spec):
            raise ValueError(f"No model file at {spec!r}. Received: model={spec!r}")
        import keras

        return keras.saving.load_model(spec)
    from lucidwidget.models import load_model as load_zoo_model

    return load_zoo_model(spec)


def _quiet_tensorflow():
    """Hides TensorFlow's start-up log lines unless the user asked for them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _gif_thresholds(steps, every):
    """Steps at which the render keeps a GIF frame: every `every` steps, and always the last."""
    every = max(1, steps // GIF_FRAMES) if every is None else every
    return sorted(set(range(every, steps, every)) | {steps})


def _same_size(frames):
    """Upscales the smaller frames of an octave run to the final size, so a GIF can hold them."""
    height, width = frames[-1].shape[1:3]
    return [frame if frame.shape[1:3] == (height, width) else imaging.resize(frame, (height, width))
            for frame in frames]


def _objective(args, renderer):
    """The parsed objective, plus `--diversity` times Lucid's diversity term on the chosen layer."""
    from lucidwidget.optvis import objectives

    objective = objectives.as_objective(args.objective)
    if args.diversity:
        layer = args.diversity_layer
        if layer is None:
            forward = [info.name for info in renderer.layers if info.name in objective.layers]
            if not forward:
                raise ValueError(f"The objective reads no model layer; name one with --diversity-layer. "
                                 f"Received: objective={args.objective!r}")
            layer = forward[-1]
        objective = objective + args.diversity * objectives.diversity(layer)
    return objective


def run_render(args):
    """`lucidwidget render`: optimise, then write the contact sheet (and the GIF)."""
    _quiet_tensorflow()
    import functools

    from lucidwidget.optvis import param
    from lucidwidget.optvis.render import Renderer

    renderer = Renderer(load_model(args.model))
    factory = None
    if args.param != "fft" or args.no_decorrelate:
        factory = functools.partial(param.image, fft=args.param == "fft", decorrelate=not args.no_decorrelate)
    thresholds = _gif_thresholds(args.steps, args.gif_every) if args.gif else None
    result = renderer.render(
        _objective(args, renderer),
        size=args.size,
        batch=args.batch,
        steps=args.steps,
        seed=args.seed,
        param=factory,
        transforms=None if args.transforms == "standard" else [],
        optimizer=args.optimizer,
        learning_rate=args.lr,
        thresholds=thresholds,
        callbacks=[] if args.quiet else [ProgressLine()],
        normalize_gradients=args.normalize_gradients,
        octaves=args.octaves,
    )
    images = result[-1] if thresholds else result
    imaging.save_png(args.output, images, columns=args.columns)
    written = [args.output]
    if args.gif:
        imaging.save_gif(args.gif, _same_size(result), columns=args.columns)
        written.append(args.gif)
    if not args.quiet:
        print("\n".join(f"wrote {path}" for path in written))


def run_layers(args):
    """`lucidwidget layers`: one aligned row per visualizable layer, in forward order."""
    _quiet_tensorflow()
    from lucidwidget.models import visualizable_layers

    rows = [("layer", "channels", "shape", "kind")]
    rows += [(info.name, str(info.channels), "spatial" if info.spatial else "dense", str(info.kind))
             for info in visualizable_layers(load_model(args.model))]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for name, channels, shape, kind in rows:
        print(f"{name:<{widths[0]}}  {channels:>{widths[1]}}  {shape:<{widths[2]}}  {kind}")


def quickstart_notebook(directory) -> Path:
    """Writes the quickstart notebook into `directory` unless a file of that name is there already."""
    path = Path(directory) / QUICKSTART_NAME
    if not path.exists():
        cells = [
            {"cell_type": kind, "metadata": {}, "source": source}
            | ({"execution_count": None, "outputs": []} if kind == "code" else {})
            for kind, source in QUICKSTART_CELLS
        ]
        notebook = {
            "cells": cells,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4,
            "nbformat_minor": 4,
        }
        path.write_text(json.dumps(notebook, indent=1) + "\n")
    return path


def lab_command(notebook, port=None, browser=True) -> list[str]:
    """The argv that starts JupyterLab on `notebook` with this Python."""
    argv = [sys.executable, "-m", "jupyterlab", str(notebook)]
    if port is not None:
        argv.append(f"--port={port}")
    if not browser:
        argv.append("--no-browser")
    return argv


def has_jupyterlab() -> bool:
    return importlib.util.find_spec("jupyterlab") is not None


def run_lab(args):
    """`lucidwidget lab`: replaces this process with JupyterLab on the chosen notebook."""
    if not has_jupyterlab():
        raise ValueError('JupyterLab is not installed; install it with: pip install "lucidwidget[lab]"')
    if args.notebook is not None:
        notebook = Path(args.notebook)
        if not notebook.is_file():
            raise ValueError(f"No notebook at {str(notebook)!r}. Received: notebook={args.notebook!r}")
    elif REPO_QUICKSTART.is_file():
        notebook = REPO_QUICKSTART
    else:
        notebook = quickstart_notebook(Path.cwd())
    argv = lab_command(notebook, args.port, browser=not args.no_browser)
    sys.stdout.flush()
    os.execv(argv[0], argv)


def positive_int(text):
    """argparse type for counts such as --steps."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lucidwidget",
        description="Feature visualization for Keras 3 models: render, list layers, or open JupyterLab.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model_help = 'zoo name (e.g. "vgg16-hed", "InceptionV3") or a saved .keras/.h5 file (default: %(default)s)'
    default = " (default: %(default)s)"

    render = commands.add_parser(
        "render", help="optimise images for an objective and save a contact sheet",
        description="Optimise images so that an objective grows, and save them as a PNG contact sheet.",
    )
    render.add_argument("--model", default="vgg16-hed", help=model_help)
    render.add_argument("--objective", required=True,
                        help='"layer:channel", or an expression such as "block4_conv3:42 - 0.5*block5_conv1:7"')
    render.add_argument("--batch", type=positive_int, default=1, help="images rendered together" + default)
    render.add_argument("--steps", type=positive_int, default=256, help="optimizer steps" + default)
    render.add_argument("--size", type=positive_int, default=None,
                        help="image side in pixels (default: the model's input size, else 128)")
    render.add_argument("--seed", type=int, default=None, help="random seed for a reproducible result")
    render.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: 0.05 for adam and sgd, 1.0 for lbfgs)")
    render.add_argument("--optimizer", default="adam", help="adam, sgd (momentum 0.9) or lbfgs" + default)
    render.add_argument("--param", choices=("fft", "pixel"), default="fft",
                        help="optimise the image's Fourier spectrum or its pixels" + default)
    render.add_argument("--no-decorrelate", action="store_true", help="optimise raw RGB, not decorrelated colour")
    render.add_argument("--transforms", choices=("standard", "none"), default="standard",
                        help="random jitter/scale/rotate each step (Lucid's standard set), or none" + default)
    render.add_argument("--normalize-gradients", action="store_true",
                        help="divide gradients by their standard deviation each step")
    render.add_argument("--diversity", type=float, default=0.0, metavar="W",
                        help="add W times Lucid's diversity term (minus the batch's mean style similarity, "
                             "in [-1, 1]) so the images differ; needs --batch >= 2, try 10")
    render.add_argument("--diversity-layer", default=None, metavar="LAYER",
                        help="layer for --diversity (default: the deepest layer the objective reads)")
    render.add_argument("--octaves", type=positive_int, default=None, metavar="N",
                        help="optimise in N stages of growing size")
    render.add_argument("-o", "--output", default="sheet.png", help="PNG contact sheet to write" + default)
    render.add_argument("--columns", type=positive_int, default=None,
                        help="images per row of the sheet (default: a near-square grid)")
    render.add_argument("--gif", default=None, metavar="PATH", help="also write the optimisation as an animated GIF")
    render.add_argument("--gif-every", type=positive_int, default=None, metavar="N",
                        help=f"one GIF frame every N steps (default: steps / {GIF_FRAMES})")
    render.add_argument("--quiet", action="store_true", help="no progress line and no summary")
    render.set_defaults(run=run_render)

    layers = commands.add_parser(
        "layers", help="list the layers a model offers for visualisation",
        description="List visualizable layers in forward order with their channel counts.",
    )
    layers.add_argument("--model", default="vgg16-hed", help=model_help)
    layers.set_defaults(run=run_layers)

    lab = commands.add_parser(
        "lab", help="open JupyterLab on the quickstart notebook",
        description=("Open JupyterLab on a notebook: the repository's notebooks/quickstart.ipynb when "
                     f"present, otherwise {QUICKSTART_NAME} written into the current directory."),
    )
    lab.add_argument("--notebook", default=None, metavar="PATH", help="open this notebook instead")
    lab.add_argument("--port", type=positive_int, default=None, help="port for the Jupyter server")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.set_defaults(run=run_lab)
    return parser


def main(argv=None) -> int:
    """Runs the command line; returns the exit status (0, or 2 for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return INTERRUPTED
    return 0
