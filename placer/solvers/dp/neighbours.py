"""The ideal DP over links of different speeds, knowing each stage's neighbours' kinds.

What a stage pays for a transfer depends on the kind of the device at the other end
(the evaluator's rule: a receiver pays its link from the sender, the sender once, over
the slowest link its output crosses).  The runs of :mod:`placer.solvers.dp.costing`
know only which kinds the stages before a stage used and which have devices left, so
they bracket the optimum: with a fast interconnect between GPUs and a slow one to the
host CPU, the lower run charges the GPU stage next to a CPU stage the GPU link, and the
bracket stays open by a few percent even where the best plan never uses the CPU.

In a pipeline, what a stage receives comes from the stage before and what it sends goes
to the stage after, unless a transfer passes over a whole stage.  Call a stage ``i \\ j``
*clean* when no transfer meets ``j`` and leaves ``i``, and *receiving* when every
transfer leaving ``j`` meets it.  If the stage before a stage is clean, everything the
stage receives was sent by that stage; if the stage after it is receiving, everything it
sends has a receiver there, and the sender pays at least that link.  This DP's state
adds to the device counts the kind of the previous stage when it was clean, and the kind
promised to the next stage, which must then be receiving and of that kind; where a
neighbour is not, the stage is charged the fastest link to a kind used before (what it
receives) or with devices left (what it sends).  Every contiguous placement has one
path through these states whose charges are at most its true loads, and equal to them
when all its stages are clean:

* the DP's optimum is a **lower bound** on the contiguous optimum;
* its plan, scored by the evaluator, meets that bound whenever its stages are clean,
  as the best plans on layered models are: then it is **proven optimal**.  On a chain
  every stage is clean, and the DP is exact.

A stage that is not clean keeps its kind in the state too when what it did not send,
of the transfers in flight at its end, is the first few in sender order (a residual
stream passing it): the next stage then pays its link for the rest, and adds to the
stage's load (the least charged to it on a path to the state) its own link for what
the stage sent it.  A stage that receives a transfer from a later block (a gradient
sent back to several earlier ones, in training) is charged the fastest link to a kind
with devices left for it.

Over the ideals, the search (:mod:`placer.solvers.dp.search`) runs it in place of the
upper and lower runs of :mod:`placer.solvers.dp.costing`, after the exact runs of the
subsets of kinds whose links are alike (whose plans prune it).

Time O(S · K · (3K + 1) · (K + 1) · P) for P (ideal, sub-ideal) pairs, S device-count
states and K kinds, against O(S · K · P) for each of the up to two runs per subset of
kinds it replaces.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from placer.problem import Placement, Problem
from placer.solvers.base import placement_of_stages
from placer.solvers.blocks import BlockGraph, aggregate_transfers
from placer.solvers.dp import _neighbour_kernels as kernels
from placer.solvers.dp._ideal_kernels import cut_totals
from placer.solvers.dp.chain import MAX_STATES, States, capacity
from placer.solvers.dp.costing import Costing, Role, _link_times, _mask_weights, _with_covers
from placer.solvers.dp.windows import pruning
from placer.util.interrupts import deferred_interrupt

#: (ideal, sub-ideal) pairs per kernel call: a fraction of a second.
_CALL_PAIRS = 200_000


@dataclass(frozen=True)
class NeighbourRun:
    """The charges of the neighbour DP: ``costing`` holds the hyperedges (transfers
    first, then the side computations' covers) with ``weights[k, m, h]`` for every
    bitmask ``m`` of kinds, ``n_transfers`` says where the covers start, and ``later``
    which transfers a block after some of their receivers sends, and which
    (:func:`later_senders`); those that several blocks send have their weights in
    ``apart`` (zero in ``costing``'s), charged the fastest link to any kind used or
    left; ``through``, how many transfers in flight a state names
    (:data:`~placer.solvers.dp._neighbour_kernels.THROUGH` at most)."""

    costing: Costing
    n_transfers: int
    later: np.ndarray
    apart: np.ndarray
    through: int = kernels.THROUGH

    @property
    def n_states(self) -> int:
        """DP states: device-count states times the two neighbour digits."""
        n_kinds = len(self.costing.counts)
        before = kernels.n_before(n_kinds, self.through)
        return States.of(self.costing.counts).n_states * before * (n_kinds + 1)


def neighbour_run(problem: Problem, blocks: BlockGraph) -> NeighbourRun | None:
    """The neighbour DP's charges for ``problem`` (which has per-link costs), or None
    when its tables would hold more than :data:`~placer.solvers.dp.chain.MAX_STATES`
    states per ideal even without naming transfers in flight."""
    counts = np.array([kind.count for kind in problem.kinds], dtype=np.int64)
    n_kinds = len(counts)
    count_states = math.prod(int(c) + 1 for c in counts)
    # transfers in flight where the states allow, else the plain state
    fitting = [t for t in (kernels.THROUGH, 0)
               if count_states * kernels.n_before(n_kinds, t) * (n_kinds + 1) <= MAX_STATES]
    if not fitting:
        return None
    available = {k for k, c in enumerate(counts) if c > 0}
    weights = _mask_weights(_link_times(problem), available, Role.LOWER)
    hyperedges, charges = aggregate_transfers(problem, blocks.block_of_op, weights)
    costing = _with_covers(Costing(Role.LOWER, counts, True, 0, hyperedges, charges), blocks)
    later = later_senders(problem, blocks.block_of_op, hyperedges)
    several = np.zeros(costing.weights.shape[2], dtype=np.bool_)
    several[: len(hyperedges)] = later == -2
    apart = np.ascontiguousarray(np.where(several, costing.weights, 0.0))
    costing = replace(costing, weights=np.where(several, 0.0, costing.weights))
    return NeighbourRun(costing, len(hyperedges), later, apart, fitting[0])


def later_senders(problem: Problem, block_of_op: np.ndarray,
                  hyperedges: tuple[tuple[int, ...], ...]) -> np.ndarray:  # fmt: skip
    """For each transfer of ``hyperedges`` (their blocks, sorted) with more than two
    blocks, the block that sends it where that is not its first (a gradient flowing back
    to the ops that fed its op, in training), ``-2`` where ops of several blocks send
    it, and ``-1`` otherwise (with two blocks, each end pays the one link between them,
    whichever sends).  A stage that receives such a transfer from a later stage does not
    receive it from the stage before it, nor does the stage after it send it."""
    index = {h: i for i, h in enumerate(hyperedges)}
    sender = np.full(len(hyperedges), -1, dtype=np.int64)
    senders: dict[int, set[int]] = {}
    for u, succ in enumerate(problem.successors):
        own = int(block_of_op[u])
        key = tuple(sorted({own} | {int(block_of_op[v]) for v in succ}))
        if len(key) > 2 and key in index:
            senders.setdefault(index[key], set()).add(own)
    for h, found in senders.items():
        first = hyperedges[h][0]
        if found != {first}:
            sender[h] = found.pop() if len(found) == 1 else -2
    return sender


def solve_neighbours(problem: Problem, blocks: BlockGraph, run: NeighbourRun, stages,
                     bound: float, options):  # fmt: skip
    """Run the neighbour DP over the lattice of ``stages``
    (:class:`placer.solvers.dp.search._Stages`), skipping stages whose latency exceeds
    ``bound`` on every kind; returns ``(placement or None, value, pairs)``, with the
    placement ``None`` and the value infinite when nothing fits within ``bound``, and
    ``None`` for all three when ``options``' deadline or pair budget ran out first."""
    costing = run.costing
    lattice = stages.lattice
    n = lattice.bits.shape[0]
    cuts, weights, cut_total = stages.charged(costing.hyperedges, costing.weights)
    with deferred_interrupt():  # linear in the cut lists
        later_total = cut_totals(cuts.cut_start, cuts.cut_items, run.apart)
    states = States.of(costing.counts)
    pruned = pruning(blocks.latency, stages.sums.lat, costing.counts, states.strides, bound)
    with deferred_interrupt():  # linear in the cut lists
        flight = kernels.in_flight(cuts, run.n_transfers, weights, blocks.n_blocks, run.through)
    arrays = kernels.NeighbourRun(states, capacity(problem, costing.counts), cuts,
                                  run.n_transfers, weights, costing.memory, cut_total,
                                  bound, pruned, kernels.InFlight(*flight),
                                  kernels.Later(run.later, run.apart, later_total))  # fmt: skip
    n_states = run.n_states
    table = kernels.NeighbourTable(
        np.full((n_states, n), np.inf),
        np.full((n_states, n), np.inf),
        np.full((n_states, n), -1, dtype=np.int32),
        np.full((n_states, n), -1, dtype=np.int8),
        np.full((n_states, n), -1, dtype=np.int32),
        np.full(n, -1, dtype=np.int64),
        np.empty(n, dtype=np.int64),
    )
    pairs = 0
    lo = 0
    while lo < n:
        if options.out_of_time() or pairs > options.max_pairs:
            return None, None, pairs
        with deferred_interrupt():
            visited, lo = kernels.neighbour_range(lo, n, stages.sums, arrays, table, _CALL_PAIRS)
        pairs += visited
    if pairs > options.max_pairs:
        return None, None, pairs
    n_kinds = len(costing.counts)
    ends = [s for s in range(n_states) if s % (n_kinds + 1) == n_kinds]  # nothing promised
    final = ends[int(np.argmin(table.dp[ends, n - 1]))]
    value = float(table.dp[final, n - 1])
    if not math.isfinite(value):
        return None, math.inf, pairs
    return _backtrack(problem, blocks, lattice, table, final), value, pairs


def _backtrack(problem: Problem, blocks: BlockGraph, lattice, table, s: int) -> Placement:
    """The placement of the split that reached state ``s`` at the whole set."""
    i = lattice.bits.shape[0] - 1
    found = []
    while i != 0:
        j, k = int(table.back_ideal[s, i]), int(table.back_kind[s, i])
        diff = lattice.bits[i] & ~lattice.bits[j]
        members = np.flatnonzero(
            np.unpackbits(diff.view(np.uint8), bitorder="little")[: blocks.n_blocks]
        )
        found.append((k, members))
        s, i = int(table.back_state[s, i]), j
    found.reverse()
    return placement_of_stages(problem, blocks, found)
