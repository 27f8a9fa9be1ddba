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
previous schedule (boost 2 decaying over 64 steps, no warm-up, Lucid's 0.01 start): activation at step
64 x1.39, 1.06, 1.10, 1.37, 1.19, 0.97 (mean 1.18) and at step 256 x1.07, 1.01, 1.00, 1.21, 1.10, 0.95
(mean 1.06), high-frequency share 0.173 against 0.157 (with `FAST_INIT_SD`). By step 64 it holds 65% of
its own 256-step activation (44-75% per unit; 59% before) and 84% of Lucid's plain 256-step render's
(constant steps, 1/f; 67-92%), which it matches on average at step 96. Tried and not adopted: a boost of 8 over 32 steps after the same warm-up (the same
activation at step 64, 5% less at 256), of 12 over 48 after 24 steps (4% more at 64, high-frequency
share 0.200), larger constant steps (learning rate 0.1 or 0.2: lower at every step count), Adam with
beta_1 0.95 or 0.97, L-BFGS, SGD on normalised gradients, a fixed image contrast (far lower early) and
faster colour channels (more activation in block4, less in block5, garish colours). Steps that decay
below the optimizer's own raise the share reached by step 64 only by ending lower."""

FAST_INIT_SD = 0.05
"""Standard deviation of the "fast" schedule's initial Fourier coefficients (Lucid's is 0.01). Without a
warm-up, Adam's first full, sign-like steps told the seeds apart; after it, a larger random start does.
Four tiles at 256 steps with the widget's defaults (diversity 10), mean pixel correlation between tiles
on block3_conv3:40, block4_conv3:42, block4_conv3:200 and block5_conv1:100: 0.221, 0.106, 0.047, 0.040
(0.01: 0.352, 0.103, 0.041, 0.071; the schedule before the warm-up: 0.194, 0.082, 0.061, 0.032), with
activation at step 256 within 3% of the 0.01 start (1.00, 1.01, 1.03, 1.03x). One tile, four units
(block3_conv3:40 to block5_conv1:7): activation at step 64 x0.95-1.01 of the 0.01 start."""

PARAM_OPTIONS = {None: {"decay_power": 1.0, "sd": None}, "fast": {"decay_power": FAST_DECAY_POWER, "sd": FAST_INIT_SD}}
"""Spectrum decay power and initial standard deviation (None: `param.image`'s default) of the default
parameterisation for each schedule; the widget passes the same to its own parameterisation."""


def check_schedule(schedule):
    """`schedule` if `Renderer.render` offers it, else a `ValueError` naming the choices."""
    return checks.choice(schedule, "schedule", SCHEDULES)


def scheduled(adapter, schedule):
    """The optimizer adapter with `schedule`'s step sizes (`optimizers.Boosted` for "fast")."""
    if schedule == "fast":
        return optimizers_lib.Boosted(adapter, FAST_BOOST, FAST_DECAY_STEPS, FAST_WARMUP_STEPS)
    return adapter
