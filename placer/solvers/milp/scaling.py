"""Times and sizes brought within the range HiGHS takes, divided by exact powers of two
(ordinary sizes are left as they are; times are brought near 1)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from placer.solvers.blocks import BlockGraph

#: HiGHS refuses a matrix value of 1e15 or more (and takes 1e20 for infinity).  The
#: seconds and bytes of real models sit far below, but in-range extremes do not (a
#: 1 kFLOP/s device running a batch of 2**31: 1e15 s per op).  Above these, times and
#: sizes enter the model divided by a power of two (exact), which keeps them at most
#: 1e6 and 1e12 and leaves every ordinary model exactly as it was.
_LARGEST_TIME = 1e6
_LARGEST_SIZE = 1e12
#: Times whose largest is below this are multiplied by a power of two that brings it
#: to between 1 and 2.  HiGHS's absolute tolerances (a gap of 1e-6, feasibility 1e-7)
#: are a percent of a max-load of 30 µs in seconds: on a seven-op model it answered
#: 31.48 µs as optimal, a gap of 0.25 µs it took for closed, where 31.23 µs was
#: feasible (found with the DP's plan as its start).
_SMALLEST_TIME = 1.0


def scale_blocks(blocks: BlockGraph) -> tuple[BlockGraph, float, float]:
    """``blocks`` with times and sizes divided by the powers of two that bring them
    within :data:`_LARGEST_TIME` and :data:`_LARGEST_SIZE` (and the largest time to at
    least :data:`_SMALLEST_TIME`), and those two powers."""
    largest = _largest_time(blocks)
    time_scale = _power_of_two_above(largest, _LARGEST_TIME)
    if 0.0 < largest < _SMALLEST_TIME:
        time_scale = 2.0 ** math.floor(math.log2(largest))  # exact: a power of two
    size_scale = _power_of_two_above(float(blocks.size.max(initial=0.0)), _LARGEST_SIZE)
    scaled = replace(
        blocks,
        latency=blocks.latency / time_scale,
        weights=blocks.weights / time_scale,
        size=blocks.size / size_scale,
        cover_latency=blocks.cover_latency / time_scale,
        cover_size=blocks.cover_size / size_scale,
    )
    return scaled, time_scale, size_scale


def _largest_time(blocks: BlockGraph) -> float:
    """The largest finite latency or transfer weight of ``blocks``."""
    latency = blocks.latency[np.isfinite(blocks.latency)]
    return float(
        max(
            latency.max(initial=0.0),
            blocks.weights.max(initial=0.0),
            blocks.cover_latency.max(initial=0.0),
        )
    )


def _power_of_two_above(value: float, limit: float) -> float:
    """The least power of two ``s`` with ``value / s <= limit`` (1 when already so).

    Examples
    --------
    >>> _power_of_two_above(5e5, 1e6), _power_of_two_above(3e6, 1e6)
    (1.0, 4.0)
    """
    if not value <= limit:  # also for inf and NaN, which are not coefficients anyway
        return 2.0 ** math.ceil(math.log2(value / limit)) if math.isfinite(value) else 1.0
    return 1.0
