"""Atlas throughput in one run (by hand, not a test): batched units against one unit at a time, one Ray
worker against two, and an estimate of the hours an atlas of every conv channel of VGG16 and ResNet50
takes at 256 steps.

1. Batched against one at a time: `work.render_chunk` (the atlas's own unit of work) on the same units,
   B units per batch for each B of `--batches`, in interleaved rounds on one warm `Worker` (compiled
   steps are reused, so the figures are steady-state units per minute; the printed ratio is the median
   of per-round ratios to B = 1, so it holds on a machine whose load drifts).
2. Ray: the same chunks through `RayRunner` with 1 and then 2 workers on a local cluster of this machine's
   cores (actors warmed first, so actor start and model loading are not counted).
3. Estimate: the seconds per image-step measured in (1) at its layer, spread over every conv layer of
   VGG16 and ResNet50 in proportion to the multiply-adds of the model truncated at that layer (forward
   plus the input gradient, about twice the forward). It is printed for this CPU (extrapolated from the
   measurement) and for a GPU under a stated assumption unless `--gpu` measures one.

    python benchmarks/bench_atlas.py                                    # vgg16-hed block4_conv3, 32 steps
    python benchmarks/bench_atlas.py --steps 64 --batches 1 8 --rounds 3 --skip-ray
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ATLAS_STEPS = 256
"""Steps per unit of the estimated atlases (the atlas's default)."""

GPU_ASSUMED_STEPS_PER_SECOND = 2070.0
"""The assumption behind the GPU estimate when no GPU is measured: a prototype of the Lucid recipe in
Keras 3 on JAX ran 2070 steps/s on vgg16-hed block4_conv3 at 128 px, batch 1, on one H200 (README,
"Speed"). It is a batch-1 figure, so batching (which the atlas does) would only lower the estimate."""

GPU_ASSUMED_LAYER = ("vgg16-hed", "block4_conv3", 128)
"""Model, layer and size of `GPU_ASSUMED_STEPS_PER_SECOND`."""

STEP_PER_FORWARD = 2.0
"""A render step's multiply-adds per forward pass of the truncated model: the forward pass, then the
input gradient through the same convolutions (no weight gradients); transforms and Adam are negligible."""


def flops_by_layer(model, size):
    """({conv layer: multiply-adds x 2 per image of the model truncated at it}, {conv layer: channels}) at
    size x size, the shapes from the engine's tap (layers in forward order, a running total)."""
    import keras

    from lucidwidget.models import FeatureTap

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    shapes = FeatureTap(model, [layer.name for layer in convs]).output_shapes(size, size)
    total, truncated, channels = 0.0, {}, {}
    for layer in convs:
        height, width, filters = shapes[layer.name]
        kernel_height, kernel_width = layer.kernel_size
        total += 2.0 * height * width * filters * kernel_height * kernel_width * layer.kernel.shape[2]
        truncated[layer.name] = total
        channels[layer.name] = filters
    return truncated, channels


def measure_batches(worker, layer, batches, steps, rounds):
    """{B: [units per minute per round]} rendering `max(B, 8)` units B at a time, rounds interleaved."""
    from lucidwidget.atlas import plan, work

    results = {batch: [] for batch in batches}
    for batch in batches:                                  # compile each batch size once before timing
        work.render_chunk(worker.renderer, plan.render_chunks(layer, range(batch), batch, 0)[0],
                          worker.job.size, 2, ("channel",))
    for round_ in range(rounds):
        for batch in batches:
            units = max(batch, 8)
            chunks = plan.render_chunks(layer, range(100 * round_, 100 * round_ + units), batch, 0)
            started = time.perf_counter()
            for chunk in chunks:
                work.render_chunk(worker.renderer, chunk, worker.job.size, steps, ("channel",))
            seconds = time.perf_counter() - started
            results[batch].append(60.0 * units / seconds)
            print(f"  round {round_ + 1}, B={batch:>2}: {units} units in {seconds:6.1f} s = "
                  f"{60.0 * units / seconds:6.2f} units/min ({units * steps / seconds:5.2f} image-steps/s)", flush=True)
    return results


def measure_ray(job, layer, batch, steps, units):
    """Units per minute through `RayRunner` with 1 and 2 workers (actors warmed first)."""
    import ray

    from lucidwidget.atlas import plan
    from lucidwidget.atlas.ray_runner import RayRunner

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    found = {}
    try:
        for workers in (1, 2):
            runner = RayRunner(job, "auto", workers)
            try:
                list(runner.map(plan.render_chunks(layer, range(batch * workers), batch, 0)))
                chunks = plan.render_chunks(layer, range(200, 200 + units), batch, 0)
                started = time.perf_counter()
                list(runner.map(chunks))
                seconds = time.perf_counter() - started
            finally:
                runner.close()
            found[workers] = 60.0 * units / seconds
            print(f"  {workers} Ray worker(s): {units} units in {seconds:6.1f} s = {found[workers]:6.2f} units/min",
                  flush=True)
    finally:
        ray.shutdown()
    return found


def measure_once(model, layer, batch, size, steps):
    """Seconds per image-step of one warm chunk of `batch` units of `layer`."""
    from lucidwidget.atlas import plan, work

    worker = work.Worker(work.Job(model.name, None, size, steps, ("channel",)), model)
    work.render_chunk(worker.renderer, plan.render_chunks(layer, range(batch), batch, 0)[0], size, 2, ("channel",))
    started = time.perf_counter()
    work.render_chunk(worker.renderer, plan.render_chunks(layer, range(batch, 2 * batch), batch, 0)[0], size, steps,
                      ("channel",))
    return (time.perf_counter() - started) / (batch * steps)


def estimate(name, model, size, seconds_per_flop, label):
    """Hours for every conv channel of `model` at `ATLAS_STEPS` steps and `size` px."""
    truncated, channels = flops_by_layer(model, size)
    image_steps = {layer: channels[layer] * ATLAS_STEPS for layer in truncated}
    seconds = sum(image_steps[layer] * STEP_PER_FORWARD * truncated[layer] * seconds_per_flop for layer in truncated)
    units = sum(channels.values())
    print(f"  {name}: {units} conv channels in {len(truncated)} layers -> {seconds / 3600:8.2f} {label}-hours "
          f"({seconds / units:.2f} s per unit)")
    return seconds / 3600


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vgg16-hed")
    parser.add_argument("--layer", default="block4_conv3")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=32, help="steps per unit for the measurements (default: 32)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ray-units", type=int, default=16)
    parser.add_argument("--ray-batch", type=int, default=4)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--resnet-layer", default="conv4_block3_3_conv",
                        help="ResNet50 layer measured for its CPU rate (random weights)")
    parser.add_argument("--gpu", action="store_true", help="this machine has the GPU: use (1) for the GPU estimate")
    args = parser.parse_args()

    import keras

    import lucidwidget as lw
    from lucidwidget.atlas import work

    device = "GPU" if args.gpu else f"CPU ({os.cpu_count()} cores)"
    print(f"Atlas throughput: {args.model} {args.layer} at {args.size} px, {args.steps} steps per unit, "
          f"Keras on {keras.backend.backend()}, {device}; load average {os.getloadavg()[0]:.1f} at the start")
    job = work.Job(args.model, None, args.size, args.steps, ("channel",))
    worker = work.Worker(job)

    print("\n1. Batched against one unit at a time (the same units and steps; median over rounds):")
    per_batch = measure_batches(worker, args.layer, sorted(set(args.batches) | {1}), args.steps, args.rounds)
    base = per_batch[1]
    for batch, rates in sorted(per_batch.items()):
        ratio = statistics.median(rate / one for rate, one in zip(rates, base))
        print(f"  B={batch:>2}: {statistics.median(rates):6.2f} units/min, {ratio:.2f}x one at a time")
    best = max(per_batch, key=lambda batch: statistics.median(per_batch[batch]))
    best_rate = statistics.median(per_batch[best])                       # units per minute
    print(f"  fastest here: B={best}")

    if not args.skip_ray:
        print(f"\n2. One Ray worker against two ({args.ray_units} units, B={args.ray_batch}, local cluster of "
              f"{os.cpu_count()} cores):")
        rates = measure_ray(work.Job(args.model, None, args.size, args.steps, ("channel",)), args.layer,
                            args.ray_batch, args.steps, args.ray_units)
        print(f"  two workers: {rates[2] / rates[1]:.2f}x one")

    print(f"\n3. Every conv channel at {ATLAS_STEPS} steps, {args.size} px (channel view only):")
    vgg = lw.load_model(args.model)
    truncated, _ = flops_by_layer(vgg, args.size)
    seconds_per_image_step = 60.0 / best_rate / args.steps
    seconds_per_flop = seconds_per_image_step / (STEP_PER_FORWARD * truncated[args.layer])
    resnet = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(args.size, args.size, 3))
    label = "GPU" if args.gpu else "CPU"
    print(f"  measured here: {seconds_per_image_step * 1e3:.1f} ms per image-step at {args.layer} (B={best}), "
          f"{1e-9 / seconds_per_flop:.1f} GFLOP/s effective; other layers scaled by their multiply-adds")
    estimate("VGG16", vgg, args.size, seconds_per_flop, label)
    resnet_seconds = measure_once(resnet, args.resnet_layer, best, args.size, args.steps)
    resnet_flops, _ = flops_by_layer(resnet, args.size)
    resnet_per_flop = resnet_seconds / (STEP_PER_FORWARD * resnet_flops[args.resnet_layer])
    print(f"  measured here: {resnet_seconds * 1e3:.1f} ms per image-step at ResNet50 {args.resnet_layer} (random "
          f"weights, B={best}), {1e-9 / resnet_per_flop:.1f} GFLOP/s effective")
    estimate("ResNet50", resnet, args.size, resnet_per_flop, label)
    if not args.gpu:
        model_name, layer, size = GPU_ASSUMED_LAYER
        reference, _ = flops_by_layer(lw.load_model(model_name), size)
        gpu_seconds_per_flop = 1.0 / (GPU_ASSUMED_STEPS_PER_SECOND * STEP_PER_FORWARD * reference[layer])
        print(f"  No GPU measured: GPU figures below assume {GPU_ASSUMED_STEPS_PER_SECOND:.0f} steps/s at {model_name} "
              f"{layer}, {size} px, batch 1 (a prototype's H200 figure, README), scaled by multiply-adds; "
              "extrapolated, not measured:")
        estimate("VGG16", vgg, args.size, gpu_seconds_per_flop, "GPU")
        estimate("ResNet50", resnet, args.size, gpu_seconds_per_flop, "GPU")


if __name__ == "__main__":
    main()
