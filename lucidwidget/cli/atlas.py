"""`lucidwidget atlas`: render every unit of chosen layers once, with dataset examples and a gallery."""

from __future__ import annotations

import argparse

from lucidwidget.cli import common

DESCRIPTION = """Render every unit (channel) of the chosen layers once, into a folder with a static gallery
(index.html: layers, a grid of units, a page per unit with a link of its own). With --images, each unit also
gets its top 9 images of that folder. Rerun the same command after an interruption: it finishes only what is
missing. With --ray the work is shared by Ray actors (pip install "lucidwidget[ray]")."""

EXAMPLES = """examples:
  lucidwidget atlas --layers block4_conv3 --channels 0-63 -o atlas
  lucidwidget atlas --layers block3_conv3 block4_conv3 --views channel,negative --images photos/ -o atlas
  lucidwidget atlas --layers block5_conv1 --ray auto --workers 4 -o atlas     # Ray on this machine
  lucidwidget atlas --layers block5_conv1 --ray head-node:6379 -o /shared/atlas    # a running cluster
"""


def run(args):
    """Checks every argument (in `lucidwidget.atlas`), then renders; progress and worker lines on stderr."""
    from lucidwidget.atlas.settings import check_arguments

    arguments = dict(channels=args.channels, steps=args.steps, size=args.size, batch=args.batch, views=args.views,
                     images=args.images, ray=args.ray, workers=args.workers, seed=args.seed, format=args.format,
                     preprocess=args.preprocess)
    check_arguments(args.model, args.layers, args.output, **arguments)   # before the backend loads
    common.import_backend()
    common.check_model_name(args.model)
    from lucidwidget.atlas import atlas

    result = atlas(args.model, args.layers, args.output, verbose=0 if args.quiet else 1, **arguments)
    if not args.quiet:
        print(f"wrote {result.directory}/index.html ({result.rendered} units rendered, {result.skipped} already done)")


def add_parser(commands):
    """Adds `atlas` to the subcommands."""
    default = common.DEFAULT
    parser = commands.add_parser(
        "atlas", help="render every unit of some layers into a browsable gallery",
        description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="vgg16-hed", help=common.MODEL_HELP)
    parser.add_argument("--layers", nargs="+", required=True, metavar="LAYER",
                        help="layers whose units to render (`lucidwidget layers` lists them)")
    parser.add_argument("--channels", default=None, metavar="SPEC",
                        help="units of every layer: numbers and ranges such as 0-63,100 (default: all)")
    parser.add_argument("--steps", type=common.positive_int, default=256, help="optimizer steps per unit" + default)
    parser.add_argument("--size", type=common.positive_int, default=None,
                        help="image side in pixels (default: the model's input size, else 128)")
    parser.add_argument("--batch", type=common.positive_int, default=None,
                        help="units rendered together (default: what fits memory; on a CPU at most 4)")
    parser.add_argument("--views", default="channel", metavar="VIEWS",
                        help="comma-separated: channel (what excites the unit), negative (what drives it "
                             "negative), diversity (4 different images of it)" + default)
    parser.add_argument("--images", default=None, metavar="FOLDER",
                        help="a folder of images (searched recursively): each unit's top 9 of them, by its "
                             "largest pre-activation over positions, with a crop around that position")
    parser.add_argument("--seed", type=int, default=0, help="base of every unit's seed" + default)
    parser.add_argument("--format", choices=("png", "webp"), default="png", help="unit image format" + default)
    parser.add_argument("--preprocess", default=None, metavar="PRESET",
                        help="the input convention of a model file that expects other than RGB in [0, 1]: "
                             f"{common.PREPROCESS_HELP} (default: none; zoo models have theirs inside)")
    parser.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                        help='run on Ray actors: "auto" (this machine\'s cluster, else a local one) or a cluster '
                             "address such as head-node:6379 or ray://head-node:10001")
    parser.add_argument("--workers", type=common.positive_int, default=None,
                        help="Ray actors (default: one per GPU, else one per 4 CPUs)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="the atlas folder (created if missing; rerun to resume)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no log lines")
    parser.set_defaults(run=run)
