"""Compiled kernels of the DP over a linear order (numba, cached on disk).

Positions ``0..m`` are the prefixes of the order; a stage is ``(i, j]``, the blocks at
positions ``i + 1 .. j``.  See :mod:`placer.solvers.dp.chain`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class Sweep(NamedTuple):
    """What :func:`reachable` fills, ``(states, positions)`` each: whether ``(s, j)`` is
    reached (``reach``), and how: the last stage's start ``back_i`` and kind ``back_k``."""

    reach: np.ndarray
    back_i: np.ndarray
    back_k: np.ndarray


@njit(cache=True)
def window_starts(size, unsup, cap):
    """``lo[k, j]``: the smallest ``i`` such that stage ``(i, j]`` fits kind ``k``'s memory
    ``cap[k]`` and holds no op unsupported on ``k`` (``j + 1``, an empty window, when
    even ``(j - 1, j]`` does not).  Non-decreasing in ``j``: two pointers, O(kinds · m).
    """
    n_kinds, n = unsup.shape
    lo = np.empty((n_kinds, n), np.int64)
    for k in range(n_kinds):
        i = 0
        for j in range(n):
            while i < j and (size[j] - size[i] > cap[k] or unsup[k, j] - unsup[k, i] > 0):
                i += 1
            if i == j and j > 0:
                lo[k, j] = j + 1  # not even one block fits
            else:
                lo[k, j] = i
    return lo


@njit(cache=True)
# Complexity allowed below: a numba nopython kernel, one loop nest over arrays.
def reachable(limit, costs, states, at_most, sweep):  # noqa: C901
    """Which prefixes can be split into stages of load at most ``limit``.

    ``costs`` holds the prefix sums ``lat``, the cuts ``cut`` and the window starts
    ``lo`` (:class:`placer.solvers.dp.chain._OrderCosts`); ``states`` the states'
    ``strides``, ``counts``, ``used_mask`` and ``left_mask``
    (:class:`placer.solvers.dp.chain.States`); ``sweep`` (:class:`Sweep`) the tables
    below, filled in place.

    Axes: ``reach[s, j]`` says whether the prefix of ``j`` positions can be split into
    stages on exactly (at most, if ``at_most``) the device counts of state ``s`` (mixed
    radix, ``strides``), each stage's load at most ``limit``.  Stage ``(i, j]`` on kind
    ``k`` loads ``lat[k, j] - lat[k, i] + cut[k, u, i] + cut[k, r, j]``, where ``u`` is
    the mask of kinds used before it and ``r`` the mask of kinds with devices left after
    it (mask 0 when ``cut`` has one mask).  For a fixed state and kind the condition
    reads ``lat[k, j] + cut[k, r, j] <= max over i of (limit + lat[k, i] - cut[k, u, i])``
    over the reachable ``i`` of the window ``[lo[k, j], j)``, whose ends only move right:
    a monotone deque gives every ``j`` in O(1) amortised, O(states · kinds · m) in all.

    ``back_i[s, j]``, ``back_k[s, j]`` record how ``(s, j)`` was reached: the stage's
    start and kind, or ``back_i = j`` for a device of kind ``back_k`` left unused.
    """
    lat, cut, lo = costs.lat, costs.cut, costs.lo
    strides, counts = states.strides, states.counts
    used_mask, left_mask = states.used_mask, states.left_mask
    reach, back_i, back_k = sweep.reach, sweep.back_i, sweep.back_k
    n_states, n = reach.shape
    n_kinds = lat.shape[0]
    masked = cut.shape[1] > 1
    queue = np.empty(n, np.int64)
    for s in range(n_states):
        for j in range(n):
            reach[s, j] = False
        if s == 0:
            reach[0, 0] = True
        if at_most:
            for k in range(n_kinds):
                stride = strides[k]
                if (s // stride) % (counts[k] + 1) == 0:
                    continue
                for j in range(n):
                    if reach[s - stride, j] and not reach[s, j]:
                        reach[s, j] = True
                        back_i[s, j] = j
                        back_k[s, j] = k
        for k in range(n_kinds):
            stride = strides[k]
            if (s // stride) % (counts[k] + 1) == 0:
                continue
            prev = s - stride
            u = used_mask[prev] if masked else 0
            r = left_mask[s] if masked else 0
            head = 0
            tail = 0
            for j in range(1, n):
                i = j - 1
                if reach[prev, i]:
                    value = limit + lat[k, i] - cut[k, u, i]
                    while tail > head:
                        last = queue[tail - 1]
                        if limit + lat[k, last] - cut[k, u, last] <= value:
                            tail -= 1
                        else:
                            break
                    queue[tail] = i
                    tail += 1
                start = lo[k, j]
                while head < tail and queue[head] < start:
                    head += 1
                if head == tail or reach[s, j]:
                    continue
                best = queue[head]
                if lat[k, j] + cut[k, r, j] <= limit + lat[k, best] - cut[k, u, best]:
                    reach[s, j] = True
                    back_i[s, j] = best
                    back_k[s, j] = k
