"""Numba kernel of the ideal DP that knows each stage's neighbours' kinds
(:mod:`placer.solvers.dp.neighbours`).

Sets of blocks are bitsets, as in :mod:`placer.solvers.dp._ideal_kernels`, whose walk down
the lattice this kernel shares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numba import njit

from placer.solvers.dp._ideal_kernels import (
    _members_in,
    _push_subs,
    band_scan,
    below_floor,
    in_windows,
    reach,
)

if TYPE_CHECKING:
    from placer.solvers.dp._ideal_kernels import Cuts
    from placer.solvers.dp.chain import States
    from placer.solvers.dp.windows import Pruning


class NeighbourRun(NamedTuple):
    """What :func:`neighbour_range` charges and allows: the device-count ``states``
    (:class:`~placer.solvers.dp.chain.States`; a state of the DP is a count state with
    the two neighbour digits, :func:`state_of`), each kind's memory ``cap``, the
    hyperedges' :class:`~placer.solvers.dp._ideal_kernels.Cuts` (the first
    ``n_transfers`` are transfers, the rest side computations' covers), their
    ``weights[k, m, h]`` over every bitmask ``m`` of kinds (the fastest link to a kind of
    ``m``, so a one-kind mask is that link), side-computation ``memory[h]``, each ideal's
    ``cut_total[k, m, i]``, the pruning ``bound`` and the work windows of its count
    states with the band of ideals they hold (``pruning``,
    :mod:`placer.solvers.dp.windows`)."""

    states: States
    cap: np.ndarray
    cuts: Cuts
    n_transfers: int
    weights: np.ndarray
    memory: np.ndarray
    cut_total: np.ndarray
    bound: float
    pruning: Pruning


class NeighbourTable(NamedTuple):
    """What :func:`neighbour_range` fills, ``(states, ideals)`` each: ``dp`` and the back
    pointers ``back_ideal``, ``back_kind``, ``back_state``; and the walk's scratch
    ``stamp`` and ``stack``."""

    dp: np.ndarray
    back_ideal: np.ndarray
    back_kind: np.ndarray
    back_state: np.ndarray
    stamp: np.ndarray
    stack: np.ndarray


@njit(cache=True, inline="always")
def state_of(count_state, before, after, n_kinds):
    """The DP state of count state ``count_state``, with ``before`` the kind of the last
    stage placed if that stage is clean (else ``n_kinds``), and ``after`` the kind
    promised to the next stage, which must then receive every transfer the split so far
    sends on (``n_kinds``: it will not, or there is no next stage)."""
    return (count_state * (n_kinds + 1) + before) * (n_kinds + 1) + after


@njit(cache=True)
def neighbour_range(lo, hi, stages, run, table, call_pairs):  # noqa: C901, PLR0915
    """Fill ``dp[:, lo:hi]``: the least max-load of splitting each ideal into stages,
    each stage charged what it receives over the link from the previous stage's kind
    and what it sends over the link to the next stage's kind where those are known to
    be the other ends, and otherwise the fastest link to a kind used before / with
    devices left after.

    A stage ``i \\ j`` is *clean* when no transfer meets ``j`` and leaves ``i`` (none
    passes over it), and *receiving* when every transfer leaving ``j`` meets it.  If the
    stage before a stage is clean, everything the stage receives was sent by that stage;
    if the stage after it is receiving, everything it sends has a receiver there, whose
    link it pays at least.  The state carries the kind of the previous stage when it is
    clean, and the kind promised to the next stage, which must then be receiving; a
    stage that is not receiving can only follow a state that promised nothing.  So every
    placement has one path whose charges are at most its true loads (exactly its loads
    when every stage is clean), and the DP's optimum bounds every contiguous placement
    from below.

    ``stages``: :class:`~placer.solvers.dp._ideal_kernels.StageSums`; ``run``:
    :class:`NeighbourRun`; ``table``: :class:`NeighbourTable`, filled in place.
    Returns the pairs visited and the ideal to resume from, as
    :func:`~placer.solvers.dp._ideal_kernels.dp_range` does.
    """
    lattice = stages.lattice
    bits, sub_start, sub_items = lattice.bits, lattice.sub_start, lattice.sub_items
    lat, unsup, size = stages.lat, stages.unsup, stages.size
    strides, counts = run.states.strides, run.states.counts
    used_mask, left_mask = run.states.used_mask, run.states.left_mask
    cap, bound, n_transfers = run.cap, run.bound, run.n_transfers
    h_start, h_members = run.cuts.h_start, run.cuts.h_members
    cut_start, cut_items = run.cuts.cut_start, run.cuts.cut_items
    weights, h_mem, cut_total = run.weights, run.memory, run.cut_total
    dp, back_ideal, back_kind = table.dp, table.back_ideal, table.back_kind
    back_state, stamp, stack = table.back_state, table.stamp, table.stack
    n_kinds = lat.shape[0]
    n_masks = weights.shape[1]
    n_counts = used_mask.shape[0]
    none = n_kinds  # the neighbour digit that names no kind
    last = dp.shape[1] - 1
    pairs = 0
    cost = np.empty(n_kinds)
    # what the stage receives (by the mask of the sender's kinds), sends (by the mask of
    # the receivers' kinds), and the side computations it meets (any mask)
    received = np.empty((n_kinds, n_masks))
    sent = np.empty((n_kinds, n_masks))
    covered = np.empty(n_kinds)
    scratch = reach(n_counts, n_kinds, dp.shape[1])
    alive_count, floor, found = scratch.alive, scratch.floor, scratch.found
    for i in range(lo, hi):
        if pairs >= call_pairs:
            return pairs, i
        if i == 0:
            dp[:, 0] = np.inf
            dp[state_of(0, none, none, n_kinds), 0] = 0.0
            continue
        if not in_windows(run.pruning.windows, run.states, lat, i, scratch):
            continue  # on no split within the bound
        # the sub-ideals: from the band where that is shorter, else down the lattice
        n_found, scanned = band_scan(i, stages, cap, bound, run.pruning.band, scratch)
        walking = n_found < 0
        pairs += scanned
        q_found = 0
        top = 0
        if walking:
            stamp[i] = i
            top = _push_subs(sub_start, sub_items, stamp, stack, 0, i)
        while True:
            if walking:
                if top == 0:
                    break
                top -= 1
                j = stack[top]
                pairs += 1
                if below_floor(lat, j, floor):
                    continue
            else:
                if q_found == n_found:
                    break
                j = found[q_found]
                q_found += 1
            stage_size = size[i] - size[j]
            alive = False
            for k in range(n_kinds):
                c = lat[k, i] - lat[k, j]
                if unsup[k, i] - unsup[k, j] > 0 or stage_size > cap[k] or c > bound:
                    cost[k] = np.inf
                else:
                    alive = True
                    cost[k] = c
            if not alive:
                continue
            clean = True  # no transfer meets j and leaves i
            complete = True  # every transfer leaving j meets the stage
            extra = 0.0
            for k in range(n_kinds):
                covered[k] = 0.0
                for m in range(n_masks):
                    received[k, m] = cut_total[k, m, j]
                    sent[k, m] = 0.0
            for q in range(cut_start[i], cut_start[i + 1]):
                h = cut_items[q]
                in_i, in_j = _members_in(bits, i, j, h_start, h_members, h)
                if in_j > 0:
                    # h leaves i and meets j: not received here unless it meets the stage
                    if h < n_transfers:
                        clean = False
                        if in_j == in_i:
                            complete = False
                    if in_j == in_i:
                        for k in range(n_kinds):
                            for m in range(n_masks):
                                received[k, m] -= weights[k, m, h]
                    elif h >= n_transfers:
                        extra += h_mem[h]
                        for k in range(n_kinds):
                            covered[k] += weights[k, 0, h]
                            for m in range(n_masks):
                                received[k, m] -= weights[k, m, h]
                else:
                    if h >= n_transfers:
                        extra += h_mem[h]
                        for k in range(n_kinds):
                            covered[k] += weights[k, 0, h]
                    else:
                        for k in range(n_kinds):
                            for m in range(n_masks):
                                sent[k, m] += weights[k, m, h]
            if extra > 0.0:
                for k in range(n_kinds):
                    if stage_size + extra > cap[k]:
                        cost[k] = np.inf
            after_digit = none if i == last else -1  # the last stage promises nothing
            for k in range(n_kinds):
                ck = cost[k]
                if ck == np.inf:
                    continue
                ck += covered[k]
                stride = strides[k]
                new_before = k if clean else none
                for c in range(n_counts):
                    if (c // stride) % (counts[k] + 1) == 0 or not alive_count[c]:
                        continue
                    c_prev = c - stride
                    used = used_mask[c_prev]
                    left = left_mask[c]
                    # the state before: the first stage follows the empty split
                    promise = k if complete else none
                    for before in range(n_kinds + 1):
                        if j == 0:
                            if c_prev != 0 or before != none:
                                continue
                            s_prev = state_of(0, none, none, n_kinds)
                        else:
                            if before < n_kinds and not (used >> before) & 1:
                                continue
                            s_prev = state_of(c_prev, before, promise, n_kinds)
                        prev = dp[s_prev, j]
                        if prev == np.inf:
                            continue
                        got = received[k, 1 << before] if before < n_kinds else received[k, used]
                        for after in range(n_kinds + 1):
                            if after_digit >= 0:
                                if after != after_digit:
                                    continue
                                total = ck + got
                            elif after < n_kinds:
                                if not (left >> after) & 1:
                                    continue
                                total = ck + got + sent[k, 1 << after]
                            else:
                                total = ck + got + sent[k, left]
                            cand = prev if prev > total else total
                            s = state_of(c, new_before, after, n_kinds)
                            if cand < dp[s, i]:
                                dp[s, i] = cand
                                back_ideal[s, i] = j
                                back_kind[s, i] = k
                                back_state[s, i] = s_prev
            if walking:
                top = _push_subs(sub_start, sub_items, stamp, stack, top, j)
    return pairs, hi
