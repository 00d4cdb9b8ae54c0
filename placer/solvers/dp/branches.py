"""A proven bound where side branches widen the ideals: the DP with interchangeable
branches taken in a fixed order.

An encoder-decoder's cross-attention projects the encoder's output into keys and values
once per decoder layer (T5 [1]_, BART, Whisper): each projection reads only the encoder's
last block and feeds only its own layer, so it may run in any stage between the two, and
every subset of the projections that has run is another ideal at every point of the
decoder.  :mod:`placer.solvers.dp.relax` drops such blocks and counts their work back
only as a knapsack; here they stay in the search.

A *branch* is a chain of blocks ``x_1 → ... → x_r`` whose first block's only pipeline
predecessor is a block ``S`` (the *source*), whose inner blocks have the chain's
neighbours as their only ones, and whose last block has one successor ``c`` (its
*consumer*).  A *class* is two or more branches of one source whose first blocks have
ops of the same kinds in the same order (their *units*), each reading the same ops of the
source, whose units read no side computation, whose consumers are totally ordered by
the pipeline paths (``c_1 ≼ c_2 ≼ ...``, branches numbered so), and whose source and
consumers lie on no other class's chains (they stay in place).

**The relaxation ``Q``** of ``P``: every branch keeps its unit and loses the rest of its
chain (the *tails*); each unit op costs the least latency and memory of the ops at its
place in the class's units; a unit op's transfer is kept where the blocks it feeds are
``S``'s alone (a gradient sent back to the source), else it is free; and the arcs
``x_1^m → x_1^{m+1}`` and ``x_1^m → c_m`` order the units.  ``Q``'s optimum is at most
``P``'s.  Take a contiguous placement of ``P``, list the stages of the class's units
sorted, ``s_(1) <= s_(2) <= ...``, and put unit ``m`` in stage ``s_(m)`` (every other
op stays).  It is contiguous: ``s_(m) >= stage(S)``; and the ``m`` branches of ``c_1,
..., c_m`` have their units in stages at most ``stage(c_m)``, so the ``m``-th smallest is
too.  Every stage holds as many units as before, so its compute is at most its compute in
``P`` less the tails', its memory at most, and the side computations it pays are the
same (units read none).  Its transfers are a subset: ``S``'s output reaches the same set
of stages (each holds some unit as before), a unit's kept transfer joins it to ``S`` (a
stage holding ``k`` units not with ``S`` pays ``k`` of the least such transfers, at most
what its ``k`` units paid), and every other transfer of ``Q`` is one of ``P`` between ops
that did not move.

The tails' work is counted back by :func:`placer.solvers.dp.relax.slack_bound`: a tail
lies, in ``P``'s placement, on a device whose stage holds its non-unit ancestors and none
of its descendants (ops that stay put under the reordering), and that device's load is at
least its load in the reordered placement of ``Q`` plus the tails' latency.

A plan of ``Q`` is a plan of ``P`` once the tails are put back between their units and
consumers (:func:`placer.solvers.dp.relax.lift`): ``Q``'s arcs keep each unit no later
than its consumer.

References
----------
.. [1] Raffel et al. (2020). Exploring the Limits of Transfer Learning with a Unified
   Text-to-Text Transformer. JMLR 21(140).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from placer.problem import Problem
from placer.solvers.base import SolveResult, SolverOptions
from placer.solvers.blocks import BlockGraph, contract
from placer.solvers.dp.relax import (
    SHARES,
    Relaxation,
    Totals,
    _adjacency,
    _cheapest,
    _reach,
    incomparable,
    subproblem_bound,
    without_blocks,
)

#: Units whose cheapest latencies differ by more than this factor are not one class (the
#: class costs each its least: far apart, the bound would lose the difference).
SPREAD = 1.02


@dataclass(frozen=True)
class Branch:
    """A branch: its ``source`` block, its ``chain`` of blocks (the unit first) and its
    ``consumer`` block."""

    source: int
    chain: tuple[int, ...]
    consumer: int


@dataclass(frozen=True)
class Ordered:
    """The relaxation of a problem: the problem ``sub`` (``Q``), the op index in the
    problem of each of its ops (``kept``), the tails' blocks (``tails``), the op indices in
    ``sub`` of the units (``units``) and the ``branches`` of each class."""

    sub: Problem
    kept: tuple[int, ...]
    tails: tuple[int, ...]
    units: tuple[int, ...]
    classes: tuple[tuple[Branch, ...], ...]

    @property
    def n_branches(self) -> int:
        return sum(len(c) for c in self.classes)


def branch_classes(problem: Problem, blocks: BlockGraph,
                   wide: np.ndarray | None = None) -> list[tuple[Branch, ...]]:  # fmt: skip
    """The classes of interchangeable branches of ``blocks`` (see the module's text), each
    in the order of its consumers; given ``wide`` (a flag per block), only the classes
    with a unit among them (a class that widens nothing only loses its tails' work)."""
    succ, pred = _adjacency(blocks)
    read = np.zeros(blocks.n_blocks, dtype=bool)
    for cover in blocks.covers:
        read[list(cover)] = True
    below, _ = _reach(blocks)
    cheapest = _cheapest(problem, blocks)
    feeders: list[list[int]] = [[] for _ in problem.ops]
    for u, v in problem.edges:
        feeders[v].append(u)
    by_key: dict[tuple, list[Branch]] = {}
    for source in range(blocks.n_blocks):
        if len(succ[source]) < 2:
            continue
        for first in succ[source]:
            if pred[first] != [source] or read[first]:
                continue
            branch = _follow(source, first, succ, pred)
            if branch is None:
                continue
            key = (source, _shape(problem, blocks, first, feeders))
            by_key.setdefault(key, []).append(branch)
    classes = []
    for branches in by_key.values():
        branches.sort(key=lambda b: cheapest[b.chain[0]])
        group: list[Branch] = []
        for branch in [*branches, None]:
            if branch is not None and (
                not group or cheapest[branch.chain[0]] <= SPREAD * cheapest[group[0].chain[0]]
            ):
                group.append(branch)
                continue
            ordered = _in_consumer_order(group, below)
            if ordered is not None and (wide is None or any(wide[b.chain[0]] for b in ordered)):
                classes.append(ordered)
            group = [branch] if branch is not None else []
    return _apart(classes)


def _apart(classes: list[tuple[Branch, ...]]) -> list[tuple[Branch, ...]]:
    """``classes`` without those whose source or a consumer lies on another class's
    chains: the proof moves units and drops tails, and holds the sources and consumers
    where they are."""
    while True:
        owner = {b: i for i, branches in enumerate(classes)
                 for branch in branches for b in branch.chain}  # fmt: skip
        kept = [branches for i, branches in enumerate(classes)
                if all(owner.get(b, i) == i for branch in branches
                       for b in (branch.source, branch.consumer))]  # fmt: skip
        if len(kept) == len(classes):
            return kept
        classes = kept


def _follow(source: int, first: int, succ, pred) -> Branch | None:
    """The branch that starts at block ``first``, or None where the chain from it forks
    or joins before one consumer."""
    chain = [first]
    current = first
    while True:
        nexts = succ[current]
        if len(nexts) != 1:
            return None
        (following,) = nexts
        if pred[following] == [current] and len(succ[following]) == 1:
            chain.append(following)
            current = following
            continue
        return Branch(source, tuple(chain), following)


def _shape(problem: Problem, blocks: BlockGraph, b: int, feeders) -> tuple:
    """What units of one class share: per op (in index order), whether it is a backward
    op, the kinds that run it, and the source's ops that feed it (a source of several
    ops sends each output to its own readers: reordered units must read the same ones,
    for each output to reach the same stages)."""
    ops = sorted(blocks.ops_of_block[b])
    return tuple((problem.ops[o].backward, problem.ops[o].supported,
                  tuple(sorted(u for u in feeders[o] if blocks.block_of_op[u] != b)))
                 for o in ops)  # fmt: skip


def _in_consumer_order(group: list[Branch], below: list[int]) -> tuple[Branch, ...] | None:
    """``group`` ordered by consumer, or None where two consumers are on no common path."""
    if len(group) < 2:
        return None
    ordered = sorted(group, key=lambda b: b.consumer)  # blocks are numbered topologically
    for a, b in itertools.pairwise(ordered):
        if not (below[a.consumer] >> b.consumer) & 1:
            return None
    return tuple(ordered)


def ordered_relaxation(problem: Problem, blocks: BlockGraph,
                       wide: np.ndarray | None = None) -> Ordered | None:  # fmt: skip
    """The relaxation ``Q`` of the module's text over :func:`branch_classes` (given
    ``wide``), or None where ``problem`` has no such class."""
    classes = branch_classes(problem, blocks, wide)
    if not classes:
        return None
    tails = sorted(b for branches in classes for branch in branches for b in branch.chain[1:])
    gone = np.zeros(len(problem.ops), dtype=bool)
    for b in tails:
        gone[list(blocks.ops_of_block[b])] = True
    kept = [i for i in range(len(problem.ops)) if not gone[i]]
    new = {old: i for i, old in enumerate(kept)}
    ops = [problem.ops[i] for i in kept]
    # a unit moves: only the source's transfers (and its own) may reach it in Q, since
    # the source reaches the same stages; any other (a consumer's gradient sent to a
    # unit without tail) is left out, which only lowers charges
    source_of = {branch.chain[0]: branch.source for branches in classes for branch in branches}
    block_of = blocks.block_of_op
    edges = [(new[u], new[v]) for u, v in problem.edges if u in new and v in new
             and _reaches_unit(int(block_of[u]), int(block_of[v]), source_of)]
    units: list[int] = []
    for branches in classes:
        members = [sorted(blocks.ops_of_block[b.chain[0]]) for b in branches]
        source_block = branches[0].source
        for place in range(len(members[0])):
            column = [problem.ops[m[place]] for m in members]
            latency = tuple(min(values) for values in zip(*(op.latency for op in column),
                                                          strict=True))  # fmt: skip
            size = min(op.size_bytes for op in column)
            transfer = min(op.transfer_cost for op in column)
            output = min(op.output_bytes for op in column)
            for m, op in zip(members, column, strict=True):
                feeds = {int(blocks.block_of_op[v]) for v in problem.successors[m[place]]}
                feeds.discard(int(blocks.block_of_op[m[place]]))
                # an op that sends nothing out of its block may get the ordering arcs:
                # it stays free of charge
                to_source = bool(feeds) and feeds <= {source_block}
                ops[new[m[place]]] = replace(
                    op, latency=latency, size_bytes=size,
                    transfer_cost=transfer if to_source else 0.0,
                    output_bytes=output if to_source else 0.0,
                )  # fmt: skip
        heads = [_head(problem, blocks, b.chain[0]) for b in branches]
        for m, branch in enumerate(branches):
            units.extend(new[o] for o in blocks.ops_of_block[branch.chain[0]])
            head = new[heads[m]]
            edges.append((head, new[_head(problem, blocks, branch.consumer)]))
            if m + 1 < len(branches):
                edges.append((head, new[heads[m + 1]]))
    replicas = []
    for replica in problem.replicas:
        readers = tuple(new[r] for r in replica.readers if r in new)
        if readers:
            replicas.append(replace(replica, readers=readers))
    sub = replace(problem, ops=tuple(ops), edges=tuple(sorted(set(edges))),
                  replicas=tuple(replicas))  # fmt: skip
    return Ordered(sub, tuple(kept), tuple(tails), tuple(sorted(units)), tuple(classes))


def _reaches_unit(a: int, b: int, source_of: dict[int, int]) -> bool:
    """Whether an edge from block ``a`` to block ``b`` stays in Q: ``b`` is no unit, or
    the edge lies inside it or leaves its source."""
    return b not in source_of or a in (b, source_of[b])


def _head(problem: Problem, blocks: BlockGraph, b: int) -> int:
    """A forward op of block ``b`` (where an ordering arc leaves or enters), else its
    first."""
    ops = sorted(blocks.ops_of_block[b])
    forward = [o for o in ops if not problem.ops[o].backward]
    return (forward or ops)[0]


def ordered_bound(
    problem: Problem,
    blocks: BlockGraph,
    options: SolverOptions,
    dps: tuple[Callable[[Problem, SolverOptions], SolveResult | None], Totals | None],
    upper: float = math.inf,
    every: bool = False,
) -> Relaxation | None:
    """The best bound ``solve`` (``dps = (solve, totals)``; the DP, None where it gives
    up) proves on
    :func:`ordered_relaxation`'s ``Q``, or on ``Q`` without its widest blocks where ``Q``
    is still wide (:func:`placer.solvers.dp.relax.without_blocks`: a relaxation of a
    relaxation), raised by the work left out (:func:`~placer.solvers.dp.relax.slack_bound`,
    given ``totals`` and the best plan's max-load ``upper``), with the plan it lifts;
    None where ``problem`` has no branches or nothing is proven in the time.

    As :func:`~placer.solvers.dp.relax.relaxation_bound` does, the subproblems go from
    the most blocks dropped (the narrowest, solved in a second) to none (``Q`` itself),
    for as long as the deadline allows.  Only the classes with a unit among the widest
    blocks (those :func:`~placer.solvers.dp.relax.relaxation_bound` would drop first)
    are reordered, unless ``every``: where the ideals fit but their pairs do not, every
    class makes them fewer."""
    wide = None if every else incomparable(blocks) > SHARES[0] * blocks.n_blocks
    ordered = ordered_relaxation(problem, blocks, wide)
    if ordered is None or options.out_of_time():
        return None
    work = _cheapest(problem, blocks)
    total = float(work.sum())
    best: Relaxation | None = None
    for dropped, sub, kept in _subproblems(problem, blocks, ordered):
        if options.out_of_time() or (best is not None and best.lower >= upper):
            break
        index = {op: i for i, op in enumerate(kept)}
        loose = [index[ordered.kept[u]] for u in ordered.units if ordered.kept[u] in index]
        found = subproblem_bound(problem, blocks, (dropped, sub, kept, loose), options, dps,
                                 upper)  # fmt: skip
        if found is None:
            continue
        lower, placement = found
        share = float(work[list(dropped)].sum()) / total if total > 0 else 0.0
        if best is None or lower > best.lower:
            best = Relaxation(lower, len(dropped), share, placement or (best and best.placement),
                              ordered.n_branches)  # fmt: skip
        elif placement is not None:
            best = replace(best, placement=placement)
    return best


def _subproblems(problem: Problem, blocks: BlockGraph, ordered: Ordered):
    """``(dropped, sub, kept)``: ``Q`` without the ops of its widest blocks, by the
    shares of :data:`~placer.solvers.dp.relax.SHARES` (the most dropped first), then
    ``Q`` itself; ``dropped``, the blocks of ``problem`` none of whose ops ``sub`` keeps
    (the tails among them), ``kept``, the op index in ``problem`` of each op of ``sub``.
    A block of ``problem`` that ``sub`` keeps in part is not counted back: that only
    weakens the bound."""
    q_blocks = contract(ordered.sub)
    counts = incomparable(q_blocks)
    m = q_blocks.n_blocks
    tried: set[tuple[int, ...]] = set()
    for share in [*sorted(SHARES), None]:
        q_dropped = () if share is None else tuple(np.flatnonzero(counts > share * m).tolist())
        if (share is not None and not q_dropped) or len(q_dropped) == m or q_dropped in tried:
            continue
        tried.add(q_dropped)
        sub, kept_q = without_blocks(ordered.sub, q_blocks, q_dropped)
        kept = tuple(ordered.kept[i] for i in kept_q)
        present = np.zeros(blocks.n_blocks, dtype=bool)
        present[blocks.block_of_op[list(kept)]] = True
        yield tuple(np.flatnonzero(~present).tolist()), sub, kept


__all__ = ["Branch", "Ordered", "branch_classes", "ordered_bound", "ordered_relaxation"]
