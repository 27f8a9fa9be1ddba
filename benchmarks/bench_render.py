"""Engine speed against the bare limit on each Keras backend, measured in one run (run by hand, not a test).

The bare limit is the least work any feature-visualisation library must do per step: the gradient of
the same objective with respect to a raw input, through the model truncated at the target layer, plus
a plain gradient-ascent update, run the fastest way the backend offers (TensorFlow: a `tf.function`
step; JAX: a `jax.jit` step in a Python loop; PyTorch: eager). The engine adds the FFT
parameterisation, colour decorrelation, the standard transforms and Adam, so a ratio engine / bare
>= 1.0 means those cost nothing measurable, or that the engine's tap saves work the bare graph does.

Keras picks its backend when it is imported, so each backend is measured in a process of its own
(`KERAS_BACKEND` set for it); this one collects their figures and prints them side by side. Each also
times "slider -> completed new render": a channel change on the warm renderer until a render of the
widget's default length has returned.

    python benchmarks/bench_render.py                    # every installed backend, vgg16-hed block4_conv3:42
    python benchmarks/bench_render.py --backend jax torch --model VGG16 --steps 64 --batches 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BACKENDS = ("tensorflow", "jax", "torch")
MODELS = {
    "vgg16-hed": "vgg16-hed (VGG16 fine-tuned for HED edge detection)",
    "VGG16": "VGG16 (keras.applications, weights=None: random weights, for speed only)",
}
LEARNING_RATE = 0.05
"""Step of the bare limit's gradient ascent; its size does not change the work per step."""


def load(model_name):
    """The model to measure: the bundled vgg16-hed, or VGG16's architecture with random weights (unseeded:
    `keras.utils.set_random_seed` would import TensorFlow on every backend)."""
    import keras

    import lucidwidget as lw

    if model_name == "VGG16":
        return keras.applications.VGG16(weights=None, include_top=False)
    return lw.load_model(model_name)


def device_name():
    """The device the backend computes on, as it names it."""
    from lucidwidget import backend

    if backend.name == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "CPU"
    if backend.name == "jax":
        import jax

        device = jax.devices()[0]
        return "CPU" if device.platform == "cpu" else device.device_kind
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"


def bare_step(model, layer_name, channel, size, batch):
    """The bare limit's step: `step()` takes one gradient-ascent step on a raw input through `model`
    truncated at `layer_name` and returns the objective (not yet synchronised)."""
    import keras
    import numpy as np

    from lucidwidget import backend

    truncated = keras.Model(model.inputs, model.get_layer(layer_name).output)
    start = np.random.default_rng(0).uniform(size=(batch, size, size, 3)).astype("float32")
    image = keras.Variable(start, name="bare_image")

    def objective():
        return keras.ops.mean(keras.ops.cast(truncated(image.value, training=False)[..., channel], "float32"))

    gradient = backend.value_and_grad(objective, [image])

    def update():
        value, (grad,) = gradient()
        image.assign(image.value + LEARNING_RATE * grad)
        return value

    if backend.name == "tensorflow":
        import tensorflow as tf

        return tf.function(update)
    if backend.name == "jax":
        import jax

        @jax.jit
        def pure(values):
            with keras.StatelessScope([(image, values)]) as scope:
                value = update()
                return scope.get_current_value(image), value

        def step():
            values, value = pure(image.value)
            image.assign(values)
            return value

        return step
    return update


def whole_layer_objective():
    """`objective(layer, n)`: `channel(layer, n)` computed from the whole layer, as an objective without
    the engine's one-channel tap would. Made once, so a new channel reuses the compiled step."""
    import keras

    import lucidwidget as lw

    @lw.objectives.wrap_objective
    def whole_layer_channel(layer, index):
        def inner(T):
            return keras.ops.mean(keras.ops.take(T(layer), index, axis=-1))

        return inner

    return whole_layer_channel


def timed(fn):
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def run_bare(bare, steps):
    """`steps` bare steps, synchronised once at the end so the backend may queue them."""
    import keras

    values = [bare() for _ in range(steps)]
    float(keras.ops.convert_to_numpy(values[-1]))


def compare(renderer, objective, bare, size, batch, steps, rounds):
    """Median over interleaved rounds of (engine steps/s, bare steps/s, ratio): interleaving keeps the
    ratio meaningful on a shared machine whose load drifts during the run."""
    per_round = steps // rounds
    engine_rates, bare_rates = [], []
    for _ in range(rounds):
        engine_rates.append(per_round / timed(
            lambda: renderer.render(objective, size=size, batch=batch, steps=per_round, seed=0)))
        bare_rates.append(per_round / timed(lambda: run_bare(bare, per_round)))
    ratios = [e / b for e, b in zip(engine_rates, bare_rates)]
    return statistics.median(engine_rates), statistics.median(bare_rates), statistics.median(ratios)


def measure(args):
    """Measures the engine on the backend this process runs (`KERAS_BACKEND`) and returns the figures."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from lucidwidget._tf_startup import import_tensorflow

        import_tensorflow()  # before Keras imports it, so that its start-up notices stay hidden
    import keras

    import lucidwidget as lw
    from lucidwidget import backend

    keras.mixed_precision.set_global_policy(args.precision)
    renderer = lw.Renderer(load(args.model), jit_compile=args.xla)
    render_steps = args.render_steps or lw.LucidWidget.class_traits()["steps"].default_value

    objective = whole_layer_objective() if args.whole_layer else lw.objectives.channel

    def objective_for(channel):
        return objective(args.layer, channel)

    report = {"backend": backend.name, "device": device_name(), "batches": []}

    def say(text):
        print(f"[{backend.name}] {text}", flush=True)

    say(f"device: {report['device']}, model: {MODELS[args.model]}, objective {args.layer}:{args.channel}, "
        f"{args.size} px, {args.steps} steps in {args.rounds} interleaved rounds, precision {args.precision}, "
        f"engine XLA {'on' if args.xla else 'off'}, "
        f"target layer {'whole' if args.whole_layer else 'target channel only'}")
    for batch in args.batches:
        traces = renderer.trace_count
        first = timed(lambda: renderer.render(objective_for(args.channel), size=args.size, batch=batch, steps=1,
                                              seed=0))
        compiles = renderer.trace_count - traces
        say(f"batch {batch}: first (compiling) render of 1 step: {first:.2f} s, {compiles} trace(s)")
        bare = bare_step(renderer.model, args.layer, args.channel, args.size, batch)
        run_bare(bare, 1)
        engine, bare_rate, ratio = compare(renderer, objective_for(args.channel), bare, args.size, batch,
                                           args.steps, args.rounds)
        say(f"batch {batch}: engine {engine:.2f} steps/s, bare limit {bare_rate:.2f} steps/s, "
            f"ratio engine/bare {ratio:.2f}x (median of per-round ratios)")
        traces = renderer.trace_count
        seconds = timed(lambda: renderer.render(objective_for(args.channel + 1), size=args.size, batch=batch,
                                                steps=render_steps, seed=1))
        retraces = renderer.trace_count - traces
        say(f"batch {batch}: slider -> completed new render (channel {args.channel} -> {args.channel + 1}): "
            f"{render_steps} steps in {seconds:.2f} s ({render_steps / seconds:.2f} steps/s), {retraces} retrace(s)")
        report["batches"].append({
            "batch": batch, "first_render_s": first, "traces": compiles, "engine": engine, "bare": bare_rate,
            "ratio": ratio, "render_steps": render_steps, "render_s": seconds, "retraces": retraces,
        })
    return report


def summary(reports):
    """The figures of every backend side by side."""
    lines = ["", "engine / bare limit (steps/s); slider -> completed new render"]
    for name, report in reports.items():
        if report is None:
            lines.append(f"{name:<10}  failed: see its output above")
            continue
        for row in report["batches"]:
            lines.append(
                f"{name:<10}  {report['device']:<8}  batch {row['batch']:<3} {row['ratio']:5.2f}x "
                f"({row['engine']:.2f} / {row['bare']:.2f})   "
                f"{row['render_steps']} steps in {row['render_s']:.2f} s, {row['retraces']} retrace(s)")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    installed = [name for name in BACKENDS if importlib.util.find_spec(name) is not None]
    parser.add_argument("--backend", nargs="+", choices=BACKENDS, default=installed,
                        help="Keras backends to measure, each in its own process. Defaults to every one installed.")
    parser.add_argument("--model", choices=sorted(MODELS), default="vgg16-hed")
    parser.add_argument("--layer", default="block4_conv3")
    parser.add_argument("--channel", type=int, default=42)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=8, help="interleaved engine/bare rounds")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--render-steps", type=int, default=None,
                        help="steps of the render after a channel change. Defaults to the widget's steps.")
    parser.add_argument("--xla", action="store_true",
                        help="compile the engine's step with XLA on TensorFlow (JAX always compiles with XLA)")
    parser.add_argument("--whole-layer", action="store_true",
                        help="compute the whole target layer instead of only the target channel")
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"],
                        help="Keras dtype policy for the model, in the engine and the bare limit alike")
    parser.add_argument("--report", help=argparse.SUPPRESS)  # set for the per-backend processes: JSON goes there
    args = parser.parse_args()

    if args.report:
        with open(args.report, "w") as file:
            json.dump(measure(args), file)
        return
    reports = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.backend:
            path = os.path.join(folder, f"{name}.json")
            # the last --backend given is the one argparse keeps
            command = [sys.executable, __file__, *sys.argv[1:], "--backend", name, "--report", path]
            result = subprocess.run(command, env={**os.environ, "KERAS_BACKEND": name})
            reports[name] = None
            if result.returncode == 0:
                with open(path) as file:
                    reports[name] = json.load(file)
    print(summary(reports))
    if None in reports.values():
        sys.exit(1)


if __name__ == "__main__":
    main()
