"""Engine speed against the bare limit, measured in one run (run by hand, not a test).

The bare limit is the least work any feature-visualisation library must do per step: a compiled
gradient of the same objective with respect to a raw input, through the model truncated at the target
layer, plus a plain gradient-ascent update. The engine adds the FFT parameterisation, colour
decorrelation, the standard transforms and Adam, so a ratio engine / bare >= 1.0 means those cost
nothing measurable, or that the engine's tap saves work the bare graph does.

    python benchmarks/bench_render.py                 # vgg16-hed block4_conv3:42, 128 px, 256 steps
    python benchmarks/bench_render.py --steps 64 --batches 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import lucidwidget as lw  # noqa: E402
from lucidwidget.models import find_layer  # noqa: E402
from lucidwidget.optvis.objectives.base import activation, leaf  # noqa: E402


def bare_step(model, layer_name, channel, size, batch, learning_rate=0.05):
    """A compiled input-gradient ascent step through the truncated model (no param, no transforms)."""
    layer, _ = find_layer(model, layer_name)
    truncated = keras.Model(model.inputs, layer.output)
    image = tf.Variable(tf.random.uniform((batch, size, size, 3), seed=0))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(tf.cast(truncated(image, training=False)[..., channel], tf.float32))
        image.assign_add(learning_rate * tape.gradient(value, image))
        return value

    return step


def whole_layer_channel(layer, channel):
    """`channel(layer, n)` computed from the whole layer, as an objective without `T.units` would."""

    def compute(T, index):
        return tf.reduce_mean(tf.gather(activation(T, layer), index, axis=-1))

    return leaf("whole_layer_channel", [layer], compute, [channel], description=f"channel {layer}:{channel}")


def timed(fn):
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def compare(renderer, objective, bare, size, batch, steps, rounds):
    """Median over interleaved rounds of (engine steps/s, bare steps/s, ratio): interleaving keeps the
    ratio meaningful on a shared machine whose load drifts during the run."""
    per_round = steps // rounds
    engine_rates, bare_rates = [], []
    for _ in range(rounds):
        engine_rates.append(per_round / timed(
            lambda: renderer.render(objective, size=size, batch=batch, steps=per_round, seed=0)))
        bare_rates.append(per_round / timed(lambda: [float(bare()) for _ in range(per_round)]))
    ratios = [e / b for e, b in zip(engine_rates, bare_rates)]
    return statistics.median(engine_rates), statistics.median(bare_rates), statistics.median(ratios)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="block4_conv3")
    parser.add_argument("--channel", type=int, default=42)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=8, help="interleaved engine/bare rounds")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--xla", action="store_true", help="compile the engine's step with XLA")
    parser.add_argument("--whole-layer", action="store_true",
                        help="compute the whole target layer instead of only the target channel")
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"],
                        help="Keras dtype policy for the model, in the engine and the bare limit alike")
    args = parser.parse_args()

    keras.mixed_precision.set_global_policy(args.precision)
    renderer = lw.Renderer("vgg16-hed", jit_compile=args.xla)
    objective = f"{args.layer}:{args.channel}"
    if args.whole_layer:
        objective = whole_layer_channel(args.layer, args.channel)
    print(f"device: {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}, "
          f"model: vgg16-hed (VGG16 fine-tuned for HED edge detection), objective {args.layer}:{args.channel}, "
          f"{args.size} px, {args.steps} steps in {args.rounds} interleaved rounds, "
          f"precision {args.precision}, engine XLA {'on' if args.xla else 'off'}, "
          f"target layer {'whole' if args.whole_layer else 'target channel only'}")
    for batch in args.batches:
        traces = renderer.trace_count
        first = timed(lambda: renderer.render(objective, size=args.size, batch=batch, steps=1, seed=0))
        print(f"batch {batch}: first (compiling) render of 1 step: {first:.2f} s, "
              f"{renderer.trace_count - traces} trace(s)")
        bare = bare_step(renderer.model, args.layer, args.channel, args.size, batch)
        bare()
        engine_rate, bare_rate, ratio = compare(renderer, objective, bare, args.size, batch, args.steps, args.rounds)
        print(f"batch {batch}: engine {engine_rate:.2f} steps/s, bare limit {bare_rate:.2f} steps/s, "
              f"ratio engine/bare {ratio:.2f}x (median of per-round ratios)")
        traces = renderer.trace_count
        other = lw.objectives.channel(args.layer, args.channel + 1)
        if args.whole_layer:
            other = whole_layer_channel(args.layer, args.channel + 1)
        changed = timed(lambda: renderer.render(other, size=args.size, batch=batch, steps=args.steps // args.rounds))
        print(f"batch {batch}: after a channel change: {args.steps // args.rounds / changed:.2f} steps/s, "
              f"{renderer.trace_count - traces} retrace(s)")


if __name__ == "__main__":
    main()
