"""Work windows: which ideals a split of max-load at most ``T`` can pass through.

A split of the blocks into stages of load at most ``T`` on ``c_k`` devices of each kind
``k`` before an ideal ``i`` and ``n_k - c_k`` after it must fit the *work* on each side,
whatever the transfers cost (they only add to a stage's load).  Take any kind ``a`` as
the yardstick: the blocks of ``i`` that a device of kind ``k`` runs take at most ``T`` of
its time, so they hold at most ``absorb_{a,k}(T)`` of latency measured on kind ``a``,
the most that a fractional knapsack over all blocks (value: latency on ``a``, weight:
latency on ``k``) packs into ``T`` (``absorb_{a,a}(T) = T``).  Hence, with ``lat_a`` the
blocks' latency on ``a`` (0 where ``a`` cannot run them),

    W_a - Σ_k absorb_{a,k}((n_k - c_k) T)  <=  lat_a(i)  <=  Σ_k absorb_{a,k}(c_k T)

for every kind ``a`` (``W_a``: all blocks' ``lat_a``).  An ideal outside this window of
every count state ``c`` lies on no split of max-load ``T`` or less, and a pair ``j ⊂ i``
is needed only when ``j`` lies in the window of a count state from which ``i``'s can be
reached by one more stage.  The windows narrow to a few percent of the ideals on each
side of the ``n - 1`` balanced cuts when ``T`` approaches the work per device, which is
where a wide lattice's exact DP spends its pairs: the DP of
:mod:`placer.solvers.dp.search` skips the rest, a pruning that keeps it exact for every
split of max-load at most its bound (the stage-latency pruning's argument; the branch
and bound of dynamic programming, as in Morin & Marsten (1976)).

References
----------
.. [1] Morin, T. L., & Marsten, R. E. (1976). Branch-and-bound strategies for dynamic
   programming. Operations Research 24(4), 611-627.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

#: Relative widening of each window, against rounding in the prefix sums.
_WIDEN = 1e-9


class Windows(NamedTuple):
    """``lo[a, c] <= lat[a, i] <= hi[a, c]`` for every kind ``a``: the ideals ``i`` a
    split within the bound can reach on count state ``c`` (what the kernels read)."""

    lo: np.ndarray
    hi: np.ndarray


def open_windows(n_kinds: int, n_counts: int) -> Windows:
    """Windows that admit every ideal (no bound to prune with)."""
    return Windows(np.full((n_kinds, n_counts), -np.inf), np.full((n_kinds, n_counts), np.inf))


def work_windows(latency: np.ndarray, counts: np.ndarray, strides: np.ndarray,
                 bound: float) -> Windows:  # fmt: skip
    """The windows of every count state for splits of max-load at most ``bound``.

    Parameters
    ----------
    latency : numpy.ndarray
        ``(kinds, blocks)``: each block's latency on each kind, ``inf`` where the kind
        cannot run it.
    counts, strides : numpy.ndarray
        The run's devices per kind and the mixed-radix strides of its count states
        (:class:`~placer.solvers.dp.chain.States`).
    bound : float
        The max-load the splits may not exceed; ``inf`` gives :func:`open_windows`.
    """
    n_kinds = latency.shape[0]
    n_counts = int(np.prod(counts + 1))
    if not math.isfinite(bound):
        return open_windows(n_kinds, n_counts)
    finite = np.where(np.isfinite(latency), latency, 0.0)
    total = finite.sum(axis=1)
    # held[a, k, c]: the most latency on kind a that c devices of kind k hold within bound
    budgets = np.arange(int(counts.max(initial=0)) + 1) * bound
    held = np.empty((n_kinds, n_kinds, len(budgets)))
    for a in range(n_kinds):
        for k in range(n_kinds):
            held[a, k] = absorb(finite[a], latency[k], budgets) if a != k else budgets
    digits = (np.arange(n_counts)[:, None] // strides[None, :]) % (counts + 1)[None, :]
    left = counts[None, :] - digits
    kinds = np.arange(n_kinds)
    lo = np.empty((n_kinds, n_counts))
    hi = np.empty((n_kinds, n_counts))
    for a in range(n_kinds):
        before = held[a, kinds[None, :], digits].sum(axis=1)
        after = held[a, kinds[None, :], left].sum(axis=1)
        slack = _WIDEN * max(total[a], bound)
        hi[a] = before + slack
        lo[a] = total[a] - after - slack
    return Windows(lo, hi)


def absorb(value: np.ndarray, weight: np.ndarray, budget):
    """The fractional knapsack: the most ``value`` a ``weight`` budget packs (each of an
    array of budgets), items taken in order of value per weight (an item of no weight
    is free; an item of infinite weight never fits).

    >>> float(absorb(np.array([4.0, 3.0, 1.0]), np.array([2.0, 1.0, np.inf]), 2.0))
    5.0
    """
    usable = np.isfinite(weight) & (value > 0)
    value, weight = value[usable], weight[usable]
    free = weight <= 0
    taken = float(value[free].sum())
    value, weight = value[~free], weight[~free]
    order = np.argsort(-(value / weight), kind="stable")
    cum_weight = np.concatenate(([0.0], np.cumsum(weight[order])))
    cum_value = np.concatenate(([0.0], np.cumsum(value[order])))
    return taken + np.interp(budget, cum_weight, cum_value)


class Band(NamedTuple):
    """The ideals some work window holds, sorted by their latency on the kind ``ref``
    (``lat``, ``ideals``), and every ideal's latency on ``ref``, sorted (``all_lat``):
    what :func:`~placer.solvers.dp._ideal_kernels.band_scan` scans instead of walking
    the lattice where that is shorter.  ``use`` is False where the windows hold
    every ideal (no bound)."""

    use: bool
    ref: int
    lat: np.ndarray
    ideals: np.ndarray
    all_lat: np.ndarray


def band(lat: np.ndarray, windows: Windows) -> Band:
    """The :class:`Band` of ``windows`` over the ideals whose prefix latency on each kind
    is ``lat[k, i]``, sorted on the kind whose windows are narrowest against its total
    latency (where the window test sorts out most ideals)."""
    n = lat.shape[1]
    bounded = np.isfinite(windows.lo).all() and np.isfinite(windows.hi).all()
    if not bounded or n == 0:
        empty = np.zeros(0)
        return Band(False, 0, empty, np.zeros(0, dtype=np.int64), empty)
    total = np.maximum(lat[:, -1], 1e-300)
    width = np.clip(windows.hi - windows.lo, 0.0, None).mean(axis=1) / total
    ref = int(np.argmin(width))
    held = np.zeros(n, dtype=bool)
    for c in range(windows.lo.shape[1]):
        held |= ((lat >= windows.lo[:, c:c + 1]) & (lat <= windows.hi[:, c:c + 1])).all(axis=0)
    ideals = np.flatnonzero(held).astype(np.int64)
    order = np.argsort(lat[ref, ideals], kind="stable")
    ideals = ideals[order]
    return Band(True, ref, np.ascontiguousarray(lat[ref, ideals]), ideals, np.sort(lat[ref]))


class Pruning(NamedTuple):
    """What the DP's kernels prune a run with: its :class:`Windows` and their
    :class:`Band`."""

    windows: Windows
    band: Band


def pruning(latency: np.ndarray, lat: np.ndarray, counts: np.ndarray, strides: np.ndarray,
            bound: float) -> Pruning:  # fmt: skip
    """The :class:`Pruning` of a run on ``counts`` devices (count-state ``strides``)
    within ``bound``, for blocks of ``latency`` (:func:`work_windows`) over ideals of
    prefix latency ``lat`` (:func:`band`)."""
    windows = work_windows(latency, counts, strides, bound)
    return Pruning(windows, band(lat, windows))
