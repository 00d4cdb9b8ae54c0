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
    _has,
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


#: The most transfers a state records as sent before the last stage and still in flight
#: at its end (received by it or passing over it): with them the next stage knows which
#: of the transfers it receives the last stage sent, and which of those the last stage
#: sent it.  Two cover a residual stream and the branch a stage holding part of a block
#: did not take (Llama's host CPU stage: one left it at 21.03 ms of a true 21.72).  With
#: none, the state is the plain one (:func:`state_of`), at a third of the cost.
THROUGH = 2


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
    :mod:`placer.solvers.dp.windows`); the transfers in flight (:class:`InFlight`),
    and those that may be sent back (:class:`Later`)."""

    states: States
    cap: np.ndarray
    cuts: Cuts
    n_transfers: int
    weights: np.ndarray
    memory: np.ndarray
    cut_total: np.ndarray
    bound: float
    pruning: Pruning
    flight: InFlight
    later: Later


class Later(NamedTuple):
    """The transfers a block after some of their receivers sends: ``sent[h]``, that
    block (``-1``: none such, ``-2``: several blocks send it); for those several send,
    their ``weights[k, m, h]`` (zero in :class:`NeighbourRun`'s) and each ideal's cut of
    them, ``total[k, m, i]``."""

    sent: np.ndarray
    weights: np.ndarray
    total: np.ndarray


class InFlight(NamedTuple):
    """The transfers each ideal cuts, in the order of their senders: ``order[h]``, the
    sending block of transfer ``h`` (blocks are in a topological order); for ideal ``i``
    and ``r`` up to the transfers in flight a state may name, ``first[i, r]`` the
    sender of its ``r + 1``-th transfer in that order (past the last block when it cuts
    fewer), ``prefix[i, r, k, m]`` the summed weights of its first ``r``, and
    ``total[i, k, m]`` of all its transfers."""

    order: np.ndarray
    first: np.ndarray
    prefix: np.ndarray
    total: np.ndarray


@njit(cache=True)
def _earliest(items, n_transfers, order, taken):
    """Fill ``taken`` with the first transfers of ``items`` in sender order (ties by
    index; ``-1`` past the last); returns how many there were."""
    n_taken = 0
    for t in range(taken.shape[0]):
        best = -1
        for h in items:
            if h >= n_transfers or h in taken[:t]:
                continue
            if best < 0 or order[h] < order[best] or (order[h] == order[best] and h < best):
                best = h
        taken[t] = best
        if best < 0:
            break
        n_taken += 1
    return n_taken


@njit(cache=True)
def in_flight(cuts, n_transfers, weights, n_blocks, through):
    """The fields of :class:`InFlight` for the ideals' cut lists ``cuts`` (the first
    ``n_transfers`` hyperedges are transfers; a hyperedge's members are sorted, so its
    first is the block that sends it)."""
    cut_start, cut_items = cuts.cut_start, cuts.cut_items
    n = cut_start.shape[0] - 1
    order = np.empty(n_transfers, dtype=np.int64)
    for h in range(n_transfers):
        order[h] = cuts.h_members[cuts.h_start[h]]
    first = np.full((n, through + 1), n_blocks, dtype=np.int64)
    prefix = np.zeros((n, through + 1, weights.shape[0], weights.shape[1]))
    total = np.zeros((n, weights.shape[0], weights.shape[1]))
    taken = np.empty(through + 1, dtype=np.int64)
    for i in range(n):
        items = cut_items[cut_start[i] : cut_start[i + 1]]
        n_taken = _earliest(items, n_transfers, order, taken)
        for t in range(through + 1):
            if t < n_taken:
                first[i, t] = order[taken[t]]
            if t > 0:
                prefix[i, t] = prefix[i, t - 1]
                if t <= n_taken:
                    prefix[i, t] += weights[:, :, taken[t - 1]]
        for h in items:
            if h < n_transfers:
                total[i] += weights[:, :, h]
    return order, first, prefix, total


class NeighbourTable(NamedTuple):
    """What :func:`neighbour_range` fills, ``(states, ideals)`` each: ``dp``, the least
    load charged so far to the last stage of a split reaching the state (``last``, to
    which the next stage adds what the last stage sent it), and the back pointers
    ``back_ideal``, ``back_kind``, ``back_state``; and the walk's scratch ``stamp`` and
    ``stack``."""

    dp: np.ndarray
    last: np.ndarray
    back_ideal: np.ndarray
    back_kind: np.ndarray
    back_state: np.ndarray
    stamp: np.ndarray
    stack: np.ndarray


def n_before(n_kinds: int, through: int) -> int:
    """How many values the first neighbour digit takes: a kind with up to ``through``
    transfers in flight, or none (:func:`state_of`)."""
    return n_kinds * (through + 1) + 1


@njit(cache=True, inline="always")
def state_of(count_state, before, after, n_kinds, held):
    """The DP state of count state ``count_state``, with ``before`` naming the last stage
    placed, ``kind * held + r`` where the transfers its split cuts that it did not send
    are the first ``r < held`` of them in sender order (``r = 0``: it is clean), or
    ``n_kinds * held`` where they are not; and ``after`` the kind promised to
    the next stage, which must then receive every transfer the last stage sends on
    (``n_kinds``: it will not, or there is no next stage)."""
    return (count_state * (n_kinds * held + 1) + before) * (n_kinds + 1) + after


@njit(cache=True, inline="always")
def _tally(total, among_first, weights, h, sender, first_j):
    """Add transfer ``h``'s ``weights[k, m, h]`` to ``total[k, m]``, and to
    ``among_first[r, k, m]`` for each ``r`` whose first ``r`` transfers in flight at the
    sub-ideal hold it (``sender`` is before ``first_j[r]``, the sender of the next)."""
    for k in range(total.shape[0]):
        for m in range(total.shape[1]):
            total[k, m] += weights[k, m, h]
    for r in range(1, among_first.shape[0]):
        if sender < first_j[r]:
            for k in range(total.shape[0]):
                for m in range(total.shape[1]):
                    among_first[r, k, m] += weights[k, m, h]


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

    A stage that is not clean still has its kind carried when the transfers in flight
    at its end that it did not send are the first ``r < held`` in sender order (a
    residual stream passing a stage that holds part of a block): the next stage pays the
    previous stage's link for the rest of what it receives, and the fastest link to a
    kind used before for those ``r``; the previous stage is then "receiving" when every
    transfer it sent meets the next stage, and where it is not, the next stage adds to
    the previous stage's load (the least charged to it on any path to the state, kept in
    ``last``) its link to the next kind for what it sent there.  The charges stay at
    most the true loads: the bound holds.

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
    order, first, prefix, flight_total = (run.flight.order, run.flight.first,
                                          run.flight.prefix, run.flight.total)  # fmt: skip
    dp, last_load, back_ideal, back_kind = table.dp, table.last, table.back_ideal, table.back_kind
    back_state, stamp, stack = table.back_state, table.stamp, table.stack
    n_kinds = lat.shape[0]
    n_masks = weights.shape[1]
    n_counts = used_mask.shape[0]
    none = n_kinds  # the after digit that names no kind
    held = first.shape[1]  # up to held - 1 transfers in flight
    no_before = n_kinds * held  # the before digit that names no kind
    last = dp.shape[1] - 1
    pairs = 0
    cost = np.empty(n_kinds)
    # what the stage receives (by the mask of the sender's kinds), sends (by the mask of
    # the receivers' kinds), and the side computations it meets (any mask)
    received = np.empty((n_kinds, n_masks))
    sent = np.empty((n_kinds, n_masks))
    covered = np.empty(n_kinds)
    # the transfers passing over the stage: all, and those among the first r in flight
    over_all = np.empty((n_kinds, n_masks))
    over_first = np.empty((held, n_kinds, n_masks))
    # the transfers several blocks send whose boundary the stage crosses, and those
    # the stage receives from a block after it: from a kind with devices left
    crossed = np.zeros((n_kinds, n_masks))
    from_later = np.empty((n_kinds, n_masks))
    # of the latter, those from j's cut: all, and among the first r in flight
    late_all = np.empty((n_kinds, n_masks))
    late_first = np.empty((held, n_kinds, n_masks))
    later_sent, later_w, later_total = run.later.sent, run.later.weights, run.later.total
    several = np.any(later_sent == -2)  # else crossed stays zero
    scratch = reach(n_counts, n_kinds, dp.shape[1])
    alive_count, floor, found = scratch.alive, scratch.floor, scratch.found
    for i in range(lo, hi):
        if pairs >= call_pairs:
            return pairs, i
        if i == 0:
            dp[:, 0] = np.inf
            last_load[:, 0] = np.inf
            dp[state_of(0, no_before, none, n_kinds, held), 0] = 0.0
            last_load[state_of(0, no_before, none, n_kinds, held), 0] = 0.0
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
            n_kept = 0  # transfers in flight at i that the stage did not send
            kept_last = -1  # the latest sender among them
            sent_first = 1 << 62  # the earliest sender of a transfer the stage sends
            over_last = -1  # the latest sender of a transfer passing over the stage
            extra = 0.0
            # transfers passing over the stage, and received from after it: their sums
            # are zeroed when the first turns up, and read only if one did
            n_over = 0
            n_late = 0
            for k in range(n_kinds):
                covered[k] = 0.0
                for m in range(n_masks):
                    received[k, m] = cut_total[k, m, j]
                    sent[k, m] = 0.0
                    if several:
                        crossed[k, m] = later_total[k, m, j]
            for q in range(cut_start[i], cut_start[i + 1]):
                h = cut_items[q]
                in_i, in_j = _members_in(bits, i, j, h_start, h_members, h)
                sender = later_sent[h] if h < n_transfers else -1
                if sender == -2 and (in_j == 0 or in_j == in_i):
                    # from j's cut: it passes over the stage; else: it starts here
                    sign = -1.0 if in_j > 0 else 1.0
                    for k in range(n_kinds):
                        for m in range(n_masks):
                            crossed[k, m] += sign * later_w[k, m, h]
                late = sender >= 0 and not _has(bits, i, sender) and in_j < in_i
                if late:
                    if n_late == 0:
                        from_later[:] = 0.0
                        late_all[:] = 0.0
                        late_first[:] = 0.0
                    n_late += 1
                    # received from a stage after this one, not from a neighbour
                    for k in range(n_kinds):
                        for m in range(n_masks):
                            from_later[k, m] += weights[k, m, h]
                    if in_j > 0:
                        for k in range(n_kinds):
                            for m in range(n_masks):
                                received[k, m] -= weights[k, m, h]
                        _tally(late_all, late_first, weights, h, order[h], first[j])
                if in_j > 0:
                    # h leaves i and meets j: not received here unless it meets the stage
                    if h < n_transfers:
                        n_kept += 1
                        kept_last = max(kept_last, order[h])
                        if in_j == in_i:
                            over_last = max(over_last, order[h])
                            if n_over == 0:
                                over_all[:] = 0.0
                                over_first[:] = 0.0
                            n_over += 1
                            _tally(over_all, over_first, weights, h, order[h], first[j])
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
                        sent_first = min(sent_first, order[h])
                        if not late:
                            for k in range(n_kinds):
                                for m in range(n_masks):
                                    sent[k, m] += weights[k, m, h]
            if extra > 0.0:
                for k in range(n_kinds):
                    if stage_size + extra > cap[k]:
                        cost[k] = np.inf
            # the in-flight digit of the states this stage reaches
            flight = -1
            if n_kept == 0 or (n_kept < held and kept_last < sent_first):
                flight = n_kept
            after_digit = none if i == last else -1  # the last stage promises nothing
            for k in range(n_kinds):
                ck = cost[k]
                if ck == np.inf:
                    continue
                ck += covered[k]
                stride = strides[k]
                k_crossed = crossed[k]
                k_later = from_later[k]
                new_before = k * held + flight if flight >= 0 else no_before
                for c in range(n_counts):
                    if (c // stride) % (counts[k] + 1) == 0 or not alive_count[c]:
                        continue
                    c_prev = c - stride
                    used = used_mask[c_prev]
                    left = left_mask[c]
                    left_prev = left_mask[c_prev]
                    # sent back or not, the other end is on a kind used or left
                    ck_c = ck + k_crossed[used | left]
                    if n_late > 0:
                        ck_c += k_later[left]
                    for before in range(no_before + 1):
                        if j == 0:
                            if c_prev != 0 or before != no_before:
                                continue
                            p = -1
                            r = 0
                        elif before < no_before:
                            p = before // held
                            r = before - p * held
                            if not (used >> p) & 1:
                                continue
                        else:
                            p = -1
                            r = 0
                        # receiving: every transfer in flight at j that the previous
                        # stage sent meets this one
                        complete = over_last < first[j, r]
                        promise = k if complete and j > 0 else none
                        s_prev = state_of(c_prev, before, promise, n_kinds, held)
                        prev = dp[s_prev, j]
                        if prev == np.inf:
                            continue
                        if p < 0:
                            got = received[k, used]
                            owed = 0.0
                        else:
                            pm = 1 << p
                            got = received[k, pm]
                            if r > 0:
                                # the first r, received over the fastest link used before
                                relief = prefix[j, r, k, pm] - prefix[j, r, k, used]
                                if n_over > 0:
                                    relief -= over_first[r, k, pm] - over_first[r, k, used]
                                got = max(received[k, used], got - relief)
                            owed = 0.0
                            if not complete:
                                # what the previous stage sent here, over this link
                                # rather than the fastest with devices left
                                km = 1 << k
                                # (not what both receive from a later stage)
                                lp = left_prev
                                to_here = flight_total[j, p, km] - prefix[j, r, p, km]
                                to_any = flight_total[j, p, lp] - prefix[j, r, p, lp]
                                if n_over > 0:
                                    to_here -= over_all[p, km] - over_first[r, p, km]
                                    to_any -= over_all[p, lp] - over_first[r, p, lp]
                                if n_late > 0:
                                    to_here -= late_all[p, km] - late_first[r, p, km]
                                    to_any -= late_all[p, lp] - late_first[r, p, lp]
                                if to_here > to_any:
                                    owed = last_load[s_prev, j] + (to_here - to_any)
                        if owed > prev:
                            prev = owed
                        for after in range(n_kinds + 1):
                            if after_digit >= 0:
                                if after != after_digit:
                                    continue
                                total = ck_c + got
                            elif after < n_kinds:
                                if not (left >> after) & 1:
                                    continue
                                total = ck_c + got + sent[k, 1 << after]
                            else:
                                total = ck_c + got + sent[k, left]
                            cand = prev if prev > total else total
                            s = state_of(c, new_before, after, n_kinds, held)
                            if total < last_load[s, i]:
                                last_load[s, i] = total
                            if cand < dp[s, i]:
                                dp[s, i] = cand
                                back_ideal[s, i] = j
                                back_kind[s, i] = k
                                back_state[s, i] = s_prev
            if walking:
                top = _push_subs(sub_start, sub_items, stamp, stack, top, j)
    return pairs, hi
