"""Contraction of a problem into blocks: the units every contiguous placement keeps whole.

A block is a set of ops that any valid contiguous placement puts on one device:

1. a colour class (its forward and backward ops) is one block; a class with backward ops
   but no forward op is ordered by the mirror image of its backward edges
   (:attr:`placer.problem.Problem.pipeline_edges`), as [1]_'s code does;
2. blocks on a cycle of the contracted pipeline graph are fused (a contiguous placement
   cannot split a strongly connected component);
3. optionally, a *free leaf* -- a block with no latency on any kind, supported
   everywhere, whose only pipeline neighbour is one other block that also takes part in
   every transfer the leaf takes part in and needs every side computation the leaf
   needs, and which needs no memory or lives in a
   problem whose ops all fit on any one device -- is absorbed into that neighbour.
   Moving such a leaf onto its neighbour's device never raises a load, never breaks a
   memory cap and keeps the stage graph acyclic, so the optimum is unchanged; it only
   shrinks the DP's state space (each independent leaf doubles the number of ideals).

Communication is kept exact as a weighted hypergraph on blocks: op ``u`` with transfer
cost ``c`` yields the hyperedge ``{block(u)} ∪ {block(v) : (u, v) edge}`` of weight ``c``,
and a device pays ``c`` exactly when the hyperedge meets its block set without lying
inside it.  A side computation recomputed by every device that needs it
(:class:`~placer.problem.Replica`) is a *cover*: the set of blocks reading it, paid by a
device whenever its block set meets it.

References
----------
.. [1] Tarnawski et al. (2020). Efficient Algorithms for Device Placement of DNN Graph
   Operators. NeurIPS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from placer.graphs import UnionFind, strongly_connected_components, topological_order
from placer.problem import Problem

__all__ = ["BlockGraph", "aggregate_transfers", "colour_blocks", "contract",
           "memory_never_binds", "optimistic", "side_covers"]  # fmt: skip


@dataclass(frozen=True)
class BlockGraph:
    """A problem contracted into blocks, in a topological order of the pipeline graph.

    Attributes
    ----------
    block_of_op : numpy.ndarray
        Block index of every op.
    ops_of_block : tuple of tuple of int
    edges : numpy.ndarray
        ``(m, 2)`` distinct pipeline arcs between blocks; ``u < v`` for each arc.
    latency : numpy.ndarray
        ``(kinds, blocks)`` summed op latency of each block on each kind (``inf`` where
        the kind does not support some op of the block).
    size : numpy.ndarray
        Summed memory of each block.
    hyperedges : tuple of tuple of int
        Block sets of the transfers, aggregated; ``weights[k, h]`` is what a device of
        kind ``k`` pays when hyperedge ``h`` crosses its boundary (0 for kinds that do not
        pay for communication).
    weights : numpy.ndarray
    exact_communication : bool
        Whether ``weights`` charge exactly what the evaluator charges.  With per-link
        costs that differ between links, a kind is charged its slowest link (an upper
        bound), so a plan's true max-load can only be lower than the DP's figure.
    covers : tuple of tuple of int
        Block sets of the side computations (:class:`~placer.problem.Replica`), aggregated:
        a device pays ``cover_latency[k, c]`` and ``cover_size[c]`` when its block set
        meets ``covers[c]``.
    cover_latency : numpy.ndarray
    cover_size : numpy.ndarray
    """

    block_of_op: np.ndarray
    ops_of_block: tuple[tuple[int, ...], ...]
    edges: np.ndarray
    latency: np.ndarray
    size: np.ndarray
    hyperedges: tuple[tuple[int, ...], ...]
    weights: np.ndarray
    exact_communication: bool = True
    covers: tuple[tuple[int, ...], ...] = ()
    cover_latency: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    cover_size: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_blocks(self) -> int:
        return len(self.ops_of_block)

    @cached_property
    def unit_size(self) -> np.ndarray:
        """Each block's size with the covers it meets (a weight it shares with other
        blocks, the side computations it reads): what a device holding it holds at
        least."""
        size = np.array(self.size, dtype=np.float64)
        for c, members in enumerate(self.covers):
            size[list(members)] += self.cover_size[c]
        return size

    def fits(self, problem: Problem, b: int, k: int, beside: float = 0.0) -> bool:
        """Whether a device of kind ``k`` can hold block ``b`` (every op supported, its
        size with its covers within the kind's memory) besides ``beside`` bytes already
        there."""
        memory = problem.kinds[k].memory_bytes
        return bool(math.isfinite(self.latency[k, b]) and beside + self.unit_size[b] <= memory)

    def fit_latency(self, problem: Problem, kinds: list[int]) -> np.ndarray:
        """``(len(kinds), blocks)``: each block's latency on each of ``kinds``, ``inf``
        where it does not fit (:meth:`fits`)."""
        rows = [
            np.where(self.unit_size <= problem.kinds[k].memory_bytes, self.latency[k], np.inf)
            for k in kinds
        ]
        return np.array(rows).reshape(len(kinds), self.n_blocks)


def memory_never_binds(problem: Problem) -> bool:
    """Whether one device of every kind could hold every op and every replica: then no
    stage of any placement fills a device's memory."""
    total_size = sum(op.size_bytes for op in problem.ops)
    total_size += sum(replica.size_bytes for replica in problem.replicas)
    return all(total_size <= kind.memory_bytes for kind in problem.kinds)


def side_covers(
    problem: Problem, block_of_op: np.ndarray
) -> tuple[tuple[tuple[int, ...], ...], np.ndarray, np.ndarray]:
    """``(covers, latency, size)``: the problem's replicas by the block set they serve.

    Replicas read by the same blocks are summed into one cover; ``latency`` is
    ``(kinds, covers)``.  A replica that takes no time (a weight several ops share)
    only fills memory: where memory never binds (:func:`memory_never_binds`) it
    changes no charge and no cap, and is left out, so that the solvers' cut lists do
    not carry it (Llama's rotary tables, read by every layer, took its exact DP from
    17.9 to 21.3 s).
    """
    summed: dict[tuple[int, ...], tuple[np.ndarray, float]] = {}
    slack = memory_never_binds(problem)
    for replica in problem.replicas:
        if slack and not any(replica.latency):
            continue
        key = tuple(sorted({int(block_of_op[r]) for r in replica.readers}))
        latency, size = summed.get(key, (np.zeros(len(problem.kinds)), 0.0))
        summed[key] = (latency + np.array(replica.latency, dtype=np.float64),
                       size + replica.size_bytes)
    covers = tuple(summed)
    latency = np.array([summed[c][0] for c in covers], dtype=np.float64)
    latency = np.ascontiguousarray(latency.reshape(len(covers), len(problem.kinds)).T)
    size = np.array([summed[c][1] for c in covers], dtype=np.float64)
    return covers, latency, size


def contract(problem: Problem, *, absorb_free_leaves: bool = True) -> BlockGraph:
    """Contract ``problem`` into its :class:`BlockGraph`.

    The contraction is computed once per problem and kept with it: the feasibility
    check, the solvers and the bounds all ask for it (seconds on 100,000 ops).  Its
    arrays are shared; no caller may write to them.

    Runs in O((ops + edges) · α) for the union-find plus O(blocks + arcs) per round of
    leaf absorption.
    """
    # a frozen dataclass still has a __dict__, which its __setattr__ does not guard
    cache = problem.__dict__.setdefault("_contractions", {})
    if absorb_free_leaves not in cache:
        cache[absorb_free_leaves] = _contract(problem, absorb_free_leaves)
    return cache[absorb_free_leaves]


def _contract(problem: Problem, absorb_free_leaves: bool) -> BlockGraph:
    n = len(problem.ops)
    sets = UnionFind()
    find, union = sets.find, sets.union

    first_of_color: dict[int, int] = {}
    merged = False
    for i, op in enumerate(problem.ops):
        merged |= union(i, first_of_color.setdefault(op.color, i))

    pipeline = problem.pipeline_edges
    if merged or any(op.backward for op in problem.ops):
        # cycles can only come from merged colour classes or mirrored backward edges:
        # the op graph itself is acyclic (checked when it is read)
        _fuse_cycles(n, pipeline, find, union)
    if absorb_free_leaves:
        while _absorb_one_round(problem, pipeline, find, union):
            pass

    roots = sorted({find(i) for i in range(n)})
    arcs = {(find(u), find(v)) for u, v in pipeline if find(u) != find(v)}
    order = topological_order(roots, arcs)
    if order is None:  # an internal invariant, not a user error
        raise RuntimeError("block graph still has a cycle after fusing components")
    index = {r: b for b, r in enumerate(order)}
    block_of_op = np.array([index[find(i)] for i in range(n)], dtype=np.int64)
    members: list[list[int]] = [[] for _ in order]
    for i in range(n):
        members[block_of_op[i]].append(i)

    edges = np.array(
        sorted({(index[a], index[b]) for a, b in arcs}), dtype=np.int64
    ).reshape(-1, 2)
    return _assemble(problem, block_of_op, members, edges)


def colour_blocks(problem: Problem) -> BlockGraph:
    """Blocks for non-contiguous placements: one per colour class, nothing fused.

    ``edges`` is empty (no order is imposed); hyperedges and weights are as in
    :func:`contract`.
    """
    colours = sorted({op.color for op in problem.ops})
    index = {c: b for b, c in enumerate(colours)}
    block_of_op = np.array([index[op.color] for op in problem.ops], dtype=np.int64)
    members: list[list[int]] = [[] for _ in colours]
    for i, b in enumerate(block_of_op):
        members[b].append(i)
    return _assemble(problem, block_of_op, members, np.zeros((0, 2), dtype=np.int64))


def _assemble(problem: Problem, block_of_op: np.ndarray, members, edges) -> BlockGraph:
    """The :class:`BlockGraph` of ``problem``'s ops grouped by ``block_of_op``: each
    block's summed latency (infinite on a kind that cannot run one of its ops) and
    size, its hyperedges and its side computations' covers."""
    n_kinds = len(problem.kinds)
    latency = np.zeros((n_kinds, len(members)))
    size = np.zeros(len(members))
    for i, op in enumerate(problem.ops):
        b = block_of_op[i]
        size[b] += op.size_bytes
        for k in range(n_kinds):
            latency[k, b] += op.latency[k] if op.supported[k] else math.inf
    hyperedges, weights, exact = _hyperedges(problem, block_of_op, optimistic=False)
    covers, cover_latency, cover_size = side_covers(problem, block_of_op)
    return BlockGraph(
        block_of_op=block_of_op,
        ops_of_block=tuple(tuple(m) for m in members),
        edges=edges,
        latency=latency,
        size=size,
        hyperedges=hyperedges,
        weights=weights,
        exact_communication=exact,
        covers=covers,
        cover_latency=cover_latency,
        cover_size=cover_size,
    )


def optimistic(problem: Problem, blocks: BlockGraph) -> BlockGraph:
    """``blocks`` with every kind charged its *fastest* link instead of its slowest.

    Every placement costs at least this much, so the DP's optimum on it is a lower
    bound on the contiguous optimum over the links actually crossed.
    """
    hyperedges, weights, _ = _hyperedges(problem, blocks.block_of_op, optimistic=True)
    return replace(blocks, hyperedges=hyperedges, weights=weights)


def _hyperedges(problem: Problem, block_of_op: np.ndarray, *, optimistic: bool):
    """Aggregate each op's transfer into a hyperedge on blocks, with per-kind weights."""
    per_kind, exact = _transfer_weights(problem, optimistic)
    hyperedges, weights = aggregate_transfers(problem, block_of_op, per_kind)
    return hyperedges, weights, exact


def aggregate_transfers(
    problem: Problem, block_of_op: np.ndarray, per_op: np.ndarray
) -> tuple[tuple[tuple[int, ...], ...], np.ndarray]:
    """Sum per-op transfer figures into hyperedges on blocks.

    Op ``u`` whose out-edges leave its block yields the hyperedge ``{block(u)} ∪
    {block(v)}``; ops with the same block set share one.  ``per_op`` has the op axis
    last (``(..., ops)``); the result has the hyperedge axis last, and hyperedges whose
    figures are all zero are left out.
    """
    lead = per_op.shape[:-1]
    flat = per_op.reshape(-1, per_op.shape[-1])
    hyper: dict[tuple[int, ...], np.ndarray] = {}
    for u, succ in enumerate(problem.successors):
        blocks = {int(block_of_op[u])} | {int(block_of_op[v]) for v in succ}
        if len(blocks) > 1 and flat[:, u].any():
            key = tuple(sorted(blocks))
            hyper[key] = hyper.get(key, 0.0) + flat[:, u]
    hyperedges = tuple(hyper)
    weights = np.array([hyper[h] for h in hyperedges], dtype=np.float64).reshape(-1, len(flat))
    return hyperedges, np.ascontiguousarray(weights.T.reshape(*lead, len(hyperedges)))


def _transfer_weights(problem: Problem, optimistic: bool) -> tuple[np.ndarray, bool]:
    """``w[k, u]``: what a device of kind ``k`` pays when op ``u``'s transfer crosses it.

    Without per-link costs this is ``transfer_cost(u)`` for kinds that pay.  With them,
    the slowest link from kind ``k`` to any kind it could exchange data with (the
    fastest if ``optimistic``); that is exact when those links are all alike, else an
    upper (lower) bound.
    """
    kinds = problem.kinds
    n_kinds, n_ops = len(kinds), len(problem.ops)
    w = np.zeros((n_kinds, n_ops))
    exact = True
    pick = min if optimistic else max
    for k, kind in enumerate(kinds):
        if not kind.pays_communication:
            continue
        if problem.links is None:
            w[k] = [op.transfer_cost for op in problem.ops]
            continue
        peers = [
            j for j, other in enumerate(kinds) if other.count > (1 if j == k else 0)
        ]
        if not peers:
            continue
        links = {problem.links[k][j] for j in peers}
        exact &= len(links) == 1
        for u in range(n_ops):
            w[k, u] = pick(problem.transfer(u, k, j) for j in peers)
    if problem.links is not None:
        # receivers pay their own link, senders the slowest: alike only if all links are
        used = [k for k, kind in enumerate(kinds) if kind.count > 0]
        exact &= len({problem.links[a][b] for a in used for b in used}) <= 1
    return w, exact


def _fuse_cycles(n, pipeline, find, union) -> None:
    """Union all blocks of each strongly connected component."""
    out: dict[int, set[int]] = {}
    for u, v in pipeline:
        a, b = find(u), find(v)
        if a != b:
            out.setdefault(a, set()).add(b)
    nodes = {find(i) for i in range(n)}
    for component in strongly_connected_components(nodes, lambda v: out.get(v, ())):
        for w in component:
            union(w, component[-1])


def _absorb_one_round(problem: Problem, pipeline, find, union) -> bool:
    """Absorb every current free leaf into its neighbour; True if any was absorbed."""
    n = len(problem.ops)
    memory_slack = memory_never_binds(problem)
    free: dict[int, bool] = {}
    for i, op in enumerate(problem.ops):
        r = find(i)
        ok = (memory_slack or op.size_bytes == 0) and all(op.supported) and not any(op.latency)
        free[r] = free.get(r, True) and ok
    neighbours: dict[int, set[int]] = {find(i): set() for i in range(n)}
    for u, v in pipeline:
        a, b = find(u), find(v)
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)
    # transfers touching each block: the leaf's neighbour must be in every one of them
    transfers: dict[int, list[set[int]]] = {}
    for u, succ in enumerate(problem.successors):
        group = {find(u)} | {find(v) for v in succ}
        if len(group) > 1:
            for a in group:
                transfers.setdefault(a, []).append(group)
    # likewise the side computations it needs: its neighbour must need them already
    for replica in problem.replicas:
        group = {find(r) for r in replica.readers}
        for a in group:
            transfers.setdefault(a, []).append(group)
    changed = False
    for r, near in neighbours.items():
        if not (free[r] and len(near) == 1 and find(r) == r):
            continue
        (m,) = near
        if find(m) != m or not all(m in group for group in transfers.get(r, ())):
            continue  # m was merged this round (stale sets), or a transfer bypasses m
        changed |= union(r, m)
        free[find(r)] = False  # its neighbourhood changed; look again next round
    return changed
