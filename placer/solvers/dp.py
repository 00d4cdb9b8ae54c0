"""Exact dynamic program over the ideals of the pipeline DAG ([1]_, Section 4).

A contiguous placement is a chain of ideals (down-sets) ``∅ = I_0 ⊆ I_1 ⊆ ... ⊆ I_s =
V``: stage ``t`` holds ``I_t \\ I_{t-1}``.  The DP tabulates, for every ideal and every
count of devices used per kind, the least max-load, so it is exact over all contiguous
placements.  Differences from the reference code of [1]_, all exactness-preserving:

* the problem is first contracted into blocks (:mod:`placer.blocks`);
* a stage's latency, memory and support come from prefix sums over ideals in O(1), and
  its communication from the hyperedges cut by the larger ideal (a handful, the width of
  the graph) instead of an O(n) rescan of the stage;
* the max-load of the best placement over a few topological orders is an upper bound,
  and stages whose latency exceeds it on every kind are never generated;
* any number of device kinds (state: how many devices of each kind are used).

When the ideals outnumber ``max_ideals`` or the visited pairs ``max_pairs``, the exact
DP gives up and the same DP runs over a linear (topological) order of the blocks, whose
ideals are its prefixes; that placement is reported with ``optimal = False``.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from placer.blocks import BlockGraph, contract, optimistic
from placer.errors import InfeasiblePlacement
from placer.evaluate import evaluate
from placer.model import Placement, Problem
from placer.solvers import _ideal_kernels as kernels
from placer.solvers.base import SolveResult, SolverOptions
from placer.solvers.feasibility import check_feasible, explain_infeasible

_CHUNK = 2048  # ideals per kernel call, so that the pair budget is checked often
#: Cap on DP table cells (ideals x device-count states): about 13 bytes each.
MAX_TABLE_CELLS = 60_000_000
_SLACK = 1e-9  # relative slack on the pruning bound, against rounding in prefix sums


@dataclass(frozen=True)
class _Lattice:
    bits: np.ndarray
    sub_start: np.ndarray
    sub_items: np.ndarray
    added: np.ndarray
    creator: np.ndarray


def solve_dp(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """Place ``problem`` optimally among contiguous placements.

    Parameters
    ----------
    problem : Problem
    options : SolverOptions, optional
        ``max_ideals`` and ``max_pairs`` bound the exact DP.

    Returns
    -------
    SolveResult
        ``optimal`` is True when the exact DP finished; otherwise the placement comes
        from the linear-order DP and ``notes`` says why.

    Raises
    ------
    InfeasiblePlacement
        No contiguous placement satisfies memory, support and device counts.

    Notes
    -----
    Time O(S · K · P + N · m · w) and memory O(S · N + N · w) words, for N ideals, P
    (ideal, sub-ideal) pairs within the bound, S device-count states, K kinds, m blocks
    and w = m / 64.
    """
    options = options or SolverOptions()
    started = time.perf_counter()
    blocks = contract(problem)
    check_feasible(problem, blocks)
    stats: dict[str, float] = {"blocks": blocks.n_blocks}
    notes: list[str] = []

    # An upper bound (and the fallback answer): the best linear order.  With binding
    # memory caps a linear order may find nothing although a placement exists.
    upper, linear_placement = math.inf, None
    for order in _topological_orders(blocks):
        lattice = _chain_lattice(order, blocks.n_blocks)
        placement, value, _ = _run(problem, blocks, lattice, math.inf, math.inf)
        if placement is not None and value < upper:
            upper, linear_placement = value, placement

    states = math.prod(kind.count + 1 for kind in problem.kinds)
    max_ideals = min(options.max_ideals, max(1, MAX_TABLE_CELLS // states))
    lattice = _ideal_lattice(blocks, max_ideals)
    if lattice is None:
        stats["ideals"] = float("nan")
        hint = (
            "raise --max-ideals to try the exact DP"
            if max_ideals == options.max_ideals
            else f"with {states:,} device-count states the table is capped at "
            f"{MAX_TABLE_CELLS:,} cells"
        )
        return _fallback(
            problem, linear_placement, started, stats, notes,
            f"more than {max_ideals:,} ideals", hint,
        )  # fmt: skip
    stats["ideals"] = lattice.bits.shape[0]
    bound = upper * (1 + _SLACK) + _SLACK
    placement, value, pairs = _run(problem, blocks, lattice, bound, options.max_pairs)
    stats["pairs"] = pairs
    if pairs > options.max_pairs:
        return _fallback(
            problem, linear_placement, started, stats, notes,
            f"more than {options.max_pairs:,} ideal pairs", "the instance is too wide",
        )  # fmt: skip
    if placement is None:
        raise explain_infeasible(problem, blocks)
    if blocks.exact_communication:
        return _result(problem, placement, True, started, stats, notes)
    return _bracket_links(problem, blocks, lattice, placement, value, started, stats, notes)


def _bracket_links(problem, blocks, lattice, placement, value, started, stats, notes):
    """Links of different speeds: bracket the contiguous optimum between two DPs.

    The DP above charged every device its slowest link, so its plan's true max-load
    (over the links actually crossed) is at most ``value``.  A second DP charging the
    fastest link is a lower bound on the contiguous optimum; the better of the two
    plans is proven optimal when it meets that bound.
    """
    low_blocks = optimistic(problem, blocks)
    low_placement, low_value, pairs = _run(
        problem, low_blocks, lattice, value * (1 + _SLACK) + _SLACK, math.inf
    )
    stats["pairs"] = stats.get("pairs", 0) + pairs
    best = placement
    if (
        low_placement is not None
        and evaluate(problem, low_placement).max_load < evaluate(problem, placement).max_load
    ):
        best = low_placement
    true_value = evaluate(problem, best).max_load
    stats["contiguous_lower_bound"] = low_value
    if true_value <= low_value * (1 + 1e-9) + 1e-15:
        return _result(problem, best, True, started, stats, notes)
    scale, unit = (1e3, " ms") if problem.time_unit == "s" else (1.0, "")
    notes.append(
        "links differ in speed: the best contiguous placement has a max-load between "
        f"{low_value * scale:.6g}{unit} (every transfer over its fastest link) and this "
        f"plan's {true_value * scale:.6g}{unit}"
    )
    return _result(problem, best, False, started, stats, notes)


def _fallback(problem, placement, started, stats, notes, why: str, hint: str) -> SolveResult:
    """The linear-order answer when the exact DP gave up (or no placement if none)."""
    if placement is None:
        raise InfeasiblePlacement(
            f"no placement found: {why} for the exact DP ({hint}), and no linear order of "
            "the graph fits the devices' memory"
        )
    notes.append(f"{why}: fell back to the DP over a linear order (not proven optimal; {hint})")
    return _result(problem, placement, False, started, stats, notes)


def _result(problem, placement, optimal, started, stats, notes) -> SolveResult:
    evaluation = evaluate(problem, placement)
    return SolveResult(
        solver="dp",
        placement=placement,
        objective=evaluation.max_load,
        optimal=optimal,
        seconds=time.perf_counter() - started,
        stats=stats,
        notes=tuple(notes),
    )


def _ideal_lattice(blocks: BlockGraph, max_ideals: int) -> _Lattice | None:
    m = blocks.n_blocks
    words = max(1, (m + 63) // 64)
    pred = np.zeros((m, words), np.uint64)
    for u, v in blocks.edges:
        pred[v, u >> 6] |= np.uint64(1) << np.uint64(u & 63)
    zobrist = np.random.default_rng(20201206).integers(
        0, np.iinfo(np.uint64).max, size=m, dtype=np.uint64, endpoint=True
    )
    bits, child, parent, added, creator, complete = kernels.generate_ideals(
        pred, zobrist, max_ideals
    )
    if not complete:
        return None
    return _make_lattice(bits, child, parent, added, creator)


def _chain_lattice(order: list[int], m: int) -> _Lattice:
    """The lattice of prefixes of ``order`` (the ideals of the chain it forms)."""
    words = max(1, (m + 63) // 64)
    bits = np.zeros((m + 1, words), np.uint64)
    for t, b in enumerate(order, start=1):
        bits[t] = bits[t - 1]
        bits[t, b >> 6] |= np.uint64(1) << np.uint64(b & 63)
    child = np.arange(1, m + 1, dtype=np.int64)
    parent = np.arange(0, m, dtype=np.int64)
    added = np.array([-1, *order], dtype=np.int64)
    creator = np.arange(-1, m, dtype=np.int64)
    return _make_lattice(bits, child, parent, added, creator)


def solve_chain(problem: Problem, blocks: BlockGraph, order: list[int]) -> Placement | None:
    """The least max-load placement whose stages are consecutive runs of ``order``.

    ``order`` is a linear extension of the block DAG; its prefixes are the only ideals
    the DP sees (the partitioner of PipeDream, generalised to device kinds).  Returns
    None when no split of the order fits the devices' memory and support.
    """
    lattice = _chain_lattice(order, blocks.n_blocks)
    placement, _, _ = _run(problem, blocks, lattice, math.inf, math.inf)
    return placement


def _make_lattice(bits, child, parent, added, creator) -> _Lattice:
    n = bits.shape[0]
    order = np.argsort(child, kind="stable")
    sub_items = parent[order]
    sub_start = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(child, minlength=n), out=sub_start[1:])
    return _Lattice(bits, sub_start, sub_items, added, creator)


def _run(problem: Problem, blocks: BlockGraph, lattice: _Lattice, bound: float, max_pairs: float):
    """Run the DP on a lattice; returns (placement or None, max-load, pairs)."""
    kinds = problem.kinds
    n = lattice.bits.shape[0]
    finite_lat = np.where(np.isfinite(blocks.latency), blocks.latency, 0.0)
    unsupported = (~np.isfinite(blocks.latency)).astype(np.float64)
    lat = kernels.prefix_sums(lattice.added, lattice.creator, finite_lat)
    unsup = kernels.prefix_sums(lattice.added, lattice.creator, unsupported)
    size = kernels.prefix_sums(lattice.added, lattice.creator, blocks.size[None, :])[0]
    h_start = np.zeros(len(blocks.hyperedges) + 1, np.int64)
    np.cumsum([len(h) for h in blocks.hyperedges], out=h_start[1:])
    h_members = np.array([b for h in blocks.hyperedges for b in h], dtype=np.int64)
    cut_start, cut_items, cut_total = kernels.cut_lists(
        lattice.bits, h_start, h_members, blocks.weights
    )
    counts = np.array([k.count for k in kinds], dtype=np.int64)
    strides = np.ones(len(kinds), dtype=np.int64)
    for k in range(1, len(kinds)):
        strides[k] = strides[k - 1] * (counts[k - 1] + 1)
    n_states = int(np.prod(counts + 1))
    cap = np.array([k.memory_bytes for k in kinds], dtype=np.float64)
    pays = blocks.weights.any(axis=1) if blocks.weights.size else np.zeros(len(kinds), np.bool_)
    dp = np.full((n_states, n), np.inf)
    back_ideal = np.full((n_states, n), -1, dtype=np.int32)
    back_kind = np.full((n_states, n), -1, dtype=np.int8)
    stamp = np.full(n, -1, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    pairs = 0
    for lo in range(0, n, _CHUNK):
        pairs += kernels.dp_range(
            lo, min(n, lo + _CHUNK), lattice.bits, lattice.sub_start, lattice.sub_items,
            lat, unsup, size, cap, pays, strides, counts, h_start, h_members,
            blocks.weights, cut_start, cut_items, cut_total, bound,
            dp, back_ideal, back_kind, stamp, stack,
        )  # fmt: skip
        if pairs > max_pairs:
            return None, math.inf, pairs
    full = n - 1  # the whole set is the last ideal generated
    value = dp[n_states - 1, full]
    if not math.isfinite(value):
        return None, math.inf, pairs
    return _backtrack(problem, blocks, lattice, back_ideal, back_kind, strides), value, pairs


def _backtrack(problem, blocks, lattice, back_ideal, back_kind, strides) -> Placement:
    n_states, n = back_ideal.shape
    s, i = n_states - 1, n - 1
    stages: list[tuple[int, np.ndarray]] = []
    while i != 0:
        j, k = int(back_ideal[s, i]), int(back_kind[s, i])
        if j != i:
            diff = lattice.bits[i] & ~lattice.bits[j]
            members = np.flatnonzero(
                np.unpackbits(diff.view(np.uint8), bitorder="little")[: blocks.n_blocks]
            )
            stages.append((k, members))
        s -= int(strides[k])
        i = j
    stages.reverse()  # pipeline order
    first_device = np.cumsum([0] + [kind.count for kind in problem.kinds])
    used = [0] * len(problem.kinds)
    device_of_block = np.empty(blocks.n_blocks, dtype=np.int64)
    for k, members in stages:
        device_of_block[members] = first_device[k] + used[k]
        used[k] += 1
    return Placement(tuple(int(device_of_block[b]) for b in blocks.block_of_op))


def _topological_orders(blocks: BlockGraph) -> list[list[int]]:
    """Two linear extensions of the block DAG: by block index, and depth first."""
    m = blocks.n_blocks
    out: list[list[int]] = [[] for _ in range(m)]
    indegree = [0] * m
    for u, v in blocks.edges:
        out[u].append(int(v))
        indegree[v] += 1
    by_index = list(range(m))  # blocks are numbered topologically already
    depth_first: list[int] = []
    left = indegree[:]
    ready = [b for b in range(m) if left[b] == 0][::-1]
    while ready:
        b = ready.pop()
        depth_first.append(b)
        for c in sorted(out[b], reverse=True):
            left[c] -= 1
            if left[c] == 0:
                ready.append(c)
    return [by_index, depth_first] if depth_first != by_index else [by_index]
