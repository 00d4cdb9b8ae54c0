"""Graph utilities every stage of placer uses: topological orders and disjoint sets.

Each is written once here; the loaders, the contraction, the solvers and the evaluator
call them, so that an order (and with it every tie a plan depends on) is the same
everywhere.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable
from typing import Any


def topological_order(
    nodes: Iterable[int], arcs: Iterable[tuple[int, int]], key: Callable[[int], Any] | None = None
) -> list[int] | None:
    """Kahn's algorithm: a topological order of ``nodes`` under ``arcs`` (pairs of
    nodes), or None if they have a cycle.

    Each step takes the ready node with the least ``key`` (the node itself by default),
    so that the order is deterministic.  A repeated arc counts once.  O((n + a) log n).

    Examples
    --------
    >>> topological_order([0, 1, 2, 3], {(2, 1), (0, 1)})
    [0, 2, 1, 3]
    >>> topological_order([0, 1], [(0, 1), (1, 0)]) is None
    True
    """
    nodes = list(nodes)
    order = acyclic_part(nodes, arcs, key)
    return order if len(order) == len(nodes) else None


def acyclic_part(
    nodes: Iterable[int], arcs: Iterable[tuple[int, int]], key: Callable[[int], Any] | None = None
) -> list[int]:
    """What :func:`topological_order` orders before it meets a cycle: every node that
    neither lies on a cycle nor is reached from one, in its order.

    Examples
    --------
    >>> acyclic_part(range(4), [(0, 1), (1, 2), (2, 1), (2, 3)])
    [0]
    """
    indegree = dict.fromkeys(nodes, 0)
    out: dict[int, list[int]] = {node: [] for node in indegree}
    for a, b in dict.fromkeys(arcs):
        out[a].append(b)
        indegree[b] += 1
    # without a key the heap holds the nodes themselves (no tuples: large graphs)
    entry = (lambda node: node) if key is None else (lambda node: (key(node), node))
    ready = [entry(node) for node, degree in indegree.items() if degree == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        node = heapq.heappop(ready)
        node = node if key is None else node[1]
        order.append(node)
        for succ in out[node]:
            indegree[succ] -= 1
            if indegree[succ] == 0:
                heapq.heappush(ready, entry(succ))
    return order


def depth_first_order(n: int, arcs: Iterable[tuple[int, int]]) -> list[int]:
    """A topological order of the acyclic graph on ``range(n)`` that follows each
    chain as far as it goes before starting another (the least ready node first, the
    least successor first): consecutive nodes tend to be neighbours.

    Examples
    --------
    >>> depth_first_order(4, [(0, 1), (0, 2), (2, 3)])
    [0, 1, 2, 3]
    >>> depth_first_order(4, [(0, 2), (1, 3), (2, 3)])
    [0, 2, 1, 3]
    """
    out: list[list[int]] = [[] for _ in range(n)]
    left = [0] * n
    for u, v in arcs:
        out[u].append(int(v))
        left[v] += 1
    ready = [node for node in range(n) if left[node] == 0][::-1]
    order: list[int] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for succ in sorted(out[node], reverse=True):
            left[succ] -= 1
            if left[succ] == 0:
                ready.append(succ)
    return order


def strongly_connected_components(
    nodes: Iterable[int], successors: Callable[[int], Iterable[int]]
) -> list[list[int]]:
    """The strongly connected components of the graph on ``nodes`` (Tarjan's algorithm,
    iterative), each listed from the node that closed it back to its root; nodes and
    successors are visited in increasing order.

    Examples
    --------
    >>> out = {0: [1], 1: [2], 2: [0], 3: [0]}
    >>> strongly_connected_components(range(4), lambda v: out[v])
    [[2, 1, 0], [3]]
    """
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    found: list[list[int]] = []
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(successors(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(successors(w)))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    found.append(component)
    return found


class UnionFind:
    """Disjoint sets of hashable items (each alone until joined), with path halving.

    Examples
    --------
    >>> sets = UnionFind()
    >>> sets.union(3, 5), sets.union(5, 1), sets.union(1, 3)
    (True, True, False)
    >>> sets.find(5), sets.find(7)
    (1, 7)
    >>> _ = sets.union(9, 1, root=9)
    >>> sets.find(3)
    9
    """

    def __init__(self) -> None:
        self._parent: dict[Hashable, Hashable] = {}

    def find(self, item: Hashable) -> Hashable:
        """The item naming ``item``'s set."""
        parent = self._parent
        while parent.get(item, item) != item:
            grand = parent.get(parent[item], parent[item])
            parent[item] = grand
            item = grand
        return item

    def union(self, a: Hashable, b: Hashable, *, root: Hashable | None = None) -> bool:
        """Join the sets of ``a`` and ``b``; False if they were one already.  The joined
        set is named by ``root``'s name if given (``root`` is ``a`` or ``b``), else by
        the lesser of the two names."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        keep = self.find(root) if root is not None else min(ra, rb)  # type: ignore[type-var]
        self._parent[rb if keep == ra else ra] = keep
        return True
