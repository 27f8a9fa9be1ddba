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
spectrum keeps the larger steps from filling the image with fine noise. Measured with the widget's
defaults on vgg16-hed block4_conv3:42, one 128 px tile, Adam at 0.05, after 72 steps (about 5 s on an
unloaded 2-core CPU), as a share of a 256-step constant render's activation (share of spectral energy
above half-Nyquist; 0.149 for that render), mean of 3 seeds in one interleaved run: boost 4 over 64
steps with 1/f 81% (0.155); decay power 1.3, 1.4, 1.5 with boost 5 91% (0.148), 91% (0.132), 89%
(0.126); 1.4 with boost 5 over 48 90% (0.126), with boost 4 over 64 93% (0.123). An earlier 2-seed
run: boost 6 over 48 with 1/f 89% (0.182), with 1.25 93% (0.163); boosts 7 and 8 with 1.5 lost (79-81%).
`benchmarks/bench_quality.py` (3 other seeds, interleaved) against seconds on the unloaded CPU (about
15 steps/s): at 5 s constant 50% (0.071), boost 4 with 1/f 81% (0.153), "fast" 91% (0.126, rounds
90-92%). Progressive resolution with the same schedule and spectrum, 64 steps at 64 px then 128 px from
the upscaled image, tied at 90% (0.096, rounds 86-97%) but needs frames upscaled for display; 96 steps
at 64 px lost (on a CPU loaded to 8 steps/s, 30% at 5 s and 79% at 8 s where "fast" had 73% and 87%).
The steeper spectrum also raises what a long render reaches: 256 constant steps with it give
activation 128.6 (high-frequency share 0.120) against 109.2 (0.149) with 1/f, so against that render
"fast" holds 76% after 72 steps; boosts 3 and 4 decaying over 64-128 steps with decay powers 1.3-1.5
all gave 76-78% there (3 seeds)."""

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
