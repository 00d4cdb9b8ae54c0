"""A proven bound where the ideals are too many: the exact DP on the graph without its
widest blocks.

A few blocks can make a graph's ideals explode: T5's cross-attention projects the
encoder's output once per decoder layer, and each projection may run anywhere between
the encoder's end and its own layer, so every subset of them that has run is another
ideal at every point of the decoder.  Taken out, the graph is narrow again and the exact
DP solves it in a second.

**Dropping blocks is a relaxation.**  Let ``Q`` be ``P`` without some blocks (their ops,
their edges, their transfers and their memory; a side computation keeps the readers
that remain).  Take any contiguous placement of ``P``, a chain of ideals ``I_0 ⊆ ... ⊆
I_s``, and restrict it to ``Q``'s ops.  Each ``I_t ∩ Q`` is an ideal of ``Q`` (``Q``'s
pipeline arcs are ``P``'s between kept ops, so a kept op's kept predecessors are in
every ideal of ``P`` that holds it), so the restriction is a contiguous placement of
``Q`` on the same devices.  Every device's load in it is at most its load under ``P``:
it computes a subset of the ops, holds a subset of the bytes, recomputes side
computations for a subset of readers, and each transfer it pays (a tensor crossing its
boundary) also crosses it under ``P``.  So the optimum of ``Q`` is at most the max-load
of every contiguous placement of ``P``: a lower bound on ``P``'s optimum, proven by any
bound the DP proves on ``Q`` (its optimum where it is exact, its bracket otherwise).

The blocks dropped are those incomparable with the most others (no path joins them):
the ones whose positions multiply the ideals.  The bound lacks their work (a few percent
of it on T5); :func:`slack_bound` counts it back in, as the fractional knapsack
(Dantzig [1]_) each device can still pack into the time its stage leaves under a
candidate max-load.  The subproblem's plan, with each dropped block put back on the
least loaded device its neighbours allow, is a plan of ``P`` too.

References
----------
.. [1] Dantzig (1957). Discrete-Variable Extremum Problems. Operations Research 5(2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from placer.problem import Placement, Problem
from placer.solvers.base import SolveResult, SolverOptions
from placer.solvers.blocks import BlockGraph

#: Shares of the blocks a block must be incomparable with to be dropped.
SHARES = (0.15, 0.25, 0.35, 0.5)
#: Most of the work (each block at its cheapest kind) the dropped blocks may carry: past
#: it the bound is too weak to be worth its time.
MAX_DROPPED_WORK = 0.2


@dataclass(frozen=True)
class Relaxation:
    """What :func:`relaxation_bound` found: a ``lower`` bound on the contiguous optimum,
    the ``dropped`` blocks' count and ``share`` of the work, and the subproblem's plan
    put back together (None where it could not be); ``branches``, where the subproblem
    kept the dropped blocks' branches in a fixed order (:mod:`placer.solvers.dp.branches`),
    how many."""

    lower: float
    dropped: int
    share: float
    placement: Placement | None
    branches: int = 0


def incomparable(blocks: BlockGraph) -> np.ndarray:
    """For each block, how many other blocks no path of the block DAG joins it with.

    Bitsets of descendants and ancestors, one Python integer per block: O(m · arcs / 64)
    word operations for m blocks.
    """
    m = blocks.n_blocks
    below, above = _reach(blocks)
    return np.array([m - (below[b] | above[b]).bit_count() for b in range(m)], dtype=np.int64)


def _reach(blocks: BlockGraph) -> tuple[list[int], list[int]]:
    """``(below, above)``: each block's descendants and ancestors (itself included) as
    bitsets, one Python integer per block."""
    m = blocks.n_blocks
    succ, pred = _adjacency(blocks)
    order = _order(m, succ, pred)
    below = [0] * m
    above = [0] * m
    for u in reversed(order):
        bits = 1 << u
        for v in succ[u]:
            bits |= below[v]
        below[u] = bits
    for u in order:
        bits = 1 << u
        for v in pred[u]:
            bits |= above[v]
        above[u] = bits
    return below, above


def _adjacency(blocks: BlockGraph) -> tuple[list[list[int]], list[list[int]]]:
    """``(succ, pred)``: each block's successors and predecessors in the block DAG."""
    succ: list[list[int]] = [[] for _ in range(blocks.n_blocks)]
    pred: list[list[int]] = [[] for _ in range(blocks.n_blocks)]
    for u, v in blocks.edges.tolist():
        succ[u].append(v)
        pred[v].append(u)
    return succ, pred


def _order(m: int, succ: list[list[int]], pred: list[list[int]]) -> list[int]:
    """A topological order of the blocks (their numbering, unless an arc runs against it)."""
    if all(u < v for u in range(m) for v in succ[u]):
        return list(range(m))
    indegree = [len(p) for p in pred]
    order = [b for b in range(m) if indegree[b] == 0]
    for u in order:
        for v in succ[u]:
            indegree[v] -= 1
            if indegree[v] == 0:
                order.append(v)
    return order


def without_blocks(problem: Problem, blocks: BlockGraph, dropped) -> tuple[Problem, list[int]]:
    """``(Q, kept)``: ``problem`` without the ops of the ``dropped`` blocks, and the op
    index in ``problem`` of each op of ``Q``."""
    gone = np.zeros(len(problem.ops), dtype=bool)
    for b in dropped:
        gone[list(blocks.ops_of_block[b])] = True
    kept = [i for i in range(len(problem.ops)) if not gone[i]]
    new = {old: i for i, old in enumerate(kept)}
    edges = tuple((new[u], new[v]) for u, v in problem.edges if u in new and v in new)
    replicas = []
    for replica in problem.replicas:
        readers = tuple(new[r] for r in replica.readers if r in new)
        if readers:
            replicas.append(replace(replica, readers=readers))
    sub = replace(problem, ops=tuple(problem.ops[i] for i in kept), edges=edges,
                  replicas=tuple(replicas))  # fmt: skip
    return sub, kept


def relaxation_bound(
    problem: Problem,
    blocks: BlockGraph,
    options: SolverOptions,
    solve: Callable[[Problem, SolverOptions], SolveResult | None],
    totals: Totals | None = None,
    upper: float = math.inf,
) -> Relaxation | None:
    """The best bound ``solve`` (the DP, exact or bracketing; None where it gives up)
    proves on ``problem`` without its widest blocks, raised by :func:`slack_bound`
    (given ``totals`` and the best plan's max-load ``upper``), and the plan it puts back
    together; None where no subproblem yields one in the time (``options``' deadline).

    The shares of :data:`SHARES` are tried from the most blocks dropped to the fewest:
    the first subproblems are the narrowest and solve in a second, the later ones keep
    more of the work and prove more, for as long as the deadline allows.  A share whose
    blocks carry more than :data:`MAX_DROPPED_WORK` of the work is skipped."""
    counts = incomparable(blocks)
    m = blocks.n_blocks
    work = _cheapest(problem, blocks)
    total = float(work.sum())
    best: Relaxation | None = None
    tried: set[tuple[int, ...]] = set()
    for share in sorted(SHARES):
        if options.out_of_time():
            break
        dropped = tuple(np.flatnonzero(counts > share * m).tolist())
        if not dropped or len(dropped) == m or dropped in tried:
            continue
        tried.add(dropped)
        carried = float(work[list(dropped)].sum()) / total if total > 0 else 0.0
        if carried > MAX_DROPPED_WORK:
            continue
        sub, kept = without_blocks(problem, blocks, dropped)
        found = subproblem_bound(problem, blocks, (dropped, sub, kept), options,
                                 (solve, totals), upper)  # fmt: skip
        if found is None:
            continue
        lower, placement = found
        if best is None or lower > best.lower:
            best = Relaxation(lower, len(dropped), carried, placement)
    return best


def subproblem_bound(
    problem: Problem,
    blocks: BlockGraph,
    relaxed: tuple,
    options: SolverOptions,
    dps: tuple[Callable[[Problem, SolverOptions], SolveResult | None], Totals | None],
    upper: float,
) -> tuple[float, Placement | None] | None:
    """``(lower, placement)``: the bound ``solve`` (``dps = (solve, totals)``) proves on
    the subproblem of ``relaxed`` (``(dropped, sub, kept)``, and ``loose`` as
    :func:`slack_bound` takes it), raised by :func:`slack_bound` below the best plan's
    max-load ``upper`` (given ``totals``), and the subproblem's plan put back together
    (:func:`lift`); None where ``solve`` proves nothing."""
    solve, totals = dps
    dropped, sub, kept, *_ = relaxed
    found = solve(sub, options)
    if found is None:
        return None
    lower = found.objective if found.optimal else found.lower_bound
    if lower is None or not lower > 0:
        return None
    placement = lift(problem, blocks, dropped, list(kept), found.placement)
    if totals is not None and lower < upper:
        lower = slack_bound(problem, blocks, relaxed, (lower, upper), options, totals)
    return lower, placement


@dataclass(frozen=True)
class Knapsack:
    """The blocks left out of a subproblem, as :func:`slack_bound`'s test packs them:
    ``time[k, b]``, block ``b``'s latency on kind ``k`` (``inf`` where it cannot run
    there); ``value[b]``, its latency on its cheapest kind; ``order[k]``, the blocks by
    value per unit of time on kind ``k``, best first (those it cannot run last); and
    ``before[b]`` / ``after[b]``, the subproblem's ops among its ancestors and its
    descendants."""

    time: np.ndarray
    value: np.ndarray
    order: np.ndarray
    before: tuple[np.ndarray, ...]
    after: tuple[np.ndarray, ...]


def knapsack(problem: Problem, blocks: BlockGraph, dropped: Sequence[int],
             kept: Sequence[int], loose: Sequence[int] = ()) -> Knapsack:  # fmt: skip
    """The :class:`Knapsack` of the ``dropped`` blocks of ``problem``, for the subproblem
    of its ops ``kept``; the subproblem's ops ``loose`` (its indices) are left out of
    ``before`` and ``after`` (ops the subproblem may place elsewhere than ``problem``
    does)."""
    columns = list(dropped)
    time = np.ascontiguousarray(blocks.latency[:, columns], dtype=np.float64)
    value = np.ascontiguousarray(_cheapest(problem, blocks)[columns], dtype=np.float64)
    order = np.empty(time.shape, dtype=np.int64)
    for k in range(time.shape[0]):
        runs = np.isfinite(time[k])
        rate = np.full(len(columns), -1.0)  # the blocks the kind cannot run: last
        free = runs & (time[k] <= 0)
        rate[free] = np.inf
        timed = runs & (time[k] > 0)
        rate[timed] = value[timed] / time[k][timed]
        order[k] = np.argsort(-rate, kind="stable")
    index = np.full(len(problem.ops), -1, dtype=np.int64)
    index[np.asarray(kept, dtype=np.int64)] = np.arange(len(kept))
    index[np.asarray(kept, dtype=np.int64)[np.asarray(loose, dtype=np.int64)]] = -1
    below, above = _reach(blocks)

    def kept_ops(bitset: int) -> np.ndarray:
        members = []
        while bitset:  # the set bits, lowest first: O(members), not O(blocks)
            low = bitset & -bitset
            members.append(low.bit_length() - 1)
            bitset ^= low
        ops = np.array([op for b in members for op in blocks.ops_of_block[b]], dtype=np.int64)
        mapped = index[ops] if len(ops) else ops
        return mapped[mapped >= 0]

    before = tuple(kept_ops(above[b] & ~(1 << b)) for b in columns)
    after = tuple(kept_ops(below[b] & ~(1 << b)) for b in columns)
    return Knapsack(time, value, order, before, after)


#: A function of ``(sub, options, knapsack)`` giving, where ``sub``'s ideals fit,
#: ``(absorbed, used)``: ``used[s, k]`` the devices of kind ``k`` count state ``s`` uses,
#: and ``absorbed(bound)`` the pair ``(stages, idle)``: per state, the least
#: ``-Σ pack(stage, bound - charge)`` over the stages of the contiguous placements of
#: ``sub`` on exactly those devices whose stages are each charged at most ``bound``
#: (charges at most the evaluator's; ``inf`` where there is none), and per kind the most
#: a device holding none of ``sub``'s ops packs (None once the deadline passed).
Totals = Callable[[Problem, SolverOptions, Knapsack], tuple[Callable, np.ndarray] | None]
#: :func:`slack_bound` stops once its bound is within this share of the plan's max-load.
SLACK_PRECISION = 0.002


def slack_bound(problem: Problem, blocks: BlockGraph,
                relaxed: tuple, bracket: tuple[float, float], options: SolverOptions,
                totals: Totals) -> float:  # fmt: skip
    """A bound at least ``bracket[0]`` (proven already) on ``problem`` that also counts
    the work of the blocks ``relaxed = (dropped, sub, kept)`` leaves out of ``sub`` (the
    ops ``kept``): the largest max-load ``T`` below ``bracket[1]`` found, by bisection,
    that no placement reaches.

    A placement of ``problem`` of max-load at most ``T`` restricts to one of ``sub``
    whose device ``d`` is charged ``L_d <= T`` (0 if it holds no kept block), and ``d``
    runs the dropped blocks it holds in at most ``T - L_d`` (its load is at least ``L_d``
    plus their latency).  Those blocks are *available* to its stage ``i \\ j``: their
    kept ancestors lie in ``i`` and none of their kept descendants in ``j`` (for a
    device with no kept block, ``i = j``, some ideal between two stages).  Measure a
    dropped block's work by its latency ``w_b`` on its cheapest kind: such a device
    holds at most the fractional knapsack (Dantzig) of the available blocks, value
    ``w_b``, weight their latency on its kind, in ``T - L_d``.  So ``Σ_b w_b`` is at most
    the sum of those knapsacks: where even the most that placements of ``sub`` with
    every stage charged at most ``T`` leave room for falls short, no placement of
    max-load ``T`` exists.  The test is monotone in ``T`` (a larger ``T`` allows more
    placements and more room in each).  ``relaxed`` may hold a fourth member, ``loose``:
    ops of ``sub`` (its indices) that are not held where ``problem``'s placement has them
    (:mod:`placer.solvers.dp.branches` reorders them), which availability ignores."""
    dropped, sub, kept, *loose = relaxed
    lower, upper = bracket
    packing = knapsack(problem, blocks, dropped, kept, loose[0] if loose else ())
    found = totals(sub, options, packing)
    if found is None:
        return lower
    absorbed, used = found
    needed = float(packing.value.sum())
    counts = np.array([kind.count for kind in problem.kinds])
    while upper - lower > SLACK_PRECISION * upper and not options.out_of_time():
        middle = 0.5 * (lower + upper)
        room = absorbed(middle)
        if room is None:
            break
        stages, idle = room
        most = float(np.max(-stages + (counts[None, :] - used) @ idle))
        if most < needed * (1 - 1e-9) - 1e-15:
            lower = middle  # nothing reaches it: proven
        else:
            upper = middle
    return lower


def _cheapest(problem: Problem, blocks: BlockGraph) -> np.ndarray:
    """Each block's latency on the cheapest kind that has devices and runs it."""
    rows = [k for k, kind in enumerate(problem.kinds) if kind.count > 0]
    latency = blocks.latency[rows] if rows else np.zeros((1, blocks.n_blocks))
    cheapest = latency.min(axis=0)
    return np.where(np.isfinite(cheapest), cheapest, 0.0)


def lift(problem: Problem, blocks: BlockGraph, dropped, kept: list[int],
         sub_placement: Placement) -> Placement | None:  # fmt: skip
    """``sub_placement`` (of ``problem`` without the ``dropped`` blocks) with each of them
    put back, in a topological order, on the device that its placed neighbours allow
    (no earlier in the pipeline than its predecessors', no later than its kept
    descendants') and that has the least compute so far; None where none does (the
    subproblem, without the paths through them, may order their neighbours the other
    way).  The evaluator judges the result."""
    n_devices = len(problem.devices)
    device_of_op = np.full(len(problem.ops), -1, dtype=np.int64)
    device_of_op[kept] = sub_placement.device_of_op
    device_of_block = np.full(blocks.n_blocks, -1, dtype=np.int64)
    for b, ops in enumerate(blocks.ops_of_block):
        device_of_block[b] = device_of_op[ops[0]]
    rank = _device_ranks(blocks, device_of_block, n_devices)
    if rank is None:
        return None
    kind_of = [device.kind for device in problem.devices]
    load = np.zeros(n_devices)
    for b in range(blocks.n_blocks):
        d = device_of_block[b]
        if d >= 0:
            load[d] += blocks.latency[kind_of[d], b]
    used = [d for d in range(n_devices) if rank[d] >= 0]
    succ, pred = _adjacency(blocks)
    position = np.empty(blocks.n_blocks, dtype=np.int64)
    position[_order(blocks.n_blocks, succ, pred)] = np.arange(blocks.n_blocks)
    order = sorted(dropped, key=lambda b: position[b])
    # the latest stage each dropped block may take: its kept descendants' earliest
    high = {}
    for b in reversed(order):
        high[b] = min((rank[device_of_block[v]] if device_of_block[v] >= 0 else high[v]
                       for v in succ[b]), default=n_devices)  # fmt: skip
    for b in order:
        low = max((rank[device_of_block[u]] for u in pred[b]), default=0)
        choices = [d for d in used if low <= rank[d] <= high[b]
                   and math.isfinite(blocks.latency[kind_of[d], b])]  # fmt: skip
        if not choices:
            return None
        d = min(choices, key=lambda d: (load[d] + blocks.latency[kind_of[d], b], rank[d]))
        device_of_block[b] = d
        load[d] += blocks.latency[kind_of[d], b]
    return Placement(tuple(device_of_block[blocks.block_of_op].tolist()))


def _device_ranks(blocks: BlockGraph, device_of_block: np.ndarray,
                  n_devices: int) -> list[int] | None:  # fmt: skip
    """Each used device's place in a topological order of the stages (-1 unused), or
    None where the placed blocks' stages form a cycle."""
    arcs = set()
    for u, v in blocks.edges.tolist():
        a, b = device_of_block[u], device_of_block[v]
        if a >= 0 and b >= 0 and a != b:
            arcs.add((int(a), int(b)))
    used = sorted({int(d) for d in device_of_block if d >= 0})
    indegree = {d: 0 for d in used}
    out: dict[int, list[int]] = {d: [] for d in used}
    for a, b in arcs:
        indegree[b] += 1
        out[a].append(b)
    order = [d for d in used if indegree[d] == 0]
    for a in order:
        for b in out[a]:
            indegree[b] -= 1
            if indegree[b] == 0:
                order.append(b)
    if len(order) != len(used):
        return None
    rank = [-1] * n_devices
    for r, d in enumerate(order):
        rank[d] = r
    return rank


__all__ = ["Relaxation", "incomparable", "lift", "relaxation_bound", "subproblem_bound",
           "without_blocks"]
