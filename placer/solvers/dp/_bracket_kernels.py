"""Numba kernels of :mod:`placer.solvers.dp.bracket`: separable stage costs over ideals.

Sets of blocks are bitsets, as in :mod:`placer.solvers.dp._ideal_kernels`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numba import njit

if TYPE_CHECKING:
    from placer.solvers.dp.chain import States


class BlockCSR(NamedTuple):
    """The block graph as CSR arrays: block ``b``'s successors
    ``succ_items[succ_start[b]:succ_start[b + 1]]``, its predecessors (``pred_*``) and
    its ops (``op_*``), and the blocks other than its own that op ``u`` sends to
    (``op_succ_blocks[op_succ_start[u]:op_succ_start[u + 1]]``)."""

    succ_start: np.ndarray
    succ_items: np.ndarray
    pred_start: np.ndarray
    pred_items: np.ndarray
    op_start: np.ndarray
    op_items: np.ndarray
    op_succ_start: np.ndarray
    op_succ_blocks: np.ndarray


class FrontierWeights(NamedTuple):
    """``(kinds, masks, ...)`` charges at an ideal's frontier: ``op_weight[k, m, u]`` for
    op ``u``'s output, ``in_weight[k, m, a]`` for what block ``a`` receives from its
    predecessors, and ``cover_of_block[k, b]`` for the side computations block ``b``
    needs (no mask)."""

    op_weight: np.ndarray
    in_weight: np.ndarray
    cover_of_block: np.ndarray


class Separable(NamedTuple):
    """Separable stage costs ``need[k, r, i] - key[k, u, j]`` (``(kinds, masks, ideals)``
    each) and the device-count :class:`~placer.solvers.dp.chain.States` they are charged
    over, whose masks pick ``u`` and ``r`` (all 0 when the costs have one mask)."""

    key: np.ndarray
    need: np.ndarray
    states: States


class Probe(NamedTuple):
    """What :func:`feasible` fills: ``best[k, s, x]``, ``arg[k, s, x]`` (the largest
    ``key`` over the reachable sub-ideals, and such a sub-ideal), and ``reach[s, x]``,
    ``back_j[s, x]``, ``back_k[s, x]`` (whether and how ``x`` is reached)."""

    best: np.ndarray
    arg: np.ndarray
    reach: np.ndarray
    back_j: np.ndarray
    back_k: np.ndarray


# _ideal_kernels' own, copied: numba's disk cache does not notice a change to an njit
# function of another module that a cached kernel calls
@njit(cache=True)
def _has(bits, row, b):
    return (bits[row, b >> 6] >> np.uint64(b & 63)) & np.uint64(1)


@njit(cache=True, inline="always")
def _all_in(bits, x, start, items, b, inside):
    """Whether every block of ``items[start[b]:start[b + 1]]`` lies in ideal ``x``
    (``inside``) or every one outside it (not ``inside``)."""
    q = start[b]
    while q < start[b + 1] and (_has(bits, x, items[q]) != 0) == inside:
        q += 1
    return q == start[b + 1]


@njit(cache=True)
def exit_charges(bits, graph, weights, lo, hi):
    """``out[k, m, x]`` for the ideals ``x`` of ``lo..hi-1``: the least, over the maximal
    blocks ``b`` of ideal ``x``, of the weights ``op_weight[k, m, u]`` of ``b``'s ops
    ``u`` with a successor outside ``x`` plus ``cover_of_block[k, b]`` (0 for the empty
    set); ``m`` indexes the masks of the kinds the other end may be on.  ``graph``:
    :class:`BlockCSR`; ``weights``: :class:`FrontierWeights`.

    A stage ``x \\ j`` holds some maximal block of ``x`` (the one above any of its
    blocks), which sends those outputs out of the stage and recomputes those covers.
    """
    succ_start, succ_items = graph.succ_start, graph.succ_items
    op_start, op_items = graph.op_start, graph.op_items
    op_succ_start, op_succ_blocks = graph.op_succ_start, graph.op_succ_blocks
    op_weight, cover_of_block = weights.op_weight, weights.cover_of_block
    n = hi - lo
    n_blocks = succ_start.shape[0] - 1
    n_kinds, n_masks = op_weight.shape[0], op_weight.shape[1]
    out = np.zeros((n_kinds, n_masks, n))
    charge = np.empty((n_kinds, n_masks))
    for r in range(n):
        x = lo + r
        first = True
        for b in range(n_blocks):
            if not _has(bits, x, b):
                continue
            if not _all_in(bits, x, succ_start, succ_items, b, False):
                continue  # not maximal: a successor lies in x
            for k in range(n_kinds):
                for m in range(n_masks):
                    charge[k, m] = cover_of_block[k, b]
            for p in range(op_start[b], op_start[b + 1]):
                u = op_items[p]
                for q in range(op_succ_start[u], op_succ_start[u + 1]):
                    if not _has(bits, x, op_succ_blocks[q]):
                        for k in range(n_kinds):
                            for m in range(n_masks):
                                charge[k, m] += op_weight[k, m, u]
                        break
            for k in range(n_kinds):
                for m in range(n_masks):
                    if first or charge[k, m] < out[k, m, r]:
                        out[k, m, r] = charge[k, m]
            first = False
    return out


@njit(cache=True)
def entry_charges(bits, graph, weights, lo, hi):
    """``inn[k, m, x]`` for the ideals ``x`` of ``lo..hi-1``: the least
    ``in_weight[k, m, a]`` over the blocks ``a`` outside ideal ``x`` whose predecessors
    all lie in ``x`` (0 when ``x`` holds every block).  ``graph``: :class:`BlockCSR`;
    ``weights``: :class:`FrontierWeights`."""
    pred_start, pred_items, in_weight = graph.pred_start, graph.pred_items, weights.in_weight
    n = hi - lo
    n_blocks = pred_start.shape[0] - 1
    n_kinds, n_masks = in_weight.shape[0], in_weight.shape[1]
    inn = np.zeros((n_kinds, n_masks, n))
    for r in range(n):
        x = lo + r
        first = True
        for a in range(n_blocks):
            if _has(bits, x, a):
                continue
            if not _all_in(bits, x, pred_start, pred_items, a, True):
                continue  # a predecessor lies outside x: a cannot start the next stage
            for k in range(n_kinds):
                for m in range(n_masks):
                    if first or in_weight[k, m, a] < inn[k, m, r]:
                        inn[k, m, r] = in_weight[k, m, a]
            first = False
    return inn


@njit(cache=True)
def feasible(limit, costs, lattice, probe, lo, hi):
    """Whether the whole set splits into stages ``j ⊂ i`` with
    ``need[k, r, i] - key[k, u, j] <= limit`` on at most ``counts[k]`` devices of each
    kind, where ``u`` is the mask index of the kinds used before the stage
    (``used_mask`` of the state ``j`` is reached with) and ``r`` that of the kinds with
    devices left after it (``left_mask`` of the state after it).

    ``best[k, s, x]`` is the largest ``key[k, j]`` over the ideals ``j ⊆ x`` reachable
    with the device counts of state ``s`` (mixed radix, ``strides``), and ``arg`` such a
    ``j``: one pass over the Hasse arcs (``sub_items[sub_start[x]:sub_start[x + 1]]``
    are the ideals ``x`` minus one block) per state, since the ideals come after all
    their subsets.  ``reach[s, x]``, ``back_j``, ``back_k``: how ``x`` is reached.
    Fills the ideals ``lo..hi-1`` (in slices, so that Ctrl-C is handled in between);
    returns the state that reaches the whole set (the last ideal), or -1 (also before
    the last slice).

    ``costs`` (:class:`Separable`) holds ``key``, ``need`` and the states' ``strides``,
    ``counts``, ``used_mask``, ``left_mask``; ``lattice`` the Hasse arcs
    (:class:`~placer.solvers.dp.lattice.Lattice`); ``probe`` (:class:`Probe`) the
    tables, filled in place.
    """
    key, need, states = costs.key, costs.need, costs.states
    strides, counts = states.strides, states.counts
    used_mask, left_mask = states.used_mask, states.left_mask
    sub_start, sub_items = lattice.sub_start, lattice.sub_items
    best, arg, reach = probe.best, probe.arg, probe.reach
    back_j, back_k = probe.back_j, probe.back_k
    n_kinds, n = key.shape[0], key.shape[2]
    n_states = reach.shape[0]
    for x in range(lo, hi):
        for s in range(n_states):
            ok = x == 0
            bj = -1
            bk = -1
            if not ok:
                for k in range(n_kinds):
                    stride = strides[k]
                    if (s // stride) % (counts[k] + 1) == 0:
                        continue
                    prev = s - stride
                    if reach[prev, x]:  # a device of kind k left unused
                        ok = True
                        bj = x
                        bk = k
                        break
                    j = arg[k, prev, x]
                    if j >= 0 and need[k, left_mask[s], x] - best[k, prev, x] <= limit:
                        ok = True
                        bj = j
                        bk = k
                        break
            reach[s, x] = ok
            back_j[s, x] = bj
            back_k[s, x] = bk
            for k in range(n_kinds):
                value = key[k, used_mask[s], x] if ok else -np.inf
                where = x if ok else -1
                for q in range(sub_start[x], sub_start[x + 1]):
                    y = sub_items[q]
                    if best[k, s, y] > value:
                        value = best[k, s, y]
                        where = arg[k, s, y]
                best[k, s, x] = value
                arg[k, s, x] = where
    last = n - 1
    if hi < n:
        return -1
    for s in range(n_states - 1, -1, -1):
        if reach[s, last]:
            return s
    return -1
