"""Renders the README's technique gallery: one small PNG per technique on the bundled model.

Run by hand (it takes a while on a CPU at the full step count):

    python docs/make_gallery.py                  # 256 steps, 128 px, seed 0 -> docs/gallery/techniques/
    python docs/make_gallery.py --steps 8 --out /tmp/gallery     # a quick check
    python docs/make_gallery.py --only diversity transparency    # refresh some images

It prints a Markdown table to paste into the README.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from dataclasses import dataclass, field

import numpy as np

import lucidwidget as lw
from lucidwidget import data, imaging, objectives, param, transform
from lucidwidget.widget.core import DEFAULT_DIVERSITY
from lucidwidget.widget.settings import ALPHA_PENALTY_WEIGHT, ALPHA_PRIOR

MODEL = "vgg16-hed"
LAYER, CHANNEL = "block4_conv3", 42
OTHER_LAYER, OTHER_CHANNEL = "block5_conv1", 7
"""The README's running example: a channel of block4_conv3, and a second one in a deeper layer."""

BATCH = 4
"""Images in the diversity sheet, tiled 2 x 2."""

FRAMES = 5
"""Images in the interpolation strip."""

ALIGNMENT_WEIGHT = 1e-3
"""Alignment sums squared differences of block3_conv3 activations, large numbers: a small weight."""

TV_WEIGHT_64PX = 0.05
LP_WEIGHT = 0.01
"""keras-vis-style regularizer weights for a pixel parameterization (TV on [0, 1] pixels, L6 to grey).
TV sums over pixels while the channel is a mean, so its weight is for a 64 x 64 image and scales with
1 / pixels."""

BLUR_SIGMA = 1.0
OCTAVES = 3
"""The blog seed's tricks: a Gaussian blur (sigma in pixels) of what the model sees, and three stages of
progressive upscaling."""

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The README's folder: the table's image links are relative to it."""

PHOTO = "chelsea"
"""The bundled photo the "from an image" entries start from (`lucidwidget.data`)."""

STYLE_IMAGE = os.path.join(REPOSITORY, "docs", "gallery", "block4_conv3_42.png")
"""The style for style transfer: the gallery's own `block4_conv3:42`, an image this project made."""

CARICATURE_LAYER = "block4_conv3"
CONTENT_LAYER = "block4_conv2"
DREAM_LAYER = "block4_conv3"
"""Layers of the "from an image" entries: deep enough for parts (eyes, fur), shallow enough for layout."""

STYLE_CONTENT_WEIGHT = 0.1
"""Content's weight against style, both relative errors. Started from the photo (160 steps, 128 px), 0.1
kept the cat's eyes and outline in the style's colours and strokes; 1.0 kept the photo nearly as it was,
and from noise the style's deep layers (block4_conv1, block5_conv1) fought the content into grey."""

DREAM_STEPS = 64
DREAM_LEARNING_RATE = 0.02
DREAM_JITTER = 2
"""Deep dream from a photo: at 128 px, 64 steps of 0.02 with 2 px of jitter grew eyes and fur patterns
over the photo while it stayed recognisable (a starting point; more steps dream further)."""


@dataclass
class Technique:
    """One gallery entry: a file name, a caption, the objective and the extra `render` arguments."""

    name: str
    caption: str
    objective: object
    options: dict = field(default_factory=dict)
    columns: int | None = None
    shown_with: tuple = ()
    """Images put before the render in its sheet: the photo (and style) it started from."""


def techniques(size) -> list[Technique]:
    """The gallery entries for images of `size` pixels."""
    photo = data.photo(PHOTO, size=size)
    style = imaging.load_images(STYLE_IMAGE, size=size)[0]
    tv_weight = TV_WEIGHT_64PX * (64 / size) ** 2
    target = objectives.channel(LAYER, CHANNEL)
    other = objectives.channel(OTHER_LAYER, OTHER_CHANNEL)
    return [
        Technique("channel", f"channel `{LAYER}:{CHANNEL}`", target),
        Technique("neuron", f"neuron `{LAYER}:{CHANNEL}` (centre)", objectives.neuron(LAYER, CHANNEL)),
        Technique("deepdream", "deepdream `block3_conv3` + `block4_conv3`",
                  objectives.deepdream("block3_conv3") + objectives.deepdream(LAYER)),
        Technique("cross_layer_mix", f"`{LAYER}:{CHANNEL} + {OTHER_LAYER}:{OTHER_CHANNEL}`", target + other),
        Technique("negative", f"negative `-{LAYER}:{CHANNEL}`", -target),
        Technique("diversity", f"`{LAYER}:{CHANNEL}` + diversity, batch {BATCH}",
                  target + DEFAULT_DIVERSITY * objectives.diversity(LAYER), {"batch": BATCH}, columns=BATCH // 2),
        Technique("aligned_interpolation", f"`channel_interpolate` to `{OTHER_LAYER}:{OTHER_CHANNEL}`, aligned",
                  objectives.channel_interpolate(LAYER, CHANNEL, OTHER_LAYER, OTHER_CHANNEL)
                  + ALIGNMENT_WEIGHT * objectives.alignment("block3_conv3"),
                  {"batch": FRAMES, "param": param.aligned_image}, columns=FRAMES),
        Technique("transparency", "`at_centre` + alpha parameterization with a centred prior + `alpha_penalty`",
                  objectives.at_centre(target) - ALPHA_PENALTY_WEIGHT * objectives.alpha_penalty(),
                  {"param": functools.partial(param.image, alpha=True, alpha_prior=ALPHA_PRIOR)}),
        Technique("tv_regularized", "pixels + total variation + Lp (keras-vis style)",
                  target - tv_weight * objectives.total_variation() - LP_WEIGHT * objectives.Lp(p=6, constant=0.5),
                  {"param": functools.partial(param.image, fft=False, decorrelate=False),
                   "transforms": [transform.jitter(4)]}),
        Technique("octaves_blur", f"{OCTAVES} octaves + Gaussian blur {BLUR_SIGMA}", target,
                  {"octaves": OCTAVES,
                   "transforms": [*transform.standard_transforms, transform.gaussian_blur(BLUR_SIGMA)]}),
        Technique("caricature", f"`caricature({CARICATURE_LAYER})` of the bundled `{PHOTO}` photo, from noise",
                  objectives.caricature(CARICATURE_LAYER, image=photo), shown_with=(photo,)),
        Technique("style_transfer", f"`style() + {STYLE_CONTENT_WEIGHT:g}*content({CONTENT_LAYER})`: `{PHOTO}` in the "
                  "style of `block4_conv3:42` (above), from the photo",
                  objectives.style(image=style) + STYLE_CONTENT_WEIGHT * objectives.content(CONTENT_LAYER, image=photo),
                  {"init_images": photo}, columns=3, shown_with=(photo, style)),
        Technique("dream_from_photo", f"`deepdream({DREAM_LAYER})` from `{PHOTO}`: {DREAM_STEPS} steps, learning rate "
                  f"{DREAM_LEARNING_RATE:g}, jitter {DREAM_JITTER} px", objectives.deepdream(DREAM_LAYER),
                  {"init_images": photo, "steps": DREAM_STEPS, "learning_rate": DREAM_LEARNING_RATE,
                   "transforms": [transform.jitter(DREAM_JITTER)]}, shown_with=(photo,)),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=256, help="optimizer steps (default 256)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default=os.path.join(REPOSITORY, "docs", "gallery", "techniques"),
                        help="output folder (default docs/gallery/techniques)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="render only these techniques (by file name, e.g. diversity transparency)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    chosen = techniques(args.size)
    names = [technique.name for technique in chosen]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"unknown technique(s) {unknown}; choose from {names}")
    renderer = lw.Renderer(MODEL)
    rows = []
    for technique in chosen:
        if args.only and technique.name not in args.only:
            continue
        started = time.perf_counter()
        images = renderer.render(technique.objective, size=args.size, seed=args.seed,
                                 **{"steps": args.steps, **technique.options})
        path = os.path.join(args.out, f"{technique.name}.png")
        images = imaging.composite_alpha(images)
        if technique.shown_with:
            images = np.concatenate([np.stack(technique.shown_with), images])
        imaging.save_png(path, images, columns=technique.columns)
        print(f"# {path} ({time.perf_counter() - started:.0f} s)", flush=True)
        rows.append(f"| {technique.caption} | ![]({os.path.relpath(path, REPOSITORY)}) |")
    print(f"\nRendered from `{MODEL}` ({args.steps} steps, {args.size} px, seed {args.seed}):\n")
    print("| technique | image |\n|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
