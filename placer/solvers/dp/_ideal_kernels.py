"""Compiled kernels of the ideal DP (numba, cached on disk after the first run).

Sets of blocks are bitsets: row ``i`` of a ``(n, words)`` ``uint64`` array.  The kernels
are kept free of Python objects so that numba compiles them in nopython mode; arrays
that travel together reach them as one named tuple (numba reads its fields as it reads
separate arguments), built once by the callers in :mod:`placer.solvers.dp.search`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numba import njit

if TYPE_CHECKING:
    from placer.solvers.dp.chain import States
    from placer.solvers.dp.lattice import Lattice
    from placer.solvers.dp.windows import Pruning

_ONE = np.uint64(1)
_EMPTY = -1


class IdealArrays(NamedTuple):
    """The growing arrays of :func:`generate_ideals`: ``bits``, ``hashes`` (the xor of
    the blocks' keys), ``added`` and ``creator`` per ideal, the open-addressing hash
    ``table`` of ideal numbers (``-1`` empty), and the Hasse arcs ``sub_parent[a] ⊂
    sub_child[a]``."""

    bits: np.ndarray
    hashes: np.ndarray
    added: np.ndarray
    creator: np.ndarray
    table: np.ndarray
    sub_child: np.ndarray
    sub_parent: np.ndarray


class StageSums(NamedTuple):
    """What every run on one lattice reads: the :class:`~placer.solvers.dp.lattice.Lattice`
    and, per ideal ``i``, its finite latency ``lat[k, i]`` and unsupported ops
    ``unsup[k, i]`` on each kind ``k`` and its memory ``size[i]`` (prefix sums, so that a
    stage ``i \\ j`` costs ``lat[k, i] - lat[k, j]``)."""

    lattice: Lattice
    lat: np.ndarray
    unsup: np.ndarray
    size: np.ndarray


class Cuts(NamedTuple):
    """Hyperedges and the ideals that cut them, as CSR arrays: hyperedge ``h`` holds the
    blocks ``h_members[h_start[h]:h_start[h + 1]]``, and ideal ``i`` cuts (meets without
    holding) the hyperedges ``cut_items[cut_start[i]:cut_start[i + 1]]``."""

    h_start: np.ndarray
    h_members: np.ndarray
    cut_start: np.ndarray
    cut_items: np.ndarray


class RunArrays(NamedTuple):
    """What one run of :func:`dp_range` charges and allows: its device-count
    ``states`` (:class:`~placer.solvers.dp.chain.States`), each kind's memory ``cap`` and
    whether it ``pays`` for transfers, ``at_most`` (unused devices allowed); the
    hyperedges' :class:`Cuts`, their ``weights[k, m, h]``, side-computation ``memory[h]``
    and the ``cut_total[k, m, i]`` of each ideal's cut; stages whose latency exceeds
    ``bound`` on every kind are skipped, and so are the ideals and count states outside
    the work windows of that bound (``pruning``, :mod:`placer.solvers.dp.windows`)."""

    states: States
    cap: np.ndarray
    pays: np.ndarray
    at_most: bool
    cuts: Cuts
    weights: np.ndarray
    memory: np.ndarray
    cut_total: np.ndarray
    bound: float
    pruning: Pruning


class Reach(NamedTuple):
    """Scratch arrays for one ideal ``i`` (:func:`in_windows`, :func:`band_scan`): which
    count states' windows hold it (``alive``), the latency range ``floor[a] <= lat[a, j]
    <= ceil[a]`` its sub-ideals need, and the sub-ideals ``found`` by a band scan."""

    alive: np.ndarray
    floor: np.ndarray
    ceil: np.ndarray
    found: np.ndarray


@njit(cache=True)
def reach(n_states, n_kinds, n_ideals):
    """Empty :class:`Reach` arrays."""
    return Reach(np.empty(n_states, dtype=np.bool_), np.empty(n_kinds), np.empty(n_kinds),
                 np.empty(n_ideals, dtype=np.int64))  # fmt: skip


class DPTable(NamedTuple):
    """What :func:`dp_range` fills, ``(states, ideals)`` each: the least max-load ``dp``
    and its back pointers ``back_ideal``, ``back_kind``; and the scratch arrays of its
    walk down the lattice, ``stamp`` (the last ideal that reached each ideal) and
    ``stack``, one entry per ideal."""

    dp: np.ndarray
    back_ideal: np.ndarray
    back_kind: np.ndarray
    stamp: np.ndarray
    stack: np.ndarray


@njit(cache=True)
def _has(bits, row, b):
    return (bits[row, b >> 6] >> np.uint64(b & 63)) & _ONE


@njit(cache=True)
def _grow2(a, n):
    out = np.empty((n, a.shape[1]), a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def _grow1(a, n):
    out = np.empty(n, a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def _insert(table, key, idx):
    mask = table.shape[0] - 1
    slot = np.int64(key & np.uint64(mask))
    while table[slot] != _EMPTY:
        slot = (slot + 1) & mask
    table[slot] = idx


@njit(cache=True)
# Length and complexity allowed: the enumeration's hot loop, its hash table inline for speed.
def generate_ideals(pred, zobrist, limit, state, arrays, work):  # noqa: C901, PLR0915
    """Enumerate the ideals (down-sets) of a DAG breadth first, by size, in slices.

    Parameters
    ----------
    pred : (m, words) uint64
        Predecessor bitset of each block.
    zobrist : (m,) uint64
        Random key per block; an ideal's hash is the xor of its blocks' keys.
    limit : int
        Stop as soon as more ideals than this exist.
    state : (4,) int64
        ``n`` ideals and ``e`` Hasse arcs found so far, the ``head`` ideal whose
        successors come next, and a status: 0 running, 1 complete, 2 over ``limit``.
        Updated in place; ``state = [1, 0, 0, 0]`` starts a new enumeration.
    arrays : IdealArrays
        Those of the previous slice, or :func:`new_ideal_arrays` to start.
    work : int
        Return once about this many bitset words have been compared (a slice of a
        fraction of a second, so that the caller can handle Ctrl-C in between).

    Returns
    -------
    arrays : IdealArrays
        The arrays, grown as needed: ``bits[:n]`` are the ideals (row 0 the empty set,
        every ideal after all its subsets); ``sub_parent[j]`` is ``sub_child[j]`` minus
        one block (``[:e]``, the Hasse arcs); ``added[i]`` is the block whose addition
        first produced ideal ``i``, to ideal ``creator[i]``.
    """
    bits, hashes, added, creator, table, sub_child, sub_parent = arrays
    m, words = pred.shape
    n, e, head = state[0], state[1], state[2]
    done = 0
    while head < n:
        if done > work:
            break
        done += m
        for v in range(m):
            if _has(bits, head, v):
                continue
            ready = True
            for w in range(words):
                done += 1
                if pred[v, w] & ~bits[head, w]:
                    ready = False
                    break
            if not ready:
                continue
            key = hashes[head] ^ zobrist[v]
            vw = v >> 6
            vb = _ONE << np.uint64(v & 63)
            mask = table.shape[0] - 1
            slot = np.int64(key & np.uint64(mask))
            found = -1
            while table[slot] != _EMPTY:
                j = table[slot]
                if hashes[j] == key:
                    same = True
                    for w in range(words):
                        want = bits[head, w] | vb if w == vw else bits[head, w]
                        if bits[j, w] != want:
                            same = False
                            break
                    if same:
                        found = j
                        break
                slot = (slot + 1) & mask
            if found < 0:
                if n >= limit:
                    state[0], state[1], state[2], state[3] = n, e, head, 2
                    return IdealArrays(bits, hashes, added, creator, table, sub_child, sub_parent)
                if n == bits.shape[0]:
                    bits = _grow2(bits, 2 * n)
                    hashes = _grow1(hashes, 2 * n)
                    added = _grow1(added, 2 * n)
                    creator = _grow1(creator, 2 * n)
                for w in range(words):
                    bits[n, w] = bits[head, w]
                bits[n, vw] |= vb
                hashes[n] = key
                added[n] = v
                creator[n] = head
                found = n
                n += 1
                if 2 * n > table.shape[0]:
                    table = np.full(table.shape[0] * 2, _EMPTY, np.int64)
                    for j in range(n):
                        _insert(table, hashes[j], j)
                else:
                    table[slot] = found
            if e == sub_child.shape[0]:
                sub_child = _grow1(sub_child, 2 * e)
                sub_parent = _grow1(sub_parent, 2 * e)
            sub_child[e] = found
            sub_parent[e] = head
            e += 1
        head += 1
    state[0], state[1], state[2] = n, e, head
    if head >= n:
        state[3] = 1
    return IdealArrays(bits, hashes, added, creator, table, sub_child, sub_parent)


def new_ideal_arrays(words: int) -> IdealArrays:
    """The arrays :func:`generate_ideals` starts from: the empty ideal alone."""
    cap = 1024
    table = np.full(4096, _EMPTY, np.int64)
    table[0] = 0  # the empty ideal: hash 0, slot 0
    return IdealArrays(
        np.zeros((cap, words), np.uint64),
        np.zeros(cap, np.uint64),
        np.full(cap, -1, np.int64),
        np.full(cap, -1, np.int64),
        table,
        np.empty(4096, np.int64),
        np.empty(4096, np.int64),
    )


@njit(cache=True)
def prefix_sums(added, creator, per_block):
    """``out[:, i]`` = sum of ``per_block[:, b]`` over the blocks ``b`` of ideal ``i``."""
    k, n = per_block.shape[0], added.shape[0]
    out = np.zeros((k, n), per_block.dtype)
    for i in range(1, n):
        c, v = creator[i], added[i]
        for r in range(k):
            out[r, i] = out[r, c] + per_block[r, v]
    return out


@njit(cache=True)
def cut_lists(bits, h_start, h_members, lo, hi):
    """Hyperedges cut by each ideal of ``lo..hi-1`` (meeting it without lying inside
    it), as CSR arrays ``(start, items)``, ``start[0] = 0``."""
    n = hi - lo
    nh = h_start.shape[0] - 1
    start = np.zeros(n + 1, np.int64)
    items = np.empty(1024, np.int64)
    e = 0
    for r in range(n):
        i = lo + r
        for h in range(nh):
            inside = 0
            for p in range(h_start[h], h_start[h + 1]):
                inside += _has(bits, i, h_members[p])
            size = h_start[h + 1] - h_start[h]
            if 0 < inside < size:
                if e == items.shape[0]:
                    items = _grow1(items, 2 * e)
                items[e] = h
                e += 1
        start[r + 1] = e
    return start, items[:e]


@njit(cache=True)
def cut_totals(start, items, weights):
    """``total[k, m, i]``: the summed ``weights[k, m, h]`` of the hyperedges ideal ``i``
    cuts."""
    n = start.shape[0] - 1
    n_kinds, n_masks = weights.shape[0], weights.shape[1]
    total = np.zeros((n_kinds, n_masks, n))
    for i in range(n):
        for q in range(start[i], start[i + 1]):
            h = items[q]
            for k in range(n_kinds):
                for m in range(n_masks):
                    total[k, m, i] += weights[k, m, h]
    return total


# dp_range's helpers take arrays and are inlined into numba's IR (inline="always"): as plain
# calls per pair they cost it 5-15%, and taking the named tuples 3-6x (numba increfs every
# array of a tuple passed in, per call, even inlined).


@njit(cache=True, inline="always")
def _members_in(bits, i, j, h_start, h_members, h):
    """How many blocks of hyperedge ``h`` ideal ``i`` holds, and how many of those its
    sub-ideal ``j`` holds."""
    in_i = 0
    in_j = 0
    for p in range(h_start[h], h_start[h + 1]):
        b = h_members[p]
        if _has(bits, i, b):
            in_i += 1
            in_j += _has(bits, j, b)
    return in_i, in_j


@njit(cache=True, inline="always")
def _push_subs(sub_start, sub_items, stamp, stack, top, j):
    """Push on ``stack`` (from ``top``) the Hasse predecessors of ideal ``j`` not yet
    reached by the walk ``j`` belongs to, marking them with its mark ``stamp[j]``;
    returns the new top."""
    mark = stamp[j]
    for sub in range(sub_start[j], sub_start[j + 1]):
        t = sub_items[sub]
        if stamp[t] != mark:
            stamp[t] = mark
            stack[top] = t
            top += 1
    return top


@njit(cache=True, inline="always")
def _leave_unused(dp, back_ideal, back_kind, strides, counts, i):
    """Leaving a device unused: with "at most" counts, ``dp[:, i]`` is monotone in each
    kind's count."""
    for s in range(dp.shape[0]):
        for k in range(strides.shape[0]):
            stride = strides[k]
            if (s // stride) % (counts[k] + 1) == 0:
                continue
            if dp[s - stride, i] < dp[s, i]:
                dp[s, i] = dp[s - stride, i]
                back_ideal[s, i] = i
                back_kind[s, i] = k


@njit(cache=True)
def in_windows(windows, states, lat, i, reach):
    """Fill ``reach`` for ideal ``i``: which count states of ``states`` (their
    ``strides`` and ``counts``) have work ``windows`` that hold it, and the range
    ``floor[a] <= lat[a, j] <= ceil[a]`` a sub-ideal ``j`` needs to lie in the window of
    a state one stage before one of them (every sub-ideal of a ``j`` below the floor is
    below it too); returns whether any state holds ``i``."""
    lo, hi = windows.lo, windows.hi
    strides, counts = states.strides, states.counts
    alive, floor, ceil = reach.alive, reach.floor, reach.ceil
    n_kinds = lat.shape[0]
    found = False
    for a in range(n_kinds):
        floor[a] = np.inf
        ceil[a] = -np.inf
    for s in range(alive.shape[0]):
        ok = True
        for a in range(n_kinds):
            if lat[a, i] < lo[a, s] or lat[a, i] > hi[a, s]:
                ok = False
                break
        alive[s] = ok
        if not ok:
            continue
        found = True
        for k in range(n_kinds):
            stride = strides[k]
            if (s // stride) % (counts[k] + 1) == 0:
                continue
            for a in range(n_kinds):
                floor[a] = min(floor[a], lo[a, s - stride])
                ceil[a] = max(ceil[a], hi[a, s - stride])
    return found


@njit(cache=True, inline="always")
def below_floor(lat, j, floor):
    """Whether sub-ideal ``j`` (and so every ideal below it) is under ``floor``."""
    for a in range(lat.shape[0]):  # noqa: SIM110 (numba compiles no generators)
        if lat[a, j] < floor[a]:
            return True
    return False


@njit(cache=True, inline="always")
def _live_stage(stages, cap, bound, i, j):
    """Whether stage ``i \\ j`` fits some kind: every op supported, its blocks' memory
    within the kind's, its latency within ``bound``."""
    lat, unsup = stages.lat, stages.unsup
    stage_size = stages.size[i] - stages.size[j]
    for k in range(lat.shape[0]):
        fits = unsup[k, i] - unsup[k, j] <= 0 and stage_size <= cap[k]
        if fits and lat[k, i] - lat[k, j] <= bound:
            return True
    return False


@njit(cache=True, inline="always")
def _subset(bits, j, i):
    for w in range(bits.shape[1]):  # noqa: SIM110 (numba compiles no generators)
        if bits[j, w] & ~bits[i, w]:
            return False
    return True


@njit(cache=True)
def band_scan(i, stages, cap, bound, band, reach):
    """The sub-ideals ``j`` of ideal ``i`` in the band of ideals the work windows hold
    (:class:`~placer.solvers.dp.windows.Band`) between ``reach``'s floor and ceiling
    whose stage ``i \\ j`` may lie on a split within ``bound``, into ``reach.found``;
    returns ``(how
    many, ideals scanned)``, or ``(-1, 0)`` where walking down the lattice from ``i`` is
    the shorter way (the walk passes through every ideal between ``i`` and the floor,
    the scan only through those a split within the bound can reach, each with a subset
    test)."""
    if not band.use:
        return -1, 0
    floor, ceil, found = reach.floor, reach.ceil, reach.found
    lat = stages.lat
    bits = stages.lattice.bits
    r = band.ref
    low = floor[r] if lat.shape[0] > 1 else max(floor[r], lat[r, i] - bound)
    high = min(ceil[r], lat[r, i])
    first = np.searchsorted(band.lat, low, side="left")
    last = np.searchsorted(band.lat, high, side="right")
    top = np.searchsorted(band.all_lat, lat[r, i], side="right")
    walked = top - np.searchsorted(band.all_lat, max(floor[r], lat[r, i] - bound), side="left")
    if last - first > walked:
        return -1, 0
    n_found = 0
    for q in range(first, last):
        j = band.ideals[q]
        if j == i or not _subset(bits, j, i) or below_floor(lat, j, floor):
            continue
        if _live_stage(stages, cap, bound, i, j):
            found[n_found] = j
            n_found += 1
    return n_found, last - first


@njit(cache=True)
# Length and complexity allowed: the DP's hot loop; per-pair helpers cost it 5% to 6x (see above).
def dp_range(lo, hi, stages, run, table, call_pairs):  # noqa: C901, PLR0915
    """Fill ``dp[:, lo:hi]`` of the ideal DP of [1]_ (Section 4, the recurrence for
    max-load over ideals, extended to any number of device kinds).

    Axes of the table: ``dp[s, i]`` is the least max-load with which ideal ``i`` can be
    split into stages on ``c_k`` devices of each kind ``k`` (at most ``c_k`` if
    ``at_most``), where ``s`` encodes the counts ``c`` in mixed radix (``strides``).  A
    stage is ``i \\ j`` for a sub-ideal ``j`` of ``i``; on kind ``k`` it costs its
    latency plus, if ``pays[k]``, the weight of the hyperedges it cuts; its memory is
    its blocks' plus ``h_mem`` of each hyperedge it meets (side computations).  Stages with
    latency above ``bound`` on every kind are skipped, and so is everything below them
    in the lattice, since latency only grows as ``j`` shrinks.

    A hyperedge's weight may depend on which kinds its other end can be on
    (``weights[k, m, h]`` for a bitmask ``m`` of kinds; one mask when it does not): the
    kinds of the stages before (``used_mask`` of the state before the stage) if it
    meets ``j``, the kinds with devices left (``left_mask`` of the state after it) if
    it leaves ``i``, or both.

    Parameters
    ----------
    lo, hi : int
        The ideals to fill (every ideal before ``lo`` filled already).
    stages : StageSums
        The lattice (``bits`` and Hasse arcs) and the prefix sums ``lat``, ``unsup``,
        ``size`` over its ideals.
    run : RunArrays
        The run's states (``strides``, ``counts``, ``used_mask``, ``left_mask``), ``cap``,
        ``pays``, ``at_most``, cut lists (``h_start``, ``h_members``, ``cut_start``,
        ``cut_items``), ``weights``, ``memory`` (``h_mem`` above), ``cut_total`` and
        ``bound``.
    table : DPTable
        ``dp``, ``back_ideal``, ``back_kind``, filled in place; ``stamp``, ``stack``.
    call_pairs : int

    Returns the number of (ideal, sub-ideal) pairs visited, and the ideal to resume
    from: ``hi``, or an earlier one once ``call_pairs`` pairs have been visited (so that
    each call lasts a fraction of a second and the caller can handle Ctrl-C).
    """
    # the fields as locals: the loops below read them as they read arguments
    lattice = stages.lattice
    bits, sub_start, sub_items = lattice.bits, lattice.sub_start, lattice.sub_items
    lat, unsup, size = stages.lat, stages.unsup, stages.size
    strides, counts = run.states.strides, run.states.counts
    used_mask, left_mask = run.states.used_mask, run.states.left_mask
    cap, pays, at_most, bound = run.cap, run.pays, run.at_most, run.bound
    windows, band = run.pruning
    h_start, h_members = run.cuts.h_start, run.cuts.h_members
    cut_start, cut_items = run.cuts.cut_start, run.cuts.cut_items
    weights, h_mem, cut_total = run.weights, run.memory, run.cut_total
    dp, back_ideal, back_kind = table.dp, table.back_ideal, table.back_kind
    stamp, stack = table.stamp, table.stack
    n_states = dp.shape[0]
    n_kinds = lat.shape[0]
    n_masks = weights.shape[1]
    masked = n_masks > 1
    has_mem = False
    for h in range(h_mem.shape[0]):
        if h_mem[h] > 0.0:
            has_mem = True
    pairs = 0
    cost = np.empty(n_kinds)
    comm = np.empty(n_kinds)
    # summed weights of the stage's cut hyperedges by where their other end is:
    # before the stage only, after it only, or both
    before = np.empty((n_kinds, n_masks))
    after = np.empty((n_kinds, n_masks))
    both = np.empty((n_kinds, n_masks))
    scratch = reach(n_states, n_kinds, dp.shape[1])
    alive_state, floor, found = scratch.alive, scratch.floor, scratch.found
    for i in range(lo, hi):
        if pairs >= call_pairs:
            return pairs, i
        if i == 0:
            for s in range(n_states):
                dp[s, 0] = 0.0 if (at_most or s == 0) else np.inf
            continue
        if not in_windows(windows, run.states, lat, i, scratch):
            continue  # on no split within the bound
        # the sub-ideals: from the band where that is shorter, else down the lattice
        n_found, scanned = band_scan(i, stages, cap, bound, band, scratch)
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
            need_comm = False
            for k in range(n_kinds):
                c = lat[k, i] - lat[k, j]
                if unsup[k, i] - unsup[k, j] > 0 or stage_size > cap[k] or c > bound:
                    cost[k] = np.inf
                else:
                    alive = True
                    cost[k] = c
                    if pays[k]:
                        need_comm = True
            if not alive:
                continue
            # side computations' memory: a cover is never inside an ideal, so each one
            # the stage meets is on i's cut list
            extra = 0.0
            if has_mem:
                need_comm = True
            if need_comm and not masked:
                for k in range(n_kinds):
                    comm[k] = cut_total[k, 0, j]
                for q in range(cut_start[i], cut_start[i + 1]):
                    h = cut_items[q]
                    in_i, in_j = _members_in(bits, i, j, h_start, h_members, h)
                    # a hyperedge cut by i is cut by the stage iff it meets the stage,
                    # and cut_total[j] counted it iff j cuts it (it meets j)
                    if in_j < in_i:
                        extra += h_mem[h]
                    sign = int(in_j < in_i) - int(in_j > 0)
                    if sign != 0:
                        for k in range(n_kinds):
                            comm[k] += weights[k, 0, h] * sign
                for k in range(n_kinds):
                    if pays[k] and cost[k] < np.inf:
                        cost[k] += comm[k]
            elif need_comm:
                for k in range(n_kinds):
                    for m in range(n_masks):
                        before[k, m] = cut_total[k, m, j]
                        after[k, m] = 0.0
                        both[k, m] = 0.0
                for q in range(cut_start[i], cut_start[i + 1]):
                    h = cut_items[q]
                    in_i, in_j = _members_in(bits, i, j, h_start, h_members, h)
                    # h leaves i; cut_total[j] counted it (as lying before the stage)
                    # iff it meets j, and the stage pays it iff it meets the stage
                    if in_j > 0:
                        for k in range(n_kinds):
                            for m in range(n_masks):
                                before[k, m] -= weights[k, m, h]
                        if in_j < in_i:
                            extra += h_mem[h]
                            for k in range(n_kinds):
                                for m in range(n_masks):
                                    both[k, m] += weights[k, m, h]
                    else:
                        extra += h_mem[h]
                        for k in range(n_kinds):
                            for m in range(n_masks):
                                after[k, m] += weights[k, m, h]
            if extra > 0.0:
                for k in range(n_kinds):
                    if stage_size + extra > cap[k]:
                        cost[k] = np.inf
            for k in range(n_kinds):
                ck = cost[k]
                if ck == np.inf:
                    continue
                stride = strides[k]
                # two loops over the states on purpose: one loop that tests for masks
                # per state costs the unmasked runs 3-6% (GNMT, BERT-3)
                if masked and need_comm and pays[k]:
                    for s in range(n_states):
                        if (s // stride) % (counts[k] + 1) == 0 or not alive_state[s]:
                            continue
                        u = used_mask[s - stride]
                        r = left_mask[s]
                        total = ck + before[k, u] + after[k, r] + both[k, u | r]
                        prev = dp[s - stride, j]
                        cand = prev if prev > total else total
                        if cand < dp[s, i]:
                            dp[s, i] = cand
                            back_ideal[s, i] = j
                            back_kind[s, i] = k
                    continue
                for s in range(n_states):
                    if (s // stride) % (counts[k] + 1) == 0 or not alive_state[s]:
                        continue
                    prev = dp[s - stride, j]
                    cand = prev if prev > ck else ck
                    if cand < dp[s, i]:
                        dp[s, i] = cand
                        back_ideal[s, i] = j
                        back_kind[s, i] = k
            if walking:
                top = _push_subs(sub_start, sub_items, stamp, stack, top, j)
        if at_most:
            _leave_unused(dp, back_ideal, back_kind, strides, counts, i)
    return pairs, hi


@njit(cache=True)
def count_pairs(sample, stages, cap, bound, pruning, states):
    """The (ideal, sub-ideal) pairs :func:`dp_range` visits for each ideal of ``sample``
    on :class:`StageSums` ``stages``, with memory ``cap`` per kind, stages over
    ``bound`` skipped and the work windows and band (``pruning``) of ``states``' count
    states: the same enumeration (:func:`band_scan` or the walk), without costing stages."""
    sub_start, sub_items = stages.lattice.sub_start, stages.lattice.sub_items
    lat = stages.lat
    n = sub_start.shape[0] - 1
    n_kinds = lat.shape[0]
    stamp = np.full(n, -1, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    counts = np.zeros(sample.shape[0], dtype=np.int64)
    scratch = reach(states.used_mask.shape[0], n_kinds, n)
    floor = scratch.floor
    for r in range(sample.shape[0]):
        i = sample[r]
        if not in_windows(pruning.windows, states, lat, i, scratch):
            continue
        n_found, scanned = band_scan(i, stages, cap, bound, pruning.band, scratch)
        if n_found >= 0:
            counts[r] = scanned
            continue
        top = 0
        stack[top] = i
        top += 1
        stamp[i] = i
        while top > 0:
            top -= 1
            j = stack[top]
            if j != i:
                counts[r] += 1
                if below_floor(lat, j, floor) or not _live_stage(stages, cap, bound, i, j):
                    continue
            top = _push_subs(sub_start, sub_items, stamp, stack, top, j)
    return counts


class Absorbing(NamedTuple):
    """What :func:`absorb_range` charges: a run's :class:`RunArrays` (one mask), and the
    blocks left out of the subproblem: their latency ``time[k, b]`` on each kind (``inf``
    where it cannot run them), ``value[b]``, ``order[k]`` (by value per unit of time on
    kind ``k``, best first), and per ideal the bitsets over them of the blocks whose
    kept ancestors it holds (``early``) and of those none of whose kept descendants it
    holds (``late``)."""

    run: RunArrays
    time: np.ndarray
    value: np.ndarray
    order: np.ndarray
    early: np.ndarray
    late: np.ndarray


@njit(cache=True, inline="always")
def _available(early, late, i, j, b):
    w = b >> 6
    return ((early[i, w] & late[j, w]) >> np.uint64(b & 63)) & _ONE


@njit(cache=True)
def pack(absorbing, k, i, j, room):
    """The most value of the blocks available to a stage ``i \\ j`` on kind ``k``
    (their kept ancestors in ``i``, none of their kept descendants in ``j``) that
    ``room`` of time holds, fractions allowed: Dantzig's greedy over ``order[k]``, best
    first (:class:`Absorbing`)."""
    order, time, value = absorbing.order[k], absorbing.time[k], absorbing.value
    early, late = absorbing.early, absorbing.late
    packed = 0.0
    for q in range(order.shape[0]):
        b = order[q]
        t = time[b]
        if t == np.inf:
            break  # the blocks the kind cannot run come last
        if _available(early, late, i, j, b) == 0:
            continue
        if t <= room:
            packed += value[b]
            room -= t
        else:
            packed += value[b] * room / t
            break
    return packed


@njit(cache=True)
def idle_room(absorbing, room):
    """Per kind, the most a device holding no kept block packs in ``room``: the best
    over the positions between two stages (an ideal ``i``: the blocks whose kept
    ancestors it holds and none of whose kept descendants)."""
    n_kinds = absorbing.order.shape[0]
    most = np.zeros(n_kinds)
    for k in range(n_kinds):
        for i in range(absorbing.early.shape[0]):
            packed = pack(absorbing, k, i, i, room)
            if packed > most[k]:
                most[k] = packed
    return most


@njit(cache=True)
def absorb_range(lo, hi, stages, absorbing, table, call_pairs):  # noqa: C901, PLR0915
    """Fill ``dp[:, lo:hi]`` with the least ``-Σ pack(stage, bound - charge)`` over the
    stages of a split of each ideal on exactly the counts of each state, every stage
    charged at most ``run.bound`` (``absorbing``: :class:`Absorbing`): what the devices
    can still take of the blocks left out (:func:`pack`;
    :func:`placer.solvers.dp.relax.slack_bound`).  The charges are those of
    :func:`dp_range` with one mask (``weights[:, 0]``).

    Walks the sub-ideals down the lattice like :func:`dp_range`, not below a stage whose
    latency exceeds the bound on every kind; no work windows (the lattices this runs on
    are small).  Returns the pairs visited and the ideal to resume from, as
    :func:`dp_range` does.
    """
    run = absorbing.run
    lattice = stages.lattice
    bits, sub_start, sub_items = lattice.bits, lattice.sub_start, lattice.sub_items
    lat, unsup, size = stages.lat, stages.unsup, stages.size
    strides, counts = run.states.strides, run.states.counts
    cap, pays, bound = run.cap, run.pays, run.bound
    h_start, h_members = run.cuts.h_start, run.cuts.h_members
    cut_start, cut_items = run.cuts.cut_start, run.cuts.cut_items
    weights, h_mem, cut_total = run.weights, run.memory, run.cut_total
    dp, stamp, stack = table.dp, table.stamp, table.stack
    n_states = dp.shape[0]
    n_kinds = lat.shape[0]
    cost = np.empty(n_kinds)
    comm = np.empty(n_kinds)
    pairs = 0
    for i in range(lo, hi):
        if pairs >= call_pairs:
            return pairs, i
        if i == 0:
            dp[0, 0] = 0.0
            continue
        stamp[i] = i
        top = _push_subs(sub_start, sub_items, stamp, stack, 0, i)
        while top > 0:
            top -= 1
            j = stack[top]
            pairs += 1
            stage_size = size[i] - size[j]
            alive = False
            for k in range(n_kinds):
                c = lat[k, i] - lat[k, j]
                if c > bound:
                    cost[k] = np.inf
                    continue
                alive = True
                if unsup[k, i] - unsup[k, j] > 0 or stage_size > cap[k]:
                    cost[k] = np.inf
                else:
                    cost[k] = c
            if not alive:
                continue  # every smaller sub-ideal's stage is longer still
            extra = 0.0
            for k in range(n_kinds):
                comm[k] = cut_total[k, 0, j]
            for q in range(cut_start[i], cut_start[i + 1]):
                h = cut_items[q]
                in_i, in_j = _members_in(bits, i, j, h_start, h_members, h)
                if in_j < in_i:
                    extra += h_mem[h]
                sign = int(in_j < in_i) - int(in_j > 0)
                if sign != 0:
                    for k in range(n_kinds):
                        comm[k] += weights[k, 0, h] * sign
            for k in range(n_kinds):
                ck = cost[k]
                if ck == np.inf or stage_size + extra > cap[k]:
                    continue
                if pays[k]:
                    ck += comm[k]
                if ck > bound:
                    continue
                stride = strides[k]
                add = -pack(absorbing, k, i, j, bound - ck)
                for s in range(n_states):
                    if (s // stride) % (counts[k] + 1) == 0:
                        continue
                    cand = dp[s - stride, j] + add
                    if cand < dp[s, i]:
                        dp[s, i] = cand
            top = _push_subs(sub_start, sub_items, stamp, stack, top, j)
    return pairs, hi
