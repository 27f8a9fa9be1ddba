"""What the widget's controls mean to the engine: a settings dict -> `Renderer.render` arguments.

The widget keeps its settings in synced traits; a run takes a snapshot as a plain dict (the trait names
in `SETTING_NAMES`). Every value a slider moves maps onto a knob of the same structure, so the
Renderer reuses its compiled step: the sign of the objective is a weight (`-1 * objective` and
`1 * objective` share a signature), the diversity term stays in with weight 0, and switched-off
transforms stay in the list with neutral strengths (`transform.preset`). Expressions are parsed by
`expression.parse`, which makes every number a knob, so editing a number in the text does not retrace.

Modes shape the images: "standard" (RGB tiles), "transparency" (RGBA tiles kept about `opacity`
opaque, each one object in the middle: the target and the diversity term are read at the centre and
opacity costs more towards the borders; the engine composites them over a random background for the
model), "interpolation" (the
tiles morph from `channel` to `channel_b` of the layer, sharing low-resolution structure), and three
that start from the widget's image (`IMAGE_MODES`): "caricature" (Lucid's feature inversion of the image
at the layer, from noise), "style" (the image in the style of the style image, keeping the layer's
content) and "dream" (the objective grown into the image). Their images arrive with the settings as
`images={"image": ..., "style": ...}`; a mode whose image is missing is `AwaitingInput`, a prompt.

`target(settings, layers)` is what the settings point the model at (the objective kind on the layer,
with its sign): what the tiles maximise in the standard, transparency and dream modes, and what the
widget's heat map explains in every mode.
"""

from __future__ import annotations

import difflib
import functools

import numpy as np

from lucidwidget.optvis import objectives, param, transform
from lucidwidget.optvis.objectives import expression, reference
from lucidwidget.optvis.schedules import PARAM_OPTIONS

OBJECTIVE_KINDS = ("channel", "neuron", "deepdream", "class_logit", "random_direction", "expression")
"""The objective menu: one unit's channel, the centre neuron of a channel, a whole layer (DeepDream),
a class logit (a channel of the logits layer), a random direction in the layer's channel space, and a
free expression such as `"conv3:4 - 0.5*conv2:7"` (the `expression` setting)."""

CHANNEL_FREE_KINDS = ("deepdream", "random_direction", "expression")
"""Kinds that ignore the channel index (the random direction is drawn from the seed instead)."""

MODES = ("standard", "transparency", "interpolation", "caricature", "style", "dream")
"""How the tiles are made: plain RGB images, RGBA images with learned transparency, frames that
interpolate from `channel` to `channel_b`, or from the widget's image: its caricature at the layer (from
noise), the image in the style of the style image (from the image), or the objective dreamt into the
image (from the image)."""

IMAGE_MODES = ("caricature", "style", "dream")
"""Modes that optimise from the widget's image (`style` also needs the style image)."""

SETTING_NAMES = (
    "layer", "channel", "objective", "expression", "mode", "channel_b", "opacity", "negative",
    "preactivation", "steps", "learning_rate", "size", "tiles", "diversity", "fft", "decorrelate", "seed",
    "jitter", "scale", "rotate", "use_jitter", "use_scale", "use_rotate",
)
"""Traits that shape a render; changing any of them starts a new one."""

ALPHA_PENALTY_WEIGHT = 1e3
"""Weight of `alpha_penalty` (the squared gap between mean opacity and `opacity`, at most 1) in
transparency mode, the RGBA tiles composited over `param.random_background` each step. Measured with
`benchmarks/bench_quality.py --only transparency` (vgg16-hed, the widget's transparency mode, 128 px,
256 steps, opacity 0.25): at 5e2, 5 of 6 cases met mean alpha 0.15-0.35, but block5_conv3:300 ended at
0.373 (mean alpha over the six 0.300); at 1e3 it ends at 0.328 keeping 66% of an opaque render's
activation over noise (71% at 5e2), block4_conv3:42 at 0.289 keeping 81% (0.299 and 77% at 5e2), and
four tiles of block5_conv1:100 at 0.276 keeping 69%, every tile's largest opaque region at least 0.90
of its opaque area (0.291, 70% and 0.85 at 5e2). These figures are from before the "fast" schedule's
warm-up; with it, at 1e3: block5_conv3:300 0.336 keeping 58%, block4_conv3:42 0.294 keeping 83%, four
tiles of block5_conv1:100 0.274 keeping 63%, every tile's largest opaque region at least 0.76.
Before the target was read at the centre, a channel mean over the whole tile at 5e2 ended at 0.34
keeping 55% over random backgrounds, and 1e3 at 0.30 keeping 45%."""

ALPHA_PRIOR = 4.0
"""`param.image(alpha_prior=...)` in transparency mode: the alpha logits start at `-4 * r**2` (`r` the
distance from the centre, 1 at the corners), so the first frames show opacity in the middle (alpha
above 0.45 at the centre, below 0.05 at the corners) instead of a uniform 50% fog, and opacity costs
more towards the borders throughout. Most of the single object comes from reading the target at the
centre (`objectives.at_centre`); the prior adds a little at 256 steps (block5_conv3:300 at weight 1e3:
mean alpha 0.328 and largest opaque region 0.81 of the opaque area with the prior, 0.349 and 0.79
without; `bench_quality.py --alpha-prior 0`)."""

SCHEDULE = "fast"
"""The widget renders with `Renderer.render(schedule="fast")` and that schedule's spectrum decay power
(`optvis.schedules.PARAM_OPTIONS`): larger first steps show a good, clean image sooner (figures in
benchmarks/bench_quality.py and at `optvis.schedules.FAST_DECAY_POWER`). Before the schedule's warm-up,
the steeper spectrum left the other modes' defaults as they were: at 256 steps on block4_conv3:42, four
tiles correlated 0.051 (0.045 with 1/f), each keeping more activation (125-130 against 114-120), and a
transparent tile's mean opacity was 0.348 (0.349)."""

STYLE_CONTENT_WEIGHT = 0.1
"""Style mode's content weight against the style term, both relative errors (`objectives.content`,
`objectives.style`). Started from the photo on vgg16-hed (160 steps, 128 px, content at block4_conv2), 0.1
kept the cat's eyes and outline in the style's colours and strokes; 1.0 kept the photo nearly as it was
(docs/make_gallery.py)."""

STYLE_LAYER_COUNT = 5
"""Layers style mode matches when the model lacks `objectives.reference.STYLE_LAYERS` (VGG16's first
convolution of each block): this many spatial layers spread evenly over the model, as Gatys et al. spread
theirs over VGG's five blocks."""

DREAM_STEPS = 64
DREAM_LEARNING_RATE = 0.02
"""Dream mode's steps and learning rate, set when the mode is picked and put back when it is left. On
vgg16-hed, chelsea at 128 px, block4_conv3:42 with the widget's transforms, seed 0, constant steps:
these grew the channel from -3.2 (the photo) to 28.6 while the result still correlated 0.90 with the
photo's pixels (eyes and fur patterns over a recognisable cat); with the "fast" schedule's larger first
steps 0.47, and with the widget's defaults (256 steps of 0.05, "fast") 0.27: the photo painted over."""

IMAGE_SCHEDULE = None
"""The image modes render with constant steps (and the default spectrum), not `SCHEDULE`: started from the
photo, the "fast" schedule's larger first steps wash it out. On vgg16-hed, chelsea, 128 px, 256 steps,
the widget's defaults, seed 0: style mode (the gallery's block4_conv3:42 as the style, content at
block4_conv3) kept a pixel correlation of 0.57 with the photo with constant steps and 0.23 with "fast"
(block4_conv3 activations 0.72 and 0.67); dream mode, see `DREAM_STEPS`. Caricature starts from noise
and does about as well either way (its block4_conv3 activations correlate 0.835 and 0.826 with the
photo's); with constant steps the cat's eyes and nose were plainer to see."""

ALIGNMENT_WEIGHT = 1e-3
"""Weight of `alignment` (minus squared activation differences of neighbouring frames) in interpolation
mode: a light pull that keeps landmarks in place without flattening the morph (Lucid's value)."""


def check(settings, layers) -> None:
    """Raises `ValueError` for a layer, channel, objective kind, expression or mode the model cannot render.

    The engine checks the same when it renders; checking here first lets the constructor fail fast
    and gives the UI an answer before any TensorFlow work.

    Args:
        settings: a settings dict (see `SETTING_NAMES`).
        layers: the model's visualizable layers (`LayerInfo`).
    """
    kind = settings["objective"]
    if kind not in OBJECTIVE_KINDS:
        raise ValueError(f"Unknown objective kind. Expected one of {OBJECTIVE_KINDS}. Received: objective={kind!r}")
    mode = settings["mode"]
    if mode not in MODES:
        raise ValueError(f"Unknown mode. Expected one of {MODES}. Received: mode={mode!r}")
    info = layer_info(settings["layer"], layers)
    if mode == "interpolation":
        _check_channel(info, "channel", settings["channel"])
        _check_channel(info, "channel_b", settings["channel_b"])
        if settings["tiles"] < 2:
            raise ValueError(f"Interpolation needs at least 2 tiles (its frames). Received: tiles={settings['tiles']}")
        return
    if mode == "transparency" and not 0 <= settings["opacity"] <= 1:
        raise ValueError(f"Expected an opacity in [0, 1]. Received: opacity={settings['opacity']}")
    if mode in ("caricature", "style"):                 # the tiles compare with images, whatever the kind
        return
    if kind == "expression":
        parse_expression(settings["expression"], layers)
    elif kind not in CHANNEL_FREE_KINDS:
        _check_channel(info, "channel", settings["channel"])


def _check_channel(info, name, channel):
    if not 0 <= channel < info.channels:
        raise ValueError(
            f"Expected a channel in [0, {info.channels - 1}] for layer {info.name!r}. Received: {name}={channel}"
        )


class AwaitingInput(ValueError):
    """A setting the user has still to fill in, such as the expression box just after picking the
    expression kind. The widget shows `prompt` as its status rather than an error."""

    def __init__(self, message, prompt):
        super().__init__(message)
        self.prompt = prompt


def parse_expression(text, layers):
    """The objective of an expression on a model with these `LayerInfo`s; every failure is a
    `ValueError` in words (with the column), and an empty box is `AwaitingInput`."""
    if not text.strip():
        raise AwaitingInput(
            "Type an objective expression, e.g. 'conv3:4 - 0.5*conv2:7', or pick another objective kind. "
            f"Received: expression={text!r}",
            prompt="Type an objective expression in the box and press Enter.",
        )
    try:
        return expression.parse(text, [info.name for info in layers])
    except TypeError as error:                      # combinations the objective algebra rejects
        raise ValueError(str(error)) from None


def layer_info(name, layers):
    """The `LayerInfo` called `name`; a `ValueError` names close matches when there is none."""
    for info in layers:
        if info.name == name:
            return info
    names = [info.name for info in layers]
    close = difflib.get_close_matches(str(name), names, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"No visualizable layer {name!r}.{hint} Layers: {', '.join(names)}. Received: layer={name!r}"
    )


def label(settings) -> str:
    """A short caption such as `conv3:7`, `-neuron conv3:7` or `deepdream conv3`, for the status line and
    the history strip; a channel (the default kind) shows as just `layer:channel`."""
    mode = settings.get("mode", "standard")
    sign = "-" if settings["negative"] else ""
    if mode == "interpolation":
        return f"{sign}interpolate {settings['layer']}:{settings['channel']}→{settings['channel_b']}"
    if mode == "caricature":
        return f"caricature {settings['layer']}"
    if mode == "style":
        return f"style · content {settings['layer']}"
    text = target_label(settings)
    if mode == "dream":
        return f"dream {text}"
    return f"{text} · alpha" if mode == "transparency" else text


def target_label(settings) -> str:
    """The caption of `target(settings, ...)`: `conv3:7`, `-neuron conv3:7`, `deepdream conv3`, ..."""
    kind, mode = settings["objective"], settings.get("mode", "standard")
    sign = "-" if settings["negative"] else ""
    if mode == "interpolation":
        kind = "channel"
    if kind == "expression":
        text = settings["expression"].strip() or "expression"
        text = f"{sign}({text})" if sign else text
    elif kind in CHANNEL_FREE_KINDS:
        text = f"{sign}{kind} {settings['layer']}"
    else:
        target = f"{settings['layer']}:{settings['channel']}"
        text = f"{sign}{target}" if kind == "channel" else f"{sign}{kind} {target}"
    return text


def summary(settings, defaults) -> str:
    """The caption, then only the settings that differ from `defaults` (what sets this render apart),
    e.g. `conv3:7 · steps=512, tiles=4`."""
    shown = {"layer", "channel", "objective", "negative", "mode", "expression"}
    if settings.get("mode") == "interpolation":
        shown.add("channel_b")
    changed = [f"{name}={settings[name]}" for name in SETTING_NAMES
               if name not in shown and name in defaults and settings[name] != defaults[name]]
    return f"{label(settings)} · {', '.join(changed)}" if changed else label(settings)


def never_on(settings, value, steps) -> str:
    """Why a finished render of one unit's pre-activation ended below 0, or "" when it did not.

    Such a unit did not turn on for any image the optimizer found: its ReLU would output 0, and the
    picture shows what makes it least negative, often a fine checkerboard (most of vgg16-hed's
    `block2_conv2` channels do this). The sentence says so rather than leaving the picture unexplained.
    """
    single = settings["tiles"] == 1 or settings["diversity"] == 0
    if (value is None or value >= 0 or not single or settings["negative"] or not settings["preactivation"]
            or settings["mode"] != "standard" or settings["objective"] not in ("channel", "neuron")):
        return ""
    return (f"{settings['layer']}:{settings['channel']} stayed off: after {steps} steps its "
            f"pre-activation is {value:.3g}, below 0, where its ReLU outputs nothing. The picture shows what makes "
            f"it least negative (often a fine checkerboard); more steps or another channel may help.")


def target(settings, layers):
    """What the settings point the model at: the objective kind on the layer (a channel in interpolation
    mode, the start of the morph), times -1 when `negative`. The tiles maximise it in the standard,
    transparency and dream modes; the widget's heat map explains it in every mode."""
    layer, channel, kind = settings["layer"], settings["channel"], settings["objective"]
    sign = -1.0 if settings["negative"] else 1.0
    if settings["mode"] == "interpolation":
        kind = "channel"
    if kind == "expression":
        unit = parse_expression(settings["expression"], layers)
    elif kind == "channel":
        unit = objectives.channel(layer, channel)
    elif kind == "neuron":
        unit = objectives.neuron(layer, channel)
    elif kind == "deepdream":
        unit = objectives.deepdream(layer)
    elif kind == "class_logit":
        unit = objectives.class_logit(layer, channel)
    else:
        unit = objectives.random_direction(layer, layer_info(layer, layers).channels, seed=settings["seed"])
    return sign * unit


def in_mode(objective, settings):
    """`objective` as the mode reads it: at the centre in transparency mode (`objectives.at_centre`, so
    one object in the middle carries it; see `ALPHA_PRIOR`), else as it is."""
    return objectives.at_centre(objective) if settings["mode"] == "transparency" else objective


def build_objective(settings, layers, images=None):
    """The objective of a settings dict: the target (or the mode's comparison with the images), the
    diversity term (several tiles) and the mode's terms (alpha penalty, or interpolation with alignment).

    Args:
        settings: a settings dict (see `SETTING_NAMES`).
        layers: the model's visualizable layers (`LayerInfo`).
        images: `{"image": array or None, "style": array or None}`, the widget's images, for the
            `IMAGE_MODES`. Defaults to None (none given).
    """
    layer, channel, mode = settings["layer"], settings["channel"], settings["mode"]
    if mode == "interpolation":
        sign = -1.0 if settings["negative"] else 1.0
        morph = objectives.channel_interpolate(layer, channel, layer, settings["channel_b"])
        return sign * morph + ALIGNMENT_WEIGHT * objectives.alignment(layer)
    images = _mode_images(mode, images or {})
    if mode == "caricature":
        objective = objectives.caricature(layer, image=images["image"])
    elif mode == "style":
        objective = (objectives.style(*style_layers(layers), image=images["style"])
                     + STYLE_CONTENT_WEIGHT * objectives.content(layer, image=images["image"]))
    else:
        objective = in_mode(target(settings, layers), settings)
    if settings["tiles"] > 1:
        objective = objective + float(settings["diversity"]) * in_mode(objectives.diversity(layer), settings)
    if mode == "transparency":
        objective = objective - ALPHA_PENALTY_WEIGHT * objectives.alpha_penalty(settings["opacity"])
    return objective


def build_transforms(settings):
    """`transform.preset` with switched-off stages at their neutral strength (same structure)."""
    return transform.preset(
        jitter=settings["jitter"] if settings["use_jitter"] else 0,
        scale=settings["scale"] if settings["use_scale"] else 0.0,
        rotate=settings["rotate"] if settings["use_rotate"] else 0.0,
    )


def _mode_images(mode, images):
    """The images a mode needs, or `AwaitingInput` saying which one to give."""
    if mode in IMAGE_MODES and images.get("image") is None:
        raise AwaitingInput(
            f"The {mode} mode starts from an image: drop one on the widget, or set `w.image`. Received: image=None",
            prompt=f"Drop an image on the widget (or choose one under Explain an image) for the {mode} mode.",
        )
    if mode == "style" and images.get("style") is None:
        raise AwaitingInput(
            "The style mode needs a style image: pick one next to the mode, or set `w.style_image`. "
            "Received: style_image=None",
            prompt="Pick a style image (next to the mode menu) for the style mode.",
        )
    return images


def style_layers(layers):
    """The layers style mode matches: `objectives.reference.STYLE_LAYERS` when the model has them all,
    else `STYLE_LAYER_COUNT` spatial layers spread evenly from its first to its last."""
    spatial = [info.name for info in layers if info.spatial]
    if set(reference.STYLE_LAYERS) <= set(spatial):
        return reference.STYLE_LAYERS
    if len(spatial) <= STYLE_LAYER_COUNT:
        return tuple(spatial)
    picks = np.linspace(0, len(spatial) - 1, STYLE_LAYER_COUNT).round().astype(int)
    return tuple(spatial[i] for i in picks)


def parameterisation(settings, schedule, factory=param.image, **options):
    """The `Renderer.render(param=...)` factory for the widget's FFT and colour settings and `schedule`'s
    `PARAM_OPTIONS`; `factory` and `options` as for `param.image`."""
    return functools.partial(factory, fft=settings["fft"], decorrelate=settings["decorrelate"],
                             **PARAM_OPTIONS[schedule], **options)


def render_arguments(settings, layers, images=None) -> tuple:
    """`(objective, kwargs)` for `Renderer.render`, checking the settings first; `images` as for
    `build_objective`."""
    check(settings, layers)
    objective = build_objective(settings, layers, images)
    mode = settings["mode"]
    schedule = IMAGE_SCHEDULE if mode in IMAGE_MODES else SCHEDULE
    options = dict(alpha=True, alpha_prior=ALPHA_PRIOR) if mode == "transparency" else {}
    factory = param.aligned_image if mode == "interpolation" else param.image
    kwargs = dict(
        size=settings["size"],
        batch=settings["tiles"],
        steps=settings["steps"],
        seed=settings["seed"],
        learning_rate=settings["learning_rate"],
        param=parameterisation(settings, schedule, factory, **options),
        transforms=build_transforms(settings),
        schedule=schedule,
    )
    if mode in ("style", "dream"):
        kwargs["init_images"] = images["image"]
    return objective, kwargs
