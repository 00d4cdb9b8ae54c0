"""A certified bracket on the contiguous optimum when the exact DP's pairs are too many.

The ideal DP of :mod:`placer.solvers.dp.search` visits every pair of ideals ``j ⊂ i`` whose
stage ``i \\ j`` fits the bound: billions on a transformer whose layers hold a few
thousand ideals each.  When a stage's cost is *separable*, ``need(i) - key(j)``, the
pairs are not needed: whether the whole set splits into stages of cost at most ``T``
follows from the largest ``key`` over the reachable sub-ideals of each ideal, which one
pass over the lattice's Hasse arcs propagates (:func:`_bracket_kernels.feasible`), and a
bisection over ``T`` finds the least ``T`` that works.  Two separable costs bracket the
true one (latency ``lat(i) - lat(j)`` is separable; transfers and side computations are
not):

* **below**: ``lat(i) + out(i) - (lat(j) - in(j))``, where ``out(i)`` is the least, over
  the maximal blocks of ``i``, of their outputs leaving ``i`` and the side computations
  they need, and ``in(j)`` the least, over the blocks that could start the next stage,
  of what they receive from before it, each transfer at the fastest link to the kinds
  the state says the stages after may use (``out``) or the stages before used (``in``).
  A stage holds some maximal block of ``i`` and some such block, and pays at least
  that, so every contiguous placement costs at least this: its least ``T`` is a
  **lower bound**;
* **above**: ``lat(i) + cut(i) - (lat(j) - cut(j))`` with ``cut`` the weight of the
  transfers (at the slowest link) and side computations an ideal cuts: every transfer a
  stage pays is cut by ``i`` or by ``j``, so this over-charges, and its split is a
  placement whose true max-load, from the evaluator, is at most its ``T``.

Memory caps are left out of both (the lower bound stays a bound; the plan is checked by
the evaluator and dropped if it does not fit).  The bisections stop within a relative
millionth (:data:`_RTOL`), and the lower bound is taken that much below.  Time
O(B · S · K · (N + E)) for B ≈ 32 bisection steps, S device-count states, K kinds, N
ideals and E Hasse arcs, plus
O(N · (m + ops)) for the charges.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from placer.problem import Placement, Problem
from placer.solvers.base import OutOfTime
from placer.solvers.blocks import BlockGraph, _transfer_weights
from placer.solvers.dp import _bracket_kernels as kernels
from placer.solvers.dp.chain import States, least_limit
from placer.solvers.dp.costing import Costing, Role, _link_times, _mask_weights, _with_covers
from placer.solvers.dp.lattice import BackPointers, backtrack, slices
from placer.util.interrupts import deferred_interrupt

#: (ideal, state, kind) cells per call of the feasibility kernel (about 0.1 s).
_PROBE_CELLS = 2_000_000
#: Relative precision of the bisections: about half the probes of an exact one, for a
#: bound lower by at most a millionth (the bound is ``limit * (1 - _RTOL)``).
_RTOL = 1e-6


@dataclass(frozen=True)
class Bracket:
    """``lower``: no contiguous placement has a smaller max-load; ``placement``: the
    split found under the over-charging costs (None if none was found)."""

    lower: float
    placement: Placement | None


def bracket(problem: Problem, blocks: BlockGraph, stages, options) -> Bracket:
    """The bracket of ``problem`` over the ideals of ``stages``
    (:class:`placer.solvers.dp.search._Stages`: the lattice with its Hasse arcs, each ideal's
    summed finite latency, and its cut lists).  Stops with ``lower = 0`` and no
    placement if ``options``' deadline passes.
    """
    lattice, lat = stages.lattice, stages.sums.lat
    n = lattice.bits.shape[0]
    counts = np.array([kind.count for kind in problem.kinds], dtype=np.int64)
    states = States.of(counts)
    try:  # seconds on a wide lattice: the deadline is checked between slices
        out, inn = _frontier(problem, blocks, lattice.bits, options.out_of_time)
        cut = _cuts(blocks, stages, counts, options.out_of_time)
    except OutOfTime:
        return Bracket(0.0, None)
    masked = out.shape[1] > 1
    lower = _least(lat[:, None, :] - inn, lat[:, None, :] + out, lattice, states, options,
                   masked)[0] * (1 - _RTOL)  # fmt: skip
    limit, final, back_j, back_k = _least(
        lat[:, None, :] - cut, lat[:, None, :] + cut, lattice, states, options, False
    )
    placement = None
    if final >= 0 and math.isfinite(limit):
        pointers = BackPointers(back_j, back_k, states.strides)
        placement = backtrack(problem, blocks, lattice, pointers, final)
    return Bracket(lower if math.isfinite(lower) else 0.0, placement if n else None)


def _least(key, need, lattice, states: States, options, masked: bool):
    """The least ``T`` (bisection over the floats) with a split of stage costs
    ``need[k, r, i] - key[k, u, j] <= T`` (``u``, ``r``: the states' masks of kinds used
    before and left after the stage if ``masked``, else 0); with the state reaching the
    whole set and the back pointers of that last probe."""
    n = key.shape[2]
    n_states = states.n_states
    n_kinds = key.shape[0]
    if not masked:
        zeros = np.zeros(n_states, dtype=states.used_mask.dtype)
        states = states._replace(used_mask=zeros, left_mask=zeros)
    costs = kernels.Separable(np.ascontiguousarray(key), np.ascontiguousarray(need), states)
    tables = kernels.Probe(
        np.empty((n_kinds, n_states, n)),
        np.empty((n_kinds, n_states, n), dtype=np.int32),
        np.zeros((n_states, n), dtype=np.bool_),
        np.empty((n_states, n), dtype=np.int32),
        np.empty((n_states, n), dtype=np.int8),
    )
    back_j, back_k = tables.back_j, tables.back_k

    # ideals per kernel call: about a tenth of a second, so that Ctrl-C stays prompt
    step = max(1, _PROBE_CELLS // max(1, n_states * n_kinds))

    def probe(limit: float) -> int:
        final = -1
        for lo in range(0, n, step):
            with deferred_interrupt():
                final = kernels.feasible(limit, costs, lattice, tables, lo, min(n, lo + step))
        return final

    high = float(max(need.max(initial=0.0) - key.min(initial=0.0), 0.0)) * (1 + 1e-9) + 1e-300
    high = min(high, float(np.finfo(np.float64).max))
    if probe(high) < 0:
        return math.inf, -1, back_j, back_k
    limit = least_limit(lambda limit: probe(limit) >= 0, high, options.out_of_time, _RTOL)
    if limit is None:
        return math.inf, -1, back_j, back_k
    return limit, probe(limit), back_j, back_k


def _frontier(problem: Problem, blocks: BlockGraph, bits: np.ndarray, out_of_time):
    """``(out, inn)``, ``(kinds, masks, ideals)``: the separable lower bounds on what a
    stage ending at an ideal sends, and what a stage starting after it receives, when
    the other end is on a kind of the mask (the fastest such link; one mask without
    per-link costs)."""
    weight = _op_weights(problem)  # (kinds, masks, ops)
    m = blocks.n_blocks
    block_of = blocks.block_of_op
    succ = [set() for _ in range(m)]
    pred = [set() for _ in range(m)]
    for u, v in blocks.edges:
        succ[u].add(int(v))
        pred[v].add(int(u))
    # what each block receives from its pipeline predecessors' ops
    in_weight = np.zeros((weight.shape[0], weight.shape[1], m))
    op_succ: list[list[int]] = []
    for u, targets in enumerate(problem.successors):
        home = int(block_of[u])
        outside = sorted({int(block_of[v]) for v in targets} - {home})
        op_succ.append(outside)
        for a in outside:
            if home in pred[a]:
                in_weight[:, :, a] += weight[:, :, u]
    cover_of_block = np.zeros((len(problem.kinds), m))
    for c, cover in enumerate(blocks.covers):
        for b in cover:
            cover_of_block[:, b] += blocks.cover_latency[:, c]
    ops = [list(ops) for ops in blocks.ops_of_block]
    graph = kernels.BlockCSR(*_csr(succ), *_csr(pred), *_csr(ops), *_csr(op_succ))
    weights = kernels.FrontierWeights(np.ascontiguousarray(weight), in_weight, cover_of_block)
    n = bits.shape[0]
    out = np.zeros((*weight.shape[:2], n))
    inn = np.zeros((*weight.shape[:2], n))
    for lo, hi in slices(n):
        if out_of_time():
            raise OutOfTime
        with deferred_interrupt():
            out[:, :, lo:hi] = kernels.exit_charges(bits, graph, weights, lo, hi)
            inn[:, :, lo:hi] = kernels.entry_charges(bits, graph, weights, lo, hi)
    return out, inn


def _op_weights(problem: Problem) -> np.ndarray:
    """``w[k, m, u]``: the least a device of kind ``k`` pays for op ``u``'s transfer when
    the other end is on a kind of bitmask ``m`` (the fastest such link); a single mask
    without per-link costs."""
    if problem.links is None:
        weight, _ = _transfer_weights(problem, optimistic=True)
        return weight[:, None, :]
    kinds = {k for k, kind in enumerate(problem.kinds) if kind.count > 0}
    weight = _mask_weights(_link_times(problem), kinds, Role.LOWER)
    weight[[k for k in range(len(problem.kinds)) if k not in kinds]] = 0.0
    return weight


def _cuts(blocks: BlockGraph, stages, counts: np.ndarray, out_of_time) -> np.ndarray:
    """``(kinds, 1, ideals)``: the weight of the transfers (slowest link) and side
    computations each ideal cuts; the cut lists are the exact DP's own."""
    run = _with_covers(
        Costing(Role.UPPER, counts, True, 0, blocks.hyperedges, blocks.weights[:, None, :]),
        blocks,
    )
    return stages.charged(run.hyperedges, run.weights, out_of_time)[2]


def _csr(lists) -> tuple[np.ndarray, np.ndarray]:
    start = np.zeros(len(lists) + 1, np.int64)
    np.cumsum([len(items) for items in lists], out=start[1:])
    items = np.array([int(x) for group in lists for x in sorted(group)], dtype=np.int64)
    return start, items
