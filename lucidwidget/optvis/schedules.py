"""Step-size schedules: how the optimizer's steps change over a render, and the spectrum that suits them.

`Renderer.render(schedule=...)` takes one of `SCHEDULES`; the widget uses "fast".
"""

from lucidwidget import checks
from lucidwidget.optvis import optimizers as optimizers_lib

SCHEDULES = (None, "fast")
"""Step-size schedules `Renderer.render` offers: constant steps, or "fast" (see `FAST_DECAY_POWER`)."""

FAST_WARMUP_STEPS = 16.0
FAST_BOOST = 4.0
FAST_DECAY_STEPS = 64.0
FAST_DECAY_POWER = 1.4
"""The "fast" schedule's steps are FAST_BOOST times the optimizer's own, decaying back to 1x by a factor
e every FAST_DECAY_STEPS steps, and ramped up linearly over the first FAST_WARMUP_STEPS
(`optimizers.Boosted`): the first step is 0.25x Adam's, the largest, the 16th, 3.4x, step 64 2.1x,
step 256 1.06x. The warm-up keeps Adam's first steps, taken on moment estimates from a few gradients,
from moving every Fourier coefficient by a full step, noise or not. The default FFT spectrum falls as
1/f**FAST_DECAY_POWER instead of 1/f, so that the larger steps do not fill the image with fine noise.

Measured per step (so the machine's speed does not enter) by `benchmarks/bench_quality.py --only steps`
with the widget's defaults, one 128 px tile, seed 0, on block3_conv3:40, block4_conv3:42,
block4_conv3:200, block5_conv1:7, block5_conv1:100 and block5_conv3:300 of vgg16-hed, against the
previous schedule (boost 2 decaying over 64 steps, no warm-up): activation at step 64 x1.38, 1.12,
1.11, 1.37, 1.14, 0.97 (mean 1.18) and at step 256 x0.99, 1.02, 1.02, 1.29, 1.05, 0.96 (mean 1.06),
high-frequency share 0.168 against 0.157. By step 64 it holds 65% of its own 256-step activation
(42-78% per unit) and 85% of Lucid's plain 256-step render's (constant steps, 1/f; 67-94%), which it
matches on average at step 96. Tried and not adopted: a boost of 8 over 32 steps after the same warm-up (the same
activation at step 64, 5% less at 256), of 12 over 48 after 24 steps (4% more at 64, high-frequency
share 0.200), larger constant steps (learning rate 0.1 or 0.2: lower at every step count), Adam with
beta_1 0.95 or 0.97, L-BFGS, SGD on normalised gradients, a fixed image contrast (far lower early) and
faster colour channels (more activation in block4, less in block5, garish colours). Steps that decay
below the optimizer's own raise the share reached by step 64 only by ending lower."""

DECAY_POWERS = {None: 1.0, "fast": FAST_DECAY_POWER}
"""Spectrum decay power of the default parameterisation (`param.image`) for each schedule; the widget
passes the same to its own parameterisation."""


def check_schedule(schedule):
    """`schedule` if `Renderer.render` offers it, else a `ValueError` naming the choices."""
    return checks.choice(schedule, "schedule", SCHEDULES)


def scheduled(adapter, schedule):
    """The optimizer adapter with `schedule`'s step sizes (`optimizers.Boosted` for "fast")."""
    if schedule == "fast":
        return optimizers_lib.Boosted(adapter, FAST_BOOST, FAST_DECAY_STEPS, FAST_WARMUP_STEPS)
    return adapter
