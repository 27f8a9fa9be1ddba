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
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import lucidwidget as lw  # noqa: E402
from lucidwidget.models import find_layer  # noqa: E402


def bare_steps_per_sec(model, layer_name, channel, size, batch, steps, learning_rate=0.05):
    """Steps/s of a compiled input gradient through the truncated model (no param, no transforms)."""
    layer, _ = find_layer(model, layer_name)
    truncated = keras.Model(model.inputs, layer.output)
    image = tf.Variable(tf.random.uniform((batch, size, size, 3), seed=0))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(truncated(image, training=False)[..., channel])
        image.assign_add(learning_rate * tape.gradient(value, image))
        return value

    step()
    began = time.perf_counter()
    for _ in range(steps):
        value = step()
    float(value)
    return steps / (time.perf_counter() - began)


def engine_run(renderer, objective, size, batch, steps):
    """(seconds, traces added) for one render."""
    traces = renderer.trace_count
    began = time.perf_counter()
    renderer.render(objective, size=size, batch=batch, steps=steps, seed=0)
    return time.perf_counter() - began, renderer.trace_count - traces


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="block4_conv3")
    parser.add_argument("--channel", type=int, default=42)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    renderer = lw.Renderer("vgg16-hed")
    objective = f"{args.layer}:{args.channel}"
    print(f"device: {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}, "
          f"model: vgg16-hed (VGG16 fine-tuned for HED edge detection), objective {objective}, "
          f"{args.size} px, {args.steps} steps")
    for batch in args.batches:
        first, traces = engine_run(renderer, objective, args.size, batch, 1)
        print(f"batch {batch}: first (compiling) render of 1 step: {first:.2f} s, {traces} trace(s)")
        seconds, _ = engine_run(renderer, objective, args.size, batch, args.steps)
        engine = args.steps / seconds
        other = f"{args.layer}:{args.channel + 1}"
        changed, retraces = engine_run(renderer, other, args.size, batch, args.steps)
        bare = bare_steps_per_sec(renderer.model, args.layer, args.channel, args.size, batch, args.steps)
        print(f"batch {batch}: engine {engine:.2f} steps/s, bare limit {bare:.2f} steps/s, "
              f"ratio engine/bare {engine / bare:.2f}x")
        print(f"batch {batch}: after a channel change: {args.steps / changed:.2f} steps/s, "
              f"{retraces} retrace(s), run {changed:.1f} s")


if __name__ == "__main__":
    main()
