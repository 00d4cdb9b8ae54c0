"""Merge trivially cheap operators into a neighbour, to shrink the placement problem.

A model's graph carries many ops that cost next to nothing (Reshape, Transpose, Relu
after a Conv ...). Placing them one by one enlarges the problem without changing the
answer much; :func:`coarsen` glues each into the node it feeds from or feeds into,
keeping every figure that is a sum exact. See ``docs/costs.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from placer.frontends.onnx_graph import GraphEdge, GraphNode, OpGraph
from placer.graphs import UnionFind, topological_order


def coarsen(
    graph: OpGraph,
    max_flops_fraction: float = 1e-3,
    *,
    labels: Sequence[str | None] | None = None,
) -> OpGraph:
    """Merge each cheap node into its only producer, or else its only consumer.

    Parameters
    ----------
    graph : OpGraph
        The graph to coarsen.
    max_flops_fraction : float, default 1e-3
        A node is cheap when its FLOPs are at most this fraction of the graph's total.
    labels : sequence of str or None, optional
        A group for each node (None: no group), such as its layer under
        ``--granularity layer``: nodes of two different groups are never merged, so a
        merged node lies within one group (and nodes without one).

    Returns
    -------
    OpGraph
        A graph whose nodes are groups of the original ones, in topological order. Each
        group takes the name and op type of its dearest member and lists all members'
        ONNX names in ``members`` (graph order). FLOPs, bytes, parameters and output
        bytes are sums over members, so the graph's totals are unchanged; edges inside
        a group disappear, the others are kept (one per group pair and tensor). Members'
        ``scopes`` are kept, in the order of ``members``.

    Notes
    -----
    A cheap node joins a neighbouring group only when all its in-edges come from that
    group (or all its out-edges go to it), which cannot close a cycle. Side computations
    (``graph.replicated``) are recomputed by every stage that reads them: they neither
    join nor absorb a group. Nodes are visited
    in topological order. Time is O(V + E) set operations per merge, O(V·E) at worst.

    Examples
    --------
    >>> nodes = tuple(
    ...     GraphNode(n, t, f, 0, 0, 0, 0, 0, True)
    ...     for n, t, f in [("c", "Conv", 100.0), ("r", "Relu", 0.05)]
    ... )
    >>> g = OpGraph("g", nodes, (GraphEdge(0, 1, "x", 4.0),), 0.0, 4, ())
    >>> coarsen(g).nodes[0].members
    ('c', 'r')
    """
    if not 0 <= max_flops_fraction <= 1:
        raise ValueError(f"max_flops_fraction must lie in [0, 1], got {max_flops_fraction}")
    n = len(graph.nodes)
    threshold = max_flops_fraction * graph.total_flops
    preds: list[set[int]] = [set() for _ in range(n)]
    succs: list[set[int]] = [set() for _ in range(n)]
    for edge in graph.edges:
        preds[edge.dst].add(edge.src)
        succs[edge.src].add(edge.dst)

    sets = UnionFind()
    find = sets.find

    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    label: list[str | None] = list(labels) if labels is not None else [None] * n

    def neighbours(group: int, adjacency: list[set[int]]) -> set[int]:
        return {find(j) for i in members[group] for j in adjacency[i]} - {group}

    side = set(graph.replicated)  # recomputed by each stage: never merged into an op
    for i in range(n):
        if graph.nodes[i].flops > threshold or i in side:
            continue
        group = find(i)
        for adjacency in (preds, succs):
            targets = neighbours(group, adjacency)
            if len(targets) == 1 and not targets & side:
                (target,) = targets
                if None not in (label[group], label[target]) and label[group] != label[target]:
                    continue
                label[target] = label[target] or label[group]
                sets.union(group, target, root=target)
                members[target].extend(members.pop(group))
                break

    groups = sorted(members, key=lambda g: min(members[g]))
    edges_between: dict[tuple[int, int, str], float] = {}
    for edge in graph.edges:
        a, b = find(edge.src), find(edge.dst)
        if a != b:
            edges_between.setdefault((a, b, edge.tensor), edge.bytes)

    # topological order of the groups, ties broken by first member
    arcs = [(a, b) for a, b, _ in edges_between]
    order = topological_order(groups, arcs, key=lambda g: min(members[g]))
    if order is None:  # an internal invariant, not a user error
        raise RuntimeError("coarsening produced a cycle")
    position = {g: k for k, g in enumerate(order)}

    nodes = tuple(_merge([graph.nodes[i] for i in sorted(members[g])]) for g in order)
    edges = tuple(
        GraphEdge(position[a], position[b], tensor, size)
        for (a, b, tensor), size in sorted(
            edges_between.items(), key=lambda item: (position[item[0][0]], position[item[0][1]])
        )
    )
    replicated = tuple(sorted(position[i] for i in side))  # singletons: their own root
    shared = tuple(
        replace(weight, readers=tuple(sorted({position[find(i)] for i in weight.readers})))
        for weight in graph.shared_weights
    )
    repeats = tuple(
        (position[find(node)], position[find(original)])
        for node, original in graph.repeats
        if find(node) != find(original)
    )
    return replace(graph, nodes=nodes, edges=edges, replicated=replicated,
                   shared_weights=shared, repeats=repeats)  # fmt: skip


def _merge(group: list[GraphNode]) -> GraphNode:
    if len(group) == 1:
        return group[0]
    anchor = max(group, key=lambda node: node.flops)
    return GraphNode(
        name=anchor.name,
        op_type=anchor.op_type,
        flops=math.fsum(node.flops for node in group),
        bytes_read=math.fsum(node.bytes_read for node in group),
        bytes_written=math.fsum(node.bytes_written for node in group),
        param_count=sum(node.param_count for node in group),
        param_bytes=math.fsum(node.param_bytes for node in group),
        output_bytes=math.fsum(node.output_bytes for node in group),
        has_formula=all(node.has_formula for node in group),
        members=tuple(name for node in group for name in node.members),
        scopes=_scopes(group),
        op_class=anchor.op_class,
        weights_computed=anchor.weights_computed,
        product_shape=anchor.product_shape,
        in_place=anchor.in_place and len(group) == 1,
        recomputes=all(node.recomputes for node in group),
        shared_param_count=sum(node.shared_param_count for node in group),
        shared_param_bytes=math.fsum(node.shared_param_bytes for node in group),
    )


def _scopes(group: list[GraphNode]) -> tuple[str, ...]:
    """The members' scopes in member order, or () if some node does not know its own."""
    if any(len(node.scopes) != len(node.members) for node in group):
        return ()
    return tuple(scope for node in group for scope in node.scopes)
