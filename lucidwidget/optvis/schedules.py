"""Step-size schedules: how the optimizer's steps change over a render, and the spectrum that suits them.

`Renderer.render(schedule=...)` takes one of `SCHEDULES`; the widget uses "fast".
"""

from lucidwidget import checks
from lucidwidget.optvis import optimizers as optimizers_lib

SCHEDULES = (None, "fast")
"""Step-size schedules `Renderer.render` offers: constant steps, or "fast" (see `FAST_BOOST`)."""

FAST_BOOST = 2.0
FAST_DECAY_STEPS = 64.0
FAST_DECAY_POWER = 1.4
"""The "fast" schedule's first step is FAST_BOOST times the optimizer's own, decaying back by a factor
e every FAST_DECAY_STEPS steps (`optimizers.Boosted`), and its default FFT spectrum falls as
1/f**FAST_DECAY_POWER instead of 1/f: Adam moves every Fourier coefficient about equally, so a steeper
spectrum keeps the larger steps from filling the image with fine noise.

Measured per step (so the machine's speed does not enter) by `benchmarks/bench_quality.py --only steps`
with the widget's defaults, one 128 px tile, seed 0, on block3_conv3:40, block4_conv3:42,
block4_conv3:200 and block5_conv1:7 of vgg16-hed. Boost 2 against the earlier boost 4 (same decay and
spectrum): activation at step 64 x1.41, 0.97, 0.96, 1.20 (mean 1.13) and at step 256 x1.23, 1.03, 1.02,
1.06 (mean 1.08). Either reaches on average 56% of its own 256-step activation by step 64 (39-72% per
unit), and the boost-2 render 70% (49-84%) of Lucid's plain 256-step render (constant steps, 1/f), which
it passes between steps 96 and 128. At 64 px, decaying below the optimizer's own step (a floor of 0.25
or 0.1 after a 3-8x boost over 32-48 steps) raised the share at step 64 on block4_conv3:42 (78-85%
against 73%) only by ending lower (0.73-0.84 of boost 2's activation; 0.28-0.48 on block5_conv1:7), so
it was not adopted. Earlier, against seconds on a 2-core CPU: after 72 steps "fast" held 90-93% of a
256-step constant 1/f render where boost 4 with 1/f held 81% and constant steps 50%."""

DECAY_POWERS = {None: 1.0, "fast": FAST_DECAY_POWER}
"""Spectrum decay power of the default parameterisation (`param.image`) for each schedule; the widget
passes the same to its own parameterisation."""


def check_schedule(schedule):
    """`schedule` if `Renderer.render` offers it, else a `ValueError` naming the choices."""
    return checks.choice(schedule, "schedule", SCHEDULES)


def scheduled(adapter, schedule):
    """The optimizer adapter with `schedule`'s step sizes (`optimizers.Boosted` for "fast")."""
    if schedule == "fast":
        return optimizers_lib.Boosted(adapter, FAST_BOOST, FAST_DECAY_STEPS)
    return adapter
