"""The DP over one linear order of the blocks, in O(S · K · m) per probe of the max-load.

When the ideals of the block DAG are the prefixes of one order (the DAG is a path:
a chain of layers), or when the exact DP gave up and a linear order of the blocks is
split instead (PipeDream's partitioner, the ``pipedream`` baseline of
:mod:`placer.solvers.baselines`, generalised to device kinds), a stage is a run
``(i, j]`` of consecutive positions.  The ideal DP would visit O(m²) pairs ``(i, j)``:
4·10⁹ on a 100,000-block chain.  Instead, for a probe ``L`` of the max-load, a sweep
decides which prefixes can be split into stages of load at most ``L``
(:func:`placer.solvers.dp._chain_kernels.reachable`), and a bisection over the floats finds
the least ``L`` that works: at most 64 sweeps of O(S · K · m) for S device-count states
and K kinds.

A stage's transfers are charged through the two cuts that bound it: ``cut(i) +
cut(j)``, the weights of the hyperedges crossing position ``i`` and position ``j``.
That is exactly the charge of [1]_ (a hyperedge is paid when it meets the stage without
lying inside it) when every hyperedge spans at most two consecutive positions -- always
the case on a path DAG; otherwise it over-charges hyperedges that pass over or
straddle the stage, and the plan it finds is a real placement whose true max-load,
from the evaluator, is at most the figure the sweep used.  A side computation's cover
(:mod:`placer.solvers.dp.costing`) counts as a hyperedge from position 0 to its last
reader, so it is exact only with a single reader in the first block; its memory is
kept free in every stage.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from placer.errors import NoPlacementFound
from placer.problem import Placement, Problem
from placer.solvers.base import placement_of_stages
from placer.solvers.blocks import BlockGraph
from placer.solvers.dp import _chain_kernels as kernels
from placer.solvers.dp.costing import Costing
from placer.solvers.dp.lattice import BackPointers
from placer.util.interrupts import deferred_interrupt

#: Most device-count states a DP table may have (the default cluster has 10); each
#: multiplies the table's memory and time.
MAX_STATES = 4096
#: Most cells (states by positions) the sweep's tables may have: 6 bytes each.
MAX_CELLS = 100_000_000


class States(NamedTuple):
    """Device-count states of a run in mixed radix, and the kinds each has used or left.

    ``used_mask[s]``: bitmask of the kinds state ``s`` uses at least once;
    ``left_mask[s]``: of the kinds with devices left.  A named tuple of arrays, which
    the DP's numba kernels take as one argument.
    """

    counts: np.ndarray
    strides: np.ndarray
    used_mask: np.ndarray
    left_mask: np.ndarray

    @property
    def n_states(self) -> int:
        return int(np.prod(self.counts + 1))

    @classmethod
    def of(cls, counts: np.ndarray) -> States:
        """The states of a run with ``counts`` devices of each kind.

        Raises
        ------
        NoPlacementFound
            More than :data:`MAX_STATES` states: the DP's tables would not fit.
        """
        n_states = math.prod(int(c) + 1 for c in counts)
        if n_states > MAX_STATES:
            raise NoPlacementFound(
                f"the DP would need {n_states:,} device-count states (the product of each "
                f"of the {len(counts)} device kinds' counts plus one), more than {MAX_STATES:,}: "
                "use --solver milp, or give identical devices one group with 'count'"
            )
        strides = np.ones(len(counts), dtype=np.int64)
        for k in range(1, len(counts)):
            strides[k] = strides[k - 1] * (counts[k - 1] + 1)
        n_states = int(np.prod(counts + 1))
        digits = (np.arange(n_states)[:, None] // strides[None, :]) % (counts + 1)[None, :]
        bit = 1 << np.arange(len(counts), dtype=np.int64)
        used = ((digits > 0) * bit).sum(axis=1).astype(np.int64)
        left = ((digits < counts) * bit).sum(axis=1).astype(np.int64)
        return cls(counts, strides, used, left)


class _OrderCosts(NamedTuple):
    """What a run charges along an order (:func:`order_costs`), as
    :func:`~placer.solvers.dp._chain_kernels.reachable` reads it: ``lat[k, x]``, the
    latency of the first ``x`` positions on kind ``k``; ``cut[k, m, x]``, the transfer
    weights crossing position ``x`` per kind and mask; ``lo[k, j]``, the window starts;
    and whether the charges are ``exact``."""

    order: np.ndarray
    lat: np.ndarray
    cut: np.ndarray
    lo: np.ndarray
    exact: bool


def capacity(problem: Problem, counts: np.ndarray) -> np.ndarray:
    """Memory per device of each kind; a kind the run may not use gets no room."""
    memory = np.array([kind.memory_bytes for kind in problem.kinds], dtype=np.float64)
    return np.where(counts > 0, memory, -1.0)


def order_costs(blocks: BlockGraph, run: Costing, order, cap: np.ndarray) -> _OrderCosts:
    """What a run charges along ``order`` (a linear extension of the block DAG).

    ``exact`` is whether ``cut(i) + cut(j)`` is exactly the charge of [1]_: every
    hyperedge spans at most two consecutive positions of the order.
    """
    order = np.asarray(order, dtype=np.int64)
    m = len(order)
    position = np.empty(blocks.n_blocks + 1, dtype=np.int64)
    position[order] = np.arange(1, m + 1)
    position[blocks.n_blocks] = 0  # the covers' phantom block: before every stage
    finite = np.where(np.isfinite(blocks.latency), blocks.latency, 0.0)[:, order]
    unsupported = (~np.isfinite(blocks.latency)).astype(np.float64)[:, order]
    lat = np.zeros((finite.shape[0], m + 1))
    np.cumsum(finite, axis=1, out=lat[:, 1:])
    unsup = np.zeros_like(lat)
    np.cumsum(unsupported, axis=1, out=unsup[:, 1:])
    size = np.zeros(m + 1)
    np.cumsum(blocks.size[order], out=size[1:])

    n_kinds, n_masks, n_edges = run.weights.shape
    diff = np.zeros((n_kinds, n_masks, m + 2))
    exact = True
    if n_edges:
        first = np.array([min(position[b] for b in h) for h in run.hyperedges], np.int64)
        last = np.array([max(position[b] for b in h) for h in run.hyperedges], np.int64)
        exact = bool(np.all(last - first <= 1))
        # a hyperedge crosses position x (between prefix x and the rest) for first <= x < last
        for k in range(n_kinds):
            for mask in range(n_masks):
                np.add.at(diff[k, mask], first, run.weights[k, mask])
                np.add.at(diff[k, mask], last, -run.weights[k, mask])
    cut = np.cumsum(diff, axis=2)[:, :, : m + 1]
    np.maximum(cut, 0.0, out=cut)  # rounding in the running sum must not make it negative
    side_memory = float(run.memory.sum())
    if side_memory > 0:
        # every stage keeps room for all the side computations: safe, exact if unbound
        exact &= not np.isfinite(cap[cap >= 0]).any()
        cap = np.where(cap >= 0, np.maximum(cap - side_memory, 0.0), cap)
    with deferred_interrupt():
        lo = kernels.window_starts(size, unsup, cap)
    return _OrderCosts(order, lat, np.ascontiguousarray(cut), lo, exact)


def solve_order(
    problem: Problem, blocks: BlockGraph, run: Costing, order, bound: float = math.inf
) -> tuple[Placement | None, float, bool]:
    """The least max-load split of ``order`` into stages, under ``run``'s charges.

    Parameters
    ----------
    problem, blocks : Problem, BlockGraph
    run : Costing
        Device counts and transfer charges (:mod:`placer.solvers.dp.costing`).
    order : sequence of int
        A linear extension of the block DAG.
    bound : float
        Only splits of max-load at most ``bound`` are looked for.

    Returns
    -------
    placement : Placement or None
        None when no split within ``bound`` fits memory and support.
    value : float
        Its max-load under the charges (``inf`` without a placement).
    exact : bool
        Whether the charges are exactly [1]_'s along this order (see the module notes);
        if not, ``value`` over-estimates the placement's true max-load.

    Notes
    -----
    At most 64 sweeps of O(S · K · m) time, O(S · m) memory.
    """
    states = States.of(run.counts)
    n = len(order) + 1
    if states.n_states * n > MAX_CELLS:
        raise NoPlacementFound(
            f"the DP over a linear order would need {states.n_states * n:,} table cells "
            f"({states.n_states:,} device-count states by {n - 1:,} blocks), more than "
            f"{MAX_CELLS:,}: use --solver milp, or give identical devices one group with 'count'"
        )
    costs = order_costs(blocks, run, order, capacity(problem, run.counts))
    sweep = kernels.Sweep(
        np.zeros((states.n_states, n), dtype=np.bool_),
        np.full((states.n_states, n), -1, dtype=np.int32),
        np.full((states.n_states, n), -1, dtype=np.int8),
    )
    reach = sweep.reach

    def final_state(limit: float) -> int:
        with deferred_interrupt():
            kernels.reachable(limit, costs, states, run.at_most, sweep)
        if run.at_most:
            return states.n_states - 1 if reach[-1, -1] else -1
        complete = ((states.used_mask & run.required) == run.required) & reach[:, -1]
        return int(np.argmax(complete)) if complete.any() else -1

    high = bound if math.isfinite(bound) else _ceiling(costs)
    if final_state(high) < 0:
        return None, math.inf, costs.exact
    high = least_limit(lambda limit: final_state(limit) >= 0, high)
    final = final_state(high)
    pointers = BackPointers(sweep.back_i, sweep.back_k, states.strides)
    return _backtrack(problem, blocks, costs, states, pointers, final)


def least_limit(works, high: float, stop=None, rtol: float = 0.0) -> float | None:
    """The least non-negative float ``limit <= high`` for which ``works(limit)`` holds,
    given that it holds at ``high`` and keeps holding above any limit where it does; None
    if ``stop()`` says so first.  With ``rtol > 0``, a limit that works and is within
    ``rtol`` (relative) of one that does not: ``limit * (1 - rtol)`` then bounds the
    least from below.

    Bisects over the bit patterns of non-negative floats, which sort as the floats do:
    at most 64 calls, and the answer is exact to the last float (about 32 with
    ``rtol = 1e-6``).
    """
    # no limit below `low` works, `high` does, and they end one float apart
    low_bits, high_bits = -1, int(np.float64(high).view(np.int64))
    while high_bits - low_bits > 1:
        if low_bits >= 0 and rtol > 0:
            low = float(np.int64(low_bits).view(np.float64))
            if float(np.int64(high_bits).view(np.float64)) * (1 - rtol) <= low:
                break
        if stop is not None and stop():
            return None
        mid_bits = (low_bits + high_bits) // 2
        if works(float(np.int64(mid_bits).view(np.float64))):
            high_bits = mid_bits
        else:
            low_bits = mid_bits
    return float(np.int64(high_bits).view(np.float64))


def _ceiling(costs: _OrderCosts) -> float:
    """A max-load every split stays under: all the work plus every transfer twice."""
    work = float(costs.lat[:, -1].max(initial=0.0))
    transfers = float(costs.cut.sum(axis=2).max(initial=0.0))
    return (work + 2 * transfers) * (1 + 1e-9) + 1e-300


def _backtrack(problem, blocks, costs: _OrderCosts, states: States, pointers: BackPointers, s):
    """The placement of the split that reached ``(s, m)``, its max-load, and whether
    that is exact."""
    stages: list[tuple[int, np.ndarray]] = []
    value = 0.0
    masked = costs.cut.shape[1] > 1
    for k, i, j, prev, after in pointers.walk(s, len(costs.order)):
        u = int(states.used_mask[prev]) if masked else 0
        r = int(states.left_mask[after]) if masked else 0
        load = costs.lat[k, j] - costs.lat[k, i] + costs.cut[k, u, i] + costs.cut[k, r, j]
        value = max(value, float(load))
        stages.append((k, np.asarray(costs.order[i:j])))
    return placement_of_stages(problem, blocks, stages), value, costs.exact
