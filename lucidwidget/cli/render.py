"""`lucidwidget render`: optimise images for an objective and write a contact sheet (and a GIF)."""

from __future__ import annotations

import os
import sys
import time

from lucidwidget import data, imaging
from lucidwidget.cli import common

GIF_FRAMES = 32
"""Frames in a GIF when --gif-every is not given: a short replay that stays a small file."""

PROGRESS_INTERVAL = 0.1
"""Seconds between progress line updates: smooth to watch, cheap to print."""

PROGRESS_WIDTH = 24
"""Characters in the progress bar."""


class ProgressLine:
    """Callback that redraws one progress line (`\\r`) on a stream, at most every 0.1 s."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self._steps, self._last, self._width = 1, 0.0, 0

    def on_render_begin(self, logs):
        self._steps, self._last, self._width = logs["steps"], 0.0, 0
        height, width = logs["size"]
        self.stream.write(f"rendering {logs['objective']} at {height}x{width}, batch {logs['batch']}\n")
        if logs["compiling"]:
            self._draw(0, "compiling…")

    def on_step_end(self, step, logs):
        now = time.monotonic()
        if step < self._steps and now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        rate = logs["steps_per_sec"]           # None while the steps' time was mostly the compile's
        speed = "compiling…" if rate is None else f"{rate:.1f} steps/s"
        self._draw(step, f"objective {logs['objective']:.4g}  {speed}")

    def _draw(self, step, text):
        filled = PROGRESS_WIDTH * step // self._steps
        bar = "=" * filled + "." * (PROGRESS_WIDTH - filled)
        line = f"[{bar}] {step}/{self._steps}  {text}"
        self.stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self.stream.flush()

    def on_render_end(self, logs):
        state = "cancelled" if logs["cancelled"] else "done"
        self.stream.write(f"\n{state}: {logs['steps']} steps in {logs['seconds']:.1f} s\n")
        if logs["warning"]:
            self.stream.write(f"note: {logs['warning']}\n")
        self.stream.flush()


def _gif_thresholds(steps, every):
    """Steps at which the render keeps a GIF frame: every `every` steps, and always the last."""
    every = max(1, steps // GIF_FRAMES) if every is None else every
    return sorted(set(range(every, steps, every)) | {steps})


def _same_size(frames):
    """Upscales the smaller frames of an octave run to the final size, so a GIF can hold them."""
    height, width = frames[-1].shape[1:3]
    return [frame if frame.shape[1:3] == (height, width) else imaging.resize(frame, (height, width))
            for frame in frames]


def _objective(args, objective, renderer):
    """The objective's layers checked, plus `--diversity` times Lucid's diversity term on the chosen layer."""
    from lucidwidget.optvis import objectives

    common.check_layers(objective.layers, renderer.layers, renderer.model, f"objective={args.objective!r}")
    if args.diversity:
        layer = args.diversity_layer
        if layer is None:
            forward = [info.name for info in renderer.layers if info.name in objective.layers]
            if not forward:
                raise ValueError(f"The objective reads no model layer; name one with --diversity-layer. "
                                 f"Received: objective={args.objective!r}")
            layer = forward[-1]
        else:
            common.check_layers({layer}, renderer.layers, renderer.model, f"diversity_layer={layer!r}")
        objective = objective + args.diversity * objectives.diversity(layer)
    return objective


IMAGE_OPTIONS = {"image": "--image", "style": "--style-image"}
"""The caller's images an objective may compare with (`objectives.reference` slots) and their options."""


def _bind_images(args, objective, images):
    """The objective with --image and --style-image bound to its slots; a slot without its option, or an
    option no slot uses, is an error (an unused photo is a mistake worth a sentence)."""
    slots = {reference.slot for reference in objective.references if reference.images is None}
    for slot, option in IMAGE_OPTIONS.items():
        if slot in slots and images[slot] is None:
            what = "a style image" if slot == "style" else "a photo"
            raise ValueError(f"The objective {args.objective!r} compares with {what}: give it with {option} PATH (a file, "
                             f"or a bundled photo: {common.either(sorted(data.PHOTOS))}). "
                             f"Received: {option[2:].replace('-', '_')}=None")
    for slot, option in IMAGE_OPTIONS.items():
        name = option[2:].replace("-", "_")
        if images[slot] is not None and slot not in slots:
            uses = "style() does" if slot == "style" else "caricature(layer) and content(layer) do"
            hint = "; to start from the photo, use --init-image" if slot == "image" else ""
            raise ValueError(f"{option} is given, but the objective {args.objective!r} does not compare with it "
                             f"({uses}){hint}. Received: {name}={getattr(args, name)!r}")
    return objective.with_images(**{slot: image for slot, image in images.items() if image is not None})


def run(args):
    """Checks every argument, optimises, then writes the contact sheet (and the GIF)."""
    common.check_output(args.output, "--output")
    if args.gif:
        common.check_output(args.gif, "--gif", {".gif": "GIF"})
        if os.path.abspath(args.gif) == os.path.abspath(args.output):
            raise ValueError(f"--gif and --output name the same file. Received: gif={args.gif!r}")
    images = {"image": common.image_option(args.image, "--image"),
              "style": common.image_option(args.style_image, "--style-image")}
    start = common.image_option(args.init_image, "--init-image")
    common.import_backend()
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
    renderer = Renderer(common.load_model(args.model), preprocess=args.preprocess)
    objective = _bind_images(args, _objective(args, renderer.objective(args.objective), renderer), images)
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
        init_images=start,
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


def add_parser(commands):
    """Adds `render` to the subcommands."""
    default = common.DEFAULT
    render = commands.add_parser(
        "render", help="optimise images for an objective and save a contact sheet",
        description="Optimise images so that an objective grows, and save them as a contact sheet.",
    )
    render.add_argument("--model", default="vgg16-hed", help=common.MODEL_HELP)
    render.add_argument("--objective", required=True,
                        help='"layer:channel", or an expression such as "block4_conv3:42 - 0.5*block5_conv1:7"')
    render.add_argument("--batch", type=common.positive_int, default=1, help="images rendered together" + default)
    render.add_argument("--steps", type=common.positive_int, default=256, help="optimizer steps" + default)
    render.add_argument("--size", type=common.positive_int, default=None,
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
                             f"{common.PREPROCESS_HELP} (default: none; zoo models have theirs inside)")
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
    render.add_argument("--octaves", type=common.positive_int, default=None, metavar="N",
                        help="optimise in N stages of growing size")
    photos = ", ".join(sorted(data.PHOTOS))
    render.add_argument("--image", default=None, metavar="PATH",
                        help="the photo that caricature(layer) and content(layer) compare with: an image file or a "
                             f"bundled photo ({photos}); scaled to cover --size and centre-cropped")
    render.add_argument("--style-image", default=None, metavar="PATH",
                        help="the image whose style style() matches (an image file or a bundled photo)")
    render.add_argument("--init-image", default=None, metavar="PATH",
                        help="start from this image instead of noise, e.g. deep dream from a photo: "
                             '--objective "deepdream(block4_conv3)" --init-image chelsea --steps 64')
    render.add_argument("-o", "--output", default="sheet.png",
                        help=f"contact sheet to write; the extension ({', '.join(imaging.FORMATS)}) picks "
                             "the format" + default)
    render.add_argument("--columns", type=common.positive_int, default=None,
                        help="images per row of the sheet (default: a near-square grid)")
    render.add_argument("--gif", default=None, metavar="PATH", help="also write the optimisation as an animated GIF")
    render.add_argument("--gif-every", type=common.positive_int, default=None, metavar="N",
                        help=f"one GIF frame every N steps (default: steps / {GIF_FRAMES})")
    render.add_argument("--quiet", action="store_true", help="no progress line and no summary")
    render.set_defaults(run=run)
