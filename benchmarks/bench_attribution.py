"""Attribution speed and faithfulness, measured in one run (run by hand, not a test).

Three parts:

- `speed`: milliseconds per image for each method at 224 px on VGG16 with its classifier (the
  `keras.applications` architecture, 138M weights drawn by NumPy from a seed, so that another process
  builds the same model), beside tf-keras-vis on the same model, weights, images and class when its
  interpreter is given (`--tf-keras-vis-python`, a separate virtual environment with TensorFlow and
  tf-keras-vis: it is not a dependency). Each backend and tf-keras-vis run in their own process; every
  figure is the median of `--repeats` warm calls. tf-keras-vis gets `ReplaceToLinear` (logits), as its
  documentation recommends.
- `widget`: seconds from a new channel to a Grad-CAM map on `vgg16-hed` at 224 px, warm (what a slider
  move costs the explain widget), with the recompiles it caused.
- `auc`: Deletion and Insertion areas (xplique's definitions: 10 steps, black baseline, the class's
  probability) for each method on the synthetic scenes of `tests/scenes.py`, with a random map for
  reference.

    python benchmarks/bench_attribution.py speed --tf-keras-vis-python /path/to/venv/bin/python
    python benchmarks/bench_attribution.py speed --backend tensorflow jax --images 2 --repeats 3
    python benchmarks/bench_attribution.py widget auc
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SEED = 0
CLASS = 281
"""The class explained in `speed` (any one: the weights are random)."""

SPEED_OPTIONS = {
    "gradient": {},
    "smoothgrad": {"samples": 20},
    "integrated_gradients": {"steps": 20},
    "gradcam": {},
    "gradcam++": {},
    "faster_scorecam": {"top_n": 64},
    "scorecam": {},
}
"""Methods timed in `speed`, with the sample counts both libraries get (tf-keras-vis: `smooth_samples=20`,
Score-CAM `max_N=64` for the faster variant)."""

CAM_LAYER = "block5_conv3"

PARTS = ("speed", "widget", "auc")


def vgg16():
    """VGG16 with its classifier and weights drawn by NumPy (He-uniform kernels, zero biases)."""
    import keras
    import numpy as np

    model = keras.applications.VGG16(weights=None)
    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        if getattr(layer, "kernel", None) is not None:
            shape = tuple(layer.kernel.shape)
            limit = np.sqrt(6.0 / np.prod(shape[:-1]))
            layer.set_weights([rng.uniform(-limit, limit, shape).astype(np.float32), np.zeros(shape[-1], np.float32)])
    return model


def images(count, size):
    import numpy as np

    return np.random.default_rng(SEED + 1).uniform(0, 1, (count, size, size, 3)).astype(np.float32)


def timed(call, repeats):
    """Median seconds of `repeats` calls after one warm-up call."""
    call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def engine_speed(args):
    import lucidwidget as lw
    from lucidwidget import backend

    model, batch = vgg16(), images(args.images, args.size)
    explainer = lw.Explainer(model)
    results = {}
    for name in args.methods:
        method = "scorecam" if name.endswith("scorecam") else name
        options = dict(SPEED_OPTIONS[name], **({"layer": CAM_LAYER} if "cam" in method else {}))
        repeats = 1 if name == "scorecam" else args.repeats     # the faster variant warmed its pass
        call = lambda: explainer.attribute(batch, CLASS, method=method, **options)  # noqa: E731
        if name == "scorecam":
            start = time.perf_counter()
            call()
            seconds = time.perf_counter() - start
        else:
            seconds = timed(call, repeats)
        results[name] = 1000 * seconds / len(batch)
        print(f"  {backend.name} {name}: {results[name]:.0f} ms/image", file=sys.stderr, flush=True)
    return results


def tf_keras_vis_speed(args):
    """The same methods with tf-keras-vis (run by its own interpreter; lucidwidget is not imported)."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    model, batch = vgg16(), images(args.images, args.size)
    score = CategoricalScore([CLASS] * len(batch))
    linear = ReplaceToLinear()
    saliency = Saliency(model, model_modifier=linear, clone=True)
    gradcam = Gradcam(model, model_modifier=linear, clone=True)
    plus = GradcamPlusPlus(model, model_modifier=linear, clone=True)
    scorecam = Scorecam(model, model_modifier=linear, clone=True)
    calls = {
        "gradient": lambda: saliency(score, batch),
        "smoothgrad": lambda: saliency(score, batch, smooth_samples=20, smooth_noise=0.2),
        "gradcam": lambda: gradcam(score, batch, penultimate_layer=CAM_LAYER),
        "gradcam++": lambda: plus(score, batch, penultimate_layer=CAM_LAYER),
        "faster_scorecam": lambda: scorecam(score, batch, penultimate_layer=CAM_LAYER, max_N=64, batch_size=16),
        "scorecam": lambda: scorecam(score, batch, penultimate_layer=CAM_LAYER, batch_size=16),
    }
    results = {}
    for name in args.methods:
        if name not in calls:
            continue
        try:
            if name == "scorecam":
                start = time.perf_counter()
                calls[name]()
                seconds = time.perf_counter() - start
            else:
                seconds = timed(calls[name], args.repeats)
        except Exception as error:  # noqa: BLE001 - report what broke and go on
            results[name] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
        else:
            results[name] = 1000 * seconds / len(batch)
        print(f"  tf-keras-vis {name}: {results[name]}", file=sys.stderr, flush=True)
    return results


def widget_latency(args):
    import numpy as np

    import lucidwidget as lw

    explainer = lw.Explainer("vgg16-hed")
    image = images(1, args.size)
    explainer.attribute(image, "block5_conv3:0", method="gradcam")
    traces = explainer.trace_count
    seconds = []
    for channel in range(1, 1 + args.repeats * 4):
        start = time.perf_counter()
        explainer.attribute(image, f"block5_conv3:{channel}", method="gradcam")
        seconds.append(time.perf_counter() - start)
    return {"median_s": statistics.median(seconds), "max_s": max(seconds), "calls": len(seconds),
            "retraces": explainer.trace_count - traces, "layer": explainer.cam_layer(
                explainer.target("block5_conv3:0", 1, (args.size, args.size)), (args.size, args.size)),
            "mean": float(np.mean(seconds))}


def auc(args):
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import scenes

    import lucidwidget as lw

    model, accuracy = scenes.trained_cnn()
    batch, labels, _ = scenes.scenes(args.scenes, seed=scenes.SEED + 3)
    explainer = lw.Explainer(model)
    maps = {method: explainer.attribute(batch, labels, method=method) for method in lw.attribution.METHODS}
    maps["random map"] = np.random.default_rng(SEED).uniform(size=maps["gradcam"].shape).astype(np.float32)
    return {"accuracy": accuracy, "scenes": args.scenes, **{
        name: {"deletion": float(lw.attribution.deletion(explainer, batch, labels, values).mean()),
               "insertion": float(lw.attribution.insertion(explainer, batch, labels, values).mean())}
        for name, values in maps.items()}}


def worker(args):
    parts = {"engine": engine_speed, "tf-keras-vis": tf_keras_vis_speed, "widget": widget_latency, "auc": auc}
    with open(args.output, "w") as stream:
        json.dump(parts[args.worker](args), stream)


def run_worker(kind, args, python=sys.executable, backend="tensorflow"):
    """Runs one part in a process of its own; returns its JSON, or an error string."""
    output = os.path.join(args.tmp, f"{kind}-{backend}.json")
    command = [python, os.path.abspath(__file__), "--worker", kind, "--output", output, "--images", str(args.images),
               "--size", str(args.size), "--repeats", str(args.repeats), "--scenes", str(args.scenes),
               "--methods", *args.methods]
    environment = dict(os.environ, KERAS_BACKEND=backend)
    done = subprocess.run(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        return f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
    with open(output) as stream:
        return json.load(stream)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=list(PARTS), help=f"any of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--backend", nargs="+", default=["tensorflow"], choices=["tensorflow", "jax", "torch"])
    parser.add_argument("--tf-keras-vis-python", help="an interpreter with tensorflow and tf-keras-vis installed")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenes", type=int, default=64)
    parser.add_argument("--methods", nargs="+", default=list(SPEED_OPTIONS), choices=list(SPEED_OPTIONS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", default="/tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    if "speed" in args.parts:
        columns = {backend: run_worker("engine", args, backend=backend) for backend in args.backend}
        if args.tf_keras_vis_python:
            columns["tf-keras-vis"] = run_worker("tf-keras-vis", args, python=args.tf_keras_vis_python)
        else:
            columns["tf-keras-vis"] = "not measured: give --tf-keras-vis-python"
        print(f"\nms per image, {args.size} px, VGG16 (random weights), {args.images} images per call:")
        for name, value in columns.items():
            if isinstance(value, str):
                print(f"  {name}: {value}")
        shown = {name: value for name, value in columns.items() if isinstance(value, dict)}
        print("  method".ljust(24) + "".join(name.rjust(16) for name in shown)
              + ("   tf-keras-vis / tensorflow" if "tf-keras-vis" in shown and "tensorflow" in shown else ""))
        for method in args.methods:
            row = f"  {method}".ljust(24)
            for value in shown.values():
                cell = value.get(method, "-")
                row += (f"{cell:.0f}" if isinstance(cell, float) else str(cell)[:14]).rjust(16)
            mine, theirs = shown.get("tensorflow", {}).get(method), shown.get("tf-keras-vis", {}).get(method)
            if isinstance(mine, float) and isinstance(theirs, float):
                row += f"   {theirs / mine:.2f}x"
            print(row)
    if "widget" in args.parts:
        for backend in args.backend:
            result = run_worker("widget", args, backend=backend)
            print(f"\nvgg16-hed Grad-CAM for a new channel ({backend}, {args.size} px, warm): {result}")
    if "auc" in args.parts:
        for backend in args.backend:
            result = run_worker("auc", args, backend=backend)
            print(f"\nDeletion (lower is better) and Insertion (higher) areas on synthetic scenes ({backend}):")
            if isinstance(result, str):
                print(f"  {result}")
                continue
            print(f"  model accuracy {result.pop('accuracy'):.3f} on fresh scenes; {result.pop('scenes')} scenes")
            for name, value in result.items():
                print(f"  {name:22s} deletion {value['deletion']:.3f}   insertion {value['insertion']:.3f}")


if __name__ == "__main__":
    main()
