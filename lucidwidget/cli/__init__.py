"""The `lucidwidget` command: one module per subcommand, `common` for what they share.

    lucidwidget render --model vgg16-hed --objective block4_conv3:42 --batch 4 -o sheet.png
    lucidwidget explain --image photo.jpg --target block4_conv3:42 --method gradcam -o heat.png
    lucidwidget atlas --model vgg16-hed --layers block4_conv3 --channels 0-63 -o atlas
    lucidwidget layers --model vgg16-hed
    lucidwidget models
    lucidwidget lab

The backend (TensorFlow by default) is imported only by the commands that need it, so `--help` answers
at once. Every argument is checked before any work starts. Errors about the user's input print
`error: ...` and exit with status 2, like argparse's own usage errors.
"""

from __future__ import annotations

import argparse
import sys

from lucidwidget.cli import atlas, common, explain, lab, layers, render
from lucidwidget.errors import user_message

EXAMPLES = """examples:
  lucidwidget layers --model vgg16-hed
  lucidwidget render --objective block4_conv3:42 --batch 4 -o sheet.png --gif progress.gif
  lucidwidget render --objective "block4_conv3:42 - 0.5*block5_conv1:7" --optimizer lbfgs -o mix.jpg
  lucidwidget render --objective "caricature(block4_conv3)" --image photo.jpg -o caricature.png
  lucidwidget render --objective "style() + 0.1*content(block4_conv2)" --image chelsea --style-image art.png
  lucidwidget render --objective "deepdream(block4_conv3)" --init-image chelsea --steps 64 -o dream.png
  lucidwidget explain --image chelsea --target block4_conv3:42 -o heat.png
  lucidwidget explain --model classifier.keras --image cat.jpg --target 281 --method integrated_gradients
  lucidwidget explain --image chelsea --top-channels block4_conv3 --target block5_conv1:7
  lucidwidget atlas --layers block4_conv3 --channels 0-63 --images photos/ -o atlas
  lucidwidget models
  lucidwidget lab
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lucidwidget",
        description="Feature visualization for Keras 3 models: render, explain a photo, make an atlas, list models "
                    "or layers, or open JupyterLab.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    render.add_parser(commands)
    explain.add_parser(commands)
    atlas.add_parser(commands)
    layers.add_parsers(commands)
    lab.add_parser(commands)
    return parser


def main(argv=None) -> int:
    """Runs the command line; returns the exit status (0, or 2 for bad input)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "passes_unknown", False):
        args.jupyter_args = extra
    elif extra:
        parser.parse_args(argv)     # reports the unrecognized arguments as argparse does, and exits 2
    try:
        args.run(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"error: {user_message(error)}", file=sys.stderr)
        return common.USAGE_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return common.INTERRUPTED
    return 0
