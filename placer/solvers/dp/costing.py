"""How the ideal DP charges transfers, exactly or, when links differ, between two bounds.

Without per-link costs, or when every link a plan could use is the same, a device of
kind ``k`` pays a fixed weight for each transfer crossing its boundary, and one DP over
all kinds is exact (:func:`costings` returns a single :class:`Costing`).

With links of different speeds, what a stage pays for a transfer depends on the kinds
of the devices at its other end, which a DP over ideals does not know in general.  It
knows some of it: when device counts are exact (no empty stages), the kinds of the
stages *before* a stage are those its state has used, and the kinds *after* it are
among those with devices left.  So the placements are split by the set ``F`` of kinds
they use (each kind of ``F`` at least once):

* if every link between devices of ``F`` is the same, one DP over ``F``'s kinds is
  exact for all placements within ``F`` (and its subsets);
* otherwise two DPs over ``F`` charge each transfer the slowest (``upper``) and the
  fastest (``lower``) link to the kinds its other end may be on: those used before the
  stage if it meets the earlier stages, those of ``F`` with devices left if it leaves
  the stage's ideal.  The ``lower`` optimum bounds every placement that uses exactly
  ``F``; both plans are real placements, scored by the evaluator.

The least lower bound over all ``F`` bounds the contiguous optimum; the best plan is
proven optimal when it meets it.  Subsets are enumerated for up to
:data:`MAX_SUBSET_KINDS` kinds; beyond, one bracket over all kinds is used, every kind
charged its slowest or fastest link.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from placer.problem import Problem
from placer.solvers.blocks import BlockGraph, aggregate_transfers

#: Up to this many kinds with devices, placements are split by the kinds they use.
MAX_SUBSET_KINDS = 4


class Role(str, Enum):
    """What a DP run's optimum means."""

    EXACT = "exact"  # the optimum over the placements it covers
    UPPER = "upper"  # an over-estimate: its plan is scored by the evaluator
    LOWER = "lower"  # an under-estimate: a lower bound on the placements it covers


@dataclass(frozen=True)
class Costing:
    """One DP run's charges.

    Attributes
    ----------
    role : Role
    counts : numpy.ndarray
        Devices of each kind the run may use (0 for kinds outside its set).
    at_most : bool
        Whether the table counts devices "at most" (unused devices allowed anywhere)
        or exactly (every counted device holds a stage).
    required : int
        Bitmask of the kinds a placement must use (exact counts only).
    hyperedges : tuple of tuple of int
        Block sets of the transfers.
    weights : numpy.ndarray
        ``(kinds, masks, hyperedges)``: what a device of kind ``k`` pays for hyperedge
        ``h`` when the other end may be on the kinds of bitmask ``m``; a single mask
        when the charge does not depend on it.
    sizes : numpy.ndarray or None
        Memory per hyperedge (:attr:`memory`).

    Notes
    -----
    The side computations' covers (:attr:`placer.solvers.blocks.BlockGraph.covers`) come last
    among the hyperedges, each with the phantom block ``n_blocks`` added: no ideal holds
    it, so a cover is never inside a stage and is paid, on every mask, by each stage it
    meets: exactly the replica's charge.
    """

    role: Role
    counts: np.ndarray
    at_most: bool
    required: int
    hyperedges: tuple[tuple[int, ...], ...]
    weights: np.ndarray
    sizes: np.ndarray | None = None

    @property
    def memory(self) -> np.ndarray:
        """Bytes a device holds for each hyperedge it meets: a side computation's
        memory for a cover, 0 for a transfer."""
        if self.sizes is None:
            return np.zeros(len(self.hyperedges))
        return self.sizes


def costings(problem: Problem, blocks: BlockGraph) -> list[Costing]:
    """The DP runs that together solve (or bracket) ``problem``.

    Exact runs come first: their optima are the best upper bounds to prune the others.
    """
    return [_with_covers(run, blocks) for run in _transfer_costings(problem, blocks)]


def lowest(problem: Problem, blocks: BlockGraph) -> Costing:
    """One run, counts "at most" and one mask, that charges every stage of every
    placement at most what the evaluator charges it: the exact charges where the links
    are alike, else each kind's fastest link."""
    counts = np.array([kind.count for kind in problem.kinds], dtype=np.int64)
    if blocks.exact_communication:
        run = Costing(Role.EXACT, counts, True, 0, blocks.hyperedges, blocks.weights[:, None, :])
    else:
        run = _one_bracket(problem, blocks, counts)[1]
    return _with_covers(run, blocks)


def _with_covers(run: Costing, blocks: BlockGraph) -> Costing:
    """``run`` with the side computations' covers appended as phantom hyperedges."""
    if not blocks.covers:
        return run
    phantom = blocks.n_blocks
    hyperedges = run.hyperedges + tuple((*cover, phantom) for cover in blocks.covers)
    n_kinds, n_masks, _ = run.weights.shape
    charge = np.broadcast_to(
        blocks.cover_latency[:, None, :], (n_kinds, n_masks, len(blocks.covers))
    )
    weights = np.ascontiguousarray(np.concatenate([run.weights, charge], axis=2))
    sizes = np.concatenate([run.memory, blocks.cover_size])
    return replace(run, hyperedges=hyperedges, weights=weights, sizes=sizes)


def _transfer_costings(problem: Problem, blocks: BlockGraph) -> list[Costing]:
    counts = np.array([kind.count for kind in problem.kinds], dtype=np.int64)
    if blocks.exact_communication:
        return [
            Costing(Role.EXACT, counts, True, 0, blocks.hyperedges, blocks.weights[:, None, :])
        ]
    available = [k for k, c in enumerate(counts) if c > 0]
    if len(available) > MAX_SUBSET_KINDS:
        return _one_bracket(problem, blocks, counts)
    links = _link_times(problem)
    exact: list[Costing] = []
    brackets: list[Costing] = []
    covered: list[set[int]] = []
    subsets = [
        set(f)
        for size in range(len(available), 0, -1)
        for f in itertools.combinations(available, size)
    ]
    for f in subsets:
        if any(f <= g for g in covered):
            continue
        sub_counts = np.where(np.isin(np.arange(len(counts)), list(f)), counts, 0)
        peers = _pairs(f, counts)
        if len({problem.links[a][b] for a, b in peers}) <= 1:
            covered.append(f)
            weights = np.zeros((len(counts), 1, links.shape[-1]))
            for a, b in peers:  # all the same link: any pair gives each kind its charge
                weights[a, 0], weights[b, 0] = links[a, b], links[b, a]
            hyperedges, charges = aggregate_transfers(problem, blocks.block_of_op, weights)
            exact.append(Costing(Role.EXACT, sub_counts, True, 0, hyperedges, charges))
            continue
        required = sum(1 << k for k in f)
        for role in (Role.UPPER, Role.LOWER):
            weights = _mask_weights(links, f, role)
            hyperedges, charges = aggregate_transfers(problem, blocks.block_of_op, weights)
            brackets.append(Costing(role, sub_counts, False, required, hyperedges, charges))
    return exact + brackets


def _one_bracket(problem: Problem, blocks: BlockGraph, counts: np.ndarray) -> list[Costing]:
    """Every kind charged its slowest link, then its fastest: many kinds, one bracket."""
    from placer.solvers.blocks import optimistic

    low = optimistic(problem, blocks)
    return [
        Costing(Role.UPPER, counts, True, 0, blocks.hyperedges, blocks.weights[:, None, :]),
        Costing(Role.LOWER, counts, True, 0, low.hyperedges, low.weights[:, None, :]),
    ]


def _pairs(kinds: set[int], counts: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of kinds of ``kinds`` whose devices can exchange data (a kind with itself
    only if it has two devices)."""
    return [
        (a, b)
        for a in sorted(kinds)
        for b in sorted(kinds)
        if a <= b and (a != b or counts[a] > 1)
    ]


def _link_times(problem: Problem) -> np.ndarray:
    """``t[k, j, u]``: what a device of kind ``k`` pays to move op ``u``'s output to or
    from one of kind ``j`` (0 if kind ``k`` does not pay for communication)."""
    kinds, ops = problem.kinds, problem.ops
    out_bytes = np.array([op.output_bytes for op in ops], dtype=np.float64)
    times = np.zeros((len(kinds), len(kinds), len(ops)))
    for k, kind in enumerate(kinds):
        if not kind.pays_communication:
            continue
        for j in range(len(kinds)):
            times[k, j] = problem.links[k][j].times(out_bytes)
    return times


def _mask_weights(links: np.ndarray, kinds: set[int], role: Role) -> np.ndarray:
    """``w[k, m, u]``: the slowest (``UPPER``) or fastest (``LOWER``) of op ``u``'s
    links from kind ``k`` to a kind of bitmask ``m`` (0 for the empty mask)."""
    n_kinds, _, n_ops = links.shape
    pick = np.max if role is Role.UPPER else np.min
    weights = np.zeros((n_kinds, 1 << n_kinds, n_ops))
    for m in range(1, 1 << n_kinds):
        members = [j for j in range(n_kinds) if m >> j & 1]
        if not set(members) <= kinds:
            continue  # the other end is always within the run's kinds
        for k in kinds:
            weights[k, m] = pick(links[k, members], axis=0)
    return weights


def lower_bound_of(role: Role, value: float, bound: float) -> float | None:
    """What a run's optimum ``value`` proves when stages over ``bound`` were pruned.

    Every placement the run covers costs at least ``min(value, bound)`` under its
    charges; for exact and lower runs that is a lower bound on their true max-load.
    """
    if role is Role.UPPER:
        return None
    return min(value, bound) if math.isfinite(bound) else value
