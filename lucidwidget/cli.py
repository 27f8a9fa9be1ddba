"""The `lucidwidget` command: render visualisations to image files, list models and layers, open JupyterLab.

    lucidwidget render --model vgg16-hed --objective block4_conv3:42 --batch 4 -o sheet.png
    lucidwidget layers --model vgg16-hed
    lucidwidget models
    lucidwidget lab

TensorFlow is imported only by the commands that need it, so `--help` answers at once. Every argument
is checked before a render starts (output folders and formats first, before TensorFlow loads). Errors
about the user's input (`ValueError`, `TypeError`, files) print `error: ...` and exit with status 2,
like argparse's own usage errors.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import os
import shlex
import shutil
import sys
import textwrap
import time
from pathlib import Path

from lucidwidget import imaging
from lucidwidget.errors import user_message

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

MODEL_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")
"""A --model ending in one of these (or naming an existing file) is a saved model rather than a zoo name."""

MAX_CLOSE_MATCHES = 3
"""Suggestions in a "Did you mean" hint: enough for a typo, short enough to read."""

LIST_WIDTH = 88
"""Line width for `lucidwidget models`' wrapped list of names."""

PREPROCESS_HELP = 'caffe (BGR 0..255 minus the ImageNet mean), torch (mean/std), tf or "[-1, 1]", raw or "[0, 255]"'
"""The usual `--preprocess` presets, named without importing TensorFlow (`--help` answers at once)."""

EXAMPLES = """examples:
  lucidwidget layers --model vgg16-hed
  lucidwidget render --objective block4_conv3:42 --batch 4 -o sheet.png --gif progress.gif
  lucidwidget render --objective "block4_conv3:42 - 0.5*block5_conv1:7" --optimizer lbfgs -o mix.jpg
  lucidwidget models
  lucidwidget lab
"""

WORK_DIR = "lucidwidget-notebooks"
"""Folder (in the current directory) that `lucidwidget lab` copies the notebooks into and opens."""

QUICKSTART = "quickstart.ipynb"

_PACKAGE = Path(__file__).resolve().parent

OFFLINE_LAB_OPTIONS = [
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
]
"""JupyterLab options that keep it from asking the network for news and updates."""


def shipped_notebooks() -> Path:
    """The notebooks folder: shipped in the wheel as `lucidwidget/notebooks/`, else the repository's."""
    shipped = _PACKAGE / "notebooks"
    return shipped if shipped.is_dir() else _PACKAGE.parent / "notebooks"


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
        if logs["warning"]:
            self.stream.write(f"note: {logs['warning']}\n")
        self.stream.flush()


def _did_you_mean(name, choices) -> str:
    """' Did you mean 'a' or 'b'?' for the choices closest to `name` regardless of case, else ''."""
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=MAX_CLOSE_MATCHES)
    return f" Did you mean {' or '.join(repr(by_lower[c]) for c in close)}?" if close else ""


def _either(choices) -> str:
    """'a, b or c'."""
    choices = list(choices)
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def is_model_file(spec) -> bool:
    """True when --model names a saved model (by its extension, a folder in the path, or an existing file)."""
    return spec.lower().endswith(MODEL_FILE_SUFFIXES) or os.path.sep in spec or os.path.isfile(spec)


def load_model(spec):
    """A zoo name (see `lucidwidget models`) or a saved `.keras`/`.h5`/`.hdf5` model, loaded without
    compiling (a Keras 2 file's optimizer settings are not needed and may not load). The model is named
    `spec`, so every message names it as the user typed it."""
    from lucidwidget.models import list_models
    from lucidwidget.models import load_model as load_zoo_model

    if not is_model_file(spec):
        names = list_models()
        known = {_name_key(name) for name in names}
        if _name_key(spec) not in known:
            raise ValueError(f"Unknown model {spec!r}.{_did_you_mean(spec, names)} Run `lucidwidget models` for the "
                             f"names, or give a {'/'.join(MODEL_FILE_SUFFIXES)} file. Received: model={spec!r}")
    model = load_zoo_model(spec)
    model.name = spec
    return model


def _name_key(name):
    """Zoo names match regardless of case, '-' and '_' (as `lucidwidget.models.load_model` does)."""
    return name.lower().replace("-", "").replace("_", "")


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
        raise ValueError(f"Expected {option} to end in {_either(formats)} (the extension picks the format). "
                         f"{received}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"The folder {folder!r} for {option} does not exist; create it first. {received}")
    return formats[suffix]


def _gif_thresholds(steps, every):
    """Steps at which the render keeps a GIF frame: every `every` steps, and always the last."""
    every = max(1, steps // GIF_FRAMES) if every is None else every
    return sorted(set(range(every, steps, every)) | {steps})


def _same_size(frames):
    """Upscales the smaller frames of an octave run to the final size, so a GIF can hold them."""
    height, width = frames[-1].shape[1:3]
    return [frame if frame.shape[1:3] == (height, width) else imaging.resize(frame, (height, width))
            for frame in frames]


def _check_layers(names, renderer, model, received):
    """Every layer in `names` exists, else an error with close matches and the `layers` command to run."""
    from lucidwidget.models import find_layer

    for name in sorted(names):
        try:
            find_layer(renderer.model, name)
        except ValueError:
            hint = _did_you_mean(name, [info.name for info in renderer.layers])
            raise ValueError(
                f"No layer {name!r} in model {model!r}.{hint} Run `lucidwidget layers --model {model}` "
                f"for its layers. Received: {received}"
            ) from None


def _objective(args, objective, renderer):
    """The objective's layers checked, plus `--diversity` times Lucid's diversity term on the chosen layer."""
    from lucidwidget.optvis import objectives

    _check_layers(objective.layers, renderer, args.model, f"objective={args.objective!r}")
    if args.diversity:
        layer = args.diversity_layer
        if layer is None:
            forward = [info.name for info in renderer.layers if info.name in objective.layers]
            if not forward:
                raise ValueError(f"The objective reads no model layer; name one with --diversity-layer. "
                                 f"Received: objective={args.objective!r}")
            layer = forward[-1]
        else:
            _check_layers({layer}, renderer, args.model, f"diversity_layer={layer!r}")
        objective = objective + args.diversity * objectives.diversity(layer)
    return objective


def run_render(args):
    """`lucidwidget render`: check every argument, optimise, then write the contact sheet (and the GIF)."""
    check_output(args.output, "--output")
    if args.gif:
        check_output(args.gif, "--gif", {".gif": "GIF"})
        if os.path.abspath(args.gif) == os.path.abspath(args.output):
            raise ValueError(f"--gif and --output name the same file. Received: gif={args.gif!r}")
    _import_backend()
    import functools

    from lucidwidget.optvis import objectives, optimizers, param
    from lucidwidget.optvis.render import Renderer

    try:
        objectives.as_objective(args.objective)     # most mistakes show before the model loads
    except (ValueError, TypeError):
        pass                                        # layer names with '-' or spaces parse once the model is known
    optimizers.get(args.optimizer)
    if args.lr is not None:
        optimizers.check_learning_rate(args.lr)
    renderer = Renderer(load_model(args.model), preprocess=args.preprocess)
    objective = _objective(args, renderer.objective(args.objective), renderer)
    factory = None
    if args.param != "fft" or args.no_decorrelate:
        factory = functools.partial(param.image, fft=args.param == "fft", decorrelate=not args.no_decorrelate)
    thresholds = _gif_thresholds(args.steps, args.gif_every) if args.gif else None
    # The Renderer checks the size against every layer the objective reads, and the objective's
    # channels, before `on_render_begin`: a bad value stops here with nothing rendered.
    result = renderer.render(
        objective,
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
        schedule=args.schedule,
    )
    images = result[-1] if thresholds else result
    imaging.save_image(args.output, images, columns=args.columns)
    written = [args.output]
    if args.gif:
        imaging.save_gif(args.gif, _same_size(result), columns=args.columns)
        written.append(args.gif)
    if not args.quiet:
        print("\n".join(f"wrote {path}" for path in written))


def run_layers(args):
    """`lucidwidget layers`: one aligned row per visualizable layer, in forward order."""
    _import_backend()
    from lucidwidget.models import visualizable_layers

    rows = [("layer", "channels", "shape", "kind")]
    rows += [(info.name, str(info.channels), "spatial" if info.spatial else "dense", str(info.kind))
             for info in visualizable_layers(load_model(args.model))]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for name, channels, shape, kind in rows:
        print(f"{name:<{widths[0]}}  {channels:>{widths[1]}}  {shape:<{widths[2]}}  {kind}")


def run_models(args):
    """`lucidwidget models`: the zoo names, the bundled model first."""
    _import_backend()
    from lucidwidget.models import list_models

    bundled, *applications = list_models()
    print(f"{bundled}  (default; bundled, no download: VGG16 fine-tuned for HED edge detection)")
    print("\nkeras.applications models (ImageNet weights are downloaded on first use):")
    print(textwrap.fill(", ".join(applications), LIST_WIDTH, initial_indent="  ", subsequent_indent="  "))
    print(f"\nOr a saved model file: --model path/to/model{'|'.join(MODEL_FILE_SUFFIXES)}")


def _import_backend():
    from lucidwidget._tf_startup import import_backend

    import_backend()


def copy_notebooks(source, folder) -> list[Path]:
    """Copies the `.ipynb` files of `source` into `folder` (created if needed), never over an existing file.

    Returns:
        The files copied.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for notebook in sorted(Path(source).glob("*.ipynb")):
        target = folder / notebook.name
        if not target.exists():
            shutil.copyfile(notebook, target)
            copied.append(target)
    return copied


def lab_command(notebook, port=None, browser=True, extra=(), as_root=None) -> list[str]:
    """The argv that starts JupyterLab with this Python, serving the notebook's folder and opening it.

    Args:
        notebook: the notebook to open; its folder becomes the server's root (and the kernel's directory).
        port: port for the server. Defaults to None (Jupyter's choice).
        browser: open a browser. Defaults to True.
        extra: further Jupyter arguments, passed last so they override these.
        as_root: add `--allow-root` (Jupyter refuses root without it). Defaults to None: when this
            process runs as root.
    """
    notebook = Path(notebook).resolve()
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={notebook.parent}",
            f"--LabApp.default_url=/lab/tree/{notebook.name}", *OFFLINE_LAB_OPTIONS]
    if port is not None:
        argv.append(f"--port={port}")
    if not browser:
        argv.append("--no-browser")
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root and "--allow-root" not in extra:
        argv.append("--allow-root")
    return argv + list(extra)


def has_jupyterlab() -> bool:
    return importlib.util.find_spec("jupyterlab") is not None


def lab_notebook(args) -> Path:
    """The notebook `lab` opens: `--notebook` if it is a file, else that name (or the quickstart) among the
    notebooks copied into `--dir`."""
    if args.notebook is not None and Path(args.notebook).is_file():
        return Path(args.notebook)
    source = shipped_notebooks()
    copied = copy_notebooks(source, args.dir)
    if copied:
        print(f"copied {len(copied)} notebooks into {args.dir}")
    name = args.notebook or QUICKSTART
    notebook = Path(args.dir) / name
    if not notebook.is_file():
        names = sorted(path.name for path in Path(args.dir).glob("*.ipynb"))
        raise ValueError(f"No notebook {name!r} in {str(args.dir)!r}.{_did_you_mean(name, names)} "
                         f"Expected a notebook file or one of {names}. Received: notebook={args.notebook!r}")
    return notebook


def run_lab(args):
    """`lucidwidget lab`: replaces this process with JupyterLab on the chosen notebook."""
    if not has_jupyterlab():
        raise ValueError(f"JupyterLab is not installed for this Python; reinstall lucidwidget (pip install "
                         f"lucidwidget), which depends on it. Received: python={sys.executable!r}")
    notebook = lab_notebook(args)
    argv = lab_command(notebook, args.port, browser=not args.no_browser, extra=args.jupyter_args)
    if args.dry_run:
        print(shlex.join(argv))
        return
    sys.stdout.flush()
    os.execv(argv[0], argv)


def positive_int(text):
    """argparse type for counts such as --steps."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lucidwidget",
        description="Feature visualization for Keras 3 models: render, list models or layers, or open JupyterLab.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model_help = ('a name from `lucidwidget models` (e.g. "vgg16-hed", "InceptionV3") or a saved '
                  '.keras/.h5/.hdf5 model file (default: %(default)s)')
    default = " (default: %(default)s)"

    render = commands.add_parser(
        "render", help="optimise images for an objective and save a contact sheet",
        description="Optimise images so that an objective grows, and save them as a contact sheet.",
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
    render.add_argument("--preprocess", default=None, metavar="PRESET",
                        help="the input convention of a model file that expects other than RGB in [0, 1]: "
                             f"{PREPROCESS_HELP} (default: none; zoo models have theirs inside)")
    render.add_argument("--schedule", choices=("fast",), default=None,
                        help="fast: larger first steps and a smoother spectrum, a good image in fewer steps "
                             "(the widget's default; default here: constant steps)")
    render.add_argument("--normalize-gradients", action="store_true",
                        help="divide gradients by their standard deviation each step")
    render.add_argument("--diversity", type=float, default=0.0, metavar="W",
                        help="add W times Lucid's diversity term (minus the batch's mean style similarity, "
                             "in [-1, 1]) so the images differ; needs --batch >= 2, try 10")
    render.add_argument("--diversity-layer", default=None, metavar="LAYER",
                        help="layer for --diversity (default: the deepest layer the objective reads)")
    render.add_argument("--octaves", type=positive_int, default=None, metavar="N",
                        help="optimise in N stages of growing size")
    render.add_argument("-o", "--output", default="sheet.png",
                        help=f"contact sheet to write; the extension ({', '.join(imaging.FORMATS)}) picks "
                             "the format" + default)
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

    models = commands.add_parser(
        "models", help="list the model names --model accepts",
        description="List the bundled model and the keras.applications models --model accepts by name.",
    )
    models.set_defaults(run=run_models)

    lab = commands.add_parser(
        "lab", help="open JupyterLab on the quickstart notebook",
        allow_abbrev=False,
        description=(f"Copy the notebooks into a working folder (./{WORK_DIR} by default; files already "
                     f"there are kept) and open JupyterLab on {QUICKSTART} there. Arguments not listed "
                     "below go to Jupyter, e.g. --ServerApp.ip=0.0.0.0. As root, --allow-root is added."),
    )
    lab.add_argument("--notebook", default=None, metavar="NAME_OR_PATH",
                     help=f"open this notebook file, or this notebook of the working folder (default: {QUICKSTART})")
    lab.add_argument("--dir", default=WORK_DIR, metavar="FOLDER",
                     help="working folder the notebooks are copied into" + default)
    lab.add_argument("--port", type=positive_int, default=None, help="port for the Jupyter server")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--dry-run", action="store_true", help="copy the notebooks and print the Jupyter command only")
    lab.set_defaults(run=run_lab)
    return parser


def main(argv=None) -> int:
    """Runs the command line; returns the exit status (0, or 2 for bad input)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "lab":
        args.jupyter_args = extra
    elif extra:
        parser.parse_args(argv)     # reports the unrecognized arguments as argparse does, and exits 2
    try:
        args.run(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"error: {user_message(error)}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return INTERRUPTED
    return 0
